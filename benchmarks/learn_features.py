"""Which features a learned genre layer should read: album-grouped cross-validation on a tagged library.

    python benchmarks/learn_features.py LIBRARY --store STORE [--genre-map MAP] [--min-tracks 15]

Reads the library's genres as ``genretag learn`` does, takes each tagged track's features from the store
(decoding what it lacks) and prints, per feature set and class weighting, the cross-validated accuracy
(a track's predicted genre is one of its own) and macro recall, with the shrinkage the folds chose.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from genretag.config import LEARN_FEATURE_SETS
from genretag.discover import discover
from genretag.learn.core import feature_columns
from genretag.learn.features import track_features
from genretag.learn.fit import cross_validate, masks_of
from genretag.learn.labels import read_labels
from genretag.models.registry import resolve_model
from genretag.genremap import read_genre_map
from genretag.store import Store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("library", type=Path)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--genre-map", type=Path)
    parser.add_argument("--min-tracks", type=int, default=15)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    files = discover([args.library]).files
    labels = read_labels(files, field="genre", min_tracks=args.min_tracks,
                         genre_map=read_genre_map(args.genre_map) if args.genre_map else None)
    tagged = labels.tagged
    with Store(args.store) as store:
        vectors = track_features([f.path for f in tagged], bundle=resolve_model("default"), store=store, windows=8,
                                 jobs=2, timeout=120)
    by_path = {f.path: f for f in tagged}
    rows = [by_path[p] for p in vectors.paths]
    masks = masks_of([r.genres for r in rows], labels.genres)
    groups = [r.group for r in rows]
    print(f"{len(rows)} tracks, {len(set(groups))} albums, genres: "
          + ", ".join(f"{g} {int(n)}" for g, n in zip(labels.genres, masks.sum(0))))
    print(f"{'features':<28} {'accuracy':>8} {'macro recall':>12} {'shrinkage':>9}")
    for k in range(1, len(LEARN_FEATURE_SETS) + 1):
        for sets in itertools.combinations(LEARN_FEATURE_SETS, k):
            cv = cross_validate(vectors.vectors, masks, groups, labels.genres, columns=feature_columns(sets),
                                folds=args.folds, seed=0)
            recall = np.mean([s.recall for s in cv.scores])
            print(f"{'+'.join(sets):<28} {cv.accuracy:8.3f} {recall:12.3f} {cv.shrinkage:9.1f}")


if __name__ == "__main__":
    main()
