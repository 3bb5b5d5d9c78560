"""The done-when run of ``genretag learn``: the Emotify clips' own genre tags on 70% of the albums.

    python benchmarks/learn_emotify.py WORKDIR [--store STORE]

Copies ``../shared/corpus/emotify`` into ``WORKDIR/library`` (the audio never enters the repository),
strips the genre of every file of a random 30% of the albums (seed 0; the tags are kept aside), runs
``genretag learn`` (Alt. Rock merged into Alternative Rock by a genre map), then ``genretag scan`` with the
learned model, and compares the genres written with the held-back tags. The default model is scored on the
same files, its labels mapped onto the owner's words (:data:`TO_DEFAULT`).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import mutagen

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
TO_DEFAULT = {"Classical": "Classical", "Electronic": "Electronic", "Alternative Rock": "Rock", "Alt. Rock": "Rock",
              "Hard Rock": "Rock", "Electro Rock": "Rock", "World": "International", "Ambient": "Electronic"}
"""The owner's genre -> the default model's label that means it (New Age has none)."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--store", type=Path)
    args = parser.parse_args()
    lib, store = args.workdir / "library", args.store or args.workdir / "store.sqlite"
    if not lib.exists():
        shutil.copytree(CORPUS / "emotify", lib, copy_function=shutil.copyfile)  # writable copies
    albums = defaultdict(list)
    for path in sorted(lib.rglob("*.mp3")):
        tags = mutagen.File(path).tags
        albums[(str(tags.get("TPE1")), str(tags.get("TALB")))].append(path)
    keys = sorted(albums)
    random.Random(0).shuffle(keys)
    held_file = args.workdir / "held.json"
    if held_file.exists():
        held = json.loads(held_file.read_text())
    else:
        held = {str(p): str(mutagen.File(p).tags["TCON"]) for k in keys[: round(len(keys) * 0.3)] for p in albums[k]}
        held_file.write_text(json.dumps(held, indent=1))
        for path in held:
            f = mutagen.File(path)
            f.tags.delall("TCON")
            f.save()
    genre_map = args.workdir / "map.csv"
    genre_map.write_text("Alt. Rock,Alternative Rock\n")
    model = args.workdir / "model"
    run = [sys.executable, "-m", "genretag"]
    print(f"$ genretag learn library --out model --genre-map map.csv   "
          f"({len(keys)} albums, {len(held)} files of {round(len(keys) * 0.3)} albums held back)", flush=True)
    subprocess.run([*run, "learn", str(lib), "--out", str(model), "--genre-map", str(genre_map), "--store", str(store)],
                   check=False)
    report = args.workdir / "scan.jsonl"
    report.unlink(missing_ok=True)
    subprocess.run([*run, "scan", str(lib), "--model", str(model), "--store", str(store), "--json", str(report),
                    "-q", "--force"], check=False)
    default = args.workdir / "default.jsonl"
    default.unlink(missing_ok=True)
    subprocess.run([*run, "scan", *held, "--dry-run", "--store", str(store), "--json", str(default), "-q",
                    "--min-confidence", "0"], check=False)
    labels = json.loads((model / "card.json").read_text())["labels"]
    rows = {r["path"]: r for r in map(json.loads, report.read_text().splitlines())}
    base = {r["path"]: r for r in map(json.loads, default.read_text().splitlines())}
    mapped = {"Alt. Rock": "Alternative Rock"}
    learnable = [p for p, g in held.items() if mapped.get(g, g) in labels]
    print(f"\nheld-back files: {len(held)}; with a genre the model learned: {len(learnable)}")
    for name, subset in (("learned genres", learnable), ("all held back", list(held))):
        written = [p for p in subset if rows[p]["genres"]]
        right = sum(rows[p]["genres"][0] == mapped.get(held[p], held[p]) for p in written)
        top = sum(rows[p]["genre"] == mapped.get(held[p], held[p]) for p in subset)
        base_right = sum(base[p]["genre"] == TO_DEFAULT.get(held[p]) for p in subset)
        print(f"{name}: learned model top genre right {top}/{len(subset)} ({top / len(subset):.3f}); "
              f"written at its floor {len(written)}, right {right} ({right / max(len(written), 1):.3f}); "
              f"default model (mapped) right {base_right}/{len(subset)} ({base_right / len(subset):.3f})")


if __name__ == "__main__":
    main()
