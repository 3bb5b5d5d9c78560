"""Give a fused bundle its music score, so that scan calls non-music ``not-music`` (no genre written).

    python tools/add_music.py BUNDLE [--floor 0.2]

``BUNDLE`` is a fused (musicnn + EfficientAT) bundle (``tools/make_fused.py``, then ``tools/calibrate.py``).
Its model gains one last output per window: the largest probability of AudioSet's ``Music`` and singing
classes (``genretag.models.fusion.MUSIC_CLASSES``); a scan averages it over a track's windows, and a track
below ``--floor`` gets status ``not-music``. The genre outputs are unchanged (checked here). The card gains
``music`` (the classes, the floor, how it was chosen). Rewrites ``model.keras`` and ``card.json`` (sha256
updated); run ``tools/add_styles.py`` (which keeps the music score last) and ``tools/export_runtime.py``
afterwards (a stale ``model.onnx`` is refused at load).

The floor was chosen with ``tools/check_music.py`` (music from the corpus and four Debian packages against
generated signals, espeak-ng speech and recorded speech); its table is in the model card ("Not music").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FLOOR = 0.2
"""The shipped floor: every one of 1,103 music files scored 0.34 or more, every speech file 0.12 or less
(tools/check_music.py; the model card, "Not music")."""
EVIDENCE = (
    "tools/check_music.py, 8 scan windows per file, mean over windows: at floor 0.2, 0 of 1,103 music files "
    "withheld (1,053 corpus clips, 40 wesnoth-1.16-music songs, 4 fretsonfire-songs-muldjord, 1 "
    "fretsonfire-songs-sectoid, 5 asterisk-moh-opsound-wav; lowest 0.341) and 86 of 88 non-music files caught "
    "(6 of 6 espeak-ng voices, 8 of 8 alsa-utils recorded voices, 60 of 60 asterisk-core-sounds-en-wav recorded "
    "prompts, 12 of 14 generated signals; missed: a repeating 100 Hz-8 kHz sweep 0.365 and a 50 Hz hum with "
    "harmonics 0.241)")
EVIDENCE_PICKED = {
    3: "tools/check_music.py, 8 scan windows per file, mean over the 3 EfficientAT hears (features.audioset_windows "
       "3): at floor 0.2, 0 of 1,103 music files withheld (the same sets; lowest 0.278) and 86 of 88 non-music files "
       "caught (every speech file, at most 0.111; 12 of 14 generated signals; missed: the repeating sweep 0.291 and "
       "the 50 Hz hum 0.421)"}
"""The evidence for a bundle whose EfficientAT hears ``k`` of a track's windows, by ``k`` (measured for 3)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--floor", type=float, default=FLOOR, help="a track below this mean music score is not music")
    args = parser.parse_args()
    from genretag.files import replace_atomically
    from genretag.models.bundle import read_bundle, sha256_file, verify_bundle
    from genretag.models.fusion import has_music, register_layers, with_music
    from genretag.models.runtime import import_keras

    bundle = read_bundle(args.bundle)
    verify_bundle(bundle)
    card = bundle.card
    if not card.features.audioset_rate or not card.architecture.startswith("musicnn+efficientat"):
        sys.exit(f"{args.bundle}: not a fused (musicnn + EfficientAT) bundle: it has no AudioSet network")
    if card.features.audioset_windows:  # a track-level EfficientAT scores the music: the card alone
        if card.music is not None:
            sys.exit(f"{args.bundle}: the model has a music score already")
        data = json.loads((args.bundle / "card.json").read_text())
        data["music"] = _music(args, "per picked window (features.audioset_windows), the largest probability "
                               "(sigmoid) of these AudioSet classes; per track, the mean over those windows")
        text = (json.dumps(data, indent=2) + "\n").encode()
        replace_atomically(args.bundle / "card.json", lambda fh: fh.write(text))  # networks unchanged
        print(f"{args.bundle}: music score listed (scored by the track-level EfficientAT; floor {args.floor})")
        return
    keras = import_keras()
    register_layers()
    model = keras.saving.load_model(bundle.weights_path, compile=False, safe_mode=True)
    if card.music is not None or has_music(model):
        sys.exit(f"{args.bundle}: the model has a music score already")
    combined = with_music(model, labels=card.labels, features=card.features, styles=card.style_names)
    x = np.random.default_rng(0).uniform(0, 4, (4, *model.input.shape[1:])).astype(np.float32)
    before, after = np.asarray(model(x)), np.asarray(combined(x))
    same = np.abs(after[:, :-1] - before).max()
    print(f"genre (and style) outputs unchanged: max |diff| {same:.1e}")
    if same > 1e-5:
        sys.exit("the rebuilt model's other outputs differ: not written")
    path = bundle.weights_path
    tmp = path.with_suffix(".tmp.keras")
    combined.save(tmp)
    os.replace(tmp, path)
    data = json.loads((args.bundle / "card.json").read_text())
    data["music"] = _music(args, "per window, the largest probability (sigmoid) of these AudioSet classes; per "
                           "track, the mean over its windows")
    data["sha256"] = sha256_file(path)
    data["params"] = int(combined.count_params())
    data.pop("runtime", None)  # exported from the old weights: export again
    text = (json.dumps(data, indent=2) + "\n").encode()
    replace_atomically(args.bundle / "card.json", lambda fh: fh.write(text))
    print(f"{args.bundle}: music score attached (floor {args.floor}); sha256 {data['sha256']}")


def _evidence(args) -> str:
    from genretag.models.bundle import read_bundle

    if args.floor != FLOOR:
        return f"floor {args.floor} chosen by hand (not the measured one)"
    k = read_bundle(args.bundle).card.features.audioset_windows
    if not k:
        return EVIDENCE
    return EVIDENCE_PICKED.get(k, f"floor {args.floor} measured with EfficientAT in every window, not on {k} of them "
                                  "(tools/check_music.py --bundle BUNDLE measures it)")


def _music(args, score: str) -> dict:
    """The card's ``music`` entry; ``score`` says how the music score is made."""
    from genretag.models.fusion import MUSIC_CLASSES

    return {
        "floor": args.floor,
        "score": f"{score}; below the floor the track is not-music (no genre written)",
        "classes": [name for _, name in MUSIC_CLASSES],
        "evidence": _evidence(args),
        "command": f"python tools/add_music.py {args.bundle} --floor {args.floor}",
    }


if __name__ == "__main__":
    main()
