"""Benchmark the Ray engine against the local pool on the same files, on this machine.

    python benchmarks/bench_ray.py ../shared/corpus --limit 300 [--model DIR] [--json out.json]

Both engines get the same files (``--limit`` spread evenly over the listing), the same
model and options (windows, batch size; dry run, ``force``). Before anything is timed, Keras
is imported, the model loaded and traced once in this process.

- ``local``: ``genretag.predict(files, model=loaded)`` with ``--jobs`` decode workers
  (pool start-up included; the model is already loaded).
- ``ray_start``: ``ray.init(num_cpus=cores)``: a local Ray, once.
- ``ray``: :func:`genretag.engines.ray_scan.scan_on_ray` on that Ray, writing a JSON Lines
  file to a temporary folder; run ``--ray-runs`` times. Each run starts its own inference
  actor (a fresh process: Keras import, model load and first trace are inside the timing)
  and decode tasks (Ray keeps idle worker processes between runs, so the later runs' tasks
  start warm).

``overhead`` = Ray wall / local wall (1: no overhead). Predictions of the two engines
are compared (``max_abs_diff``). Needs ``pip install 'genretag[ray]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if (REPO / "genretag" / "__init__.py").is_file() and str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import genretag  # noqa: E402
from genretag.config import ScanOptions, default_jobs  # noqa: E402
from genretag.discover import discover  # noqa: E402


def spread(files: list[Path], limit: int | None) -> list[Path]:
    if not limit or limit >= len(files):
        return files
    return [files[int(i * len(files) / limit)] for i in range(limit)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--model", default="default")
    parser.add_argument("--windows", type=int, default=ScanOptions.windows)
    parser.add_argument("--batch-size", type=int, default=ScanOptions.batch_size)
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="local decode workers; Ray CPUs")
    parser.add_argument("--ray-runs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    try:
        import ray
    except ImportError:
        print("error: Ray is not installed: pip install 'genretag[ray]'", file=sys.stderr)
        return 1
    from bench_scan import describe_machine

    from genretag.engines.outputs import Outputs
    from genretag.engines.ray_scan import scan_on_ray
    from genretag.models.runtime import import_keras

    files = spread(list(discover([args.folder]).files), args.limit)
    if not files:
        print(f"error: no audio files under {args.folder}", file=sys.stderr)
        return 1
    load_start = os.getloadavg()[0]
    options = ScanOptions(windows=args.windows, batch_size=args.batch_size, jobs=args.jobs, dry_run=True, force=True)
    keras = import_keras()
    model = genretag.load_model(args.model, batch_size=args.batch_size)
    shape = (model.bundle.card.features.n_mels, model.bundle.card.features.n_frames)
    model.classifier.predict(np.zeros((args.batch_size, *shape), np.float32))  # trace once, untimed
    print(f"{len(files)} files, {args.jobs} cores, load average {load_start:.2f}", file=sys.stderr)

    start = time.perf_counter()
    local = {str(r.path): r for r in genretag.predict(files, model=model, options=options)}
    local_s = time.perf_counter() - start
    print(f"local: {local_s:.1f} s", file=sys.stderr)

    start = time.perf_counter()
    ray.init(num_cpus=args.jobs, include_dashboard=False, log_to_driver=False)
    ray_start_s = time.perf_counter() - start
    runs = []
    with tempfile.TemporaryDirectory(prefix="genretag-bench-ray-") as tmp:
        for n in range(args.ray_runs):
            report = Path(tmp) / f"run{n}.jsonl"
            start = time.perf_counter()
            summary = scan_on_ray(files, model=args.model, options=options, outputs=Outputs(json=report),
                                  resume=False)
            wall = time.perf_counter() - start
            rows = [json.loads(line) for line in report.read_text().splitlines()]
            runs.append({"wall_s": round(wall, 3), "tracks_per_s": round(len(files) / wall, 2),
                         "overhead": round(wall / local_s, 3), "statuses": dict(summary.statuses),
                         "actors": summary.actors, "gpus": summary.gpus, "rows": len(rows)})
            print(f"ray run {n + 1}: {wall:.1f} s", file=sys.stderr)
    ray.shutdown()
    diffs = [max(abs(p - float(local[r["path"]].prediction.probabilities[local[r["path"]].prediction.labels.index(g)]))
                 for g, p in r["probabilities"].items())
             for r in rows if r["probabilities"] and local[r["path"]].prediction is not None]
    result = {
        "files": len(files), "model": model.model_id, "windows": args.windows, "batch_size": args.batch_size,
        "local": {"wall_s": round(local_s, 3), "tracks_per_s": round(len(files) / local_s, 2), "jobs": args.jobs},
        "ray_start_s": round(ray_start_s, 3), "ray": runs,
        "max_abs_diff_vs_local": round(max(diffs, default=0.0), 6),
        "machine": describe_machine(keras) | {"load_avg_1m_start": load_start, "load_avg_1m_end": os.getloadavg()[0],
                                              "ray": ray.__version__},
    }
    print("| engine | wall s | tracks/s | overhead |\n| --- | ---: | ---: | ---: |")
    print(f"| local pool ({args.jobs} workers) | {local_s:.1f} | {len(files) / local_s:.1f} | 1.00 |")
    for n, run in enumerate(runs, 1):
        print(f"| ray run {n} | {run['wall_s']:.1f} | {run['tracks_per_s']:.1f} | {run['overhead']:.2f} |")
    print(f"ray.init: {ray_start_s:.1f} s; max |p_ray - p_local| = {result['max_abs_diff_vs_local']} "
          "(JSON rows are rounded to 4 decimals)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
