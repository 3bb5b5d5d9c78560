"""Evaluation reports: metrics from predictions, and the files that record them.

Layers, each callable on its own: label indices -> :class:`Metrics`;
probabilities -> :class:`EvalReport`; report -> ``report.json`` + ``report.md``
+ ``confusion.png`` in a directory, and back. Nothing here prints; matplotlib is
imported only inside the plotting functions and draws through the Agg canvas,
so no display is needed and pyplot's global state is never touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genretag.errors import GenretagError
from genretag.evaluate.plots import plot_confusion
from genretag.files import replace_atomically

REPORT_FORMAT = 1
"""Version of the ``report.json`` layout; bumped when fields change meaning."""

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CONFUSION_PNG = "confusion.png"


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class (fractions in [0, 1])."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int
    """Number of true examples of this class."""


@dataclass(frozen=True)
class Metrics:
    """Classification metrics over ``n`` examples; all rates are fractions in [0, 1]."""

    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    weighted_precision: float
    weighted_recall: float
    weighted_f1: float
    per_class: tuple[ClassMetrics, ...]
    confusion: tuple[tuple[int, ...], ...]
    """``[C][C]`` counts: rows are true classes, columns predicted, in label order."""
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "weighted_precision": self.weighted_precision,
            "weighted_recall": self.weighted_recall,
            "weighted_f1": self.weighted_f1,
            "per_class": [
                {"label": c.label, "precision": c.precision, "recall": c.recall,
                 "f1": c.f1, "support": c.support}
                for c in self.per_class
            ],
            "confusion": [list(row) for row in self.confusion],
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Metrics":
        return cls(
            accuracy=float(d["accuracy"]),
            macro_precision=float(d["macro_precision"]),
            macro_recall=float(d["macro_recall"]),
            macro_f1=float(d["macro_f1"]),
            weighted_precision=float(d["weighted_precision"]),
            weighted_recall=float(d["weighted_recall"]),
            weighted_f1=float(d["weighted_f1"]),
            per_class=tuple(
                ClassMetrics(label=str(c["label"]), precision=float(c["precision"]),
                             recall=float(c["recall"]), f1=float(c["f1"]),
                             support=int(c["support"]))
                for c in d["per_class"]
            ),
            confusion=tuple(tuple(int(v) for v in row) for row in d["confusion"]),
            n=int(d["n"]),
        )


def compute_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    labels: Sequence[str],
) -> Metrics:
    """Accuracy, per-class and averaged precision/recall/F1, and the confusion matrix.

    ``y_true`` and ``y_pred`` are ``int [n]`` class indices into ``labels``.
    Every label gets a row even when it never occurs; a class that is never
    predicted has precision 0 (no warning). Macro and weighted averages are over the
    classes ``y_true`` holds (a class the data lacks would pull macro-F1 down by 1/n). Raises ``ValueError`` on empty or
    mismatched input or an index outside ``range(len(labels))``.
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    n_classes = len(labels)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} items but y_pred has {y_pred.size}")
    if y_true.size == 0:
        raise ValueError("no examples to evaluate")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"{name} has a class index outside 0..{n_classes - 1}")

    idx = list(range(n_classes))
    present = sorted(set(y_true.tolist()))  # a class the data has no track of has no F1 to average
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=idx, zero_division=0)
    averaged = {
        avg: precision_recall_fscore_support(y_true, y_pred, labels=present, average=avg,
                                             zero_division=0)[:3]
        for avg in ("macro", "weighted")
    }
    cm = confusion_matrix(y_true, y_pred, labels=idx)
    return Metrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_precision=float(averaged["macro"][0]),
        macro_recall=float(averaged["macro"][1]),
        macro_f1=float(averaged["macro"][2]),
        weighted_precision=float(averaged["weighted"][0]),
        weighted_recall=float(averaged["weighted"][1]),
        weighted_f1=float(averaged["weighted"][2]),
        per_class=tuple(
            ClassMetrics(label=str(labels[i]), precision=float(p[i]), recall=float(r[i]),
                         f1=float(f[i]), support=int(s[i]))
            for i in idx
        ),
        confusion=tuple(tuple(int(v) for v in row) for row in cm),
        n=int(y_true.size),
    )


@dataclass(frozen=True)
class EvalReport:
    """Everything one evaluation run measured, as written to ``report.json``."""

    model: str
    """Model name and version."""
    dataset: str
    """What was evaluated (dataset, split, filters)."""
    labels: tuple[str, ...]
    track: Metrics
    """Whole-track predictions: probabilities averaged over the track's windows."""
    single_window: Metrics
    """One middle window per track, comparable with window-level studies."""
    by_source: dict[str, Metrics]
    """Track-level metrics per data source; empty when sources were not given."""
    windows_per_track: int
    extra: dict[str, Any]
    """Free-form JSON-able details: timings, parameter count, training info."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (no numpy types, lists instead of tuples)."""
        return {
            "format": REPORT_FORMAT,
            "model": self.model,
            "dataset": self.dataset,
            "labels": list(self.labels),
            "windows_per_track": self.windows_per_track,
            "track": self.track.to_dict(),
            "single_window": self.single_window.to_dict(),
            "by_source": {k: m.to_dict() for k, m in self.by_source.items()},
            "extra": _plain(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalReport":
        """Inverse of :meth:`to_dict`; raises ``KeyError``/``TypeError``/``ValueError`` if malformed."""
        fmt = d.get("format", REPORT_FORMAT)
        if fmt != REPORT_FORMAT:
            raise ValueError(f"unsupported report format {fmt!r} (expected {REPORT_FORMAT})")
        return cls(
            model=str(d["model"]),
            dataset=str(d["dataset"]),
            labels=tuple(str(x) for x in d["labels"]),
            track=Metrics.from_dict(d["track"]),
            single_window=Metrics.from_dict(d["single_window"]),
            by_source={str(k): Metrics.from_dict(m) for k, m in d.get("by_source", {}).items()},
            windows_per_track=int(d["windows_per_track"]),
            extra=dict(d.get("extra", {})),
        )


def build_report(
    *,
    model: str,
    dataset: str,
    labels: Sequence[str],
    y_true: Sequence[int] | np.ndarray,
    track_probs: np.ndarray,
    window_probs: np.ndarray,
    sources: Sequence[str] | None = None,
    windows_per_track: int,
    extra: dict[str, Any] | None = None,
) -> EvalReport:
    """Score predictions against the truth.

    ``y_true`` is ``int [n]`` class indices; ``track_probs`` is ``float [n, C]``
    (window probabilities averaged per track) and ``window_probs`` ``float [n, C]``
    (the single middle window of each track), with ``C == len(labels)``.
    ``sources``, if given, is ``str [n]`` naming each track's data source.
    """
    labels = tuple(str(x) for x in labels)
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    track_probs = np.asarray(track_probs)
    window_probs = np.asarray(window_probs)
    expected = (y_true.size, len(labels))
    for name, probs in (("track_probs", track_probs), ("window_probs", window_probs)):
        if probs.shape != expected:
            raise ValueError(f"{name} has shape {probs.shape}, expected {expected}")
    track_pred = track_probs.argmax(axis=1)

    by_source: dict[str, Metrics] = {}
    if sources is not None:
        sources_arr = np.asarray([str(s) for s in sources], dtype=object)
        if sources_arr.size != y_true.size:
            raise ValueError(f"sources has {sources_arr.size} items, expected {y_true.size}")
        for source in sorted(set(sources_arr)):
            mask = sources_arr == source
            by_source[source] = compute_metrics(y_true[mask], track_pred[mask], labels)

    return EvalReport(
        model=model,
        dataset=dataset,
        labels=labels,
        track=compute_metrics(y_true, track_pred, labels),
        single_window=compute_metrics(y_true, window_probs.argmax(axis=1), labels),
        by_source=by_source,
        windows_per_track=int(windows_per_track),
        extra=dict(extra or {}),
    )


def write_report(report: EvalReport, out_dir: Path) -> list[Path]:
    """Write ``confusion.png``, ``report.md`` and ``report.json`` into ``out_dir``.

    Creates ``out_dir``. Each file is written to a temporary name and renamed,
    JSON last, so a ``report.json`` present means the other files are too.
    Returns the written paths in that order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot_confusion(report.track, report.labels, out_dir / CONFUSION_PNG,
                         title=f"{report.model} on {report.dataset} (track level)")
    md = replace_atomically(out_dir / REPORT_MD, _utf8(render_markdown(report)))
    js = replace_atomically(out_dir / REPORT_JSON, _utf8(json.dumps(report.to_dict(), indent=2) + "\n"))
    return [png, md, js]


def load_report(path: Path) -> EvalReport:
    """Read a report written by :func:`write_report`.

    ``path`` is the report directory or its ``report.json``. Raises
    :class:`GenretagError` if the file is missing or malformed.
    """
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise GenretagError("no evaluation report found", path) from exc
    except OSError as exc:
        raise GenretagError(f"cannot read evaluation report: {exc.strerror}", path) from exc
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("top level is not an object")
        return EvalReport.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GenretagError(f"malformed evaluation report: {exc}", path) from exc


def compare_rows(reports: Sequence[EvalReport]) -> list[dict[str, Any]]:
    """One summary row per report, for a comparison table (rates are fractions)."""
    return [
        {
            "model": r.model,
            "dataset": r.dataset,
            "track_accuracy": r.track.accuracy,
            "track_macro_f1": r.track.macro_f1,
            "window_accuracy": r.single_window.accuracy,
            "window_macro_f1": r.single_window.macro_f1,
            "n": r.track.n,
        }
        for r in reports
    ]


# ---------------------------------------------------------------- Markdown


def render_markdown(report: EvalReport) -> str:
    """``report.md``: summary, per-class and confusion tables; rates to 3 decimals."""
    t, w = report.track, report.single_window
    lines = [
        f"# Evaluation: {report.model} on {report.dataset}",
        "",
        f"{t.n} tracks, {len(report.labels)} genres, {report.windows_per_track} windows per track.",
        "",
        "## Summary",
        "",
        *_table(
            ["level", "accuracy", "macro P", "macro R", "macro F1",
             "weighted P", "weighted R", "weighted F1"],
            [[name, *(_f(v) for v in (m.accuracy, m.macro_precision, m.macro_recall,
                                       m.macro_f1, m.weighted_precision, m.weighted_recall,
                                       m.weighted_f1))]
             for name, m in (("track", t), ("single window", w))],
        ),
        "",
        "## Per genre (track level)",
        "",
        *_table(
            ["genre", "precision", "recall", "F1", "support"],
            [[c.label, _f(c.precision), _f(c.recall), _f(c.f1), str(c.support)]
             for c in t.per_class]
            + [["**macro avg**", _f(t.macro_precision), _f(t.macro_recall), _f(t.macro_f1),
                str(t.n)],
               ["**weighted avg**", _f(t.weighted_precision), _f(t.weighted_recall),
                _f(t.weighted_f1), str(t.n)]],
        ),
        "",
        "## Confusion matrix (track level; rows true, columns predicted)",
        "",
        *_table(["true \\ predicted", *report.labels],
                [[label, *(str(v) for v in row)]
                 for label, row in zip(report.labels, t.confusion)]),
        "",
        f"![confusion]({CONFUSION_PNG})",
        "",
    ]
    if report.by_source:
        lines += [
            "## By source (track level)",
            "",
            *_table(["source", "tracks", "accuracy", "macro F1"],
                    [[src or "(none)", str(m.n), _f(m.accuracy), _f(m.macro_f1)]
                     for src, m in report.by_source.items()]),
            "",
        ]
    return "\n".join(lines)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Markdown table lines; the first column is left-aligned, the rest right."""
    out = ["| " + " | ".join(_cell(h) for h in header) + " |",
           "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _f(x: float) -> str:
    return f"{x:.3f}"


# ---------------------------------------------------------------- files


def _utf8(text: str):
    """A writer for :func:`replace_atomically` that writes ``text`` as UTF-8."""
    return lambda fh: fh.write(text.encode("utf-8"))


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and paths turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
