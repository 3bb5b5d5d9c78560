"""Write a learned model as a genretag bundle that ``genretag scan --model DIR`` runs like any other.

The network is the default model's two pretrained networks (:func:`~genretag.learn.network.build_features`)
with the owner's softmax layer on their features: windows in (the default model's patch, so a scan decodes
exactly what it decodes for the default model), the owner's genres out. The card says ``pooling:
geometric`` (a track's windows' log-probabilities averaged: for one softmax layer, the layer applied to
the track's mean features, which is what it was fitted on) and carries the calibration temperature, the
cross-validated score of every genre and what was left out. ``model.onnx`` is exported beside
``model.keras`` (as ``genretag train`` does) so that scans need no TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from genretag.errors import ModelError
from genretag.learn.fit import Layer
from genretag.models.bundle import Bundle, ModelCard, read_bundle, sha256_file, write_card

ARCHITECTURE = "learned:musicnn+efficientat"
"""What the card's ``architecture`` says of a learned model (``genretag learn --update`` looks for it)."""


def write_bundle(out: Path, layer: Layer, *, genres: tuple[str, ...], base: Bundle, name: str, version: str,
                 calibration: dict[str, Any], training: dict[str, Any], metrics: dict[str, Any],
                 check_windows: np.ndarray | None, export: bool) -> tuple[Bundle, str]:
    """Build and save the model into ``out`` (replaced as a whole: a folder that exists is swapped for the
    new one only once it is complete). Returns the bundle and a line on ``model.onnx``."""
    from genretag.learn.network import attach_head, build_features
    from genretag.models.runtime import import_keras

    import_keras("writing the learned model")  # first: its start-up lines hidden as the CLI asks
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".learning", dir=out.parent))
    try:
        model = attach_head(build_features(_window_features(base.card.features)), layer.kernel, layer.bias, columns=layer.columns,
                            name="learned_genres")
        weights = work / "model.keras"
        model.save(weights)
        card = ModelCard(
            name=name, version=version, kind="keras", architecture=ARCHITECTURE, labels=genres,
            features=_window_features(base.card.features), weights=weights.name, sha256=sha256_file(weights),
            params=int(model.count_params()), pooling="geometric", calibration=calibration,
            description="The owner's genres, learned by `genretag learn` from the files they tagged: a softmax "
                        "layer (a shrinkage linear discriminant, fitted in closed form) on the default model's "
                        "pretrained networks (musicnn and EfficientAT mn04).",
            training=training, metrics=metrics)
        write_card(work, card)
        note = _export(work, check_windows) if export else "model.onnx not exported (--no-export): runs on Keras"
        _swap(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return read_bundle(out), note


def _export(folder: Path, windows: np.ndarray | None) -> str:
    from genretag.models.export import export_runtime

    if windows is None or not len(windows):
        return "model.onnx not exported: no decoded windows to check it on"
    try:
        runtime = export_runtime(folder, windows, checked_on=f"{len(windows)} windows of the library's tagged files")
    except ModelError as exc:
        return f"model.onnx not exported: {exc.reason}"
    return f"model.onnx exported (OpenVINO within {runtime['max_abs_diff_vs_keras']:.1e} of Keras)"


def _swap(work: Path, out: Path) -> None:
    """Put the finished folder ``work`` at ``out``; an old ``out`` is moved aside first and then removed."""
    old = None
    if out.exists():
        if not out.is_dir():
            raise ModelError("--out names a file; a bundle is a folder", out)
        old = out.with_name(f".{out.name}.{os.getpid()}.old")
        os.replace(out, old)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_windows(paths, *, base: Bundle, windows: int, limit: int = 4) -> np.ndarray | None:
    """Real windows of up to ``limit`` of ``paths``, decoded here, to check ``model.onnx`` against Keras."""
    from genretag.config import WindowPolicy
    from genretag.scan.extract import extract_track

    found = []
    for path in paths:
        track = extract_track(path, config=_window_features(base.card.features), policy=WindowPolicy(windows=windows))
        if track.status == "ok":
            found.append(track.windows)
        if len(found) == limit:
            break
    return np.concatenate(found).astype(np.float32) if found else None


def _window_features(features):
    """The base model's features for a learned model: the same windows, without YAMNet and without track-level
    experts (the learned layer hears musicnn and EfficientAT in every window and YAMNet nowhere: ``yamnet_windows``
    would add the base's YAMNet term to its genres, ``yamnet_rate`` cut YAMNet's log-mel no network reads, and
    ``audioset_windows`` leave EfficientAT's rows zero in all windows but a few)."""
    from dataclasses import replace

    if features.yamnet_rate:
        features = replace(features, yamnet_rate=0, yamnet_windows=0, yamnet_weight=0.0)
    if features.audioset_windows:
        features = replace(features, audioset_windows=0, audioset_weight=0.0)
    return features
