#!/usr/bin/env python3
"""Per-track cost of model bundles side by side, interleaved, so a busy machine still gives fair ratios.

    python benchmarks/bench_models.py [CORPUS] --bundle 3.0=git:620c0da^ --bundle 4.0=default
        [--clips 40] [--scan-clips 300] [--repeats 5] [--bf16] [--skip STAGE ...] [--json out.json]

``--bundle NAME=SPEC`` (repeatable; the first is the baseline of the ratios): a bundle folder, ``default``
(the shipped one), or ``git:REV`` (the shipped bundle as it was at commit REV, e.g. ``git:620c0da^`` for
3.0). Stages, each run once per bundle per round, bundles alternating within every round:

- ``features``: what a decode worker does for a track (``extract_track``: tags, decode, both front
  ends), in this process on one BLAS thread, over ``--clips`` files spread over CORPUS: ms a track;
- ``network``: the bundle's runtime (OpenVINO from its model.onnx, f32 as a scan runs it) on those
  tracks' real windows, batches of 64 (a track-level YAMNet's ``yamnet.onnx`` on each 8 tracks' picked windows
  after them, as a scan runs it): ms a track and windows/s; ``--bf16`` adds each bundle at
  OpenVINO's bf16 precision (where the CPU has it; a scan never uses it);
- ``one_file``: ``genretag scan ONE --model B --dry-run --no-store -q --overwrite``, a fresh process;
- ``scan``: the same over ``--scan-clips`` files: whole-process seconds and ms a track.

Reported per stage and bundle: min and median over ``--repeats`` rounds, and the median's ratio to the
first bundle's. Time on a quiet machine for absolute figures (the 1-minute load average is recorded at
the start and the end); on a shared one, read only the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_scan import log, spread  # noqa: E402
from bench_startup import _only_read_only  # noqa: E402

STAGES = ("features", "network", "one_file", "scan")
BUNDLE_FILES = ("card.json", "model.keras", "model.onnx")


def materialise(spec: str, tmp: Path, name: str) -> str:
    """A bundle folder (or ``default``) for ``spec``; ``git:REV`` is written out of the history into ``tmp``."""
    if not spec.startswith("git:"):
        return spec
    folder = tmp / name.replace("/", "_")
    folder.mkdir(parents=True)
    for file in BUNDLE_FILES:
        data = subprocess.run(["git", "-C", str(REPO), "show", f"{spec[4:]}:genretag/bundled/default/{file}"],
                              capture_output=True, check=True).stdout
        (folder / file).write_bytes(data)
    return str(folder)


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def summary(times: list[float], per: int) -> dict[str, float]:
    return {"min_ms": 1000 * min(times) / per, "median_ms": 1000 * statistics.median(times) / per}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--bundle", action="append", default=[], metavar="NAME=SPEC", required=True)
    parser.add_argument("--clips", type=int, default=40, help="tracks for the features and network stages (40)")
    parser.add_argument("--scan-clips", type=int, default=300, help="tracks for the scan stage (300)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds, each running every bundle once (5)")
    parser.add_argument("--bf16", action="store_true", help="also time each network at OpenVINO's bf16")
    parser.add_argument("--skip", nargs="*", choices=STAGES, default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import numpy as np
    from threadpoolctl import threadpool_limits

    import genretag
    from genretag.config import WindowPolicy
    from genretag.discover import discover
    from genretag.models.runtime import OpenVINOClassifier, import_openvino
    from genretag.models.track_experts import TrackExpert, expert_names
    from genretag.scan import extract_track

    files = sorted(discover([args.corpus]).files)
    clips, scan_files = spread(files, args.clips), spread(files, args.scan_clips)
    tmp = Path(tempfile.mkdtemp(prefix="bench-models-"))
    specs = {name: materialise(spec, tmp, name) for name, spec in (b.split("=", 1) for b in args.bundle)}
    models = {name: genretag.load_model(spec) for name, spec in specs.items()}
    core = import_openvino().Core()
    variants = {name: "f32" for name in specs} | ({f"{n} bf16": "bf16" for n in specs} if args.bf16 else {})
    compiled = {v: OpenVINOClassifier(core.compile_model(core.read_model(str(models[v.split(" ")[0]].bundle.runtime_path)),
                                                         "CPU", {"INFERENCE_PRECISION_HINT": p}), (), 64)
                for v, p in variants.items()} if "network" not in args.skip else {}
    for v, p in variants.items():  # track-level experts: their own networks on each track's picked windows
        card = models[v.split(" ")[0]].bundle.card
        experts = []
        for expert in expert_names(card.features) if v in compiled else ():
            path = models[v.split(" ")[0]].bundle.path / card.runtime[expert]["file"]
            net = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": p})
            experts.append(TrackExpert(expert, lambda x, net=net: net(x)[0], card.features, card.labels,
                                       styles=card.style_names, music=card.music is not None))
        if experts:
            compiled[v].experts = tuple(experts)
    picked: dict[str, Any] = {}
    windows: dict[str, Any] = {}
    times: dict[str, dict[str, list[float]]] = {stage: {} for stage in STAGES}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    report: dict[str, Any] = {"bundles": specs, "clips": len(clips), "scan_clips": len(scan_files),
                              "load_start": load_average()}
    for round_ in range(args.repeats):
        log(f"round {round_ + 1}/{args.repeats} (load {load_average():.1f})")
        for name, model in models.items():
            config = model.bundle.card.features
            if "features" not in args.skip or name not in windows:
                with threadpool_limits(1):  # as a decode worker runs
                    start = time.perf_counter()
                    tracks = [extract_track(path, config=config, policy=WindowPolicy()) for path in clips]
                    elapsed = time.perf_counter() - start
                if "features" not in args.skip:
                    times["features"].setdefault(name, []).append(elapsed)
                windows[name] = np.concatenate([t.windows for t in tracks if t.status == "ok"])
                picked[name] = [t.windows for t in tracks if t.status == "ok"]
            for variant in [v for v in compiled if v.split(" ")[0] == name]:
                experts = compiled[variant].experts
                compiled[variant].predict(windows[name][:64])  # compiled for this shape before it is timed
                for expert in experts:
                    expert.opinions(picked[name][:8])
                start = time.perf_counter()
                compiled[variant].predict(windows[name])
                for expert in experts:  # its picked windows, 8 tracks a batch (as a scan's batch of 64 completes)
                    for first in range(0, len(picked[name]), 8):
                        expert.opinions(picked[name][first : first + 8])
                times["network"].setdefault(variant, []).append(time.perf_counter() - start)
            for stage, targets in (("one_file", clips[:1]), ("scan", scan_files)):
                if stage in args.skip:
                    continue
                cmd = [sys.executable, "-m", "genretag", "scan", *map(str, targets), "--model", specs[name],
                       "--dry-run", "--no-store", "-q", "--overwrite"]
                start = time.perf_counter()
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
                times[stage].setdefault(name, []).append(time.perf_counter() - start)
                if done.returncode and not _only_read_only(done.returncode, done.stderr):  # a dry run of
                    # read-only files (../shared/corpus) predicts each, then says it can't be written: exit 1
                    raise SystemExit(f"{' '.join(cmd[:4])} ... exited {done.returncode}: {done.stderr[-500:]}")
    report["load_end"] = load_average()
    per = {"features": len(clips), "network": len(clips), "one_file": 1, "scan": len(scan_files)}
    for stage, by_name in times.items():
        if not by_name:
            continue
        base = statistics.median(next(iter(by_name.values())))
        report[stage] = {name: {**summary(t, per[stage]), "ratio_to_first": statistics.median(t) / base}
                         for name, t in by_name.items()}
        for name, n_windows in ((n, len(windows[n.split(" ")[0]])) for n in by_name if stage == "network"):
            report[stage][name]["windows_per_s"] = n_windows / statistics.median(by_name[name])
    print(f"load average {report['load_start']:.1f} -> {report['load_end']:.1f}; {len(clips)} tracks "
          f"(features, network), {len(scan_files)} (scan); ms per track (one_file: ms), min / median, median ratio")
    for stage in STAGES:
        for name, row in report.get(stage, {}).items():
            extra = f"  {row['windows_per_s']:.0f} windows/s" if "windows_per_s" in row else ""
            print(f"{stage:>9} {name:>12}: {row['min_ms']:8.1f} / {row['median_ms']:8.1f}  x{row['ratio_to_first']:.2f}{extra}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
