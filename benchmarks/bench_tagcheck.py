#!/usr/bin/env python3
"""What the safety checks of a tag write cost, per container.

    python benchmarks/bench_tagcheck.py [--seconds 30] [--repeat 20]

Synthesises one ``--seconds`` clip per container (m4a and wma only where
ffmpeg exists) in a temporary folder, tags a copy of each, then times:

* ``audio check``: :func:`genretag.tags.audiocheck.check_audio` (original vs tagged copy)
* ``content hash``: one blake2b of the file (a write hashes the copy once and the
  original once or twice, see ``write_genre``)
* ``write_genre``: a whole tag write, for scale (includes fsync)

Median milliseconds over ``--repeat`` runs; a table on stdout. Nothing outside
the temporary folder is written.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import synth  # noqa: E402
from genretag.tags import write_genre  # noqa: E402
from genretag.tags.audiocheck import check_audio  # noqa: E402
from genretag.tags.containers import _write_tags  # noqa: E402
from genretag.tags.safefile import digest  # noqa: E402


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each synthetic clip (s)")
    parser.add_argument("--repeat", type=int, default=20, help="runs per measurement (median reported)")
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, {args.seconds:g}-s clips, median of {args.repeat}")
    print("| container | file KiB | audio check ms | content hash ms | write_genre ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for ext in (*synth.CONTAINERS, "mp3-in-wav"):
            if ext in ("m4a", "wma", "mp3-in-wav") and not synth.have_ffmpeg():
                print(f"| {ext} | | (no ffmpeg) | | |")
                continue
            if ext == "mp3-in-wav":  # compressed WAV: structural check plus a decode of both files
                source = synth.write_audio(folder / "pcm.wav", synth.tone_mix("Mid", seconds=args.seconds))
                original = folder / "mpeg.wav"
                subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-c:a", "libmp3lame",
                                "-b:a", "128k", str(original)], check=True)
                ext = "wav"
                label = "mp3-in-wav"
            else:
                original = synth.write_audio(folder / f"a.{ext}", synth.tone_mix("Mid", seconds=args.seconds))
                label = ext
            copy = folder / f"tagged.{ext}"
            shutil.copyfile(original, copy)
            _write_tags(copy, original, ("Rock",), "bench 1", id3v23=False)
            check_ms = _median_ms(lambda: check_audio(original, copy, original), args.repeat)
            hash_ms = _median_ms(lambda: digest(original), args.repeat)
            work = folder / f"work.{ext}"
            shutil.copyfile(original, work)
            write_ms = _median_ms(lambda: write_genre(work, ["Rock"], provenance="bench 1"), args.repeat)
            kib = original.stat().st_size / 1024
            print(f"| {label} | {kib:,.0f} | {check_ms:.2f} | {hash_ms:.2f} | {write_ms:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
