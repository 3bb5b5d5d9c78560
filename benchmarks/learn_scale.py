"""What ``genretag learn``'s feature pass costs next to a scan of the same files, at library scale.

    python benchmarks/learn_scale.py N [--workdir DIR] [--jobs J] [--keep]

Builds an N-file library in a temporary folder (never in the repository): copies of the corpus's audio files
under distinct names (cycling through them when N is larger than the corpus), each tagged with its corpus
genre (``labels.csv``, else the first of ``labels-multi.csv``), so that ``learn`` decodes every file. Then,
each as its own process and with its own fresh prediction store:

- ``genretag learn LIBRARY --out MODEL --no-export`` (the feature pass, the fit and the bundle);
- ``genretag scan LIBRARY --dry-run --overwrite`` (every file decoded and predicted, nothing written).

Reports per command the wall seconds, seconds per file, the peak resident memory of the process tree (sampled
every 0.2 s from /proc: the main process and its decode workers together) and of its largest process, the
load average before and after, and learn's own split (feature pass / fit, from its output); then the
learn/scan ratios (whole process; and the feature pass per file decoded against the scan per file), which
are the figures to compare on a shared machine, and the stored features' bytes per track (the store's
``features`` table).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import mutagen

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def corpus_genres() -> dict[Path, str]:
    """Each corpus audio file and a genre for it."""
    genres: dict[Path, str] = {}
    with open(CORPUS / "labels-multi.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            genres[CORPUS / row["path"]] = row["genres"].split(";")[0]
    with open(CORPUS / "labels.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            genres[CORPUS / row["path"]] = row["genre"]
    return {p: g for p, g in sorted(genres.items()) if p.is_file()}


def build_library(root: Path, n: int) -> int:
    """``n`` tagged copies under ``root`` (1,000 a folder). Returns the bytes copied."""
    sources = list(corpus_genres().items())
    random.Random(0).shuffle(sources)  # any N is a mix of the corpus's genres
    total = 0
    for i in range(n):
        src, genre = sources[i % len(sources)]
        dst = root / f"{i // 1000:03d}" / f"{i:06d}-{src.parent.name}-{src.name}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)  # a copy, never a link: tagging it must not touch the corpus
        f = mutagen.File(dst, easy=True)
        if f.tags is None:
            f.add_tags()
        f["genre"] = genre
        f.save()
        total += dst.stat().st_size
    return total


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants now (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(command: list[str], log: Path) -> dict:
    """Run ``command``; its wall seconds, peak tree and single-process RSS, and the load average around it."""
    load_before = os.getloadavg()
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        peak = {"tree": 0, "one": 0}

        def sample() -> None:
            while proc.poll() is None:
                sizes = [_rss(p) for p in _tree(proc.pid)]
                peak["tree"] = max(peak["tree"], sum(sizes))
                peak["one"] = max(peak["one"], max(sizes, default=0))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        sampler.join()
    return {"rc": rc, "seconds": round(time.perf_counter() - started, 1), "peak_rss_tree_mib": peak["tree"] >> 20,
            "peak_rss_process_mib": peak["one"] >> 20, "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="files in the library")
    parser.add_argument("--workdir", type=Path, help="where the library goes (default: a new temporary folder)")
    parser.add_argument("--jobs", type=int, default=2, help="decode workers for both commands (default 2)")
    parser.add_argument("--min-tracks", type=int, default=15, help="learn's --min-tracks (lower it for a small N)")
    parser.add_argument("--min-precision", type=float,
                        help="learn's --min-precision (0: no genre left out for precision, one round of folds)")
    parser.add_argument("--keep", action="store_true", help="leave the library and stores in place")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="genretag-learn-scale-"))
    if ROOT in work.resolve().parents or work.resolve() == ROOT:
        raise SystemExit("the library must not go into the repository")
    lib = work / "library"
    started = time.perf_counter()
    size = build_library(lib, args.n) if not lib.exists() else sum(p.stat().st_size for p in lib.rglob("*.*"))
    print(f"library: {args.n} files, {size / 2**20:.0f} MiB in {lib} ({time.perf_counter() - started:.0f} s)",
          flush=True)
    run = [sys.executable, "-m", "genretag"]
    jobs = ["--jobs", str(args.jobs)]
    results = {}
    for name, command in (
        ("learn", [*run, "learn", str(lib), "--out", str(work / "model"), "--no-export", "--store",
                   str(work / "learn.sqlite"), "--min-tracks", str(args.min_tracks), *jobs,
                   *(["--min-precision", str(args.min_precision)] if args.min_precision is not None else [])]),
        ("scan", [*run, "scan", str(lib), "--dry-run", "--overwrite", "-q", "--store", str(work / "scan.sqlite"),
                  *jobs]),
    ):
        for store in work.glob(f"{name}.sqlite*"):
            store.unlink()
        results[name] = measure(command, work / f"{name}.log")
        results[name]["seconds_per_file"] = round(results[name]["seconds"] / args.n, 4)
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    text = (work / "learn.log").read_text()
    split = re.search(r"features ([\d.]+) s \((\d+) decoded.*fit ([\d.]+) s", text)
    if split:
        results["learn"]["seconds_features"], results["learn"]["seconds_fit"] = float(split[1]), float(split[3])
        results["learn"]["decoded"] = int(split[2])  # only files with a genre kept (on min_tracks files or more)
    with sqlite3.connect(work / "learn.sqlite") as db:
        rows, blob = db.execute("SELECT count(*), sum(length(vector)) FROM features WHERE status = 'ok'").fetchone()
    pages = (work / "learn.sqlite").stat().st_size
    summary = {
        "n": args.n, "jobs": args.jobs, "cpus": os.cpu_count(), **results,
        "ratio_learn_to_scan": round(results["learn"]["seconds"] / results["scan"]["seconds"], 3),
        "ratio_features_to_scan_per_file": round(  # a scan decodes every file, learn the tagged ones it learns from
            results["learn"].get("seconds_features", float("nan")) / max(results["learn"].get("decoded", 0), 1)
            / (results["scan"]["seconds"] / args.n), 3),
        "stored_features": {"tracks": rows, "vector_bytes_per_track": round((blob or 0) / max(rows, 1)),
                            "store_file_bytes_per_track": round(pages / max(rows, 1))},
    }
    print(json.dumps(summary, indent=1))
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    if not args.keep:
        shutil.rmtree(lib, ignore_errors=True)


if __name__ == "__main__":
    main()
