"""The Keras training loop: augmented crops in, best-on-validation bundle out.

Pure Keras 3 (runs on the TensorFlow or JAX backend). Validation judges each
track the way scan does (windows averaged); early stopping watches that
track-level accuracy and the best weights are kept. Each epoch writes
``checkpoint/last.keras`` and ``checkpoint/state.json`` so ``--resume`` can
continue an interrupted run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from genretag.config import FeatureConfig, TrainConfig
from genretag.evaluate import score_tracks
from genretag.models.architectures import build_ensemble, build_model
from genretag.models.runtime import KerasClassifier, import_keras
from genretag.train.augment import WindowSampler
from genretag.train.common import CHECKPOINT_DIR, Fitted, Progress


def fit_keras(splits, *, labels: tuple[str, ...], features: FeatureConfig, config: TrainConfig, out: Path,
              resume: bool = False, on_event: Progress | None = None) -> Fitted:
    """Train ``config.ensemble`` members of ``config.model`` (seeds ``seed``, ``seed + 1``...), each
    kept at its best validation epoch; the bundle's model averages their probabilities.
    Saved as ``out/model.keras``."""
    members, epochs_run, best_epoch, windows, trained = [], 0, 0, 0, 0
    for i in range(config.ensemble):
        member, run = _fit_member(i, splits, labels=labels, features=features, config=config, out=out,
                                  resume=resume, on_event=on_event)
        members.append(member)
        epochs_run, best_epoch, windows = epochs_run + run[0], max(best_epoch, run[1]), windows + run[2]
        trained += run[3]
    model = build_ensemble(members, n_mels=features.n_mels, n_frames=features.n_frames,
                           name=f"{config.model.replace('-', '_')}_x{len(members)}")
    weights = out / "model.keras"
    model.save(weights)  # uncompiled: the bundle holds no optimizer state
    return Fitted(KerasClassifier(model, labels, config.batch_size), weights, int(model.count_params()),
                  epochs_run=epochs_run, best_epoch=best_epoch, windows_seen=windows, epochs_trained=trained)


def _fit_member(index: int, splits, *, labels, features: FeatureConfig, config: TrainConfig, out: Path,
                resume: bool, on_event: Progress | None):
    """Train one member; returns (model with its best weights,
    (epochs run in all, best epoch, windows seen this run, epochs trained this run))."""
    keras = import_keras()
    seed = config.seed + index
    keras.utils.set_random_seed(seed)
    ckpt = out / CHECKPOINT_DIR / f"m{index}"
    ckpt.mkdir(parents=True, exist_ok=True)
    state = _read_state(ckpt) if resume else None
    shape = {"n_mels": features.n_mels, "n_frames": features.n_frames, "n_classes": len(labels),
             "dropout": config.dropout}
    if state is not None:
        model = keras.saving.load_model(ckpt / "last.keras", safe_mode=True)
    else:
        model = build_model(config.model, **shape)
        steps_total = config.epochs * _steps(len(splits["train"].tracks), config)
        schedule = keras.optimizers.schedules.CosineDecay(config.lr, steps_total, alpha=0.05)
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                      metrics=["accuracy"])
    train = splits["train"]
    sampler = WindowSampler(train.mels, train.y, len(labels), features, frozenset(config.augment),
                            seed=seed + (state["epoch"] if state else 0))
    steps = _steps(len(train.tracks), config)
    tracker = _track_validation(keras, splits["val"], labels, features, config, ckpt, state, on_event)
    log_name = "training.csv" if index == 0 else f"training-m{index}.csv"
    logger = keras.callbacks.CSVLogger(str(out / log_name), append=state is not None)
    initial = state["epoch"] if state else 0
    if initial < config.epochs and not (state and state.get("stopped")):
        model.fit(_batches(keras, sampler, steps, config.batch_size), epochs=config.epochs, initial_epoch=initial,
                  callbacks=[tracker, logger], verbose=0)
    best = build_model(config.model, **shape, name=f"{config.model.replace('-', '_')}_{index}")
    best.load_weights(ckpt / "best.weights.h5")
    trained = tracker.epochs_run - initial
    return best, (tracker.epochs_run, tracker.best_epoch, trained * steps * config.batch_size, trained)


def _steps(n_tracks: int, config: TrainConfig) -> int:
    """Batches per epoch: ``crops_per_track`` windows of every training track."""
    return max(1, math.ceil(n_tracks * config.crops_per_track / config.batch_size))


def _batches(keras, sampler: WindowSampler, steps: int, batch_size: int):
    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return steps

        def __getitem__(self, index: int):
            return sampler.batch(batch_size)

    return Batches()


def _read_state(ckpt: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((ckpt / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if (ckpt / "last.keras").is_file() and (ckpt / "best.weights.h5").is_file() else None


def _track_validation(keras, val, labels, features, config, ckpt, state, on_event):
    """The per-epoch validation callback (defined here because Keras is imported late):
    scores val tracks as scan would, keeps the best weights, checkpoints, stops early."""

    class TrackValidation(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best_score = state["best_score"] if state else -1.0
            self.best_epoch = state["best_epoch"] if state else 0
            self.epochs_run = state["epoch"] if state else 0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs if logs is not None else {}
            scores = score_tracks(KerasClassifier(self.model, labels, config.batch_size), val.mels, val.durations,
                                  config=features)
            onehot = np.eye(len(labels))[val.y]
            logs["val_track_accuracy"] = float(np.mean(scores.track.argmax(1) == val.y))
            logs["val_accuracy"] = float(np.mean(scores.single_window.argmax(1) == val.y))
            logs["val_loss"] = float(-np.mean(np.sum(onehot * np.log(np.maximum(scores.single_window, 1e-7)), 1)))
            self.epochs_run = epoch + 1
            # Ties go to the later epoch: with a decaying learning rate it has settled more.
            if logs["val_track_accuracy"] >= self.best_score:
                self.best_score, self.best_epoch = logs["val_track_accuracy"], epoch + 1
                self.model.save_weights(ckpt / "best.weights.h5")
            stop = self.epochs_run - self.best_epoch >= config.patience
            self.model.save(ckpt / "last.keras")
            _write_state(ckpt, {"epoch": self.epochs_run, "best_score": self.best_score,
                                "best_epoch": self.best_epoch, "stopped": stop})
            if stop:
                self.model.stop_training = True
            if on_event is not None:
                on_event("epoch", {"epoch": epoch + 1, "epochs": config.epochs, "best_epoch": self.best_epoch,
                                   **{k: float(v) for k, v in logs.items()}})

    return TrackValidation()


def _write_state(ckpt: Path, state: dict[str, Any]) -> None:
    tmp = ckpt / "state.json.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, ckpt / "state.json")
