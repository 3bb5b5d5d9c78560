"""Evaluation metrics and report files: exact values on hand-made cases, round trips."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from genretag.errors import GenretagError
from genretag.evaluate import (
    ClassMetrics,
    EvalReport,
    build_report,
    compare_rows,
    compute_metrics,
    load_report,
    plot_confusion,
    plot_curves,
    write_report,
)

LABELS = ("Rock", "Jazz", "Hip|Hop")  # "|" must not break the Markdown tables
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Confusion (rows true, cols predicted):  Rock [2 1 0]  Jazz [0 2 0]  Hip|Hop [1 0 2]
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2]
Y_PRED = [0, 1, 0, 1, 1, 2, 0, 2]


def one_hot_probs(pred: list[int], n_classes: int, *, rng: np.random.Generator) -> np.ndarray:
    """``float32 [n, C]`` rows that sum to 1 with their argmax at ``pred``."""
    probs = rng.uniform(0.0, 0.3, size=(len(pred), n_classes))
    probs[np.arange(len(pred)), pred] = 1.0
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def report() -> EvalReport:
    rng = np.random.default_rng(0)
    window_pred = [0, 0, 0, 1, 2, 2, 2, 1]
    return build_report(
        model="tiny-cnn 0.1.0",
        dataset="synthetic test split",
        labels=LABELS,
        y_true=np.asarray(Y_TRUE),
        track_probs=one_hot_probs(Y_PRED, 3, rng=rng),
        window_probs=one_hot_probs(window_pred, 3, rng=rng),
        sources=["fma", "fma", "own", "fma", "own", "fma", "", "own"],
        windows_per_track=10,
        extra={"seconds": np.float32(1.5), "n_params": np.int64(12345), "shape": (1, 2)},
    )


def test_compute_metrics_matches_hand_computed_values() -> None:
    m = compute_metrics(Y_TRUE, Y_PRED, LABELS)

    assert m.n == 8
    assert m.accuracy == pytest.approx(6 / 8)
    assert m.confusion == ((2, 1, 0), (0, 2, 0), (1, 0, 2))
    rock, jazz, hiphop = m.per_class
    assert [c.label for c in m.per_class] == list(LABELS)
    assert (rock.precision, rock.recall, rock.f1, rock.support) == pytest.approx((2 / 3, 2 / 3, 2 / 3, 3))
    assert (jazz.precision, jazz.recall, jazz.f1, jazz.support) == pytest.approx((2 / 3, 1.0, 0.8, 2))
    assert (hiphop.precision, hiphop.recall, hiphop.f1, hiphop.support) == pytest.approx((1.0, 2 / 3, 0.8, 3))
    assert m.macro_precision == pytest.approx(7 / 9)
    assert m.macro_recall == pytest.approx(7 / 9)
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.8 + 0.8) / 3)
    assert m.weighted_precision == pytest.approx((3 * 2 / 3 + 2 * 2 / 3 + 3 * 1.0) / 8)
    assert m.weighted_recall == pytest.approx(6 / 8)
    assert m.weighted_f1 == pytest.approx((3 * 2 / 3 + 2 * 0.8 + 3 * 0.8) / 8)
    assert all(type(v) is float for v in (m.accuracy, m.macro_f1, rock.precision))
    assert all(type(v) is int for row in m.confusion for v in row)


def test_confusion_rows_are_true_classes() -> None:
    # Every true Rock (0) predicted as Jazz (1): the count sits at row 0, column 1.
    m = compute_metrics([0, 0, 0, 1], [1, 1, 1, 1], ["Rock", "Jazz"])
    assert m.confusion == ((0, 3), (0, 1))


def test_never_predicted_or_absent_class_scores_zero_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Jazz is never predicted; Blues (index 3) is neither true nor predicted.
        m = compute_metrics([0, 1, 2], [0, 0, 2], ["Rock", "Jazz", "Pop", "Blues"])

    by_label = {c.label: c for c in m.per_class}
    assert by_label["Jazz"].precision == 0.0
    assert by_label["Jazz"].recall == 0.0
    assert by_label["Blues"] == ClassMetrics("Blues", 0.0, 0.0, 0.0, 0)
    assert len(m.confusion) == 4 and all(len(row) == 4 for row in m.confusion)
    assert m.accuracy == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([0, 1], [0], "y_pred has 1"),
        ([], [], "no examples"),
        ([0, 3], [0, 1], "outside"),
        ([0, 1], [0, -1], "outside"),
    ],
)
def test_compute_metrics_rejects_bad_input(y_true, y_pred, message) -> None:
    with pytest.raises(ValueError, match=message):
        compute_metrics(y_true, y_pred, ["a", "b", "c"])


def test_build_report_levels_and_sources(report: EvalReport) -> None:
    assert report.labels == LABELS
    assert report.track == compute_metrics(Y_TRUE, Y_PRED, LABELS)
    assert report.single_window.accuracy == pytest.approx(6 / 8)
    assert report.single_window != report.track
    assert list(report.by_source) == ["", "fma", "own"]
    assert report.by_source["fma"].n == 4
    assert report.by_source[""].n == 1 and report.by_source[""].accuracy == 0.0
    assert report.by_source["own"].accuracy == 1.0
    assert report.by_source["fma"].accuracy == pytest.approx(3 / 4)


def test_build_report_without_sources_and_shape_checks() -> None:
    probs = np.eye(3, dtype=np.float32)
    r = build_report(model="m", dataset="d", labels=LABELS, y_true=[0, 1, 2],
                     track_probs=probs, window_probs=probs, windows_per_track=1)
    assert r.by_source == {} and r.extra == {}
    assert r.track.accuracy == 1.0
    with pytest.raises(ValueError, match="window_probs"):
        build_report(model="m", dataset="d", labels=LABELS, y_true=[0, 1, 2],
                     track_probs=probs, window_probs=probs[:, :2], windows_per_track=1)
    with pytest.raises(ValueError, match="sources"):
        build_report(model="m", dataset="d", labels=LABELS, y_true=[0, 1, 2],
                     track_probs=probs, window_probs=probs, sources=["a"], windows_per_track=1)


def test_write_then_load_round_trips(report: EvalReport, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "eval"
    written = write_report(report, out)

    assert sorted(p.name for p in written) == ["confusion.png", "report.json", "report.md"]
    assert all(p.parent == out and p.is_file() for p in written)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left

    for where in (out, out / "report.json"):
        loaded = load_report(where)
        assert loaded.to_dict() == report.to_dict()
    assert loaded.track == report.track and loaded.by_source == report.by_source
    assert loaded.extra == {"seconds": 1.5, "n_params": 12345, "shape": [1, 2]}

    raw = json.loads((out / "report.json").read_text())
    assert raw["labels"] == list(LABELS)
    assert raw["track"]["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert "\n  " in (out / "report.json").read_text()  # indent=2


def test_report_markdown_contents(report: EvalReport, tmp_path: Path) -> None:
    write_report(report, tmp_path)
    md = (tmp_path / "report.md").read_text()

    assert md.startswith("# ") and "tiny-cnn 0.1.0" in md and "synthetic test split" in md
    assert "| Rock | 0.667 | 0.667 | 0.667 | 3 |" in md
    assert "| Jazz | 0.667 | 1.000 | 0.800 | 2 |" in md
    assert "| Hip\\|Hop | 1.000 | 0.667 | 0.800 | 3 |" in md
    assert "| **macro avg** | 0.778 | 0.778 | 0.756 | 8 |" in md
    assert "| **weighted avg** | 0.792 | 0.750 | 0.750 | 8 |" in md
    assert "| track | 0.750 |" in md and "| single window | 0.750 |" in md
    assert "| Rock | 2 | 1 | 0 |" in md  # confusion row
    assert "![confusion](confusion.png)" in md
    assert "| fma | 4 |" in md and "| (none) | 1 | 0.000 |" in md


def test_markdown_omits_source_table_without_sources(tmp_path: Path) -> None:
    probs = np.eye(3, dtype=np.float32)
    r = build_report(model="m", dataset="d", labels=LABELS, y_true=[0, 1, 2],
                     track_probs=probs, window_probs=probs, windows_per_track=1)
    write_report(r, tmp_path)
    assert "By source" not in (tmp_path / "report.md").read_text()


def test_confusion_png_is_a_real_image(report: EvalReport, tmp_path: Path) -> None:
    write_report(report, tmp_path)
    data = (tmp_path / "confusion.png").read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000

    big = compute_metrics(np.arange(16) % 16, (np.arange(16) + 1) % 16, [f"g{i}" for i in range(16)])
    path = plot_confusion(big, [f"g{i}" for i in range(16)], tmp_path / "sub" / "big.png", title="16")
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_plot_curves_from_csv_logger_file(tmp_path: Path) -> None:
    csv_path = tmp_path / "history.csv"
    csv_path.write_text(
        "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"
        "0,0.40,0.001,1.20,0.35,1.30\n"
        "1,0.60,0.001,0.90,0.55,1.00\n"
        "2,0.75,0.0005,0.60,NA,0.80\n"
    )
    out = plot_curves(csv_path, tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5_000

    train_only = tmp_path / "train_only.csv"
    train_only.write_text("epoch,loss\n0,1.0\n1,0.5\n")
    assert plot_curves(train_only, tmp_path / "t.png").is_file()


def test_plot_curves_errors(tmp_path: Path) -> None:
    with pytest.raises(GenretagError, match="cannot read training history") as info:
        plot_curves(tmp_path / "missing.csv", tmp_path / "c.png")
    assert info.value.path == tmp_path / "missing.csv"
    odd = tmp_path / "odd.csv"
    odd.write_text("epoch,lr\n0,0.1\n")
    with pytest.raises(GenretagError, match="no loss or accuracy"):
        plot_curves(odd, tmp_path / "c.png")


def test_load_report_missing_or_malformed(tmp_path: Path) -> None:
    with pytest.raises(GenretagError, match="no evaluation report") as info:
        load_report(tmp_path / "nowhere")
    assert info.value.path == tmp_path / "nowhere"

    bad = tmp_path / "bad"
    bad.mkdir()
    for text in ("{not json", "[1, 2]", '{"model": "m"}', '{"format": 99}'):
        (bad / "report.json").write_text(text)
        with pytest.raises(GenretagError, match="malformed evaluation report") as info:
            load_report(bad)
        assert info.value.path == bad / "report.json"
        assert isinstance(info.value.__cause__, Exception)


def test_compare_rows(report: EvalReport) -> None:
    rows = compare_rows([report, report])
    assert len(rows) == 2
    assert rows[0] == {
        "model": "tiny-cnn 0.1.0",
        "dataset": "synthetic test split",
        "track_accuracy": pytest.approx(0.75),
        "track_macro_f1": pytest.approx(34 / 45),
        "window_accuracy": pytest.approx(0.75),
        "window_macro_f1": report.single_window.macro_f1,
        "n": 8,
    }
    assert compare_rows([]) == []
