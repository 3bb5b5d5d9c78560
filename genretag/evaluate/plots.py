"""Pictures of evaluation and training: the confusion matrix and the training curves.

matplotlib is imported only inside these functions and draws on a ``Figure`` through
the Agg canvas, so no display is needed and no pyplot figure is ever made
(scikit-learn's ``ConfusionMatrixDisplay`` imports pyplot, but draws on the axes it is given).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from genretag.errors import GenretagError
from genretag.files import replace_atomically


class Confusions(Protocol):
    """Anything with a confusion matrix (a :class:`genretag.evaluate.Metrics` is one)."""

    confusion: Sequence[Sequence[int]]
    """Counts ``[n_labels][n_labels]``: rows are the true labels, columns the predicted ones."""


def plot_confusion(metrics: Confusions, labels: Sequence[str], path: Path, *, title: str) -> Path:
    """Draw ``metrics.confusion`` (counts, rows true) as scikit-learn's annotated
    ``ConfusionMatrixDisplay`` into a PNG at ``path``; returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(labels)
    cm = np.asarray(metrics.confusion, dtype=np.int64).reshape(n, n)
    side = max(4.0, 0.55 * n + 2.5)  # inches; ~9 in for 12 genres
    fig = Figure(figsize=(side + 1.0, side), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    display = ConfusionMatrixDisplay(cm, display_labels=list(labels))
    display.plot(ax=ax, cmap="Blues", xticks_rotation=45, colorbar=True,
                 text_kw={"fontsize": 9 if n <= 12 else 7})
    display.im_.colorbar.set_label("tracks")
    ax.set_xlabel("predicted genre")
    ax.set_ylabel("true genre")
    ax.set_title(title)
    fig.tight_layout()
    return replace_atomically(path, lambda fh: fig.savefig(fh, format="png"))


TRACK_METRIC = "val_track_accuracy"
"""The CSVLogger column of the metric early stopping monitors (``genretag.train.fitloop.MONITOR``)."""


def plot_curves(history_csv: Path, path: Path) -> Path:
    """Training curves from a Keras ``CSVLogger`` file: loss and accuracy, train vs val; the accuracy panel also
    plots ``val_track_accuracy``, the metric early stopping and the best epoch go by (``accuracy`` and
    ``val_accuracy`` are per window).

    Epochs are plotted from 1. Columns other than ``epoch``, ``loss``,
    ``accuracy``, their ``val_`` twins and ``val_track_accuracy`` are ignored. Raises
    :class:`GenretagError` if the file is missing or has neither loss nor accuracy.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    history_csv = Path(history_csv)
    cols = _read_history(history_csv)
    n_rows = len(next(iter(cols.values()), []))
    epochs = np.asarray(cols["epoch"]) + 1 if "epoch" in cols else np.arange(1, n_rows + 1)
    fig = Figure(figsize=(10, 4), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, key in zip(axes, ("loss", "accuracy")):
        lines = [(key, "-", "train windows" if key == "accuracy" else "train"),
                 (f"val_{key}", "--", "val windows" if key == "accuracy" else "val")]
        if key == "accuracy":  # what early stopping and the best epoch go by
            lines.append((TRACK_METRIC, "-", "val tracks (early stopping)"))
        for name, style, label in lines:
            if name in cols:
                ax.plot(epochs, cols[name], style, marker="o", markersize=3, label=label)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    return replace_atomically(path, lambda fh: fig.savefig(fh, format="png"))


def _read_history(path: Path) -> dict[str, list[float]]:
    """Numeric columns of a CSVLogger file; unparsable cells ("NA", "") become NaN."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise GenretagError(f"cannot read training history: {exc.strerror}", path) from exc
    except csv.Error as exc:
        raise GenretagError(f"malformed training history: {exc}", path) from exc
    wanted = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", TRACK_METRIC)
    cols = {k: [_num(row.get(k)) for row in rows] for k in wanted if rows and k in rows[0]}
    if not any(k in cols for k in ("loss", "accuracy")):
        raise GenretagError("training history has no loss or accuracy rows", path)
    return cols


def _num(value: str | None) -> float:
    try:
        return float(value) if value is not None else math.nan
    except ValueError:
        return math.nan


