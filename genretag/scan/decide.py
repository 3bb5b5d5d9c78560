"""What a file gets: the genres to write from a prediction, and the write itself."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from genretag.config import ScanOptions
from genretag.errors import DatasetError, GenretagError
from genretag.models.bundle import Bundle
from genretag.scan.batching import Prediction
from genretag.scan.extract import TrackFeatures

STATUSES = ("tagged", "would-tag", "kept", "skipped", "low-confidence", "silent", "failed")
"""What happened to a file. ``kept``: it had a genre and --overwrite was not given."""


@dataclass(frozen=True)
class ScanResult:
    path: Path
    status: str
    genres: tuple[str, ...] = ()
    """Genres written (or that would be written in a dry run)."""
    previous: tuple[str, ...] = ()
    """Genre tags the file had before."""
    prediction: Prediction | None = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True)
class GenreChoice:
    """How predictions become tag values."""

    top_k: int = ScanOptions.top_k
    min_confidence: float = ScanOptions.min_confidence
    genre_map: Mapping[str, str] = field(default_factory=dict)

    def choose(self, prediction: Prediction) -> tuple[str, ...]:
        """Up to ``top_k`` genres at or above ``min_confidence``, renamed, no repeats."""
        out: list[str] = []
        for label, p in prediction.ranked()[: self.top_k]:
            name = self.genre_map.get(label, label)
            if p >= self.min_confidence and name not in out:
                out.append(name)
        return tuple(out)


def read_genre_map(path: Path) -> dict[str, str]:
    """A CSV/TSV of ``model label,tag value`` rows (a header row is optional)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"cannot read genre map: {exc.strerror or exc}", path) from exc
    first = text.splitlines()[0] if text.strip() else ""
    dialect = "excel-tab" if "\t" in first else "excel"
    mapping: dict[str, str] = {}
    for row in csv.reader(text.splitlines(), dialect=dialect):
        if not row or row[0].startswith("#"):
            continue
        if len(row) != 2:
            raise DatasetError(f"genre map rows need two columns (label,new name), got {row!r}", path)
        mapping[row[0].strip()] = row[1].strip()
    return mapping


def settle(
    track: TrackFeatures, prediction: Prediction | None, *, bundle: Bundle, options: ScanOptions, choice: GenreChoice
) -> ScanResult:
    """Decide what a file gets, and write it unless this is a dry run."""
    from genretag.tags import write_genre

    previous = track.genres
    if track.status == "error":
        return ScanResult(track.path, "failed", previous=previous, error=track.error)
    if track.status in ("skipped", "silent") or prediction is None:
        status = track.status if track.status in ("skipped", "silent") else "failed"
        return ScanResult(track.path, status, previous=previous, error=track.error)
    genres = choice.choose(prediction)
    base = {"path": track.path, "previous": previous, "prediction": prediction}
    if not genres:
        return ScanResult(**base, status="low-confidence")
    if previous and track.provenance is None and not options.overwrite:
        return ScanResult(**base, status="kept", genres=genres)
    if track.error is not None:  # tags could not be read: don't try to write them
        return ScanResult(**base, status="failed", genres=genres, error=track.error)
    if options.dry_run:
        return ScanResult(**base, status="would-tag", genres=genres)
    try:
        write_genre(track.path, genres, provenance=bundle.card.model_id,
                    id3v23=options.id3v23, keep_mtime=options.keep_mtime)
    except GenretagError as exc:
        return ScanResult(**base, status="failed", genres=genres, error=exc.reason)
    return ScanResult(**base, status="tagged", genres=genres)
