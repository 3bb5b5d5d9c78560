"""The one early-stopping loop both Keras fit routines use: ``model.fit`` with Keras' own
callbacks around the one metric Keras lacks, track-level validation accuracy.

Callbacks, in the order they see each epoch's logs:

1. ``TrackValidation`` judges every validation track the way scan does (window
   probabilities averaged) and puts ``val_track_accuracy`` (plus window-level
   ``val_accuracy`` and ``val_loss``) into the logs;
2. ``EarlyStopping`` stops after ``patience`` epochs without a better ``val_track_accuracy``;
3. ``ModelCheckpoint`` keeps the best weights on disk (``best.weights.h5``), so they
   survive an interrupted run; ties keep the earlier epoch;
4. ``CSVLogger`` writes ``training.csv`` (appended to on resume);
5. ``BackupAndRestore`` saves weights, optimizer state and epoch after every epoch,
   and ``--resume`` continues from there.

Keras is imported by the callers (the fit modules), never at module import.
"""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genretag.config import TrainConfig
from genretag.models.runtime import track_mean
from genretag.train.common import Progress

MONITOR = "val_track_accuracy"
BEST_WEIGHTS = "best.weights.h5"
BACKUP_DIR = "backup"


@dataclass(frozen=True)
class Resume:
    """Where an interrupted run stands, from its log."""

    epochs: int
    """Epochs in ``training.csv``."""
    best: float | None
    """Their best ``val_track_accuracy``."""


@dataclass(frozen=True)
class FitRun:
    epochs_run: int
    """Epochs in all, counting those before a resume."""
    best_epoch: int
    """1-based epoch whose weights the model now holds."""
    epochs_trained: int
    """Epochs this call trained."""


def resume_point(ckpt: Path, log: Path) -> Resume | None:
    """The state of the run checkpointed in ``ckpt``, or None when there is no backup to resume."""
    if not (ckpt / BACKUP_DIR).is_dir() or not (ckpt / BEST_WEIGHTS).is_file():
        return None
    scores = _logged_scores(log)
    return Resume(len(scores), max(scores) if scores else None)


def validation_logs(track_probs: np.ndarray, y: np.ndarray, window_probs: np.ndarray,
                    window_y: np.ndarray) -> dict[str, float]:
    """``val_track_accuracy`` of ``float [n_tracks, C]`` track probabilities against ``int [n_tracks]``
    labels; ``val_accuracy`` and ``val_loss`` (cross-entropy) of ``float [n, C]`` window probabilities."""
    onehot = np.eye(track_probs.shape[1])[window_y]
    return {MONITOR: float(np.mean(track_probs.argmax(1) == y)),
            "val_accuracy": float(np.mean(window_probs.argmax(1) == window_y)),
            "val_loss": float(-np.mean(np.sum(onehot * np.log(np.maximum(window_probs, 1e-7)), 1)))}


def tracks_of(window_probs: np.ndarray, owner: np.ndarray, n_tracks: int) -> np.ndarray:
    """``float32 [n_tracks, C]``: each track's windows (``owner`` sorted, track index per window)
    through :func:`~genretag.models.runtime.track_mean`."""
    bounds = np.searchsorted(owner, np.arange(1, n_tracks))
    return np.stack([track_mean(p) for p in np.split(window_probs, bounds)])


def batches(keras, draw: Callable[[int], tuple], steps: int, *, on_epoch_end: Callable[[], None] | None = None):
    """A Keras ``PyDataset`` of ``steps`` batches a epoch, batch ``i`` from ``draw(i)``."""

    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return steps

        def __getitem__(self, index: int):
            return draw(index)

        def on_epoch_end(self) -> None:
            if on_epoch_end is not None:
                on_epoch_end()

    return Batches()


def fit_best(keras, model, data, *, score: Callable[[Any], dict[str, float]], config: TrainConfig, ckpt: Path,
             log: Path, resume: Resume | None, on_event: Progress | None = None) -> FitRun:
    """``model.fit(data)`` for ``config.epochs`` with the callbacks above; leaves ``model`` at its best
    epoch. ``score(model)`` returns :func:`validation_logs`. Without ``resume`` the checkpoint starts afresh."""
    if resume is None:
        shutil.rmtree(ckpt, ignore_errors=True)
    ckpt.mkdir(parents=True, exist_ok=True)
    prior = resume.best if resume else None
    stopper = keras.callbacks.EarlyStopping(monitor=MONITOR, mode="max", patience=config.patience, baseline=prior)
    callbacks = [
        _track_validation(keras, score),
        stopper,
        keras.callbacks.ModelCheckpoint(str(ckpt / BEST_WEIGHTS), monitor=MONITOR, mode="max", save_best_only=True,
                                        save_weights_only=True, initial_value_threshold=prior),
        keras.callbacks.CSVLogger(str(log), append=resume is not None),
        keras.callbacks.BackupAndRestore(str(ckpt / BACKUP_DIR), delete_checkpoint=False),
    ]
    if on_event is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_event(
            "epoch", {"epoch": epoch + 1, "epochs": config.epochs, "best_epoch": stopper.best_epoch + 1,
                      **{k: float(v) for k, v in logs.items()}})))
    history = model.fit(data, epochs=config.epochs, callbacks=callbacks, verbose=0)
    model.load_weights(ckpt / BEST_WEIGHTS)
    scores = _logged_scores(log)
    return FitRun(len(scores), int(np.argmax(scores)) + 1, len(history.epoch))


def _track_validation(keras, score: Callable[[Any], dict[str, float]]):
    class TrackValidation(keras.callbacks.Callback):
        """Adds ``score(model)`` to each epoch's logs, for the callbacks after it."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if logs is not None:
                logs.update(score(self.model))

    return TrackValidation()


def _logged_scores(log: Path) -> list[float]:
    """``val_track_accuracy`` of each epoch in a CSVLogger file (none when it is missing)."""
    try:
        with log.open(newline="", encoding="utf-8") as fh:
            return [float(row[MONITOR]) for row in csv.DictReader(fh) if row.get(MONITOR) not in (None, "")]
    except (OSError, ValueError):
        return []


def epochs_to_steps(n_windows: int, batch_size: int) -> int:
    """Batches per epoch that show each of ``n_windows`` once: ``ceil(n / batch_size)``."""
    return max(1, math.ceil(n_windows / batch_size))
