"""The scan pipeline: files -> decode+features (pool) -> batched inference -> tags.

Each stage is a plain function over paths and arrays; :func:`scan_files` wires
them together and yields one :class:`ScanResult` per file as it finishes. It
never prints: the caller renders results and progress.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from genretag.config import ScanOptions, WindowPolicy
from genretag.errors import DatasetError, GenretagError
from genretag.extract import TrackFeatures, extract_track
from genretag.inference import Prediction, predict_stream
from genretag.models.bundle import Bundle
from genretag.models.runtime import Classifier
from genretag.pool import Outcome, run_pool

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


def decode_stage(
    files: Iterable[Path], *, bundle: Bundle, options: ScanOptions
) -> Iterator[TrackFeatures]:
    """Decode files in a process pool (or inline with ``jobs=0``)."""
    policy = WindowPolicy(windows=options.windows)
    skip = None if options.force else bundle.card.model_id
    kwargs = {"config": bundle.card.features, "policy": policy, "skip_if_tagged_by": skip}
    queue = options.queue_size or 4 * max(options.jobs, 1) + 8
    for outcome in run_pool(extract_track, files, jobs=options.jobs, timeout=options.timeout,
                            max_pending=queue, kwargs=kwargs):
        yield _as_features(outcome)


def _as_features(outcome: Outcome) -> TrackFeatures:
    if outcome.ok:
        return outcome.value
    return TrackFeatures(Path(outcome.item), "error", error=outcome.error)


def scan_files(
    files: Sequence[Path],
    *,
    bundle: Bundle,
    classifier: Classifier,
    options: ScanOptions,
    choice: GenreChoice = GenreChoice(),
) -> Iterator[ScanResult]:
    """Predict (and unless dry-run, tag) every file; one result per file, as each finishes.

    Unless dry-run, temporary copies that a killed earlier run left beside these
    files are removed first (see :func:`genretag.tags.remove_stale_copies`).
    """
    if not options.dry_run:
        from genretag.tags import remove_stale_copies

        remove_stale_copies(files)
    features = decode_stage(files, bundle=bundle, options=options)
    for track, prediction in predict_stream(features, classifier, batch_size=options.batch_size):
        yield settle(track, prediction, bundle=bundle, options=options, choice=choice)


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


REPORT_COLUMNS = ("path", "status", "genre", "confidence", "genres", "previous", "top", "error")


def report_row(result: ScanResult, *, top_k: int = 3) -> dict[str, Any]:
    """One flat row for CSV/JSON reports (the JSON adds the full distribution)."""
    pred = result.prediction
    ranked = pred.ranked() if pred is not None else []
    return {
        "path": str(result.path),
        "status": result.status,
        "genre": pred.genre if pred is not None else "",
        "confidence": round(pred.confidence, 4) if pred is not None else None,
        "genres": list(result.genres),
        "previous": list(result.previous),
        "top": [{"genre": g, "p": round(p, 4)} for g, p in ranked[: max(top_k, 3)]],
        "error": result.error or "",
        "probabilities": {g: round(p, 4) for g, p in ranked},
    }


class ReportWriter:
    """Streams results to CSV and/or JSON Lines, flushed per row so an
    interrupted run leaves complete, valid files."""

    def __init__(self, *, csv_path: Path | None, json_path: Path | None, top_k: int) -> None:
        self.top_k = top_k
        self._files: list[IO[str]] = []
        self._csv = self._json = None
        if csv_path is not None:
            fh = self._open(csv_path)
            self._csv = csv.DictWriter(fh, fieldnames=REPORT_COLUMNS, extrasaction="ignore")
            self._csv.writeheader()
            fh.flush()
        if json_path is not None:
            self._json = self._open(json_path)

    def _open(self, path: Path) -> IO[str]:
        try:
            fh = open(path, "w", encoding="utf-8", newline="")
        except OSError as exc:
            self.close()
            raise GenretagError(f"cannot write report: {exc.strerror or exc}", path) from exc
        self._files.append(fh)
        return fh

    def write(self, result: ScanResult) -> None:
        row = report_row(result, top_k=self.top_k)
        if self._csv is not None:
            flat = dict(row, genres=";".join(row["genres"]), previous=";".join(row["previous"]),
                        top=";".join(f"{t['genre']}={t['p']:.4f}" for t in row["top"]),
                        confidence="" if row["confidence"] is None else f"{row['confidence']:.4f}")
            self._csv.writerow(flat)
            self._files[0].flush()
        if self._json is not None:
            self._json.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._json.flush()

    def close(self) -> None:
        for fh in self._files:
            fh.close()
        self._files.clear()

