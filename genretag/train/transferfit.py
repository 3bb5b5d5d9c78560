"""``--model musicnn``: a genre head on the frozen, pretrained musicnn extractor.

Every training track gives ``crops_per_track`` evenly spaced windows (the way
scan cuts them) and every validation track its scan windows; the extractor
turns each into pooled features once. A softmax layer is then trained on the
standardised features (dropout, AdamW, label smoothing; ``balance`` weighs the
classes equally, ``mixup`` mixes pairs of windows, ``gain`` plays each training
window up to ``gain_db`` louder or quieter before it is embedded) by the same loop
as every Keras model (:func:`~genretag.train.fitloop.fit_best`: judged each epoch on
validation tracks the way scan judges them, early stopping, best epoch kept, one
``training.csv``). The standardisation is folded into that layer, so
the bundle's model is the extractor followed by one Dense layer: windows in,
probabilities out, like every other genretag model. Training takes seconds
once the features are extracted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from genretag.config import FeatureConfig, TrainConfig, WindowPolicy
from genretag.features import eval_windows, window_starts
from genretag.models.runtime import KerasClassifier, import_keras
from genretag.train.augment import mixup, random_gain
from genretag.train.common import CHECKPOINT_DIR, Fitted, Progress
from genretag.train.fitloop import batches, epochs_to_steps, fit_best, resume_point, tracks_of, validation_logs

STD_FLOOR = 1e-3
"""Features whose spread over the training windows is below this are treated as constant."""


def fit_transfer(splits, *, labels: tuple[str, ...], features: FeatureConfig, config: TrainConfig, out: Path,
                 resume: bool = False, on_event: Progress | None = None) -> Fitted:
    """Train the head, keep it at its best validation epoch, save ``out/model.keras``."""
    keras = import_keras()
    from genretag.models.musicnn import build_extractor

    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    extractor = build_extractor()
    train, val = splits["train"], splits["val"]
    total = len(train.tracks) + len(val.tracks)
    report = (lambda done: on_event("embedding", {"done": done, "total": total})) if on_event else None
    x_train, track_train = embed(extractor, train, features, config.crops_per_track, config.batch_size,
                                 gain_db=config.gain_db if "gain" in config.augment else 0.0, rng=rng,
                                 on_track=report)
    x_val, track_val = embed(extractor, val, features, config.eval_windows, config.batch_size,
                             on_track=(lambda done: report(len(train.tracks) + done)) if report else None)
    mean, std = x_train.mean(0), np.maximum(x_train.std(0), STD_FLOOR)
    live = x_train.std(0) >= STD_FLOOR
    z_train, z_val = ((x - mean) / std * live for x in (x_train, x_val))

    n_classes = len(labels)
    head = keras.Sequential([keras.Input((x_train.shape[1],)), keras.layers.Dropout(config.dropout),
                             keras.layers.Dense(n_classes, activation="softmax", name="genre")])
    steps = epochs_to_steps(len(z_train), config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.lr, config.epochs * steps, alpha=0.05)
    head.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                 loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                 metrics=["accuracy"])
    y_train = train.y[track_train]
    draw, reshuffle = _epoch_batches(rng, z_train, np.eye(n_classes, dtype=np.float32)[y_train],
                                     _sample_weights(y_train) if "balance" in config.augment else None,
                                     batch_size=config.batch_size,
                                     alpha=config.mixup_alpha if "mixup" in config.augment else None)

    def score(model) -> dict[str, float]:
        probs = np.asarray(model.predict(z_val, batch_size=1024, verbose=0))
        return validation_logs(tracks_of(probs, track_val, len(val.y)), val.y, probs, val.y[track_val])

    ckpt, log = out / CHECKPOINT_DIR / "head", out / "training.csv"
    run = fit_best(keras, head, batches(keras, draw, steps, on_epoch_end=reshuffle), score=score, config=config,
                   ckpt=ckpt, log=log, resume=resume_point(ckpt, log) if resume else None, on_event=on_event)
    kernel, bias = fold_standardisation(*head.get_layer("genre").get_weights(), mean=mean, scale=live / std)
    model = _assemble(keras, extractor, kernel, bias, n_classes, features)
    path = out / "model.keras"
    model.save(path)
    return Fitted(KerasClassifier(model, labels, config.batch_size), path, int(model.count_params()),
                  epochs_run=run.epochs_run, best_epoch=run.best_epoch,
                  windows_seen=len(z_train) * run.epochs_trained, epochs_trained=run.epochs_trained)


def _sample_weights(y: np.ndarray) -> np.ndarray:
    """``float [n]``: scikit-learn's ``balanced`` class weight of each example's class."""
    from sklearn.utils.class_weight import compute_class_weight

    classes = np.unique(y)
    weights = compute_class_weight("balanced", classes=classes, y=y)
    return weights[np.searchsorted(classes, y)].astype(np.float32)


def _epoch_batches(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                   batch_size: int, alpha: float | None):
    """``(draw(i), reshuffle())``: batch ``i`` of the epoch's shuffled order, mixed up with ``alpha``
    (None: no mixup), with its sample weights where given; a new order every epoch."""
    order = [rng.permutation(len(x))]

    def draw(i: int) -> tuple:
        idx = order[0][i * batch_size : (i + 1) * batch_size]
        xb, yb = x[idx], y[idx]
        if alpha is not None:
            xb, yb = mixup(rng, xb, yb, alpha=alpha)
        return (xb, yb) if w is None else (xb, yb, w[idx])

    def reshuffle() -> None:
        order[0] = rng.permutation(len(x))

    return draw, reshuffle


def fold_standardisation(weight: np.ndarray, bias: np.ndarray, *, mean: np.ndarray, scale: np.ndarray):
    """A Dense layer's ``(kernel, bias)`` on raw features ``x`` equal to ``weight, bias`` on ``(x - mean) * scale``."""
    return weight * scale[:, None], bias - (mean * scale) @ weight


def embed(extractor, data, features: FeatureConfig, windows: int, batch_size: int, *, gain_db: float = 0.0,
          rng: np.random.Generator | None = None,
          on_track: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features of each track's scan windows: ``(float32 [n, d], track index [n])``.
    With ``gain_db``, each window is first played louder or quieter by a random gain in +-``gain_db``.
    ``on_track(done)`` is told how many tracks are embedded, after each batch."""
    policy = WindowPolicy(windows=windows)
    parts, owner = [], []
    for i, (mel, duration) in enumerate(zip(data.mels, data.durations)):
        w = eval_windows(mel, duration, config=features, starts_s=window_starts(duration, config=features, policy=policy))
        if gain_db:
            w = random_gain(rng, w, max_db=gain_db)
        parts.append(w)
        owner.append(np.full(len(w), i))
    x, owner = np.concatenate(parts), np.concatenate(owner)
    # tracks finished after `done` windows: the last one's index, plus one when it is complete
    progress = (lambda done: on_track(int(owner[done - 1]) + (done == len(x)))) if on_track else None
    return KerasClassifier(extractor, (), batch_size).predict(x, on_batch=progress), owner


def _assemble(keras, extractor, kernel: np.ndarray, bias: np.ndarray, n_classes: int, features: FeatureConfig):
    inputs = keras.Input((features.n_mels, features.n_frames), name="logmel")
    genre = keras.layers.Dense(n_classes, activation="softmax", name="genre")
    outputs = genre(extractor(inputs))
    genre.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return keras.Model(inputs, outputs, name="musicnn_genre")

