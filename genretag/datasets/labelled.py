"""Datasets you label yourself: a labels CSV, or a folder per genre.

A labels CSV has columns ``path`` and ``genre``, optionally ``artist``,
``split`` (train/val/test; training/validation too) and ``source``. Relative
paths are relative to the CSV's folder (or ``root``). Without a split column
the split is drawn by :func:`~genretag.datasets.split.artist_split`, keeping
each artist in one part; without an artist column each file is its own artist.

A folder per genre is ``DIR/<genre>/**/<audio files>``; hidden files and
folders are ignored and the artist is unknown (each file its own artist).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from genretag.datasets.core import SPLIT_ALIASES, Dataset, Entry, LoadOptions, absolute, build_dataset
from genretag.discover import discover, is_audio
from genretag.errors import DatasetError, describe

REQUIRED_COLUMNS: tuple[str, ...] = ("path", "genre")
OPTIONAL_COLUMNS: tuple[str, ...] = ("artist", "split", "source")


def load_labels_csv(path: str | Path, *, root: str | Path | None = None, **options) -> Dataset:
    """Tracks listed in a labels CSV (see the module docstring for its columns).

    Rows whose file is missing or empty, whose path or genre is blank, or that
    repeat an earlier path are skipped with a reason; with ``check_audio``
    also files whose header does not read or is shorter than ``min_seconds``.
    A ``split`` column, where present and filled, is used as is. Keyword
    arguments: :class:`~genretag.datasets.core.LoadOptions`.
    """
    opts = LoadOptions(**options)
    csv_path = absolute(path)
    opts.check(csv_path)
    table = _read_labels(csv_path)
    base = absolute(root) if root is not None else csv_path.parent
    has_artist = "artist" in table.columns
    has_split = "split" in table.columns and bool((table["split"] != "").any())

    entries: list[Entry] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for line, row in enumerate(table.to_dict("records"), start=2):
        if not row["path"]:
            skipped.append((csv_path, f"line {line}: no path"))
            continue
        track_path = absolute(row["path"], base)
        if not row["genre"]:
            skipped.append((track_path, f"no genre (line {line})"))
            continue
        if track_path in seen:
            skipped.append((track_path, f"listed twice (line {line})"))
            continue
        seen.add(track_path)
        own_split = None
        if has_split:
            own_split = SPLIT_ALIASES.get(row["split"].lower())
            if own_split is None:
                raise DatasetError(
                    f"line {line}: split {row['split']!r} is not train, val or test", csv_path
                )
        artist = row.get("artist", "") if has_artist else ""
        entries.append(Entry(
            path=track_path,
            label=row["genre"],
            artist=artist or str(track_path),
            source=row.get("source", ""),
            split=own_split,
        ))

    if has_split:
        how = "split column"
    else:
        how = f"{'artist-stratified' if has_artist else 'stratified by file'} {opts.split_note()}"
    return build_dataset(entries, where=csv_path, description=f"{csv_path.name} ({how})", options=opts,
                         skipped=skipped)


def load_folder(path: str | Path, **options) -> Dataset:
    """Audio files under ``path/<genre>/`` (any depth, found by :func:`genretag.discover.discover`),
    labelled with the genre folder's name.

    Audio files directly in ``path`` (outside any genre folder) are skipped
    with a reason; other files are ignored. Splits are stratified by genre,
    each file its own artist. Keyword arguments: :class:`~genretag.datasets.core.LoadOptions`.
    """
    opts = LoadOptions(**options)
    root = absolute(path)
    if not root.is_dir():
        raise DatasetError("dataset folder not found", root)
    opts.check(root)

    entries: list[Entry] = []
    skipped: list[tuple[Path, str]] = []
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            found = discover([child])
            entries.extend(Entry(path=f, label=child.name, artist=str(f)) for f in found.files)
            skipped.extend(found.problems)
        elif child.is_file() and is_audio(child):
            skipped.append((child, "not inside a genre folder"))
    if not entries and not skipped:
        raise DatasetError("no audio files in genre folders (expected DIR/<genre>/<files>)", root)
    description = f"folder {root.name} (stratified by file {opts.split_note()})"
    return build_dataset(entries, where=root, description=description, options=opts, skipped=skipped)


def load_dataset(spec: str | Path, **kw) -> Dataset:
    """A dataset from a path: a folder per genre, or a labels ``.csv``.

    Keyword arguments go to :func:`load_folder` or :func:`load_labels_csv`.
    An FMA metadata folder needs :func:`~genretag.datasets.fma.load_fma`
    (it also needs the audio folder) and is refused with a hint.
    """
    where = absolute(spec)
    if where.is_dir():
        if (where / "tracks.csv").is_file() and (where / "genres.csv").is_file():
            raise DatasetError("this is FMA metadata; load it with its audio folder (load_fma)", where)
        return load_folder(where, **kw)
    if where.is_file():
        if where.suffix.lower() != ".csv":
            raise DatasetError("a dataset is a folder per genre or a labels .csv file", where)
        return load_labels_csv(where, **kw)
    raise DatasetError("dataset not found", where)


def _read_labels(csv_path: Path) -> pd.DataFrame:
    """The CSV as strings (blank where empty), columns lower-cased, known columns only."""
    if not csv_path.is_file():
        raise DatasetError("labels CSV not found", csv_path)
    try:
        table = pd.read_csv(
            csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True
        )
    except pd.errors.EmptyDataError as exc:
        raise DatasetError("labels CSV is empty", csv_path) from exc
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DatasetError(f"unreadable labels CSV: {describe(exc)}", csv_path) from exc
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        found = ", ".join(table.columns) or "none"
        raise DatasetError(
            f"labels CSV has no {' or '.join(repr(c) for c in missing)} column (columns: {found})",
            csv_path,
        )
    known = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in table.columns]
    return table[known].apply(lambda col: col.str.strip())
