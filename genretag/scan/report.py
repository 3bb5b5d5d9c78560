"""Scan reports: one CSV row or JSON line per file, flushed as each file finishes."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any

from genretag.errors import GenretagError
from genretag.scan.decide import ScanResult

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
