"""The scan half: files -> decode+features (a pool of workers) -> batched inference -> decide -> tags, reports.

Stages, each a plain function: :func:`~genretag.scan.extract.extract_track` (one
file, run by the workers), :func:`~genretag.scan.pool.run_pool` (crash-tolerant
pool), :func:`~genretag.scan.batching.predict_stream` (windows of many tracks
in fixed batches, averaged per track), :func:`~genretag.scan.decide.decide`
(what a file gets) and :func:`~genretag.scan.writing.write` (the tag write),
:class:`~genretag.scan.report.ReportWriter` (CSV / JSON Lines; the Ray engine's outputs too).
"""

from genretag.scan.batching import Prediction, predict_stream
from genretag.scan.decide import STATUSES, ScanResult, Status, best_style, choose_genres, decide, styles_above
from genretag.scan.extract import TrackFeatures, extract_track
from genretag.scan.group import group_key, pooled, with_groups
from genretag.scan.pipeline import as_result, decode_stage, predict_files
from genretag.scan.report import (
    REPORT_COLUMNS,
    ReportWriter,
    check_report_paths,
    csv_row,
    report_columns,
    report_row,
)
from genretag.scan.review import decide_row, read_report
from genretag.scan.writing import decide_and_write, writable, write

__all__ = [
    "REPORT_COLUMNS", "STATUSES", "Prediction", "ReportWriter", "ScanResult", "Status", "TrackFeatures",
    "as_result", "best_style", "check_report_paths", "choose_genres", "csv_row", "decide", "decide_and_write",
    "decide_row", "decode_stage", "extract_track", "group_key", "pooled", "predict_files", "predict_stream",
    "read_report", "report_columns", "report_row", "styles_above", "with_groups", "writable", "write",
]
