"""Benchmark the prediction store: a first scan of a library, then the same scan again, whole process.

    python benchmarks/bench_rerun.py ../shared/corpus --files 2000 [--overwrite] [--model DIR] [--json out.json]

Builds a library of ``--files`` copies of the audio found under FOLDER (each a file of
its own: the store knows files by path, size and modification time) in a temporary
folder, runs ``genretag scan LIB --dry-run --store STORE -q`` twice as separate
processes, and reports both wall times and their ratio. The second run finds every
file in the store: it should decode nothing and not load the model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if (REPO / "genretag" / "__init__.py").is_file() and str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from genretag.discover import discover  # noqa: E402


def build_library(source: Path, root: Path, count: int) -> list[Path]:
    """``count`` copies of the audio under ``source`` in ``root`` (round-robin, one folder per 100)."""
    found = list(discover([source]).files)
    if not found:
        raise SystemExit(f"error: no audio files under {source}")
    made = []
    for i in range(count):
        src = found[i % len(found)]
        dst = root / f"{i // 100:03d}" / f"{i:05d}{src.suffix}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)
        made.append(dst)
    return made


def timed_scan(library: Path, store: Path, model: str | None, *extra: str) -> dict:
    command = [sys.executable, "-m", "genretag", "scan", str(library), "--dry-run", "--store", str(store), "-q", *extra]
    if model:
        command += ["--model", model]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"error: scan failed (exit {proc.returncode}):\n{proc.stderr}")
    return {"wall_s": round(wall, 3), "summary": proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="Audio to copy into the benchmark library.")
    parser.add_argument("--files", type=int, default=2000, help="Files in the library (default 2000).")
    parser.add_argument("--model", help="Model bundle (default: the bundled default).")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--overwrite", action="store_true",
                        help="Scan with --overwrite: every file is decoded and predicted (without it, a file that "
                             "keeps its genre is read for its tags only).")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="genretag-rerun-") as tmp:
        library = Path(tmp) / "library"
        build_library(args.folder, library, args.files)
        store = Path(tmp) / "store.sqlite"
        extra = ("--overwrite",) if args.overwrite else ()
        first = timed_scan(library, store, args.model, *extra)
        second = timed_scan(library, store, args.model, *extra)
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "files": args.files, "overwrite": args.overwrite, "first": first, "rerun": second,
        "rerun_fraction": round(second["wall_s"] / first["wall_s"], 4),
        "loadavg_end": os.getloadavg()[0],
    }
    print(f"first scan : {first['wall_s']:8.2f} s  ({first['summary']})")
    print(f"rerun      : {second['wall_s']:8.2f} s  ({second['summary']})")
    print(f"rerun/first: {result['rerun_fraction']:.2%}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
