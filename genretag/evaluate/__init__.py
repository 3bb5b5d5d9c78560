"""Scoring a model on labelled tracks the way scan judges them, and the report files.

:func:`evaluate` -> :class:`EvalReport` -> :func:`write_report` (report.json,
report.md, confusion.png) -> :func:`load_report` / :func:`compare_rows`.
"""

from genretag.evaluate.plots import plot_confusion, plot_curves
from genretag.evaluate.report import (
    ClassMetrics,
    EvalReport,
    Metrics,
    build_report,
    compare_rows,
    compute_metrics,
    load_report,
    write_report,
)
from genretag.evaluate.scoring import evaluate, score_tracks

__all__ = [
    "ClassMetrics", "EvalReport", "Metrics", "build_report", "compare_rows", "compute_metrics", "evaluate",
    "load_report", "plot_confusion", "plot_curves", "score_tracks", "write_report",
]
