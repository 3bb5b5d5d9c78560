"""``--model musicnn``: a genre head on the frozen, pretrained musicnn extractor.

Every training track gives ``crops_per_track`` evenly spaced windows (the way
scan cuts them) and every validation track its scan windows; the extractor
turns each into pooled features once. A softmax layer is then trained on the
standardised features (dropout, AdamW, label smoothing; ``balance`` weighs the
classes equally, ``mixup`` mixes pairs of windows, ``gain`` plays each training
window up to 12 dB louder or quieter before it is embedded), judged each epoch on
validation tracks the way scan judges them (window probabilities averaged),
and kept at its best epoch. The standardisation is folded into that layer, so
the bundle's model is the extractor followed by one Dense layer: windows in,
probabilities out, like every other genretag model. Training takes seconds
once the features are extracted.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np

from genretag.config import FeatureConfig, TrainConfig, WindowPolicy
from genretag.features import eval_windows, logc_gain, window_starts
from genretag.models.runtime import KerasClassifier, import_keras
from genretag.train.common import Fitted, Progress

STD_FLOOR = 1e-3
"""Features whose spread over the training windows is below this are treated as constant."""
MIXUP_ALPHA = 0.4
GAIN_DB = 12.0
"""``gain`` augmentation: training windows played up to this many dB louder or quieter."""


def fit_transfer(splits, *, labels: tuple[str, ...], features: FeatureConfig, config: TrainConfig, out: Path,
                 on_event: Progress | None = None) -> Fitted:
    """Train the head, keep it at its best validation epoch, save ``out/model.keras``."""
    keras = import_keras()
    from genretag.models.musicnn import build_extractor

    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    extractor = build_extractor()
    train, val = splits["train"], splits["val"]
    gain = GAIN_DB if "gain" in config.augment else 0.0
    total = len(train.tracks) + len(val.tracks)
    report = (lambda done: on_event("embedding", {"done": done, "total": total})) if on_event else None
    x_train, track_train = embed(extractor, train, features, config.crops_per_track, config.batch_size,
                                 gain_db=gain, rng=rng, on_track=report)
    y_train = train.y[track_train]
    x_val, track_val = embed(extractor, val, features, config.eval_windows, config.batch_size,
                             on_track=(lambda done: report(len(train.tracks) + done)) if report else None)
    mean, std = x_train.mean(0), np.maximum(x_train.std(0), STD_FLOOR)
    live = x_train.std(0) >= STD_FLOOR
    z_train, z_val = ((x - mean) / std * live for x in (x_train, x_val))

    n_classes = len(labels)
    head = keras.Sequential([keras.Input((x_train.shape[1],)), keras.layers.Dropout(config.dropout),
                             keras.layers.Dense(n_classes, activation="softmax", name="genre")])
    steps = config.epochs * int(np.ceil(len(z_train) / config.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(config.lr, steps, alpha=0.05)
    head.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                 loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing))
    weights = _class_weights(y_train, n_classes) if "balance" in config.augment else np.ones(len(y_train))
    best = (-1.0, 0, head.get_weights())
    rows = []
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        x, y, w = z_train, np.eye(n_classes)[y_train], weights
        if "mixup" in config.augment:
            x, y, w = _mixup(rng, x, y, w)
        history = head.fit(x, y, sample_weight=w, batch_size=config.batch_size, epochs=1, shuffle=True, verbose=0)
        probs = np.asarray(head.predict(z_val, batch_size=1024, verbose=0))
        track = np.stack([probs[track_val == i].mean(0) for i in range(len(val.y))])
        fitted = np.asarray(head.predict(z_train, batch_size=1024, verbose=0)).argmax(1)
        logs = {"loss": float(history.history["loss"][-1]), "accuracy": float(np.mean(fitted == y_train)),
                "val_track_accuracy": float(np.mean(track.argmax(1) == val.y)),
                "val_accuracy": float(np.mean(probs.argmax(1) == val.y[track_val]))}
        if logs["val_track_accuracy"] >= best[0]:  # ties: the later epoch, settled further
            best = (logs["val_track_accuracy"], epoch, head.get_weights())
        rows.append({"epoch": epoch - 1, **logs})
        if on_event is not None:
            on_event("epoch", {"epoch": epoch, "epochs": config.epochs, "best_epoch": best[1], **logs})
        if epoch - best[1] >= config.patience:
            break
    _write_log(out / "training.csv", rows)

    kernel, bias = fold_standardisation(*best[2], mean=mean, scale=live / std)
    model = _assemble(keras, extractor, kernel, bias, n_classes, features)
    path = out / "model.keras"
    model.save(path)
    return Fitted(KerasClassifier(model, labels, config.batch_size), path, int(model.count_params()),
                  epochs_run=epoch, best_epoch=best[1], windows_seen=len(z_train) * epoch, epochs_trained=epoch)


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
            w = logc_gain(w, rng.uniform(-gain_db, gain_db, size=(len(w), 1, 1)))
        parts.append(w)
        owner.append(np.full(len(w), i))
    x, owner = np.concatenate(parts), np.concatenate(owner)
    # tracks finished after `done` windows: the last one's index, plus one when it is complete
    progress = (lambda done: on_track(int(owner[done - 1]) + (done == len(x)))) if on_track else None
    return KerasClassifier(extractor, (), batch_size).predict(x, on_batch=progress), owner


def _class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    per_class = len(y) / (n_classes * np.maximum(counts, 1))
    return per_class[y]


def _mixup(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, w: np.ndarray):
    lam = rng.beta(MIXUP_ALPHA, MIXUP_ALPHA, size=(len(x), 1))
    lam = np.maximum(lam, 1 - lam)  # the first of each pair dominates
    other = rng.permutation(len(x))
    return lam * x + (1 - lam) * x[other], lam * y + (1 - lam) * y[other], w


def _assemble(keras, extractor, kernel: np.ndarray, bias: np.ndarray, n_classes: int, features: FeatureConfig):
    inputs = keras.Input((features.n_mels, features.n_frames), name="logmel")
    genre = keras.layers.Dense(n_classes, activation="softmax", name="genre")
    outputs = genre(extractor(inputs))
    genre.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return keras.Model(inputs, outputs, name="musicnn_genre")


def _write_log(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
