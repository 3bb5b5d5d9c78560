"""The Free Music Archive dataset (Defferrard et al., ISMIR 2017) from its ``tracks.csv``.

``tracks.csv`` has two header rows (``album``/``artist``/``set``/``track``,
then the column names) and a row naming the index (``track_id``). The label
is ``('track', 'genre_top')``; ``('set', 'subset')`` is small < medium < large;
``('set', 'split')`` is FMA's own artist-filtered training/validation/test
split. Audio lives at ``audio_dir/000/000002.mp3`` for track 2.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from genretag.config import FMA_SUBSETS, SPLIT_MODES
from genretag.datasets.core import SPLIT_ALIASES, Dataset, Entry, LoadOptions, absolute, build_dataset
from genretag.errors import DatasetError

_COLUMNS = {
    "subset": ("set", "subset"),
    "split": ("set", "split"),
    "genre": ("track", "genre_top"),
}
"""Columns the loader cannot do without; ``('artist', 'id')`` is optional."""


def fma_audio_path(audio_dir: str | Path, track_id: int) -> Path:
    """Where FMA keeps track ``track_id``: ``audio_dir/000/000002.mp3`` for track 2."""
    name = f"{int(track_id):06d}"
    return Path(audio_dir) / name[:3] / f"{name}.mp3"


def load_fma(
    metadata_dir: str | Path,
    audio_dir: str | Path,
    *,
    subset: str = FMA_SUBSETS[0],
    split_mode: str = SPLIT_MODES[0],
    check_audio: bool = True,
    **options,
) -> Dataset:
    """Tracks of an FMA subset labelled with their top-level genre.

    ``metadata_dir`` is the ``fma_metadata`` folder (or its ``tracks.csv``).
    ``subset="medium"`` includes small. Rows without a top genre are left out
    silently (most of FMA large has none). Missing or empty files are always
    skipped with a reason; with ``check_audio`` so are files whose header does
    not read or says they are shorter than ``min_seconds``. ``split_mode="random"``
    ignores FMA's split and draws a stratified one (fractions, ``seed``)
    where artists may straddle parts. Other keyword arguments: :class:`LoadOptions`.
    """
    opts = LoadOptions(check_audio=check_audio, **options)
    tracks_csv = _tracks_csv(metadata_dir)
    audio_dir = absolute(audio_dir)
    if subset not in FMA_SUBSETS:
        raise DatasetError(f"unknown FMA subset {subset!r} (expected {', '.join(FMA_SUBSETS)})", tracks_csv)
    if split_mode not in SPLIT_MODES:
        raise DatasetError(f"unknown FMA split mode {split_mode!r} (expected {', '.join(SPLIT_MODES)})", tracks_csv)
    if not audio_dir.is_dir():
        raise DatasetError("FMA audio folder not found", audio_dir)
    opts.check(tracks_csv)

    table = _read_tracks(tracks_csv, subset)
    entries: list[Entry] = []
    skipped: list[tuple[Path, str]] = []
    for track_id, genre, fma_split, artist in table.itertuples(index=True, name=None):
        path = fma_audio_path(audio_dir, track_id)
        own_split = None
        if split_mode == "official":
            own_split = SPLIT_ALIASES.get(fma_split)
            if own_split is None:
                skipped.append((path, f"no official split ({fma_split or 'empty'})"))
                continue
        entries.append(
            Entry(path=path, label=genre, artist=artist or str(path), source="fma", split=own_split)
        )

    how = "official split" if split_mode == "official" else f"stratified random {opts.split_note()}"
    return build_dataset(entries, where=tracks_csv, description=f"fma {subset} ({how})", options=opts,
                         skipped=skipped, group_by_artist=False)


def _tracks_csv(metadata_dir: str | Path) -> Path:
    """``tracks.csv`` inside ``metadata_dir`` (or ``metadata_dir`` itself when it is the file)."""
    where = absolute(metadata_dir)
    if where.is_file():
        return where
    if not where.is_dir():
        raise DatasetError("FMA metadata folder not found", where)
    tracks_csv = where / "tracks.csv"
    if not tracks_csv.is_file():
        raise DatasetError("no tracks.csv in FMA metadata folder", where)
    return tracks_csv


def _read_tracks(tracks_csv: Path, subset: str) -> pd.DataFrame:
    """Rows of ``subset`` that have a top genre.

    Index: track id (int). Columns ``genre``, ``split``, ``artist``: str, "" where unknown.
    """
    try:
        raw = pd.read_csv(tracks_csv, index_col=0, header=[0, 1], low_memory=False)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetError(f"unreadable FMA tracks.csv: {exc}", tracks_csv) from exc
    missing = [f"{a}/{b}" for a, b in _COLUMNS.values() if (a, b) not in raw.columns]
    if missing:
        raise DatasetError(f"not an FMA tracks.csv: no column {', '.join(missing)}", tracks_csv)
    try:
        ids = pd.to_numeric(pd.Series(raw.index), errors="raise").astype(int).to_numpy()
    except (ValueError, TypeError) as exc:
        raise DatasetError("not an FMA tracks.csv: track ids are not integers", tracks_csv) from exc

    levels = pd.CategoricalDtype(categories=list(FMA_SUBSETS), ordered=True)
    sub = raw[_COLUMNS["subset"]].astype("string").str.strip().astype(levels)
    genre = raw[_COLUMNS["genre"]].astype("string").str.strip()
    keep = ((sub <= subset) & genre.notna() & (genre != "")).fillna(False).to_numpy(dtype=bool)

    if ("artist", "id") in raw.columns:
        artist_ids = pd.to_numeric(raw[("artist", "id")], errors="coerce")
        artist = artist_ids.map(lambda v: "" if pd.isna(v) else str(int(v)))
    else:
        artist = pd.Series("", index=raw.index)
    fma_split = raw[_COLUMNS["split"]].astype("string").str.strip()
    table = pd.DataFrame(
        {
            "genre": genre.fillna("").to_numpy(dtype=object),
            "split": fma_split.fillna("").to_numpy(dtype=object),
            "artist": artist.to_numpy(dtype=object),
        },
        index=pd.Index(ids, name="track_id"),
    )
    return table[keep]
