"""A small fake Free Music Archive on disk, in FMA's own formats, for loader tests.

``tracks.csv`` has FMA's two header rows and ``track_id`` row; ``genres.csv``
FMA's columns; audio is MP3 at ``audio/000/000002.mp3``. Labels are the
synthetic classes of :mod:`tests.synth`, so a tiny model can learn them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from synth import tone_mix, write_audio

COLUMNS: tuple[tuple[str, str], ...] = (
    ("album", "id"), ("album", "title"),
    ("artist", "id"), ("artist", "name"),
    ("set", "split"), ("set", "subset"),
    ("track", "duration"), ("track", "genre_top"), ("track", "genres"),
    ("track", "genres_all"), ("track", "title"),
)
"""A subset of FMA's columns, in its order (top level, then name, alphabetically)."""

TRACKS_PER_ARTIST = 2
BROKEN = ("empty", "missing", "short")
"""Broken small-subset tracks written with ``broken=True``: a 0-byte MP3, no file, a 1-s clip."""


def make_fma(
    root: Path,
    *,
    per_class: int = 12,
    classes: tuple[str, ...] = ("Low", "Mid", "High"),
    seconds: float = 6.0,
    seed: int = 0,
    broken: bool = True,
) -> tuple[Path, Path]:
    """Write a fake FMA under ``root``; returns ``(metadata_dir, audio_dir)``.

    Small subset: ``per_class`` good tracks a class, by artists of
    ``TRACKS_PER_ARTIST`` tracks; per class the last artist is in FMA's test
    split, the one before in validation, the rest in training (artist-filtered,
    as FMA's is). Also one ``medium`` and one ``large`` track a class (excluded
    from small), one small track with no top genre, and with ``broken`` the
    three :data:`BROKEN` small tracks (one per class, in training).
    ``per_class`` must be at least ``3 * TRACKS_PER_ARTIST``. ``seconds``
    defaults to 6, above the loaders' 5-s minimum (the short clip is 1 s).
    """
    if per_class < 3 * TRACKS_PER_ARTIST:
        raise ValueError(f"per_class must be >= {3 * TRACKS_PER_ARTIST}")
    root = Path(root)
    metadata_dir, audio_dir = root / "fma_metadata", root / "fma_audio"
    metadata_dir.mkdir(parents=True, exist_ok=True)
    audio_dir.mkdir(parents=True, exist_ok=True)
    genre_ids = {name: i + 1 for i, name in enumerate(classes)}
    rng = np.random.default_rng(seed)

    rows: list[dict] = []
    next_artist = 1

    def add(label: str | None, *, split: str, subset: str, artist: int, audio: str | float) -> None:
        # Ids spread past 1000 so the 000/, 001/... folders are exercised, in increasing order.
        track_id = 2 + 97 * len(rows) + int(rng.integers(0, 50))
        rows.append(dict(id=track_id, label=label, split=split, subset=subset, artist=artist))
        path = audio_dir / f"{track_id:06d}"[:3] / f"{track_id:06d}.mp3"
        if audio == "empty":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        elif audio != "missing":
            clip = tone_mix(label or classes[0], seconds=float(audio), seed=seed * 100_003 + track_id)
            write_audio(path, clip)

    for label in classes:
        n_artists = -(-per_class // TRACKS_PER_ARTIST)
        for k in range(per_class):
            a = k // TRACKS_PER_ARTIST
            split = {n_artists - 1: "test", n_artists - 2: "validation"}.get(a, "training")
            add(label, split=split, subset="small", artist=next_artist + a, audio=seconds)
        next_artist += n_artists
        for subset in ("medium", "large"):
            add(label, split="training", subset=subset, artist=next_artist, audio=seconds)
            next_artist += 1
    add(None, split="training", subset="small", artist=next_artist, audio=seconds)
    next_artist += 1
    if broken:
        for i, kind in enumerate(BROKEN):
            add(classes[i % len(classes)], split="training", subset="small", artist=next_artist,
                audio=1.0 if kind == "short" else kind)
            next_artist += 1

    _write_tracks_csv(metadata_dir / "tracks.csv", rows, genre_ids, seconds)
    _write_genres_csv(metadata_dir / "genres.csv", rows, genre_ids)
    return metadata_dir, audio_dir


def _write_tracks_csv(
    path: Path, rows: list[dict], genre_ids: dict[str, int], seconds: float
) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["", *(top for top, _ in COLUMNS)])
        out.writerow(["", *(name for _, name in COLUMNS)])
        out.writerow(["track_id", *([""] * len(COLUMNS))])
        for r in rows:
            gid = genre_ids.get(r["label"])
            genres = f"[{gid}]" if gid else "[]"
            values = {
                ("album", "id"): r["artist"] * 10,
                ("album", "title"): f"Album {r['artist']}",
                ("artist", "id"): r["artist"],
                ("artist", "name"): f"Artist {r['artist']}",
                ("set", "split"): r["split"],
                ("set", "subset"): r["subset"],
                ("track", "duration"): int(round(seconds * 40)),  # FMA's is the full track, not the clip
                ("track", "genre_top"): r["label"] or "",
                ("track", "genres"): genres,
                ("track", "genres_all"): genres,
                ("track", "title"): f"Track {r['id']}, take {r['id'] % 7}",  # a comma: needs quoting
            }
            out.writerow([r["id"], *(values[c] for c in COLUMNS)])


def _write_genres_csv(path: Path, rows: list[dict], genre_ids: dict[str, int]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["genre_id", "#tracks", "parent", "title", "top_level"])
        for name, gid in genre_ids.items():
            out.writerow([gid, sum(r["label"] == name for r in rows), 0, name, gid])
