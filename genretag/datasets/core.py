"""The dataset types every loader returns, and the steps they share.

A loader turns a description (FMA metadata, a labels CSV, a folder per genre)
into :class:`Entry` candidates, then :func:`build_dataset` checks the files,
drops classes that are too small, assigns splits where the description has
none, and freezes the result into a :class:`Dataset`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from genretag.datasets.probe import check_files
from genretag.datasets.split import artist_split
from genretag.errors import DatasetError

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""Split names, in the order reports list them."""

SPLIT_ALIASES: dict[str, str] = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test",
}
"""Split spellings accepted in a description (FMA says training/validation)."""


@dataclass(frozen=True)
class Track:
    """One labelled audio file."""

    path: Path
    """Absolute path of the audio file."""
    label: str
    split: str
    """``train``, ``val`` or ``test``."""
    artist: str
    """Artist id or name; where unknown, the file's own path (each file its own artist)."""
    source: str = ""
    """Where the clip comes from (labels.csv ``source``, ``fma``), for per-source analysis."""


@dataclass(frozen=True)
class Dataset:
    """Tracks with their splits, and what was left out on the way."""

    tracks: tuple[Track, ...]
    labels: tuple[str, ...]
    """Sorted names of the classes kept."""
    skipped: tuple[tuple[Path, str], ...]
    """``(path, reason)`` of each entry left out (missing file, too short, no audio...)."""
    dropped_classes: tuple[tuple[str, int], ...]
    """``(class, tracks)`` of each class removed for having fewer than ``min_per_class`` tracks."""
    description: str
    """One line saying where the data and its split come from."""

    def split(self, name: str) -> tuple[Track, ...]:
        """The tracks of split ``name`` (``train``, ``val`` or ``test``), in dataset order."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return tuple(t for t in self.tracks if t.split == name)

    def counts(self) -> dict[str, dict[str, int]]:
        """Tracks per split and label, ``{split: {label: n}}``, zeros included."""
        table = {s: {label: 0 for label in self.labels} for s in SPLITS}
        for t in self.tracks:
            table[t.split][t.label] += 1
        return table

    def __len__(self) -> int:
        return len(self.tracks)


@dataclass(frozen=True)
class Entry:
    """A candidate track as a description lists it, before any checks."""

    path: Path
    label: str
    artist: str
    source: str = ""
    split: str | None = None
    """The description's own split, or ``None`` to have one assigned."""


def absolute(path: str | Path, base: Path | None = None) -> Path:
    """``path`` made absolute (relative ones against ``base``), normalised without resolving links."""
    path = Path(path).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    return Path(os.path.abspath(path))


def check_fractions(val_fraction: float, test_fraction: float, where: Path | None) -> None:
    """Raise :class:`DatasetError` unless both fractions are in [0, 1) and leave room for training."""
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0
            and val_fraction + test_fraction < 1.0):
        raise DatasetError(
            f"val and test fractions must be >= 0 and sum to less than 1 "
            f"(got {val_fraction} and {test_fraction})",
            where,
        )


def split_note(val_fraction: float, test_fraction: float) -> str:
    """``80/10/10`` for fractions 0.1 and 0.1."""
    parts = (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)
    return "/".join(f"{100 * p:g}" for p in (round(p, 4) for p in parts))


def build_dataset(
    entries: list[Entry],
    *,
    where: Path,
    description: str,
    skipped: list[tuple[Path, str]] | None = None,
    check_audio: bool = False,
    group_by_artist: bool = True,
    min_seconds: float,
    min_per_class: int,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> Dataset:
    """Check files, drop small classes, assign missing splits and freeze the result.

    Entries without a split get one from :func:`artist_split` (computed over the
    entries that survive the checks and the class filter), each artist in one
    part, or with ``group_by_artist=False`` each file on its own. Raises
    :class:`DatasetError` naming ``where`` when no track is left.
    """
    skipped = list(skipped or [])
    reasons = check_files(
        [e.path for e in entries], read_header=check_audio, min_seconds=min_seconds
    )
    usable = []
    for entry, reason in zip(entries, reasons):
        if reason is None:
            usable.append(entry)
        else:
            skipped.append((entry.path, reason))

    sizes = Counter(e.label for e in usable)
    too_small = {label: n for label, n in sizes.items() if n < min_per_class}
    usable = [e for e in usable if e.label not in too_small]
    if not usable:
        raise DatasetError(
            f"no usable tracks ({len(skipped)} skipped, {len(too_small)} classes below "
            f"{min_per_class} tracks)",
            where,
        )

    unsplit = [e for e in usable if e.split is None]
    assigned = iter(artist_split(
        [(e.label, e.artist if group_by_artist else str(e.path)) for e in unsplit],
        seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
    ))
    splits = [e.split if e.split is not None else next(assigned) for e in usable]

    tracks = tuple(
        Track(path=e.path, label=e.label, split=s, artist=e.artist, source=e.source)
        for e, s in zip(usable, splits)
    )
    return Dataset(
        tracks=tracks,
        labels=tuple(sorted({t.label for t in tracks})),
        skipped=tuple(skipped),
        dropped_classes=tuple(sorted(too_small.items())),
        description=description,
    )
