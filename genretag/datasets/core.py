"""The dataset types every loader returns, and the steps they share.

A loader turns a description (FMA metadata, a labels CSV, a folder per genre)
into :class:`Entry` candidates, then :func:`build_dataset` checks the files,
drops classes that are too small, assigns splits where the description has
none, and freezes the result into a :class:`Dataset`.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from genretag.audio import probe
from genretag.config import TrainConfig
from genretag.datasets.split import artist_split
from genretag.errors import DatasetError, DecodeError, os_reason

MIN_SECONDS = 5.0
"""Tracks shorter than this are skipped when a loader checks audio (FMA has a few ~1-s clips)."""

PROBE_THREADS = 16
"""Header reads run in this many threads (they wait on the disk, not the CPU)."""

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
    own_split: bool = False
    """Every track's split came with the data (FMA's, a labels CSV's ``split`` column), none was assigned here."""

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


@dataclass(frozen=True)
class LoadOptions:
    """How a loader checks files and splits what it keeps; every loader takes these fields
    as keyword arguments."""

    seed: int = TrainConfig.seed
    val_fraction: float = TrainConfig.val_fraction
    test_fraction: float = TrainConfig.test_fraction
    min_per_class: int = TrainConfig.min_per_class
    """Classes with fewer usable tracks are dropped."""
    check_audio: bool = False
    """Also read each file's header: unreadable files and those under ``min_seconds`` are skipped."""
    min_seconds: float = MIN_SECONDS

    def check(self, where: Path | None) -> None:
        """Raise :class:`DatasetError` unless both fractions are in [0, 1) and leave room for training."""
        val, test = self.val_fraction, self.test_fraction
        if not (0.0 <= val < 1.0 and 0.0 <= test < 1.0 and val + test < 1.0):
            raise DatasetError(
                f"val and test fractions must be >= 0 and sum to less than 1 (got {val} and {test})", where)

    def split_note(self) -> str:
        """``80/10/10, seed 0`` for fractions 0.1 and 0.1."""
        parts = (1.0 - self.val_fraction - self.test_fraction, self.val_fraction, self.test_fraction)
        return "/".join(f"{100 * p:g}" for p in (round(p, 4) for p in parts)) + f", seed {self.seed}"


def check_files(paths: list[Path], *, read_header: bool, min_seconds: float = MIN_SECONDS) -> list[str | None]:
    """Why each file is unusable, or ``None`` where it is fine, in input order.

    Always checks that the file exists and is not empty; with ``read_header`` also
    that :func:`genretag.audio.probe` reads its header (never the audio) and finds at
    least ``min_seconds``, in threads: FMA small's 8,000 files take seconds.
    """
    if not read_header or len(paths) < 2:
        return [_file_reason(p, read_header, min_seconds) for p in paths]
    with ThreadPoolExecutor(max_workers=min(PROBE_THREADS, len(paths))) as pool:
        return list(pool.map(lambda p: _file_reason(p, True, min_seconds), paths))


def _file_reason(path: Path, read_header: bool, min_seconds: float) -> str | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing file"
    except OSError as exc:
        return f"unreadable file: {os_reason(exc)}"
    if not path.is_file():
        return "not a file"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    if not read_header:
        return None
    try:
        seconds = probe(path).duration
    except DecodeError as exc:
        return f"unreadable audio: {exc.reason}"
    if seconds < min_seconds:
        return f"too short ({seconds:.1f} s < {min_seconds:g} s)"
    return None


def build_dataset(
    entries: list[Entry],
    *,
    where: Path,
    description: str,
    options: LoadOptions,
    skipped: list[tuple[Path, str]] | None = None,
    group_by_artist: bool = True,
) -> Dataset:
    """Check files, drop small classes, assign missing splits and freeze the result.

    Entries without a split get one from :func:`artist_split` (computed over the
    entries that survive the checks and the class filter), each artist in one
    part, or with ``group_by_artist=False`` each file on its own. Raises
    :class:`DatasetError` naming ``where`` when no track is left.
    """
    skipped = list(skipped or [])
    reasons = check_files(
        [e.path for e in entries], read_header=options.check_audio, min_seconds=options.min_seconds
    )
    usable = []
    for entry, reason in zip(entries, reasons):
        if reason is None:
            usable.append(entry)
        else:
            skipped.append((entry.path, reason))

    sizes = Counter(e.label for e in usable)
    too_small = {label: n for label, n in sizes.items() if n < options.min_per_class}
    usable = [e for e in usable if e.label not in too_small]
    if not usable:
        raise DatasetError(
            f"no usable tracks ({len(skipped)} skipped, {len(too_small)} classes below "
            f"{options.min_per_class} tracks)",
            where,
        )

    unsplit = [e for e in usable if e.split is None]
    assigned = iter(artist_split(
        [(e.label, e.artist if group_by_artist else str(e.path)) for e in unsplit],
        seed=options.seed, val_fraction=options.val_fraction, test_fraction=options.test_fraction,
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
        own_split=not unsplit,
    )
