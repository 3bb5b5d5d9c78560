"""Score fusion rules offline: every expert's per-window output on every check file, then rules over them.

    python tools/explore_experts.py --head 0=HEAD0 --head 1=HEAD1 --head 2=HEAD2 [--work /tmp/experts]

``HEAD<seed>``: a musicnn genre bundle trained with that split seed (2.0's recipe; seed 0 is 2.0
itself). Each check file (``tools/check_sources.py``'s: corpus test and 4q-multi held-out clips of
seeds 0-2, wesnoth, muldjord) is cut into the 8 windows scan cuts (the fused bundle's cache), and
each window gets, once (saved in ``--work``):

- ``p``: each head's genre distribution (musicnn's log-mel at one level per track);
- EfficientAT's 527 logits with its input as decoded, and with its input brought to one level per
  track (``--levels``: the mean of its normalised log-mel, ``(ln(mel + 1e-5) + 4.5) / 5``; 0 is the
  centre its authors' normalisation assumes for AudioSet);
- musicnn's own 50 MSD tag probabilities (its pretrained back end);
- YAMNet's 521 scores (``../shared/pretrained/yamnet_spectra_in.tflite`` run by TensorFlow Lite on
  the 16 kHz window, 5 patches of 0.96 s a window, averaged; its log-mel front end, a NumPy STFT and
  ``tf.signal``'s mel matrix after ``research/audioset/yamnet/features.py``, matches the reference patch
  shipped with it to correlation 0.99992 once the audio is scaled by 4.1, the gain the pair implies).

Rules combine the experts per window, ``softmax(sum_e w_e log q_e)``, and pool the windows by the
mean, as scan does; a row is scored on each check separately (seeded checks with that seed's head,
wesnoth and muldjord with seed 0's). This is a measuring tool, not a model: a rule worth shipping is
then built as a bundle and judged by ``tools/check_sources.py`` (the 4.0 rows agree to the clip).

``--yamnet-windows`` (YAMNet as ``--yamnet-keras`` runs it): YAMNet on only k of a track's windows
(:func:`spread`), its scores averaged over them and used for the whole track, either in every window's fusion
or once after the windows are pooled (:func:`track_rules`); every check scored with every seed's head
(:func:`per_seed_table`).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PRETRAINED = ROOT.parent / "shared" / "pretrained"
YAMNET_GAIN = 4.1
YAMNET_OFFSET = 5
"""YAMNet's outputs are AudioSet's 527 classes less 6 (two speech, two singing, Battle cry, Funny music,
found by aligning its outputs with EfficientAT's on these windows): every genre class is 5 places lower."""
MSD_GENRES = {"Blues": ("blues",), "Country": ("country",), "Hip-Hop": ("Hip-Hop",), "Jazz": ("jazz",),
              "Pop": ("pop",), "Soul-RnB": ("soul", "rnb", "funk"),
              "Electronic": ("electronic", "electronica", "electro", "dance", "House"),
              "Rock": ("rock", "alternative rock", "classic rock", "indie rock", "hard rock", "metal", "heavy metal",
                       "punk", "Progressive rock")}
"""musicnn's MSD tags beneath each label; no tag names Classical or International music (those two get
the mean of the others: the expert has no opinion on them)."""


def level_audioset(x: np.ndarray, target: float, *, max_db: float = 40.0) -> np.ndarray:
    """EfficientAT's normalised log-mel of ONE track ``[k, 128, t]`` at the gain that makes its mean ``target``."""
    mel = np.maximum(np.exp(5.0 * x.astype(np.float64) - 4.5) - 1e-5, 0.0)
    c, bound = 0.0, max_db / 10.0 * np.log(10.0)
    for _ in range(40):
        scaled = mel * np.exp(c)
        miss = ((np.log(scaled + 1e-5) + 4.5) / 5.0).mean() - target
        slope = (scaled / (scaled + 1e-5)).mean() / 5.0
        if abs(miss) < 1e-6 or abs(c) == bound:
            break
        c = float(np.clip(c - miss / max(slope, 1e-6), -bound, bound))
    return ((np.log(mel * np.exp(c) + 1e-5) + 4.5) / 5.0).astype(np.float32)


def yamnet_scores(paths, config, *, middle: bool = False) -> np.ndarray:
    """``float32 [windows, 521]``: YAMNet on each scan window (16 kHz), its 5 patches' scores averaged
    (``middle``: only the middle patch, frames 96-191 of 298: a fifth of the network's work)."""
    import tensorflow as tf

    from genretag.audio import load_segments, probe
    from genretag.config import WindowPolicy
    from genretag.features import window_starts

    mel = tf.signal.linear_to_mel_weight_matrix(num_mel_bins=64, num_spectrogram_bins=257, sample_rate=16000,
                                                lower_edge_hertz=125.0, upper_edge_hertz=7500.0).numpy()
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic Hann, 25 ms
    net = tf.lite.Interpreter(str(PRETRAINED / "yamnet_spectra_in.tflite"))
    net.allocate_tensors()
    into, out = net.get_input_details()[0]["index"], net.get_output_details()[0]["index"]
    scores = []
    for path in paths:
        info = probe(path)
        starts = window_starts(info.duration, config=config, policy=WindowPolicy())
        for wave in load_segments(path, starts, seconds=config.window_seconds, sample_rate=16000, info=info):
            frames = np.lib.stride_tricks.sliding_window_view(wave * YAMNET_GAIN, 400)[::160]
            logmel = np.log(np.abs(np.fft.rfft(frames * window, 512)) @ mel + 0.001).astype(np.float32)
            patch = []
            for k in [96] if middle else range(0, len(logmel) - 96 + 1, 48):
                net.set_tensor(into, logmel[None, k : k + 96])
                net.invoke()
                patch.append(net.get_tensor(out)[0].copy())
            scores.append(np.mean(patch, axis=0))
    return np.array(scores, np.float32)


def dump(work: Path, heads: dict[int, str], levels: list[float], *, yamnet: str = "yamnet") -> dict[str, np.ndarray]:
    """Every expert's per-window output, computed once and kept in ``work``."""
    import check_sources as cs
    import keras

    import genretag
    from genretag.config import YAMNET_RATE
    from genretag.features import yamnet_patches
    from genretag.models import efficientat, musicnn
    from genretag.models import yamnet as yamnet_net
    from genretag.models.bundle import read_bundle
    from genretag.models.fusion import register_layers

    fused = genretag.load_model("default")
    config = fused.bundle.card.features
    if yamnet == "yamnet-keras":
        config = replace(config, yamnet_rate=YAMNET_RATE)
    paths = sorted({p for c in cs.checks(fused.labels) for p in c.paths})
    work.mkdir(parents=True, exist_ok=True)
    names = [f"head{s}" for s in heads] + ["eat", yamnet] + [f"eat-level{t:g}" for t in levels]
    names += [] if yamnet == "yamnet-keras" else ["msd"]
    out = {n: np.load(work / f"{n}.npy") for n in names if (work / f"{n}.npy").is_file()}
    missing = [n for n in names if n not in out]
    if missing or not (work / "counts.npy").is_file():
        windows = cs.window_cache(paths, config)
        np.save(work / "counts.npy", np.array([len(windows[p]) for p in paths]))
        patches = np.concatenate([windows[p] for p in paths]).astype(np.float32)
        small = patches[:, : config.n_mels, : config.n_frames]
        wide = patches[:, config.n_mels : config.n_mels + 128, : config.audioset_frames]
        for name in missing:
            if name.startswith("head"):
                bundle = read_bundle(heads[int(name[4:])])
                register_layers()
                model = keras.saving.load_model(bundle.weights_path, compile=False, safe_mode=True)
                if bundle.card.features.audioset_rate:  # a fused bundle: its head
                    model = next(layer for layer in model.layers if isinstance(layer, keras.Model)
                                 and layer.name not in (efficientat.NAME, yamnet_net.NAME))
                out[name] = model.predict(small, batch_size=64, verbose=0)
            elif name.startswith("eat"):
                x = wide
                if name != "eat":
                    target = float(name.removeprefix("eat-level"))
                    rows = slice(config.n_mels, config.n_mels + 128)
                    x = np.concatenate([level_audioset(windows[p][:, rows, : config.audioset_frames], target)
                                        for p in paths])
                out[name] = efficientat.build_network(n_frames=config.audioset_frames).predict(x, batch_size=64,
                                                                                               verbose=0)[0]
            elif name == "yamnet-keras":
                rows = patches[:, config.yamnet_row : config.yamnet_row + 64, : config.yamnet_frames]
                cut = yamnet_patches(rows.transpose(0, 2, 1))  # [windows, 5, 96, 64]
                logits = yamnet_net.build_network().predict(cut.reshape(-1, 96, 64), batch_size=320, verbose=0)[0]
                out[name] = (1.0 / (1.0 + np.exp(-logits))).reshape(len(cut), -1, logits.shape[-1]).mean(1)
            elif name == "msd":
                extractor = musicnn.build_extractor()
                out[name] = musicnn.build_tagger(extractor).predict(extractor.predict(small, batch_size=64, verbose=0),
                                                                    batch_size=64, verbose=0)
            else:
                out[name] = yamnet_scores(paths, config, middle=name == "yamnet-mid")
            np.save(work / f"{name}.npy", out[name])
    out["counts"] = np.load(work / "counts.npy")
    out["paths"] = np.array([str(p) for p in paths])
    return out


def log_genres(scores: np.ndarray, labels: tuple[str, ...], *, offset: int = 0, logits: bool = False) -> np.ndarray:
    """``[windows, 10]``: each label's largest log-probability among its AudioSet classes (model 4.0's mapping)."""
    from genretag.models.fusion import GENRE_CLASSES

    log_s = -np.logaddexp(0.0, -scores) if logits else np.log(np.clip(scores, 1e-7, 1.0))
    return np.stack([log_s[:, [i - offset for i, _ in GENRE_CLASSES[label]]].max(1) for label in labels], 1)


def log_msd(tags: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    from genretag.models.musicnn import MSD_TAGS

    index = {t: i for i, t in enumerate(MSD_TAGS)}
    cols = {label: np.log(np.clip(tags[:, [index[t] for t in MSD_GENRES[label]]].max(1), 1e-7, 1.0))
            for label in labels if label in MSD_GENRES}
    neutral = np.mean(list(cols.values()), axis=0)
    return np.stack([cols.get(label, neutral) for label in labels], 1)


RECIPE_2_0 = {"corpus-test": (0.650, 0.583, 0.617), "4q-multi": (0.636, 0.683, 0.608), "wesnoth": (22, 21, 24),
              "muldjord": (2, 2, 2)}
"""2.0's recipe per split seed as built bundles score it (the card's "YAMNet built" table): the floor of the rule."""


def spread(n: int, k: int, *, mirror: bool = False) -> list[int]:
    """Which ``k`` of a track's ``n`` windows YAMNet hears: the centre window of each of k equal parts (n 8: k 1 ->
    4; 2 -> 2, 6; 4 -> 1, 3, 5, 7; n 7: 3; 1, 5; 0, 2, 4, 6); ``mirror``: the same counted from the end (n 8: 3;
    1, 5; 0, 2, 4, 6)."""
    picked = sorted({min(n - 1, int(n * (i + 0.5) / k)) for i in range(k)})
    return sorted(n - 1 - i for i in picked) if mirror else picked


def track_rules(log_p: np.ndarray, log_q: np.ndarray, yamnet: np.ndarray, bounds: np.ndarray, labels, *, w: float,
                wy: float, k: int, mode: str, mirror: bool = False) -> np.ndarray:
    """``[tracks, n_labels]`` scores (argmax: the genre). ``yamnet``: its per-window scores ``[windows, 521]``.
    ``mode`` ``window``: the shipped rule, each window with its own YAMNet (``k`` unused); ``each``: every window
    fused with the track's YAMNet mean over ``k`` windows, ``softmax((1 - w - wy) log p_w + w log q_w + wy log
    mean_k(q_y))``, windows pooled by the mean; ``after``: the two-expert windows pooled by the mean, then ``+ wy
    log mean_k(q_y)`` on the log of the track's distribution."""
    def softmax(z):
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    spans = list(itertools.pairwise(bounds))
    z = (1.0 - w - wy) * log_p + w * log_q
    if mode == "window":
        windows = softmax(z + wy * log_genres(yamnet, labels, offset=YAMNET_OFFSET))
        return np.array([windows[a:b].mean(0) for a, b in spans])
    heard = np.array([yamnet[a:b][spread(b - a, k, mirror=mirror)].mean(0) for a, b in spans])
    log_y = log_genres(heard, labels, offset=YAMNET_OFFSET)
    if mode == "each":
        windows = softmax(z + wy * np.repeat(log_y, np.diff(bounds), axis=0))
        return np.array([windows[a:b].mean(0) for a, b in spans])
    windows = softmax(z)
    return np.log(np.array([windows[a:b].mean(0) for a, b in spans])) + wy * log_y


def per_seed(tracks_of, seeds, checks, row_of: dict[str, int]) -> dict[str, list[float]]:
    """A rule's every check per seed: ``tracks_of(seed)`` gives its ``[tracks, n_labels]`` scores with that seed's
    head; a seeded check is scored with its own seed's, wesnoth and muldjord with every seed's; ``worst``: the lower
    of wesnoth /40 and muldjord /4, per seed."""
    per: dict[str, list[float]] = {}
    for seed in sorted(seeds):
        tracks = tracks_of(seed)
        for check in checks:
            if check.seed in (None, seed):
                top = tracks[[row_of[str(p)] for p in check.paths]].argmax(1)
                right = check.allowed[np.arange(len(top)), top]
                per.setdefault(check.name, []).append(right.mean() if check.seed is not None else right.sum())
    per["worst"] = [min(a / 40, b / 4) for a, b in zip(per["wesnoth"], per["muldjord"])]
    return per


def under_recipe(per: dict[str, list[float]]) -> list[str]:
    """The checks (``name s<seed>``) on which a rule scores under 2.0's recipe (:data:`RECIPE_2_0`)."""
    return [f"{c} s{s}" for c, floor in RECIPE_2_0.items() for s, (v, f) in enumerate(zip(per[c], floor))
            if round(v, 3) < f]


def per_seed_table(d, heads, labels, checks, *, weights: bool) -> None:
    """YAMNet on k windows (``--yamnet-windows``): each rule's every check per seed, and whether it keeps the rule
    (no check under :data:`RECIPE_2_0` on the same seed)."""
    bounds = np.concatenate([[0], np.cumsum(d["counts"])])
    row_of = {p: i for i, p in enumerate(d["paths"])}
    log_q = log_genres(d["eat"], labels, logits=True)
    log_p = {s: np.log(np.clip(d[f"head{s}"], 1e-7, 1.0)) for s in heads}

    def score(**rule) -> dict[str, list[float]]:
        return per_seed(lambda seed: track_rules(log_p[seed], log_q, d["yamnet-keras"], bounds, labels, **rule),
                        heads, checks, row_of)

    def under(per) -> str:
        return ", ".join(under_recipe(per)) or "none"

    def line(name: str, per) -> None:
        cell = {c: " / ".join(f"{v:.3f}" if c in ("corpus-test", "4q-multi", "worst") else f"{v:.0f}" for v in per[c])
                + f" ({np.mean(per[c]):.3f})" for c in per}
        print(f"| {name} | {cell['corpus-test']} | {cell['4q-multi']} | {cell['wesnoth']} | {cell['muldjord']} "
              f"| {cell['worst']} | {under(per)} |")

    print("| rule | corpus test s0 / s1 / s2 (mean) | 4q-multi s0 / s1 / s2 (mean) | wesnoth /40 | muldjord /4 "
          "| worst independent | under 2.0's recipe |")
    print("|---|---|---|---|---|---|---|")
    line("head alone (2.0's recipe, windows as the fused bundle cuts them)", score(w=0.0, wy=0.0, k=8, mode="window"))
    line("4.2: YAMNet per window (8 windows)", score(w=0.1, wy=0.35, k=8, mode="window"))
    for mode, k, mirror in itertools.product(("each", "after"), (8, 4, 2, 1), (False, True)):
        if not (mirror and k == 8):
            line(f"track mean of YAMNet on {k} windows ({spread(8, k, mirror=mirror)} of 8), {mode}",
                 score(w=0.1, wy=0.35, k=k, mode=mode, mirror=mirror))
    if not weights:
        return
    for mode, k in itertools.product(("each", "after"), (8, 4, 2, 1)):
        grid = [(w, wy, score(w=w, wy=wy, k=k, mode=mode)) for w in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35)
                for wy in (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)]
        best = sorted(grid, key=lambda g: (-min(g[2]["worst"]), -np.mean(g[2]["worst"]), under(g[2]).count(" s"),
                                           -np.mean(g[2]["corpus-test"]) - np.mean(g[2]["4q-multi"])))
        kept = [g for g in best if under(g[2]) in ("none", "4q-multi s2")]  # no lower than 4.2's floor
        for (w, wy, per), note in [(best[0], "best worst"), *((g, "best worst keeping 4.2's floor") for g in kept[:2])]:
            line(f"k {k}, {mode}, {note}: EfficientAT {w} x YAMNet {wy}", per)
            if k < 8:
                line(f"the same on windows {spread(8, k, mirror=True)} of 8",
                     score(w=w, wy=wy, k=k, mode=mode, mirror=True))


def main() -> None:
    import check_sources as cs

    import genretag

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", action="append", required=True, metavar="SEED=BUNDLE")
    parser.add_argument("--work", type=Path, default=Path("/tmp/experts"))
    parser.add_argument("--levels", type=float, nargs="*", default=[0.0, 0.4])
    parser.add_argument("--yamnet-middle", action="store_true",
                        help="YAMNet on the middle 0.96 s of each window only (one patch instead of 5)")
    parser.add_argument("--yamnet-keras", action="store_true",
                        help="YAMNet as a fused bundle runs it (genretag.models.yamnet on the scan windows' own "
                             "YAMNet rows, FeatureConfig.yamnet_rate): only the rules with YAMNet")
    parser.add_argument("--yamnet-windows", action="store_true",
                        help="YAMNet as --yamnet-keras, on k of a track's windows; every check per seed")
    parser.add_argument("--weights", action="store_true", help="with --yamnet-windows: the best weights for each k")
    args = parser.parse_args()
    heads = {int(k): v for k, v in (h.split("=", 1) for h in args.head)}
    labels = genretag.load_model("default").labels
    keras_yamnet = args.yamnet_keras or args.yamnet_windows
    yamnet = "yamnet-keras" if keras_yamnet else "yamnet-mid" if args.yamnet_middle else "yamnet"
    d = dump(args.work, heads, args.levels, yamnet=yamnet)
    bounds = np.concatenate([[0], np.cumsum(d["counts"])])
    row_of = {p: i for i, p in enumerate(d["paths"])}
    checks = cs.checks(labels)
    log_p = {s: np.log(np.clip(d[f"head{s}"], 1e-7, 1.0)) for s in heads}
    experts = {"eat": log_genres(d["eat"], labels, logits=True),
               "yamnet": log_genres(d[yamnet], labels, offset=YAMNET_OFFSET)}
    if "msd" in d:
        experts["msd"] = log_msd(d["msd"], labels)
    for t in args.levels:
        experts[f"eat-level{t:g}"] = log_genres(d[f"eat-level{t:g}"], labels, logits=True)

    def row(name: str, weights: dict[str, float]) -> None:
        """``weights``: expert -> w; the head gets 1 - their sum."""
        per: dict[str, list[float]] = {}
        for seed in sorted(heads):
            z = (1.0 - sum(weights.values())) * log_p[seed] + sum(w * experts[e] for e, w in weights.items())
            z = np.exp(z - z.max(1, keepdims=True))
            windows = z / z.sum(1, keepdims=True)
            tracks = np.array([windows[a:b].mean(0) for a, b in itertools.pairwise(bounds)])
            for check in checks:
                if check.seed not in (None, seed) or (check.seed is None and seed != min(heads)):
                    continue
                top = tracks[[row_of[str(p)] for p in check.paths]].argmax(1)
                right = check.allowed[np.arange(len(top)), top]
                per.setdefault(check.name, []).append(right.mean() if check.seed is not None else right.sum())
        cells = [f"{np.mean(per[c]):.3f} ({' / '.join(f'{v:.3f}' for v in per[c])})" for c in ("corpus-test", "4q-multi")]
        worst = min(per["wesnoth"][0] / 40, per["muldjord"][0] / 4)
        print(f"| {name} | {cells[0]} | {cells[1]} | {per['wesnoth'][0]:.0f} | {per['muldjord'][0]:.0f} | {worst:.3f} |")

    if args.yamnet_windows:
        return per_seed_table(d, heads, labels, checks, weights=args.weights)
    print("| rule (seed 0's head for wesnoth, muldjord) | corpus test, mean (seeds) | 4q-multi, mean (seeds) "
          "| wesnoth /40 | muldjord /4 | worst |")
    print("|---|---|---|---:|---:|---:|")
    row("head alone (2.0's recipe)", {})
    if args.yamnet_keras:
        row("zero-shot YAMNet mapping", {"yamnet": 1.0})
        for w in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35):
            row(f"head x EfficientAT {w}", {"eat": w})
            for wy in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4):
                row(f"head x EfficientAT {w} x YAMNet {wy}", {"eat": w, "yamnet": wy})
        return
    row("zero-shot EfficientAT mapping", {"eat": 1.0})
    row("zero-shot YAMNet mapping", {"yamnet": 1.0})
    row("zero-shot musicnn MSD tags", {"msd": 1.0})
    for w in (0.2, 0.35, 0.5, 0.65):
        row(f"head x EfficientAT, w {w} (4.0: 0.35)", {"eat": w})
    for t in args.levels:
        for w in (0.35, 0.5, 0.65):
            row(f"head x EfficientAT levelled to {t:g}, w {w}", {f"eat-level{t:g}": w})
    for w3 in (0.1, 0.2, 0.3):
        row(f"head x EfficientAT 0.35 x MSD tags {w3}", {"eat": 0.35, "msd": w3})
    for w in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35):
        for wy in (0.1, 0.15, 0.2, 0.25, 0.3):
            row(f"head x EfficientAT {w} x YAMNet {wy}", {"eat": w, "yamnet": wy})


if __name__ == "__main__":
    main()
