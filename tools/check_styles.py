"""Measure each style's precision and coverage on labels the model never sees, and choose floors.

    python tools/add_styles.py /tmp/cand --candidates          # a copy of the bundle with every candidate style
    genretag scan ../shared/corpus --model /tmp/cand --dry-run --no-store --min-confidence 0 --json /tmp/styles.jsonl
    python tools/check_styles.py /tmp/styles.jsonl [--corpus ../shared/corpus]

Check labels, never model inputs: the Emotify files' own genre tags (their uploaders': Alternative
Rock, Alt. Rock, Hard Rock, Electro Rock, Ambient, New Age, World...), 4Q's AllMusic genres
(``source_genre`` of labels.csv and labels-multi.csv: R&B, Rap, Reggae, Latin...) and, with
``--artists`` (default ``tools/style_artists.csv``), the styles the clip's artist is chiefly known
for (death metal -> Heavy Metal, hardcore punk -> Punk, Celia Cruz -> Salsa...: one row per artist,
its candidate styles, empty for an artist known for none of them; artists not listed are not
judged). A style is *checked* on a clip whose check labels say more than a parent genre
(``Electronic``, ``Pop/Rock``... neither confirm nor refute a style); it is *right* when one of them
names it. A style is written
on a clip whose top genre (as scan decides it) is the style's parent and whose style score reaches
the floor.

The floor of each style is chosen on the clips of split seed 0's train part (artists held out as
``genretag train --seed 0`` holds them): the lowest floor from 0.05 to 0.5 at which at least
``--min-written`` checked clips get the style and ``--precision`` of them are right. The table then
reports the held-out clips (val and test parts) and all clips, and the base rate (how often the
style is right on every checked clip of its parent). A style is shipped when its held-out precision
exceeds 0.5.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAYS = {"Alternative Rock": {"Alternative Rock", "Alt. Rock"}, "Hard Rock": {"Hard Rock"}, "Metal": {"Metal"},
        "Punk": {"Punk"}, "Ambient Electronic": {"Ambient"}, "R&B": {"R&B"}, "Electro": {"Electro Rock"},
        "Ambient": {"Ambient"}, "Reggae": {"Reggae"}, "Latin": {"Latin"}}
"""The corpus's check labels that confirm a style, besides the style's own name (an artist's, see
:func:`artist_labels`). AllMusic's ``Latin`` does not confirm Salsa: most Latin music is not salsa."""
ARTIST_NONE = "(artist: none of the styles)"
"""The check label of a clip whose artist is known for none of the candidate styles: checked, never right."""
PARENT_ONLY = {"Electronic", "Classical", "Pop/Rock", "Pop", "Rock", "International"}
FLOORS = (0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def artist_labels(path: Path) -> dict[str, set[str]]:
    """``tools/style_artists.csv`` (``artist,styles,known_for``) -> each artist's candidate styles
    (``;``-separated; an empty set: known for none of them)."""
    import csv

    with path.open(encoding="utf-8", newline="") as fh:
        return {row["artist"]: {s.strip() for s in row["styles"].split(";") if s.strip()} for row in csv.DictReader(fh)}


def check_labels(corpus: Path, artists: dict[str, set[str]] | None = None) -> dict[Path, set[str]]:
    """Every corpus clip's check labels (see the module docstring); ``artists``: :func:`artist_labels`."""
    import mutagen
    import pandas as pd

    out: dict[Path, set[str]] = {}
    for name in ("labels.csv", "labels-multi.csv"):
        for row in pd.read_csv(corpus / name, dtype=str, keep_default_na=False).to_dict("records"):
            path = (corpus / row["path"]).resolve()
            if row["source"] == "emotify":
                tags = mutagen.File(path, easy=True)
                out[path] = set(tags.get("genre", [])) if tags is not None and tags.tags else set()
            else:
                out[path] = {g.strip() for g in row["source_genre"].split(";")}
            if artists is not None and row["artist"] in artists:
                out[path] |= artists[row["artist"]] or {ARTIST_NONE}
    return out


def parts_seed0(corpus: Path) -> dict[Path, str]:
    from genretag.datasets import load_dataset
    from genretag.datasets.partial import load_partial

    data = load_dataset(corpus / "labels.csv", min_per_class=20, seed=0)
    table = load_partial(corpus / "labels-multi.csv", dataset=data, seed=0, val_fraction=0.2, test_fraction=0.3)
    parts = {t.path.resolve(): t.split for t in data.tracks}
    parts.update({p.resolve(): s for p, s in zip(table.paths, table.parts)})
    return parts


def tally(rows: list[dict], style: str, parent: str, floor: float, labels: dict[Path, set[str]]) -> dict:
    says = SAYS.get(style, set()) | {style}
    parent_rows = [r for r in rows if r["genre"] == parent]
    written = [r for r in parent_rows if r["styles"].get(style, 0.0) >= floor]
    checked = [labels[r["path"]] - PARENT_ONLY for r in written]
    checked = [c for c in checked if c]
    right = sum(bool(c & says) for c in checked)
    return {"parent_tracks": len(parent_rows), "written": len(written), "checked": len(checked), "right": right,
            "precision": round(right / len(checked), 3) if checked else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path,
                        help="genretag scan --json report of the corpus, with the candidate styles attached")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--precision", type=float, default=0.7)
    parser.add_argument("--min-written", type=int, default=5)
    parser.add_argument("--artists", type=Path, default=ROOT / "tools" / "style_artists.csv",
                        help="artists' styles as further check labels (see the module docstring); "
                             "'none': the corpus's own labels only")
    parser.add_argument("--bundle", type=Path,
                        help="the bundle the report was scanned with: its card's styles and parents (default: the "
                             "musicnn candidates of tools/add_styles.py)")
    args = parser.parse_args()
    artists = None if str(args.artists) == "none" else artist_labels(args.artists)
    labels = check_labels(args.corpus, artists)
    parts = parts_seed0(args.corpus)
    rows = []
    for line in args.report.read_text().splitlines():
        row = json.loads(line)
        path = Path(row["path"]).resolve()
        if row.get("styles") and path in labels and row.get("genre"):
            rows.append({"path": path, "genre": row["genre"], "styles": row["styles"], "part": parts.get(path, "none")})
    names = sorted({s for r in rows for s in r["styles"]})
    sys.path.insert(0, str(ROOT / "tools"))
    from add_styles import CANDIDATES

    parent_of = {n: p for n, p, _ in CANDIDATES}
    if args.bundle:
        parent_of = {s["name"]: s["parent"] for s in json.loads((args.bundle / "card.json").read_text())["styles"]}
    result = {}
    for style in [n for n in parent_of if n in names]:
        parent = parent_of[style]
        choose = [r for r in rows if r["part"] == "train"]
        held = [r for r in rows if r["part"] in ("val", "test")]
        floor = next((f for f in FLOORS if (t := tally(choose, style, parent, f, labels))["checked"] >= args.min_written
                      and (t["precision"] or 0) >= args.precision), None)
        base = tally(rows, style, parent, 0.0, labels)
        entry = {"parent": parent, "floor": floor, "base_rate": base["precision"],
                 "all_at_0.1": tally(rows, style, parent, 0.1, labels)}
        if floor is not None:
            entry.update({"chosen_on": tally(choose, style, parent, floor, labels),
                          "held_out": tally(held, style, parent, floor, labels),
                          "all": tally(rows, style, parent, floor, labels)})
        entry["shipped"] = bool(floor is not None and (entry["held_out"]["precision"] or 0) > 0.5)
        result[style] = entry
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
