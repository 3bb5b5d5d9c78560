#!/usr/bin/env python3
"""Whole-process cost of the `genretag scan` command: Keras against the light runtime.

    python benchmarks/bench_startup.py [CORPUS] [--clips 300] [--repeats 5] [--windows-from 40]
        [--skip STAGE ...] [--json out.json]

CORPUS defaults to ../shared/corpus. Stages (each can be skipped with --skip):

- ``one_clip``: ``genretag scan ONE_CLIP --dry-run --no-store -q`` in a fresh process, ``--repeats``
  times per runtime, alternating (``GENRETAG_RUNTIME=keras`` against ``auto``, i.e. OpenVINO): wall
  seconds of the whole process, and the peak RSS of the largest process in its tree.
- ``runtimes``: each inference runtime alone in a fresh process on real windows (``--windows-from``
  clips, 8 windows each, batches of 64): import, load, first batch, windows/s, peak RSS, and the
  largest difference from Keras (plus how many windows change top genre). Keras, OpenVINO f32,
  OpenVINO at the CPU's default precision, ONNX Runtime; those not installed are left out.
- ``corpus``: ``--clips`` files spread evenly over CORPUS: the decode floor (decode+resample of
  the scan's windows in the scan's pool, 2 workers on 2 cores, no features, no model;
  ``bench_scan.py``'s floor a), the same with every file decoded whole (the floor as issue 16
  defines it), and the whole ``genretag scan FILES --dry-run --no-store -q`` process per runtime, then OpenVINO again with ``--overwrite`` (every file decoded and predicted: without
  it, files that keep their genre are only read for their tags).
- ``agreement``: the test split of CORPUS/labels.csv (``load_dataset(min_per_class=20, seed=0)``)
  scanned with ``--min-confidence 0 --csv`` by each runtime: differing genres, largest confidence
  difference.

The load average is recorded before each stage: time only when it is below ~1.2 on 2 cores.
Results: a table on stdout, the whole report with --json, progress on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_scan import decode_floor, log, process_tree, spread, whole_decode_floor  # noqa: E402

from genretag.config import DecisionOptions, ScanOptions  # noqa: E402
from genretag.discover import discover  # noqa: E402

RUNTIMES = {"keras": "keras", "openvino": "auto"}
"""Label -> GENRETAG_RUNTIME value for the scan command (``auto`` runs the card's model.onnx on OpenVINO)."""
STAGES = ("one_clip", "runtimes", "corpus", "agreement")


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _hwm_kib(pid: int) -> int:
    """Peak RSS of ``pid`` since its exec (``VmHWM``), in KiB; 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def run_measured(cmd: list[str], *, env: dict[str, str]) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds and the largest ``VmHWM`` of any process in its tree (sampled every 20 ms)."""
    peaks: dict[int, int] = {}
    done = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while not done.wait(0.02):
            for pid in process_tree(proc.pid):
                peaks[pid] = max(peaks.get(pid, 0), _hwm_kib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode != 0 and not _only_read_only(proc.returncode, err):
        raise SystemExit(f"{' '.join(cmd[:6])} ... exited {proc.returncode}: {err[-2000:]}")
    return {"wall_s": wall, "largest_rss_mib": max(peaks.values(), default=0) / 1024,
            "main_rss_mib": peaks.get(proc.pid, 0) / 1024, "processes": len(peaks), "stdout": out}


def _only_read_only(returncode: int, err: str) -> bool:
    """A dry run of read-only files (../shared/corpus) says each can't be written and exits 1: not a failure here."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    return returncode == 1 and bool(errors) and all(" file is read-only (" in line for line in errors)


def scan_env(runtime: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    env["GENRETAG_RUNTIME"] = RUNTIMES[runtime]
    return env


def scan_cmd(files: list[Path], *extra: str) -> list[str]:
    return [sys.executable, "-m", "genretag", "scan", *map(str, files), "--dry-run", "--no-store", "-q", *extra]


def one_clip(clip: Path, repeats: int) -> dict[str, Any]:
    runs: dict[str, list[dict]] = {name: [] for name in RUNTIMES}
    for _ in range(repeats):
        for name in RUNTIMES:
            runs[name].append(run_measured(scan_cmd([clip]), env=scan_env(name)))
    return {name: {"clip": str(clip), "repeats": repeats,
                   "wall_s_median": statistics.median(r["wall_s"] for r in rs),
                   "wall_s_min": min(r["wall_s"] for r in rs),
                   "largest_rss_mib": max(r["largest_rss_mib"] for r in rs)} for name, rs in runs.items()}


RUNTIME_PROBE = r'''
import json, resource, sys, time
import numpy as np
kind, bundle, windows, reference = sys.argv[1:5]
t0 = time.perf_counter()
if kind == "keras":
    import os; os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    t1 = time.perf_counter()
    model = keras.saving.load_model(bundle + "/model.keras", compile=False, safe_mode=True)
    run = lambda x: np.asarray(model.predict_on_batch(x))
elif kind.startswith("openvino"):
    import openvino
    t1 = time.perf_counter()
    core = openvino.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32"} if kind == "openvino-f32" else {}
    compiled = core.compile_model(core.read_model(bundle + "/model.onnx"), "CPU", config)
    run = lambda x: compiled(x)[0]
else:
    import onnxruntime
    t1 = time.perf_counter()
    session = onnxruntime.InferenceSession(bundle + "/model.onnx", providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    run = lambda x: session.run(None, {name: x})[0]
t2 = time.perf_counter()
w = np.load(windows)
batches = [w[i:i + 64] for i in range(0, len(w), 64)]
run(batches[0])
t3 = time.perf_counter()
out = np.concatenate([run(b) for b in batches])
t4 = time.perf_counter()
ref = np.load(reference) if reference != "-" else out
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_batch_s": t3 - t2,
                  "windows_per_s": len(out) / (t4 - t3), "windows": len(out),
                  "max_abs_diff_vs_keras": float(np.abs(out - ref[:len(out)]).max()),
                  "top_genre_changes": int((out.argmax(1) != ref[:len(out)].argmax(1)).sum()),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
if reference == "-":
    np.save(windows + ".keras.npy", out)
'''


def runtimes(files: list[Path], tmp: Path) -> dict[str, Any]:
    """Each runtime alone on the same real windows, in a fresh process."""
    import importlib.util

    import numpy as np

    from genretag.config import WindowPolicy
    from genretag.models.registry import resolve_model
    from genretag.scan import extract_track

    bundle = resolve_model("default")
    tracks = [extract_track(p, config=bundle.card.features, policy=WindowPolicy()) for p in files]
    windows = tmp / "windows.npy"
    np.save(windows, np.concatenate([t.windows for t in tracks if t.status == "ok"]))
    kinds = ["keras"] + [k for k, module in (("openvino-f32", "openvino"), ("openvino-default", "openvino"),
                                             ("onnxruntime", "onnxruntime")) if importlib.util.find_spec(module)]
    report = {}
    for kind in kinds:
        reference = "-" if kind == "keras" else str(windows) + ".keras.npy"
        proc = subprocess.run([sys.executable, "-c", RUNTIME_PROBE, kind, str(bundle.path), str(windows), reference],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{kind}: {proc.stderr[-2000:]}")
        report[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def corpus(files: list[Path]) -> dict[str, Any]:
    from genretag.models.registry import resolve_model

    options = ScanOptions(jobs=2)
    floor_start = time.perf_counter()
    _, floor = decode_floor(files, config=resolve_model("default").card.features, options=options)
    report: dict[str, Any] = {"files": len(files), "decode_floor_s": time.perf_counter() - floor_start,
                              "decode_floor_tracks": floor["tracks"]}
    whole_start = time.perf_counter()  # the floor: every sample of every file, as a naive tagger reads them
    whole_decode_floor(files, sample_rate=resolve_model("default").card.features.sample_rate, options=options)
    report["whole_decode_floor_s"] = time.perf_counter() - whole_start
    report["keep_their_genre"] = sum(keeps_genre(path) for path in files)
    # the default scan decodes no file that keeps its genre; --overwrite predicts every file
    for name, extra in [(name, ()) for name in RUNTIMES] + [("openvino --overwrite", ("--overwrite",))]:
        run = run_measured(scan_cmd(files, "--jobs", "2", *extra), env=scan_env(name.split()[0]))
        run.pop("stdout")
        run["ratio_to_decode_floor"] = run["wall_s"] / report["decode_floor_s"]
        run["ratio_to_whole_decode_floor"] = run["wall_s"] / report["whole_decode_floor_s"]
        report[name] = run
    return report


def keeps_genre(path: Path) -> bool:
    """Whether a scan without --overwrite keeps this file's genre (one genretag did not write)."""
    from genretag.errors import GenretagError
    from genretag.scan.decide import ScanResult, keeps_existing
    from genretag.tags import read_tags

    try:
        tags = read_tags(path)
    except GenretagError:
        return False
    result = ScanResult(path=path, status="predicted", genres=tags.genres, provenance=tags.provenance, tags=tags)
    return keeps_existing(result, DecisionOptions())


def test_split(root: Path) -> list[Path]:
    from genretag.datasets import load_dataset

    data = load_dataset(root / "labels.csv", min_per_class=20, seed=0)
    return [Path(t.path) for t in data.split("test")]


def agreement(files: list[Path], tmp: Path) -> dict[str, Any]:
    rows = {}
    for name in RUNTIMES:
        out = tmp / f"{name}.csv"
        run_measured(scan_cmd(files, "--min-confidence", "0", "--csv", str(out)), env=scan_env(name))
        with open(out, newline="", encoding="utf-8") as fh:
            rows[name] = {r["path"]: r for r in csv.DictReader(fh)}
    keras, light = rows["keras"], rows["openvino"]
    assert keras.keys() == light.keys()
    return {"tracks": len(keras),
            "different_genres": sum(keras[p]["genre"] != light[p]["genre"] for p in keras),
            "max_confidence_diff": max(abs(float(keras[p]["confidence"] or 0) - float(light[p]["confidence"] or 0))
                                       for p in keras)}


def render(report: dict[str, Any]) -> None:
    print(f"load average before each stage: {report['load']}")
    if "one_clip" in report:
        print("\none clip, whole `genretag scan` process")
        for name, r in report["one_clip"].items():
            print(f"  {name:9s} wall median {r['wall_s_median']:.2f} s (min {r['wall_s_min']:.2f}, {r['repeats']} runs)"
                  f"   largest process peak RSS {r['largest_rss_mib']:.0f} MiB")
    if "runtimes" in report:
        print("\nruntime alone, real windows, batches of 64")
        for name, r in report["runtimes"].items():
            print(f"  {name:16s} import {r['import_s']:.2f} s  load {r['load_s']:.2f} s  first batch "
                  f"{r['first_batch_s']:.2f} s  {r['windows_per_s']:.0f} windows/s  peak RSS {r['peak_rss_mib']:.0f} MiB"
                  f"  diff {r['max_abs_diff_vs_keras']:.1e}  top-genre changes {r['top_genre_changes']}/{r['windows']}")
    if "corpus" in report:
        c = report["corpus"]
        print(f"\n{c['files']} clips ({c.get('keep_their_genre', '?')} keep their genre: not decoded without "
              f"--overwrite): decode floor {c['decode_floor_s']:.1f} s (the scan's windows), "
              f"{c.get('whole_decode_floor_s', float('nan')):.1f} s (whole files), 2 workers")
        for name in [n for n in c if n in RUNTIMES or n.endswith("--overwrite")]:
            r = c[name]
            print(f"  {name:21s} scan {r['wall_s']:.1f} s = {r['ratio_to_decode_floor']:.2f} x floor"
                  f" ({r.get('ratio_to_whole_decode_floor', float('nan')):.2f} x the whole-file floor)"
                  f"   largest process peak RSS {r['largest_rss_mib']:.0f} MiB ({r['processes']} processes)")
    if "agreement" in report:
        a = report["agreement"]
        print(f"\ntest split: {a['tracks']} tracks, {a['different_genres']} genres differ, "
              f"largest confidence difference {a['max_confidence_diff']:.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--clips", type=int, default=300, help="files for the corpus stage, spread evenly (300)")
    parser.add_argument("--repeats", type=int, default=5, help="one-clip runs per runtime (5)")
    parser.add_argument("--windows-from", type=int, default=40, help="clips whose windows the runtimes stage uses (40)")
    parser.add_argument("--skip", nargs="*", choices=STAGES, default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    files = sorted(discover([args.corpus]).files)
    if not files:
        raise SystemExit(f"no audio files under {args.corpus}")
    report: dict[str, Any] = {"load": {}, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        for stage in STAGES:
            if stage in args.skip:
                continue
            report["load"][stage] = load_average()
            log(f"{stage} (load {report['load'][stage]:.2f})")
            if stage == "one_clip":
                report[stage] = one_clip(files[0], args.repeats)
            elif stage == "runtimes":
                report[stage] = runtimes(spread(files, args.windows_from), Path(tmp))
            elif stage == "corpus":
                report[stage] = corpus(spread(files, args.clips))
            elif (args.corpus / "labels.csv").is_file():
                report[stage] = agreement(test_split(args.corpus), Path(tmp))
    render(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
