"""What ``genretag learn``'s fit costs at library scale, decoding nothing: time and peak memory for N tracks.

    python benchmarks/learn_fit_scale.py N [N ...] [--genres 10] [--albums-per-genre 0]

For each N, in a fresh process: N track feature vectors of the stored width (1,425 float32 values, what the
store gives ``learn``), drawn around 10 genre centres (the layer's cost depends on the tracks, features and
genres, not on the values), one album per 10 tracks, then what ``learn`` runs after its feature pass:
``choose_genres`` (album-grouped 5-fold cross-validation over every shrinkage, genres below the precision floor
left out), the final ``fit_layer`` and ``fit_temperature``. Prints per N the seconds of each step and the
process's peak resident memory, and the memory the feature vectors themselves take (the floor any fit needs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def one(n: int, genres: int) -> dict:
    import numpy as np

    from genretag.config import LearnConfig
    from genretag.learn.core import choose_genres, feature_columns
    from genretag.learn.fit import fit_layer, fit_temperature, masks_of

    rng = np.random.default_rng(0)
    names = tuple(f"genre {i}" for i in range(genres))
    label = rng.integers(0, genres, n)
    x = rng.standard_normal((n, 1425), dtype=np.float32)
    x += rng.standard_normal((genres, 1425), dtype=np.float32)[label] * 0.15
    track_genres = [(names[i],) for i in label]
    groups = [f"album {i // 10}" for i in range(n)]
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = LearnConfig()
    columns = feature_columns(config.features)
    started = time.perf_counter()
    chosen = choose_genres(track_genres, x, groups, genres=names, left_out=(), columns=columns, config=config)
    choose_s = time.perf_counter() - started
    started = time.perf_counter()
    keep = chosen.keep
    masks = masks_of([track_genres[i] for i in keep], chosen.genres)
    fit_layer(x[keep], masks, columns=columns, shrinkage=chosen.cv.shrinkage)
    fit_temperature(chosen.cv.logits, masks)
    final_s = time.perf_counter() - started
    return {"tracks": n, "genres": genres, "genres_kept": len(chosen.genres), "cv_accuracy": round(chosen.cv.accuracy, 3),
            "choose_genres_s": round(choose_s, 2), "final_fit_s": round(final_s, 2),
            "features_mib": round(x.nbytes / 2**20, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_fit_mib": round(baseline / 1024, 1), "load": [round(v, 2) for v in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="+", help="tracks")
    parser.add_argument("--genres", type=int, default=10)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # the measured child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.n[0], args.genres)))
        return
    for n in args.n:  # each in its own process: peak memory is per N
        out = subprocess.run([sys.executable, __file__, str(n), "--genres", str(args.genres), "--one"],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
