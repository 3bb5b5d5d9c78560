"""Scan reports: one CSV row or JSON line per file, flushed as each file finishes.

Paths that are not valid UTF-8 (a file named with a byte such as ``\\xff``)
reach every report: the CSV holds the path's own bytes (Python reads them back
with ``errors="surrogateescape"``), the JSON a ``\\udcff`` escape (``json.loads``
then ``os.fsencode`` give the bytes back).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from genretag.discover import is_audio
from genretag.errors import GenretagError, UsageError, os_reason
from genretag.scan.decide import ScanResult, styles_above

if TYPE_CHECKING:
    from genretag.models.bundle import Style

_AUDIO_MAGIC = (b"ID3", b"fLaC", b"OggS", b"RIFF", b"FORM", b"\x30\x26\xb2\x75", b"MAC ", b"wvpk", b"TTA1")
"""How audio files start (mp3 with a tag, flac, ogg/opus, wav, aiff, asf/wma, ape, wavpack, tta)."""

REPORT_COLUMNS = ("path", "status", "genre", "confidence", "genres", "previous", "top", "error", "group",
                  "group_genre", "notes")
"""CSV columns. ``genre``/``confidence``/``top``: the track's own prediction; ``group_genre``: its
group's (``--group``), which decided ``genres``."""
STYLE_COLUMN = "styles"
"""The CSV column added after :data:`REPORT_COLUMNS` when the model has styles: the styles of the
track's top genre that reach their floor, best first (``Metal:0.62;Punk:0.41``; empty when none does)."""


def report_columns(styles: Sequence[Style] = ()) -> tuple[str, ...]:
    """The CSV columns for a model with ``styles`` (its card's; none: :data:`REPORT_COLUMNS`)."""
    return REPORT_COLUMNS + ((STYLE_COLUMN,) if styles else ())


def report_row(result: ScanResult, *, top_k: int = 3, model_id: str = "",
               styles: Sequence[Style] = ()) -> dict[str, Any]:
    """One flat row for CSV/JSON reports (the JSON adds the full distribution, the file's size and
    modification time when it was predicted, and the model: what ``genretag apply`` needs).
    ``styles`` (the model card's): the row gets ``styles``, every style's track score
    (``{name: score}``; empty without a prediction). A prediction with a music score (a model whose card has
    ``music``) adds ``music``, the track's score (``not-music`` below the card's floor)."""
    pred = result.prediction
    ranked = pred.ranked() if pred is not None else []
    names, scores = (pred.styles, pred.style_scores) if pred is not None and pred.style_scores is not None else ((), ())
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
        "size": result.identity.size if result.identity else None,
        "mtime_ns": result.identity.mtime_ns if result.identity else None,
        "model": model_id,
        "group": result.group or "",
        "group_genre": result.group_prediction.genre if result.group_prediction is not None else "",
        "group_confidence": round(result.group_prediction.confidence, 4) if result.group_prediction else None,
        "notes": list(result.notes),
        **({"music": round(pred.music, 4)} if pred is not None and pred.music is not None else {}),
        **({"styles": {name: round(float(score), 4) for name, score in zip(names, scores)}}
           if styles else {}),
    }


def csv_row(row: dict[str, Any], result: ScanResult, *, styles: Sequence[Style] = ()) -> dict[str, Any]:
    """A :func:`report_row` flattened for the CSV: lists joined, numbers formatted; with ``styles``
    (the model card's), the :data:`STYLE_COLUMN` of the track's top genre."""
    flat = dict(row, genres=";".join(row["genres"]), previous=";".join(row["previous"]),
                top=";".join(f"{t['genre']}={t['p']:.4f}" for t in row["top"]),
                confidence="" if row["confidence"] is None else f"{row['confidence']:.4f}",
                **({"notes": " | ".join(row["notes"])} if isinstance(row.get("notes"), list) else {}))
    if styles:
        pred = result.prediction
        above = styles_above(pred, pred.genre, styles) if pred is not None else []
        flat[STYLE_COLUMN] = ";".join(f"{name}:{score:.2f}" for name, score in above)
    return flat


STORE_INPUT = "the prediction store"
"""What :func:`check_report_paths` calls the store among a run's inputs."""
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside a database (``predictions.sqlite-wal``...): part of the store."""


def check_report_paths(reports: Sequence[Path | None], files: Iterable[Path], *,
                       inputs: Mapping[str, Path | None] | None = None) -> None:
    """Refuse report paths that would destroy something, before anything is opened.

    A report may not be one of the files being scanned, an input of the run
    (``inputs``: what each is, ``"the genre map"``, ``"the config file"``,
    ``"the prediction store"`` (with SQLite's ``-wal``/``-shm``/``-journal`` files
    beside it), ``"the model bundle"`` (a folder: nothing inside it) -> its path; None
    when the run has none), an existing audio file (by name or by content), a folder, or the
    same file as another report. Raises :class:`UsageError` naming the path.
    """
    wanted = [Path(r) for r in reports if r is not None]
    if not wanted:
        return
    scanned = set()
    for f in files:
        try:
            scanned.add(os.path.realpath(f))
        except (ValueError, UnicodeError):  # a report row's path with a NUL or a lone surrogate: no file to overwrite
            continue
    seen: set[str] = set()
    for report in wanted:
        if str(report) == "-":  # not stdout: the per-file lines and the summary are there
            raise UsageError("a report goes to a file, not to stdout: give --csv/--json a file name", report)
        real = os.path.realpath(report)
        if real in seen:
            raise UsageError("--csv and --json name the same file", report)
        seen.add(real)
        if real in scanned:
            raise UsageError("report would overwrite a file being scanned", report)
        for what, path in (inputs or {}).items():
            if path is not None and _is_part_of(real, os.path.realpath(Path(path).expanduser()), what):
                raise UsageError(f"report would overwrite {what}", report)
        if os.path.isdir(real):
            raise UsageError("report path is a folder", report)
        if os.path.exists(real) and (is_audio(report) or _looks_like_audio(Path(real))):
            raise UsageError("report would overwrite an audio file", report)


def _is_part_of(real: str, input_real: str, what: str) -> bool:
    """Whether the report at ``real`` would write over the input at ``input_real`` (both resolved)."""
    if real == input_real:
        return True
    if os.path.isdir(input_real):  # a model bundle: card.json, the weights, ...
        return os.path.commonpath([real, input_real]) == input_real
    return what == STORE_INPUT and real in {input_real + side for side in SQLITE_SIDE_FILES}


def _looks_like_audio(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return False
    mp3_frame = len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
    return head.startswith(_AUDIO_MAGIC) or head[4:8] == b"ftyp" or mp3_frame


class RowSink(Protocol):
    """Another output of the same rows (the Ray engine's Parquet dataset): ``add(row, result)`` takes a
    :func:`report_row` and its result, ``close()`` writes what it still holds."""

    def add(self, row: dict[str, Any], result: ScanResult) -> None: ...

    def close(self) -> None: ...


class ReportWriter:
    """Streams results to CSV and/or JSON Lines, flushed per row so an interrupted run leaves complete,
    valid files: the one writer of ``scan --csv/--json``, ``apply`` and the Ray engine. Use as a context
    manager, or call :meth:`close`.

    ``done`` (resuming, the Ray engine: the paths each output already holds, by name ``json`` / ``csv`` /
    ``parquet``): the reports are appended to instead of replaced (a JSON Lines file cut short by a kill is
    first trimmed back to its last complete line; the CSV gets its header only when new), and a row for a
    path an output already holds is not written to it again. ``also``: another output of the same rows
    (the Parquet dataset), named ``parquet`` in ``done`` and closed with the rest.
    """

    def __init__(self, *, csv_path: Path | None, json_path: Path | None, top_k: int, model_id: str = "",
                 styles: Sequence[Style] = (), done: Mapping[str, Collection[str]] | None = None,
                 also: RowSink | None = None) -> None:
        """``styles``: the model card's; the CSV gets the :data:`STYLE_COLUMN` and the JSON rows their scores."""
        self.top_k = top_k
        self.model_id = model_id
        self.styles = tuple(styles)
        self._done = done or {}
        self._files: list[IO[str]] = []
        self._paths: dict[int, Path] = {}
        self._csv = self._json = None
        self._csv_file: IO[str] | None = None
        self._also = also
        appending = done is not None
        try:
            if csv_path is not None:
                fresh = not appending or not Path(csv_path).is_file() or Path(csv_path).stat().st_size == 0
                self._csv_file = self._open(csv_path, errors="surrogateescape", append=appending)
                self._csv = csv.DictWriter(self._csv_file, fieldnames=report_columns(self.styles),
                                           extrasaction="ignore")
                if fresh:
                    self._guarded(self._csv_file, self._csv.writeheader)
            if json_path is not None:
                self._json = self._open(json_path, errors="backslashreplace", append=appending, trim=appending)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self, path: Path, *, errors: str, append: bool, trim: bool = False) -> IO[str]:
        try:
            if trim:
                trim_partial_line(Path(path))
            fh = open(path, "a" if append else "w", encoding="utf-8", errors=errors, newline="")
        except OSError as exc:
            raise GenretagError(f"cannot write report: {os_reason(exc)}", path) from exc
        self._files.append(fh)
        self._paths[id(fh)] = Path(path)
        return fh

    def write(self, result: ScanResult, *, path: str | None = None) -> None:
        """Append one row to each report that lacks it and flush it. ``path``: the row's path when it is not
        ``result.path`` (an object-store URI). Raises :class:`GenretagError` naming the report when it can't
        be written (a full disk...)."""
        row = report_row(result, top_k=self.top_k, model_id=self.model_id, styles=self.styles)
        if path is not None:
            row["path"] = path
        if self._csv is not None and row["path"] not in self._done.get("csv", ()):
            flat = csv_row(row, result, styles=self.styles)
            self._guarded(self._csv_file, lambda: self._csv.writerow(flat))
        if self._json is not None and row["path"] not in self._done.get("json", ()):
            line = json.dumps(row, ensure_ascii=False) + "\n"
            self._guarded(self._json, lambda: self._json.write(line))
        if self._also is not None and row["path"] not in self._done.get("parquet", ()):
            self._also.add(row, result)

    def _guarded(self, fh: IO[str], step) -> None:
        try:
            step()
            fh.flush()
        except OSError as exc:
            raise GenretagError(f"cannot write report: {os_reason(exc)}", self._paths[id(fh)]) from exc

    def close(self) -> None:
        """Close every report (``also`` first: it may still write); a failure to flush the last bytes of a
        report is ignored (each row was flushed)."""
        also, self._also = self._also, None
        try:
            if also is not None:
                also.close()
        finally:
            for fh in self._files:
                try:
                    fh.close()
                except OSError:
                    pass
            self._files.clear()


def trim_partial_line(path: Path) -> None:
    """Cut a JSON Lines file back to its last complete line (a run killed mid-write leaves half a row)."""
    if not path.is_file():
        return
    with open(path, "rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        data_end = size
        step = 1 << 16
        while data_end > 0:
            start = max(0, data_end - step)
            fh.seek(start)
            chunk = fh.read(data_end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                fh.truncate(start + cut + 1)
                return
            data_end = start
        fh.truncate(0)
