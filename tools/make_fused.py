"""Build a fused genre bundle: a musicnn genre head and EfficientAT's AudioSet genre classes.

    python tools/make_fused.py HEAD_BUNDLE OUT --weight 0.35 [--yamnet-weight 0.25 [--yamnet-patches 1|3] [--yamnet-windows K]] [--head-weight A [--audioset-windows K]] [--pooling geometric --name genretag-default --version 4.0]

``HEAD_BUNDLE`` is a musicnn bundle (``genretag train --model musicnn``; model 4.0 takes model 2.0's, whose
weights are in the history: ``git show 4324edf:genretag/bundled/default/model.keras``), or a fused bundle, whose
head is taken (e.g. to add YAMNet to model 4.0).
Its head is kept as it is and joined with the AudioSet network (``genretag.models.fusion``);
nothing is trained here. The card keeps the head's labels and training record, adds
``audioset_rate`` to the features (every window decoded once at 32 kHz: EfficientAT hears all of
it, musicnn its 16 kHz resampling) and the fusion's weight and class mapping, and drops the head's
calibration and runtime: run ``tools/calibrate.py OUT`` and ``tools/export_runtime.py OUT``
after, then ``tools/check_sources.py --bundle new=OUT`` to judge it. ``--yamnet-weight`` adds YAMNet
(AudioSet, ``genretag.models.yamnet``) as a third expert with that weight (the head gets ``1 - weight -
yamnet_weight``), fed YAMNet's log-mel of the window's 16 kHz audio (the card's ``yamnet_rate``);
``--yamnet-patches 1`` has it hear only the window's middle 0.96-s patch, ``3`` every other one (0, 2, 4: side by
side, not overlapping; the card's ``yamnet_patches``). ``--yamnet-windows K`` takes YAMNet out of the per-window
network: it hears K of a track's windows in a network of its own, fused once per track after pooling (the card's
``features.yamnet_windows`` and ``yamnet_weight``; ``genretag.models.track_experts``). ``--head-weight A`` gives
the head's weight in a window (default ``1 - weight - yamnet_weight``); with it, ``--audioset-windows K`` takes
EfficientAT out of the per-window network as well (the card's ``features.audioset_windows``; ``--weight`` is then
``audioset_weight``, its track-level weight): the per-window network is the head alone, ``softmax(A log p)``, and
EfficientAT's own network on K windows gives the track's genre term, styles and music score.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HEARD = {5: "averaged over the window's 0.96-s patches (5)",
         3: "averaged over the window's 3 side-by-side 0.96-s patches (0, 2, 4 of 5)",
         1: "of the window's middle 0.96-s patch (1 of 5)"}
"""What YAMNet hears per window, by ``--yamnet-patches``, for the card's ``fusion.yamnet_network.q``."""


def main() -> None:
    from genretag.config import AUDIOSET_RATE, YAMNET_PATCH_CHOICES, YAMNET_RATE
    from genretag.files import replace_atomically
    from genretag.models import efficientat, yamnet
    from genretag.models.bundle import read_bundle, sha256_file, verify_bundle, write_card
    from genretag.models.fusion import GENRE_CLASSES, build_fused, register_layers
    from genretag.models.runtime import import_keras

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("head", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--weight", type=float, required=True, help="w in softmax((1 - w) log p + w log q)")
    parser.add_argument("--yamnet-weight", type=float, default=0.0,
                        help="w_y: YAMNet as a third expert, softmax((1 - w - w_y) log p + w log q + w_y log q_y)")
    parser.add_argument("--yamnet-patches", type=int, choices=YAMNET_PATCH_CHOICES, default=YAMNET_PATCH_CHOICES[-1],
                        help="YAMNet patches of 0.96 s per window: 5 (all, averaged), 3 (0, 2, 4: not overlapping, "
                             "averaged) or 1 (the middle one)")
    parser.add_argument("--yamnet-windows", type=int, default=0,
                        help="k: YAMNet leaves the per-window network and hears k of a track's windows (the centre one "
                             "of each of k equal parts), fused once per track after pooling (the card's "
                             "features.yamnet_windows and yamnet_weight); 0 (default): YAMNet in every window")
    parser.add_argument("--audioset-windows", type=int, default=0,
                        help="k: EfficientAT leaves the per-window network too and hears k of a track's windows, "
                             "its --weight then its track-level weight (the card's features.audioset_windows and "
                             "audioset_weight; needs --head-weight); 0 (default): EfficientAT in every window")
    parser.add_argument("--head-weight", type=float, default=None,
                        help="a: the head's weight in its windows, softmax(a log p ...) (default: 1 - weight - "
                             "yamnet_weight); required with --audioset-windows")
    parser.add_argument("--pooling", choices=("mean", "geometric"), default="geometric",
                        help="how scan combines a track's windows (geometric: the softmax of their mean log-probabilities)")
    parser.add_argument("--name", default="genretag-default")
    parser.add_argument("--version", default="4.0")
    args = parser.parse_args()

    head_bundle = read_bundle(args.head)
    verify_bundle(head_bundle)
    card = head_bundle.card
    keras = import_keras()
    head_record = {"name": card.name, "version": card.version, "sha256": card.sha256,
                   "training": card.training.get("command", "")}
    if card.architecture.startswith("musicnn+efficientat"):  # a fused bundle: its head, rejoined
        register_layers()
        fused = keras.saving.load_model(head_bundle.weights_path, compile=False, safe_mode=True)
        head = next(layer for layer in fused.layers
                    if isinstance(layer, keras.Model) and layer.name not in (efficientat.NAME, yamnet.NAME))
        head_record = card.training["fusion"]["head"]
        card = replace(card, features=replace(card.features, audioset_rate=0, yamnet_rate=0,
                                                     yamnet_patches=YAMNET_PATCH_CHOICES[-1], yamnet_windows=0,
                                                     yamnet_weight=0.0, audioset_windows=0, audioset_weight=0.0),
                       training={k: v for k, v in card.training.items() if k != "fusion"})
    elif card.architecture != "musicnn" or card.features.audioset_rate:
        sys.exit(f"{args.head}: not a musicnn genre bundle")
    else:
        head = keras.saving.load_model(head_bundle.weights_path, compile=False, safe_mode=True)
    features = replace(card.features, audioset_rate=AUDIOSET_RATE, yamnet_rate=YAMNET_RATE if args.yamnet_weight else 0,
                       yamnet_patches=args.yamnet_patches if args.yamnet_weight else YAMNET_PATCH_CHOICES[-1],
                       yamnet_windows=args.yamnet_windows if args.yamnet_weight else 0,
                       yamnet_weight=args.yamnet_weight if args.yamnet_windows else 0.0,
                       audioset_windows=args.audioset_windows,
                       audioset_weight=args.weight if args.audioset_windows else 0.0)
    if args.audioset_windows and args.head_weight is None:
        sys.exit("--audioset-windows needs --head-weight")
    model = build_fused(head, labels=card.labels, features=features, weight=args.weight,
                        yamnet_weight=args.yamnet_weight, head_weight=args.head_weight)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "model.keras")
        data = (Path(tmp) / "model.keras").read_bytes()
    replace_atomically(args.out / "model.keras", lambda fh: fh.write(data))
    fusion = {
        "weight": args.weight,
        "rule": "softmax((1 - weight) * log p_musicnn_head + weight * log q_audioset) per window",
        "head": head_record,
        "audioset_network": {"name": "EfficientAT mn04_as (mAP 0.432)", "licence": "MIT",
                             "source_sha256": efficientat.SOURCE_SHA256,
                             "converted_with": "tools/convert_efficientat.py"},
        "mapping": {label: [name for _, name in GENRE_CLASSES[label]] for label in card.labels},
        "q": "each label's largest AudioSet class probability (sigmoid), renormalised by the softmax",
        "command": f"python tools/make_fused.py {args.head} {args.out} --weight {args.weight} "
                   + (f"--yamnet-weight {args.yamnet_weight} " if args.yamnet_weight else "")
                   + (f"--yamnet-patches {args.yamnet_patches} "
                      if args.yamnet_weight and args.yamnet_patches != YAMNET_PATCH_CHOICES[-1] else "")
                   + (f"--yamnet-windows {args.yamnet_windows} " if args.yamnet_weight and args.yamnet_windows else "")
                   + (f"--head-weight {args.head_weight} " if args.head_weight is not None else "")
                   + (f"--audioset-windows {args.audioset_windows} " if args.audioset_windows else "")
                   + f"--pooling {args.pooling} --name {args.name} --version {args.version}",
    }
    if args.yamnet_weight:
        fusion["yamnet_weight"] = args.yamnet_weight
        fusion["rule"] = ("softmax((1 - weight - yamnet_weight) * log p_musicnn_head + weight * log q_audioset "
                          "+ yamnet_weight * log q_yamnet) per window")
        fusion["yamnet_network"] = {"name": "YAMNet (AudioSet, 521 classes; Coral's 8-bit tflite, run in float32)",
                                    "licence": "Apache-2.0", "source_sha256": yamnet.SOURCE_SHA256,
                                    "converted_with": "tools/convert_yamnet.py",
                                    "q": "each label's largest class score, YAMNet's sigmoid scores "
                                         + HEARD[args.yamnet_patches] + ", the same mapping"}
        if args.yamnet_windows:
            fusion["yamnet_windows"] = args.yamnet_windows
            fusion["rule"] = ("log(mean over the track's windows of softmax((1 - weight - yamnet_weight) * log "
                              "p_musicnn_head + weight * log q_audioset)) + yamnet_weight * log q_yamnet, q_yamnet "
                              "from YAMNet's mean scores over yamnet_windows of the track's windows (the centre one "
                              "of each of that many equal parts), then calibrated")
            fusion["yamnet_network"]["q"] += (f"; on {args.yamnet_windows} of a track's windows only, in a network "
                                              "of its own (runtime.yamnet), their scores averaged")
    if args.head_weight is not None:
        fusion["head_weight"] = args.head_weight
        fusion["rule"] = fusion["rule"].replace("(1 - weight - yamnet_weight) * log p", "head_weight * log p").replace(
            "(1 - weight) * log p", "head_weight * log p")
    if args.audioset_windows:
        fusion["audioset_windows"] = args.audioset_windows
        fusion["rule"] = ("log(mean over the track's windows of softmax(head_weight * log p_musicnn_head)) + weight * "
                          "log q_audioset" + (" + yamnet_weight * log q_yamnet" if args.yamnet_weight else "")
                          + ", q_audioset from EfficientAT's mean probabilities over audioset_windows of the track's "
                          "windows (the centre one of each of that many equal parts; styles and the music score "
                          "from the same windows), then calibrated")
    architecture = "musicnn+efficientat+yamnet" if args.yamnet_weight else "musicnn+efficientat"
    new = replace(card, name=args.name, version=args.version, architecture=architecture,
                  features=features, sha256=sha256_file(args.out / "model.keras"),
                  params=int(model.count_params()), calibration={}, runtime={}, styles=(), pooling=args.pooling,
                  training={**card.training, "fusion": fusion},
                  description=("A genre head on musicnn (Million Song Dataset) fused window by window with the "
                               "genre classes of EfficientAT mn04 (AudioSet), which was never trained on the corpus."))
    write_card(args.out, new)
    print(f"wrote {args.out} ({new.params:,} parameters, weight {args.weight})")


if __name__ == "__main__":
    main()
