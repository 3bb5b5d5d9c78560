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

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from genretag.config import FeatureConfig, TrainConfig
from genretag.models.runtime import KerasClassifier, import_keras
from genretag.train.augment import mixup_sets, random_gain
from genretag.train.common import CHECKPOINT_DIR, Fitted, PartialData, Progress
from genretag.train.fitloop import batches, epochs_to_steps, fit_best, resume_point, tracks_of, validation_logs

STD_FLOOR = 1e-3
"""Features whose spread over the training windows is below this are treated as constant."""


def fit_transfer(splits, *, labels: tuple[str, ...], features: FeatureConfig, config: TrainConfig, out: Path,
                 resume: bool = False, on_event: Progress | None = None, partial: PartialData | None = None) -> Fitted:
    """Train the head, keep it at its best validation epoch, save ``out/model.keras``.

    ``partial``: extra training tracks with partial labels (the set of genres each may be),
    trained by :func:`set_loss` on the summed probability of their set.
    """
    keras = import_keras()
    from genretag.models.musicnn import build_extractor

    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    extractor = build_extractor()
    train, val = splits["train"], splits["val"]
    n_partial = len(partial.masks) if partial is not None else 0
    total = len(train.tracks) + len(val.tracks) + n_partial
    report = (lambda base: (lambda done: on_event("embedding", {"done": base + done, "total": total}))) if on_event \
        else (lambda base: None)
    gain = config.gain_db if "gain" in config.augment else 0.0
    x_train, track_train = embed(extractor, train.windows, config.batch_size, gain_db=gain, rng=rng,
                                 on_track=report(0))
    x_val, track_val = embed(extractor, val.windows, config.batch_size, on_track=report(len(train.tracks)))
    n_classes = len(labels)
    masks = np.eye(n_classes, dtype=np.float32)[train.y]
    weights = _sample_weights(train.y)
    if partial is not None:
        x_part, track_part = embed(extractor, partial.windows, config.batch_size, gain_db=gain, rng=rng,
                                   on_track=report(len(train.tracks) + len(val.tracks)))
        x_train = np.concatenate([x_train, x_part])
        track_train = np.concatenate([track_train, track_part + len(train.y)])
        masks = np.concatenate([masks, partial.masks])
        weights = np.concatenate([weights, np.full(n_partial, config.partial_weight, np.float32)])
    mean, std = x_train.mean(0), np.maximum(x_train.std(0), STD_FLOOR)
    live = x_train.std(0) >= STD_FLOOR
    z_train, z_val = ((x - mean) / std * live for x in (x_train, x_val))
    if config.head == "track":  # one example a track: its windows' mean features
        z_train, z_val_tracks = track_means(z_train, track_train), track_means(z_val, track_val)
    else:
        masks, weights = masks[track_train], weights[track_train]

    head = keras.Sequential([keras.Input((x_train.shape[1],)), keras.layers.Dropout(config.dropout),
                             keras.layers.Dense(n_classes, activation="softmax", name="genre",
                                                kernel_regularizer=keras.regularizers.L2(config.l2) if config.l2 else None)])
    steps = epochs_to_steps(len(z_train), config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.lr, config.epochs * steps, alpha=0.05)
    head.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                 loss=set_loss(keras, label_smoothing=config.label_smoothing))
    draw, reshuffle = _epoch_batches(rng, z_train, masks, weights if "balance" in config.augment else None,
                                     batch_size=config.batch_size,
                                     alpha=config.mixup_alpha if "mixup" in config.augment else None)

    def score(model) -> dict[str, float]:
        probs = np.asarray(model.predict(z_val, batch_size=1024, verbose=0))
        if config.head == "track":
            tracks = np.asarray(model.predict(z_val_tracks, batch_size=1024, verbose=0))
        else:
            tracks = tracks_of(probs, track_val, len(val.y))
        return validation_logs(tracks, val.y, probs, val.y[track_val])

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


def set_loss(keras, *, label_smoothing: float):
    """The loss of a softmax output against target sets: ``y_true`` ``[n, 2C]`` holds two weighted sets
    (:func:`~genretag.train.augment.mixup_sets`; without mixup the second is empty), and each set ``S`` of
    weight ``w`` costs ``-w log(sum of p over S)``, plus ``label_smoothing`` times the mean ``-log p``.

    For a one-class set this is cross-entropy, and with mixup the usual mixed cross-entropy; for a
    partial label (the track is one of ``S``) it asks only that the probability lands inside ``S``.
    """
    ops = keras.ops

    def loss(y_true, y_pred):
        n_classes = ops.shape(y_pred)[-1]
        p = ops.clip(y_pred, 1e-7, 1.0)
        total = 0.0
        for target in (y_true[:, :n_classes], y_true[:, n_classes:]):
            weight = ops.max(target, axis=-1)
            inside = ops.sum(target * p, axis=-1) / ops.maximum(weight, 1e-7)
            total = total - weight * ops.log(ops.clip(inside, 1e-7, 1.0))
        return (1.0 - label_smoothing) * total + label_smoothing * ops.mean(-ops.log(p), axis=-1)

    return loss


def track_means(x: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """``float32 [n_tracks, d]``: the mean of each track's rows (``owner``: track index of each row)."""
    n = int(owner.max()) + 1
    sums = np.zeros((n, x.shape[1]), np.float64)
    np.add.at(sums, owner, x)
    return (sums / np.bincount(owner, minlength=n)[:, None]).astype(np.float32)


def _sample_weights(y: np.ndarray) -> np.ndarray:
    """``float [n]``: scikit-learn's ``balanced`` class weight of each example's class."""
    from sklearn.utils.class_weight import compute_class_weight

    classes = np.unique(y)
    weights = compute_class_weight("balanced", classes=classes, y=y)
    return weights[np.searchsorted(classes, y)].astype(np.float32)


def _epoch_batches(rng: np.random.Generator, x: np.ndarray, masks: np.ndarray, w: np.ndarray | None, *,
                   batch_size: int, alpha: float | None):
    """``(draw(i), reshuffle())``: batch ``i`` of the epoch's shuffled order as ``(x, sets[, weights])``
    for :func:`set_loss`, mixed up with ``alpha`` (None: no mixup); a new order every epoch."""
    order = [rng.permutation(len(x))]

    def draw(i: int) -> tuple:
        idx = order[0][i * batch_size : (i + 1) * batch_size]
        xb, mb = x[idx], masks[idx]
        if alpha is not None:
            xb, yb = mixup_sets(rng, xb, mb, alpha=alpha)
        else:
            yb = np.concatenate([mb, np.zeros_like(mb)], axis=1)
        return (xb, yb) if w is None else (xb, yb, w[idx])

    def reshuffle() -> None:
        order[0] = rng.permutation(len(x))

    return draw, reshuffle


def fold_standardisation(weight: np.ndarray, bias: np.ndarray, *, mean: np.ndarray, scale: np.ndarray):
    """A Dense layer's ``(kernel, bias)`` on raw features ``x`` equal to ``weight, bias`` on ``(x - mean) * scale``."""
    return weight * scale[:, None], bias - (mean * scale) @ weight


def embed(extractor, windows: Sequence[np.ndarray], batch_size: int, *, gain_db: float = 0.0,
          rng: np.random.Generator | None = None,
          on_track: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features of each track's scan windows (``windows``: one ``[k, n_mels, n_frames]`` array a
    track, as scan cut them): ``(float32 [n, d], track index [n])``.
    With ``gain_db``, each window is first played louder or quieter by a random gain in +-``gain_db``.
    ``on_track(done)`` is told how many tracks are embedded, after each batch."""
    parts, owner = [], []
    for i, w in enumerate(windows):
        w = np.asarray(w, np.float32)
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

