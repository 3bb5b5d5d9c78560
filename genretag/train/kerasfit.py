"""Networks trained from scratch: augmented crops in, best-on-validation bundle out.

Pure Keras 3 (runs on the TensorFlow or JAX backend). Each epoch draws
``crops_per_track`` augmented windows per training track
(:class:`~genretag.train.augment.WindowSampler`); the loop, early stopping,
best weights, log and ``--resume`` are :func:`~genretag.train.fitloop.fit_best`'s,
with ``checkpoint/m<i>/`` per ensemble member.
"""

from __future__ import annotations

from pathlib import Path

from genretag.config import FeatureConfig, TrainConfig, WindowPolicy
from genretag.evaluate import score_tracks
from genretag.models.architectures import build_ensemble, build_model
from genretag.models.runtime import KerasClassifier, import_keras
from genretag.train.augment import WindowSampler
from genretag.train.common import CHECKPOINT_DIR, Fitted, Progress
from genretag.train.fitloop import batches, epochs_to_steps, fit_best, resume_point, validation_logs


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
    log = out / ("training.csv" if index == 0 else f"training-m{index}.csv")
    point = resume_point(ckpt, log) if resume else None
    train, val = splits["train"], splits["val"]
    steps = epochs_to_steps(len(train.tracks) * config.crops_per_track, config.batch_size)
    shape = {"n_mels": features.n_mels, "n_frames": features.n_frames, "n_classes": len(labels),
             "dropout": config.dropout, "name": f"{config.model.replace('-', '_')}_{index}"}
    model = build_model(config.model, **shape)
    schedule = keras.optimizers.schedules.CosineDecay(config.lr, config.epochs * steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                  metrics=["accuracy"])
    sampler = WindowSampler(train.mels, train.y, len(labels), features, frozenset(config.augment),
                            seed=seed + (point.epochs if point else 0), mixup_alpha=config.mixup_alpha)

    def score(model) -> dict[str, float]:
        scores = score_tracks(KerasClassifier(model, labels, config.batch_size), val.mels, val.durations,
                              config=features, policy=WindowPolicy(windows=config.eval_windows), windows=val.windows)
        return validation_logs(scores.track, val.y, scores.single_window, val.y)

    run = fit_best(keras, model, batches(keras, lambda i: sampler.batch(config.batch_size), steps), score=score,
                   config=config, ckpt=ckpt, log=log, resume=point, on_event=on_event)
    best = build_model(config.model, **shape)  # uncompiled: the bundle holds no optimizer state
    best.set_weights(model.get_weights())
    return best, (run.epochs_run, run.best_epoch, run.epochs_trained * steps * config.batch_size, run.epochs_trained)
