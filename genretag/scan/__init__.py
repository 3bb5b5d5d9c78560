"""The scan half: files -> decode+features (a pool of workers) -> batched inference -> tags and reports.

Stages, each a plain function: :func:`~genretag.scan.extract.extract_track` (one
file, run by the workers), :func:`~genretag.scan.pool.run_pool` (crash-tolerant
pool), :func:`~genretag.scan.batching.predict_stream` (windows of many tracks
in fixed batches, averaged per track), :func:`~genretag.scan.decide.settle`
(what a file gets, and the write), :class:`~genretag.scan.report.ReportWriter`.
"""

from genretag.scan.batching import Prediction, predict_stream
from genretag.scan.decide import (
    STATUSES,
    GenreChoice,
    ScanResult,
    read_genre_map,
    settle,
)
from genretag.scan.extract import TrackFeatures, extract_track
from genretag.scan.pipeline import decode_stage, scan_files
from genretag.scan.report import REPORT_COLUMNS, ReportWriter, report_row

__all__ = [
    "REPORT_COLUMNS", "STATUSES", "GenreChoice", "Prediction", "ReportWriter", "ScanResult", "TrackFeatures",
    "decode_stage", "extract_track", "predict_stream", "read_genre_map", "report_row", "scan_files", "settle",
]
