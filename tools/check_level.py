"""Does a model keep its genres when the music is played quieter? The card's level check.

    python tools/check_level.py [BUNDLE] [--seed 0] [--db 0 -6 -12]

Decodes the windows scan cuts from each test clip of ``labels.csv`` (split ``--seed``, 60 clips
for seed 0), as scan decodes them (:func:`genretag.scan.extract.extract_track`: once at the rate
the bundle needs, resampled for musicnn), scales the decoded samples by each gain of ``--db``, and
predicts every version as scan does (the bundle's pooling and temperature). Reports, per gain, how
many clips keep the genre they get at 0 dB, how many are right, and the largest change of the top
genre's confidence. Scaling the samples is a playback level (no codec is involved), so a model whose
input is brought to one level per track keeps every genre.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
CORPUS = ROOT.parent / "shared" / "corpus"


def main() -> None:
    import genretag
    from genretag.audio import load_segments, probe, resample
    from genretag.config import WindowPolicy
    from genretag.datasets import load_dataset
    from genretag.features import track_windows, window_starts
    from genretag.models.runtime import load_classifier, track_mean
    from genretag.models.track_experts import track_opinions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", default="default")
    parser.add_argument("--seed", type=int, default=0, help="the split seed whose test clips are played")
    parser.add_argument("--db", type=float, nargs="+", default=[0.0, -6.0, -12.0],
                        help="gains in dB (the first is the reference)")
    args = parser.parse_args()
    model = genretag.load_model(args.bundle)
    card = model.bundle.card
    config, classifier = card.features, load_classifier(model.bundle)
    tracks = load_dataset(CORPUS / "labels.csv", min_per_class=20, seed=args.seed).split("test")
    rate = config.audioset_rate or config.sample_rate
    found: dict[float, list[tuple[int, float]]] = {db: [] for db in args.db}
    for track in tracks:
        info = probe(track.path)
        starts = window_starts(info.duration, config=config, policy=WindowPolicy())
        decoded = load_segments(track.path, starts, seconds=config.window_seconds, sample_rate=rate, info=info)
        for db in args.db:
            wide = decoded * np.float32(10.0 ** (db / 20.0))
            segments = wide if rate == config.sample_rate else resample(wide, rate, config.sample_rate)
            windows = track_windows(segments, config, wide=wide if config.audioset_rate else None)
            p = track_mean(classifier.predict(windows), temperature=card.temperature, pooling=card.pooling,
                           n_genres=len(card.labels), expert=track_opinions(classifier, [windows])[0])[: len(card.labels)]
            found[db].append((int(p.argmax()), float(p.max())))
    truth = [model.labels.index(t.label) for t in tracks]
    reference = found[args.db[0]]
    for db, rows in found.items():
        same = sum(a[0] == b[0] for a, b in zip(rows, reference))
        right = sum(a[0] == y for a, y in zip(rows, truth))
        change = max(abs(a[1] - b[1]) for a, b in zip(rows, reference))
        print(f"{db:+5.0f} dB: genre as at {args.db[0]:+.0f} dB on {same}/{len(rows)}, right {right}/{len(rows)}, "
              f"largest confidence change {change:.3f}")


if __name__ == "__main__":
    main()
