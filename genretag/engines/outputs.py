"""Where a distributed scan's rows go: JSON Lines and CSV as ``genretag scan --json/--csv`` write
them, and a Parquet dataset (a folder of part files) for large catalogues.

Every output can be resumed: the paths it already holds are read back
(:func:`done_paths`), a JSON Lines file cut short by a kill is trimmed back to its
last complete line, rows are appended, and an output skips a path it already has,
so each file appears once in each output however many runs it took.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genretag.errors import GenretagError, os_reason
from genretag.scan.decide import ScanResult
from genretag.scan.report import ReportWriter

PARQUET_ROWS = 10_000
"""Rows per Parquet part file (a killed run loses at most the rows not yet in a part)."""


@dataclass(frozen=True)
class Outputs:
    """The files a distributed scan writes; any of them may be None."""

    json: Path | None = None
    """JSON Lines, one :func:`~genretag.scan.report_row` per file: what ``genretag apply`` reads."""
    csv: Path | None = None
    """CSV with :data:`~genretag.scan.REPORT_COLUMNS` (and ``styles`` for a model with styles), as
    ``scan --csv`` writes it."""
    parquet: Path | None = None
    """A folder of ``part-NNNNNN.parquet`` files: the JSON row's columns, with ``probabilities`` as
    ``float32`` in the model's label order (also in the schema metadata, key ``labels``); a model with
    styles adds ``style_scores`` in its styles' order (metadata key ``styles``)."""

    def any(self) -> bool:
        return any(p is not None for p in (self.json, self.csv, self.parquet))


def done_paths(outputs: Outputs) -> dict[str, set[str]]:
    """The paths each existing output already holds, by output name (``json``, ``csv``, ``parquet``).

    An output that does not exist yet holds none. Raises :class:`GenretagError` naming an output
    that exists but can't be read back.
    """
    done: dict[str, set[str]] = {}
    for name, path in _named(outputs):
        try:
            done[name] = _read_paths(name, path)
        except (OSError, ValueError, KeyError) as exc:
            raise GenretagError(f"cannot resume from this output: {describe_exc(exc)}", path) from exc
    return done


def describe_exc(exc: BaseException) -> str:
    return os_reason(exc) if isinstance(exc, OSError) else str(exc)


def _named(outputs: Outputs) -> list[tuple[str, Path]]:
    return [(n, Path(p)) for n, p in (("json", outputs.json), ("csv", outputs.csv), ("parquet", outputs.parquet))
            if p is not None]


def _read_paths(name: str, path: Path) -> set[str]:
    if name == "parquet":
        if not path.is_dir():
            return set()
        import pyarrow.parquet as pq

        found: set[str] = set()
        for part in sorted(path.glob("part-*.parquet")):
            found.update(pq.read_table(part, columns=["path"]).column("path").to_pylist())
        return found
    if not path.is_file():
        return set()
    if name == "json":
        found = set()
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            for number, line in enumerate(fh, start=1):
                if line.endswith("\n") and line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict) or not isinstance(row.get("path"), str):
                        raise ValueError(f"line {number} is not a row of 'genretag scan --json' (no 'path')")
                    found.add(row["path"])
        return found
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        return {row["path"] for row in csv.DictReader(fh)}


def open_outputs(outputs: Outputs, *, done: dict[str, set[str]], top_k: int, model_id: str,
                 labels: tuple[str, ...], styles: tuple = ()) -> ReportWriter:
    """The outputs of one run as one :class:`~genretag.scan.report.ReportWriter` (the Parquet dataset
    written beside the reports), appending: ``done`` is what :func:`done_paths` found (rows for those
    paths are not written again). ``styles``: the model card's (:class:`~genretag.models.bundle.Style`);
    rows then carry their scores. Use as a context manager."""
    parquet = None
    if outputs.parquet is not None:
        parquet = ParquetParts(Path(outputs.parquet), labels=labels, styles=tuple(s.name for s in styles))
    return ReportWriter(csv_path=outputs.csv, json_path=outputs.json, top_k=top_k, model_id=model_id,
                        styles=styles, done=done, also=parquet)


class ParquetParts:
    """Rows gathered into ``part-NNNNNN.parquet`` files of :data:`PARQUET_ROWS` rows, each written to a
    temporary name and renamed, so the folder only ever holds complete parts."""

    def __init__(self, folder: Path, *, labels: tuple[str, ...], styles: tuple[str, ...] = ()) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GenretagError(f"cannot write the Parquet output: {os_reason(exc)}", folder) from exc
        self.folder, self.labels, self.styles = folder, labels, styles
        numbers = [int(p.stem.split("-")[1]) for p in folder.glob("part-*.parquet") if p.stem.split("-")[1].isdigit()]
        self._next = max(numbers, default=-1) + 1
        self._rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any], result: ScanResult) -> None:
        """``result``'s :func:`~genretag.scan.report_row` (with its probabilities, windows and style scores)."""
        prediction = result.prediction
        probabilities = prediction.probabilities if prediction is not None else None
        windows = prediction.windows if prediction is not None else 0
        style_scores = prediction.style_scores if prediction is not None else None
        extra = {"style_scores": None if style_scores is None else [float(s) for s in style_scores]}
        self._rows.append({**(extra if self.styles else {}),
            "path": _utf8(row["path"]), "status": row["status"], "genre": row["genre"], "confidence": row["confidence"],
            "genres": row["genres"], "previous": row["previous"], "error": row["error"],
            "probabilities": None if probabilities is None else [float(p) for p in probabilities],
            "windows": windows, "size": row["size"], "mtime_ns": row["mtime_ns"], "model": row["model"]})
        if len(self._rows) >= PARQUET_ROWS:
            self.flush()

    def close(self) -> None:
        """Write the last part."""
        self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self._rows, schema=parquet_schema(self.labels, self.styles))
        final = self.folder / f"part-{self._next:06d}.parquet"
        partial = final.with_suffix(".parquet.partial")
        try:
            pq.write_table(table, partial)
            os.replace(partial, final)
        except OSError as exc:
            raise GenretagError(f"cannot write the Parquet output: {os_reason(exc)}", final) from exc
        self._next += 1
        self._rows.clear()


def _utf8(text: str) -> str:
    """A path that is not valid UTF-8 (``\\udcff`` escapes from the file system) with those bytes
    written as ``\\xff`` (Parquet strings must be UTF-8)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def parquet_schema(labels: Iterable[str], styles: Iterable[str] = ()):
    """The Parquet output's columns (``labels``, and ``styles`` when the model has them, go into the
    schema metadata as JSON)."""
    import pyarrow as pa

    strings = pa.list_(pa.string())
    styles = list(styles)
    extra = [("style_scores", pa.list_(pa.float32()))] if styles else []
    metadata = {"labels": json.dumps(list(labels)), **({"styles": json.dumps(styles)} if styles else {})}
    return pa.schema([
        ("path", pa.string()), ("status", pa.string()), ("genre", pa.string()), ("confidence", pa.float64()),
        ("genres", strings), ("previous", strings), ("error", pa.string()),
        ("probabilities", pa.list_(pa.float32())), ("windows", pa.int32()), ("size", pa.int64()),
        ("mtime_ns", pa.int64()), ("model", pa.string()), *extra,
    ], metadata=metadata)
