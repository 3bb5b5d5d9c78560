"""Judge genre models on each source separately: the corpus's own splits, and music from elsewhere.

    python tools/check_sources.py [--bundle NAME=PATH ...] [--json OUT]

A check drawn from a training source cannot choose between models (model 3.0 won on 4Q clips,
the source of half its training data, and lost on music from elsewhere), so every candidate is
scored on each source on its own:

- ``corpus-test``: the test split of ``labels.csv`` (artist-separated, seeds 0, 1, 2; accuracy);
- ``4q-multi``: 4Q clips of held-out artists from ``labels-multi.csv`` (same seeds; right when the
  genre is inside the clip's AllMusic set). 4Q is a training source of every corpus-trained head;
- ``wesnoth``: the 40 songs of Debian's ``wesnoth-1.16-music`` (GPL; an orchestral game score,
  38 tagged ``Romantic Classical`` by their authors: Classical; ``silence.ogg`` left out);
- ``muldjord``: the 4 songs of Debian's ``fretsonfire-songs-muldjord`` (the mix ``song.ogg``;
  tagged ``Death Metal``: Rock).

The last two come from sources no candidate was trained on: they are the independent checks, and
a candidate is chosen by the worst of them. Missing packages are skipped with a note
(``apt-get install wesnoth-1.16-music fretsonfire-songs-muldjord``). Every file is cut into the 8
windows a scan cuts (``load_scan_windows``, cached), so a score here is what ``genretag scan`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
CORPUS = ROOT.parent / "shared" / "corpus"
SEEDS = (0, 1, 2)
INDEPENDENT = ("wesnoth", "muldjord")


@dataclass(frozen=True)
class Check:
    """Tracks and the genres each may rightly get."""

    name: str
    paths: tuple[Path, ...]
    allowed: np.ndarray
    """``bool [n, n_labels]``."""
    seed: int | None = None


def package_files(package: str, pattern: str) -> list[Path]:
    """Files a Debian package installed whose name ends with ``pattern`` (none when it is not installed)."""
    listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    return sorted(Path(line) for line in listing.stdout.split() if line.endswith(pattern) and Path(line).is_file())


def checks(labels: tuple[str, ...]) -> list[Check]:
    from genretag.datasets import load_dataset
    from genretag.datasets.partial import load_partial

    out = []
    index = {label: i for i, label in enumerate(labels)}
    for seed in SEEDS:
        data = load_dataset(CORPUS / "labels.csv", min_per_class=20, seed=seed)
        assert tuple(data.labels) == labels, (data.labels, labels)
        test = data.split("test")
        allowed = np.zeros((len(test), len(labels)), bool)
        allowed[np.arange(len(test)), [index[t.label] for t in test]] = True
        out.append(Check("corpus-test", tuple(t.path for t in test), allowed, seed))
        partial = load_partial(CORPUS / "labels-multi.csv", dataset=data, seed=seed, val_fraction=0.2,
                               test_fraction=0.3)
        held = partial.part("test")
        out.append(Check("4q-multi", tuple(partial.paths[i] for i in held), partial.masks[held] > 0, seed))
    for name, package, pattern, label in (("wesnoth", "wesnoth-1.16-music", ".ogg", "Classical"),
                                          ("muldjord", "fretsonfire-songs-muldjord", "/song.ogg", "Rock")):
        files = [f for f in package_files(package, pattern) if f.name != "silence.ogg"]
        if not files:
            print(f"note: {package} is not installed; the {name} check is skipped", file=sys.stderr)
            continue
        allowed = np.zeros((len(files), len(labels)), bool)
        allowed[:, index[label]] = True
        out.append(Check(name, tuple(files), allowed))
    return out


def scores(track_probs: dict[Path, np.ndarray], all_checks: list[Check], *, seed: int | None = None) -> dict[str, float]:
    """Share of each check's tracks whose top genre is allowed (seeded checks: that ``seed``'s, or the mean
    over seeds when None)."""
    per: dict[str, list[float]] = {}
    for check in all_checks:
        if seed is not None and check.seed not in (None, seed):
            continue
        p = np.stack([track_probs[path] for path in check.paths])
        per.setdefault(check.name, []).append(float(check.allowed[np.arange(len(p)), p.argmax(1)].mean()))
    return {name: float(np.mean(v)) for name, v in per.items()}


def window_cache(paths: list[Path], config=None) -> dict[Path, np.ndarray]:
    """Each file's 8 scan windows for a bundle's ``config`` (musicnn's by default), cached."""
    from genretag.models import musicnn
    from genretag.train.featurecache import load_scan_windows

    cached = load_scan_windows(paths, config=config or musicnn.FEATURES, windows=8, jobs=2)
    missing = [p for p, w in zip(cached.paths, cached.windows) if w is None]
    if missing:
        sys.exit(f"{len(missing)} files could not be cut into windows: {missing[:3]}")
    return dict(zip(cached.paths, cached.windows))


def main() -> None:
    import genretag
    from genretag.models.runtime import load_classifier, track_mean
    from genretag.models.track_experts import track_opinions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", action="append", default=[], metavar="NAME=PATH",
                        help="a model bundle to judge (repeatable); default: the shipped model")
    parser.add_argument("--seed", type=int, default=0,
                        help="the split seed the bundles were trained with: their held-out corpus and 4q-multi "
                             "tracks (-1: the mean over seeds 0-2, for a model that never trained on the corpus)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    bundles = dict(b.split("=", 1) for b in args.bundle) or {"default": "default"}
    first = genretag.load_model(next(iter(bundles.values())))
    all_checks = checks(first.labels)
    paths = sorted({p for c in all_checks for p in c.paths})
    results = {}
    for name, spec in bundles.items():
        model = genretag.load_model(spec)
        card = model.bundle.card
        windows = window_cache(paths, card.features)
        classifier = load_classifier(model.bundle)
        logs = dict(zip(paths, track_opinions(classifier, [windows[p].astype(np.float32) for p in paths])))
        probs = {p: track_mean(classifier.predict(windows[p].astype(np.float32)), temperature=card.temperature,
                               pooling=card.pooling, n_genres=len(card.labels), expert=logs[p])[: len(card.labels)]
                 for p in paths}
        results[name] = scores(probs, all_checks, seed=None if args.seed < 0 else args.seed)
        print(f"{name:>20}: " + "  ".join(f"{k} {v:.3f}" for k, v in results[name].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
