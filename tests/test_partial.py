"""Partial-label training (a loss on the summed probability of a set), the track-level head and its
geometric pooling, and the partial-label CSV reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from genretag.cli import app
from genretag.datasets import load_folder
from genretag.datasets.partial import load_partial
from genretag.errors import DatasetError
from genretag.models.runtime import import_keras, track_mean
from genretag.train.augment import mixup_sets
from genretag.train.transferfit import set_loss, track_means

from synth import tone_mix, write_audio


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_set_loss_is_cross_entropy_for_one_class_and_log_mass_for_a_set():
    keras = import_keras()
    p = _softmax(np.array([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 0.3, 0.4]], np.float32))
    onehot = np.array([[1, 0, 0, 0], [0, 0, 1, 0]], np.float32)
    packed = np.concatenate([onehot, np.zeros_like(onehot)], 1)
    loss = np.asarray(set_loss(keras, label_smoothing=0.0)(packed, p))
    np.testing.assert_allclose(loss, -np.log(p[[0, 1], [0, 2]]), rtol=1e-5)
    smoothed = np.asarray(keras.losses.CategoricalCrossentropy(label_smoothing=0.1, reduction=None)(onehot, p))
    np.testing.assert_allclose(np.asarray(set_loss(keras, label_smoothing=0.1)(packed, p)), smoothed, rtol=1e-4)
    sets = np.array([[0, 1, 1, 0], [1, 0, 0, 1]], np.float32)
    loss = np.asarray(set_loss(keras, label_smoothing=0.0)(np.concatenate([sets, 0 * sets], 1), p))
    np.testing.assert_allclose(loss, -np.log((p * sets).sum(1)), rtol=1e-5)


def test_mixed_sets_cost_the_mix_of_their_losses():
    keras = import_keras()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    masks = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1]]
    masks[5, 2] = 1.0  # a partial label: class 1 or 2
    mixed_x, y = mixup_sets(np.random.default_rng(1), x, masks, alpha=0.4)
    lam = y[:, :4].max(1)
    assert np.all((lam >= 0.5) & (lam <= 1.0))
    np.testing.assert_allclose(y[:, 4:].max(1), 1 - lam, rtol=1e-6)
    p = _softmax(rng.normal(size=(6, 4)).astype(np.float32))
    loss = np.asarray(set_loss(keras, label_smoothing=0.0)(y, p))
    first, second = y[:, :4] / lam[:, None], y[:, 4:] / (1 - lam)[:, None]
    want = -lam * np.log((p * first).sum(1)) - (1 - lam) * np.log((p * second).sum(1))
    np.testing.assert_allclose(loss, want, rtol=1e-4)
    assert mixed_x.shape == x.shape and not np.allclose(mixed_x, x)


def test_geometric_pooling_is_the_softmax_of_the_mean_logits():
    logits = np.random.default_rng(2).normal(size=(8, 5)) * 3
    probs = _softmax(logits).astype(np.float32)
    np.testing.assert_allclose(track_mean(probs, pooling="geometric"), _softmax(logits.mean(0)), atol=1e-5)
    np.testing.assert_allclose(track_mean(probs, pooling="geometric", temperature=2.0),
                               _softmax(logits.mean(0) / 2.0), atol=1e-5)
    assert not np.allclose(track_mean(probs), track_mean(probs, pooling="geometric"), atol=1e-3)
    with pytest.raises(ValueError, match="pooling"):
        track_mean(probs, pooling="median")


def test_track_means_average_each_tracks_rows():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_allclose(track_means(x, np.array([0, 0, 1, 1, 1, 2])), [[1, 2], [6, 7], [10, 11]])


def _partial_csv(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = folder / "partial.csv"
    lines = ["path,genres,artist"] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_partial_csv_keeps_known_genres_and_an_artists_part(tmp_path, synth_dataset):
    data = load_folder(synth_dataset, seed=0)
    shared_artist = data.tracks[0].artist
    for i in range(12):
        write_audio(tmp_path / f"p{i}.wav", tone_mix("Low", seconds=2.0, seed=900 + i))
    rows = [(f"p{i}.wav", "Low;Mid" if i % 2 else "High;Opera", f"artist {i % 6}") for i in range(10)]
    rows += [("p10.wav", "Opera", "someone"), ("p11.wav", "Low", shared_artist), ("missing.wav", "Low", "x")]
    table = load_partial(_partial_csv(tmp_path, rows), dataset=data, seed=0, val_fraction=0.2, test_fraction=0.3)
    assert len(table.paths) == 11 and table.skipped == 2  # "Opera" only, and a missing file
    index = {label: i for i, label in enumerate(data.labels)}
    odd = table.masks[table.paths.index(tmp_path / "p1.wav")]
    assert odd[index["Low"]] == odd[index["Mid"]] == 1 and odd.sum() == 2
    even = table.masks[table.paths.index(tmp_path / "p0.wav")]
    assert even[index["High"]] == 1 and even.sum() == 1  # Opera is not one of the dataset's genres
    assert table.parts[table.paths.index(tmp_path / "p11.wav")] == data.tracks[0].split
    assert {"train", "val", "test"} >= set(table.parts) and "train" in table.parts
    (tmp_path / "bad.csv").write_text("path,genre\np0.wav,Low\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="columns"):
        load_partial(tmp_path / "bad.csv", dataset=data, seed=0, val_fraction=0.2, test_fraction=0.3)


def test_train_musicnn_track_head_on_partial_labels(tmp_path, synth_dataset):
    for i in range(18):
        label = ("Low", "Mid", "High")[i % 3]
        write_audio(tmp_path / "extra" / f"{i:02d}.wav", tone_mix(label, seconds=6.0, seed=700 + i))
    sets = {"Low": "Low;Mid", "Mid": "Mid;High", "High": "High"}
    rows = [(f"extra/{i:02d}.wav", sets[("Low", "Mid", "High")[i % 3]], f"band {i}") for i in range(18)]
    partial = _partial_csv(tmp_path, rows)
    out = tmp_path / "bundle"
    result = CliRunner().invoke(app, ["train", "--dataset", str(synth_dataset), "--model", "musicnn", "--head", "track",
                                      "--partial-labels", str(partial), "--epochs", "3", "--crops-per-track", "4",
                                      "--batch-size", "8", "--lr", "1e-2", "--l2", "0.005", "--out", str(out), "-q",
                                      "--cache-dir", str(tmp_path / "cache"), "--jobs", "0", "--no-export"])
    assert result.exit_code == 0, result.output
    card = json.loads((out / "card.json").read_text())
    assert card["pooling"] == "geometric"
    cross = card["metrics"]["cross_source"]
    assert set(cross) <= {"val", "test"} and cross
    for part in cross.values():
        assert part["tracks"] > 0 and 0.0 <= part["in_set"] <= 1.0
    assert card["training"]["config"]["partial_labels"] == str(partial)
    assert card["metrics"]["test"]["track_accuracy"] >= 0.6  # separable tones: a track head learns them
    # the card's test report judges each track exactly as a scan does
    import genretag

    test = load_folder(synth_dataset, seed=0).split("test")
    report = json.loads((out / "report-test" / "report.json").read_text())
    scanned = {r.path: r.prediction.genre for r in genretag.predict([t.path for t in test], model=str(out),
                                                                    options=genretag.ScanOptions(jobs=0))}
    labels = report["labels"]
    confusion = np.zeros((len(labels), len(labels)), int)
    for t in test:
        confusion[labels.index(t.label), labels.index(scanned[t.path])] += 1
    assert confusion.tolist() == report["track"]["confusion"]


def test_track_head_and_partial_labels_need_musicnn(tmp_path, synth_dataset):
    result = CliRunner().invoke(app, ["train", "--dataset", str(synth_dataset), "--model", "knn", "--head", "track",
                                      "--out", str(tmp_path / "b"), "-q"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: --head track and --partial-labels apply to --model musicnn, not to --model knn"]
