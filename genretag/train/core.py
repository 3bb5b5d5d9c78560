"""Train a model on a Dataset and write a bundle that scan uses as is.

Keras models (a genre layer on the pretrained musicnn, the default, or networks
trained from scratch on random augmented crops) train with AdamW in one loop
(:func:`genretag.train.fitloop.fit_best`): judged each epoch on the validation
tracks the way scan judges a track (windows averaged), stopped early on that
track-level accuracy, kept at their best epoch. Every epoch leaves a checkpoint
that ``resume`` continues from. k-NN and SVM fit on evenly spaced windows of
the training tracks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from genretag.version import __version__
from genretag.config import (
    CLASSIC_MODELS,
    HEADS,
    MODEL_CHOICES,
    PRETRAINED_MODELS,
    FeatureConfig,
    TrainConfig,
    WindowPolicy,
)
from genretag.datasets import Dataset
from genretag.errors import DatasetError, ModelError
from genretag.evaluate import EvalReport, evaluate, write_report
from genretag.evaluate.plots import plot_curves
from genretag.features import eval_windows, window_starts
from genretag.models.bundle import Bundle, ModelCard, read_bundle, sha256_file, write_card
from genretag.train.augment import AUGMENTATIONS
from genretag.train.common import Fitted, PartialData, Progress, SplitData
from genretag.train.featurecache import ScanWindows, load_features, load_scan_windows

EXPORT_CHECK_TRACKS = 40
"""Validation tracks whose windows check an exported ``model.onnx`` against Keras."""


@dataclass(frozen=True)
class TrainResult:
    bundle: Bundle
    epochs_run: int
    best_epoch: int
    seconds: float
    seconds_per_epoch: float
    train_windows_per_second: float
    val: EvalReport
    test: EvalReport | None
    failed: dict[Path, str]
    """Files whose features could not be extracted (left out)."""
    runtime: str = ""
    """What became of ``model.onnx``: exported and checked (with the largest difference from Keras), or why not."""


def prepare(dataset: Dataset, *, features: FeatureConfig, config: TrainConfig, cache_dir: Path | None,
            jobs: int | None, on_event: Progress | None = None) -> tuple[dict[str, SplitData], dict[Path, str]]:
    """Extract (or load cached) features and group them by split; also the files left out, with why.

    Validation and test tracks (and, for ``musicnn``, the training tracks) get the windows scan itself
    cuts (:func:`~genretag.train.featurecache.load_scan_windows`): every score is judged on what a scan
    sees. The networks trained from scratch also get whole-clip log-mels to crop from; ``musicnn``, which
    reads only scan's windows, decodes nothing else. A track that an extraction fails is left out.
    """
    progress = (lambda d, n: on_event("features", {"done": d, "total": n})) if on_event else None
    pretrained = config.model in PRETRAINED_MODELS
    tracks = list(dataset.tracks)
    errors: dict[Path, str] = {}
    if pretrained:
        mels, durations = [None] * len(tracks), np.zeros(len(tracks))
    else:
        clips = load_features([t.path for t in tracks], config=features, max_seconds=config.max_seconds,
                              cache_dir=cache_dir, jobs=jobs, on_progress=progress)
        errors.update(clips.errors)
        mels, durations = clips.mels, clips.durations
    index = {label: i for i, label in enumerate(dataset.labels)}
    splits: dict[str, SplitData] = {}
    done = 0
    for name in ("train", "val", "test"):
        keep = [(t, m, d) for t, m, d in zip(tracks, mels, durations)
                if t.split == name and (pretrained or m is not None)]
        step = (lambda d, n, base=done: progress(base + d, len(tracks))) if progress and pretrained else None
        windows = _split_windows([k[0].path for k in keep], name, features=features, config=config,
                                 cache_dir=cache_dir, jobs=jobs, on_progress=step)
        done += len(keep)
        if windows is not None:
            errors.update(windows.errors)
            keep = [k for k, w in zip(keep, windows.windows) if w is not None]
        splits[name] = SplitData(tuple(k[0] for k in keep), () if pretrained else tuple(k[1] for k in keep),
                                 np.array([] if pretrained else [k[2] for k in keep], dtype=np.float64),
                                 np.array([index[k[0].label] for k in keep], dtype=np.int64),
                                 None if windows is None else tuple(w for w in windows.windows if w is not None))
    if not len(splits["train"].tracks):
        raise DatasetError("no training tracks could be decoded")
    if not len(splits["val"].tracks):
        raise DatasetError("the validation split is empty: add data or lower --min-per-class")
    return splits, errors


def _split_windows(paths: list[Path], part: str, *, features: FeatureConfig, config: TrainConfig,
                   cache_dir: Path | None, jobs: int | None,
                   on_progress: Callable[[int, int], None] | None = None) -> ScanWindows | None:
    """Scan's own windows of one part's files: ``eval_windows`` for validation and test; for training
    only ``musicnn`` needs them (``crops_per_track`` each; the other networks crop whole-clip log-mels)."""
    if part == "train" and config.model not in PRETRAINED_MODELS:
        return None
    count = config.crops_per_track if part == "train" else config.eval_windows
    return load_scan_windows(paths, config=features, windows=count, cache_dir=cache_dir, jobs=jobs,
                             on_progress=on_progress)


def model_features(model: str, *, fmax: float | None = None) -> FeatureConfig:
    """The features ``model`` trains on: the pretrained network's own input for
    ``musicnn`` (which nothing may change), genretag's log-mel windows otherwise."""
    if model in PRETRAINED_MODELS:
        if fmax is not None:
            raise ModelError(f"--fmax does not apply to --model {model}: its pretrained network fixes the features")
        from genretag.models.musicnn import FEATURES

        return FEATURES
    return FeatureConfig(fmax=fmax)


def train(dataset: Dataset, out: Path, *, config: TrainConfig, features: FeatureConfig = FeatureConfig(),
          name: str | None = None, version: str = "1.0", cache_dir: Path | None = None, jobs: int | None = None,
          resume: bool = False, command: str = "", on_event: Progress | None = None,
          export: bool = True) -> TrainResult:
    """Train ``config.model`` on ``dataset`` and write a bundle into ``out``; with ``export``, a Keras
    bundle also gets ``model.onnx`` (:mod:`genretag.models.export`) when tf2onnx is installed."""
    unknown = set(config.augment) - set(AUGMENTATIONS)
    if unknown:
        raise DatasetError(f"unknown augmentation(s) {', '.join(sorted(unknown))}; choose from {', '.join(AUGMENTATIONS)}")
    if config.model not in MODEL_CHOICES:
        raise ModelError(f"unknown model {config.model!r}; choose from {', '.join(MODEL_CHOICES)}")
    if config.model in PRETRAINED_MODELS:
        if features != model_features(config.model):
            raise ModelError(f"--model {config.model} takes its pretrained network's features; use model_features()")
        if config.ensemble > 1:
            raise ModelError(f"--ensemble applies to networks trained from scratch, not to --model {config.model}")
    elif config.head != "window" or config.partial_labels:
        raise ModelError(f"--head track and --partial-labels apply to --model musicnn, not to --model {config.model}")
    if config.head not in HEADS:
        raise ModelError(f"unknown head {config.head!r}; choose from {', '.join(HEADS)}")
    out.mkdir(parents=True, exist_ok=True)
    splits, failed = prepare(dataset, features=features, config=config, cache_dir=cache_dir, jobs=jobs, on_event=on_event)
    partial = _prepare_partial(dataset, features=features, config=config, cache_dir=cache_dir, jobs=jobs)
    started = time.perf_counter()
    if config.model in CLASSIC_MODELS:
        fit = _fit_classic(splits, dataset, features, config, out)
    elif config.model in PRETRAINED_MODELS:
        from genretag.train.transferfit import fit_transfer

        fit = fit_transfer(splits, labels=dataset.labels, features=features, config=config, out=out,
                           resume=resume, on_event=on_event, partial=partial.get("train"))
    else:
        from genretag.train.kerasfit import fit_keras

        fit = fit_keras(splits, labels=dataset.labels, features=features, config=config, out=out,
                        resume=resume, on_event=on_event)
    classifier, weights, params, epochs, best = fit.classifier, fit.weights, fit.params, fit.epochs_run, fit.best_epoch
    seconds = time.perf_counter() - started
    card = ModelCard(
        name=name or f"genretag-{config.model}", version=version,
        kind="classic" if config.model in CLASSIC_MODELS else "keras", architecture=config.model,
        labels=dataset.labels, features=features, weights=weights.name, sha256=sha256_file(weights), params=params,
        pooling="geometric" if config.head == "track" else "mean",
        training={"dataset": dataset.description, "counts": dataset.counts(), "config": _plain(asdict(config)),
                  "epochs_run": epochs, "best_epoch": best, "seconds": round(seconds, 1),
                  "failed_files": len(failed), "command": command, "genretag": __version__,
                  "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    )
    write_card(out, card)
    if on_event is not None:
        on_event("stage", {"name": "scoring the validation and test splits"})
    reports = {}
    for split in ("val", "test"):
        data = splits[split]
        if len(data.tracks):
            reports[split] = _evaluate_split(classifier, card, data, dataset, features)
            write_report(reports[split], out / f"report-{split}")
    metrics = {split: _summary(r) for split, r in reports.items()}
    if partial:
        metrics["cross_source"] = {part: in_set(classifier, card, data) for part, data in partial.items() if part != "train"}
    write_card(out, replace(card, metrics=metrics))
    if (out / "training.csv").is_file():
        plot_curves(out / "training.csv", out / "curves.png")
    if card.kind == "keras" and export and on_event is not None:
        on_event("stage", {"name": "exporting model.onnx and checking it against Keras"})
    runtime = _export(out, card, splits["val"]) if card.kind == "keras" and export else ""
    return TrainResult(read_bundle(out), epochs, best, seconds, seconds / max(fit.epochs_trained, 1),
                       fit.windows_seen / max(seconds, 1e-9),
                       reports["val"], reports.get("test"), failed, runtime)


def _export(out: Path, card: ModelCard, val: SplitData) -> str:
    """``model.onnx`` beside ``model.keras``, checked on the validation windows (a scan then needs no
    TensorFlow); the reason in words when it cannot be exported."""
    from genretag.models.export import export_runtime

    windows = np.concatenate([np.asarray(w, np.float32) for w in val.windows[:EXPORT_CHECK_TRACKS]]) \
        if val.windows else None
    if windows is None:
        return "model.onnx not exported: no validation windows to check it on"
    try:
        runtime = export_runtime(out, windows, checked_on=f"{min(len(val.windows), EXPORT_CHECK_TRACKS)} validation "
                                 f"tracks, {len(windows)} windows as scan cuts them")
    except ModelError as exc:
        return f"model.onnx not exported: {exc.reason}"
    return f"model.onnx exported (OpenVINO within {runtime['max_abs_diff_vs_keras']:.1e} of Keras)"


def _evaluate_split(classifier, card: ModelCard, data: SplitData, dataset: Dataset, features: FeatureConfig) -> EvalReport:
    return evaluate(classifier, model_id=card.model_id, dataset=dataset.description, windows=data.windows,
                    labels=[t.label for t in data.tracks],
                    sources=[t.source for t in data.tracks] if any(t.source for t in data.tracks) else None,
                    config=features, pooling=card.pooling)


def _prepare_partial(dataset: Dataset, *, features: FeatureConfig, config: TrainConfig, cache_dir: Path | None,
                     jobs: int | None) -> dict[str, PartialData]:
    """``config.partial_labels``' decoded tracks by part (none without it)."""
    if not config.partial_labels:
        return {}
    from genretag.datasets.partial import load_partial

    table = load_partial(config.partial_labels, dataset=dataset, seed=config.seed,
                         val_fraction=config.partial_val_fraction, test_fraction=config.partial_test_fraction)
    out = {}
    for part in ("train", "val", "test"):
        rows = table.part(part)
        windows = _split_windows([table.paths[i] for i in rows], part, features=features, config=config,
                                 cache_dir=cache_dir, jobs=jobs)
        keep = [(i, w) for i, w in zip(rows, windows.windows) if w is not None]
        if keep:
            out[part] = PartialData(table.masks[[i for i, _ in keep]], tuple(w for _, w in keep))
    return out


def in_set(classifier, card: ModelCard, data: PartialData) -> dict[str, Any]:
    """How often the top genre of a partially labelled track is inside its set: the cross-source check."""
    from genretag.evaluate.scoring import score_tracks

    scores = score_tracks(classifier, (), (), config=card.features, pooling=card.pooling, windows=data.windows)
    top = scores.track.argmax(1)
    inside = data.masks[np.arange(len(top)), top] > 0
    return {"tracks": int(len(top)), "in_set": round(float(inside.mean()), 4)}


def _summary(report: EvalReport) -> dict[str, Any]:
    return {"tracks": report.track.n, "track_accuracy": report.track.accuracy, "track_macro_f1": report.track.macro_f1,
            "window_accuracy": report.single_window.accuracy, "window_macro_f1": report.single_window.macro_f1}


def _fit_classic(splits, dataset: Dataset, features: FeatureConfig, config: TrainConfig, out: Path) -> Fitted:
    from genretag.models.classic import ClassicClassifier, fit_classic

    train = splits["train"]
    policy = WindowPolicy(windows=config.eval_windows)
    xs, ys = [], []
    for mel, duration, y in zip(train.mels, train.durations, train.y):
        w = eval_windows(mel, duration, config=features, starts_s=window_starts(duration, config=features, policy=policy))
        xs.append(w)
        ys.append(np.full(len(w), y))
    x, y = np.concatenate(xs), np.concatenate(ys)
    arrays = fit_classic(config.model, x, y, n_classes=len(dataset.labels), seed=config.seed)
    classifier = ClassicClassifier(arrays, dataset.labels)
    weights = out / "model.npz"
    classifier.save(weights)
    params = int(sum(a.size for a in arrays.values()))
    return Fitted(classifier, weights, params, epochs_run=1, best_epoch=1, windows_seen=len(x))


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=list))
