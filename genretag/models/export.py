"""Export a Keras bundle's network to ``model.onnx`` for the light runtime, checked against Keras.

``model.keras`` stays the source of truth: the artifact is derived from it (Keras' own
``model.export(..., format="onnx")``, which needs ``tf2onnx``: ``pip install genretag[export]``),
run by OpenVINO on real windows next to Keras, refused when any probability differs by more
than the tolerance or any window's top genre changes, and listed in the card with its sha256,
the sha256 of the weights it came from and that check. A scan then never imports TensorFlow.

With ``features`` (the fused default model), the artifact has a second output: each window's
``genretag learn`` features (:func:`genretag.learn.network.with_features`), checked the same way
against :func:`genretag.learn.network.build_features` and listed under the runtime's ``features``,
so that ``learn``'s feature pass runs on OpenVINO too.

A card whose features have ``yamnet_windows`` (YAMNet as a track-level expert) also gets ``yamnet.onnx``, YAMNet's own
network (:func:`genretag.models.fusion.build_yamnet_scorer`, from the shipped pretrained weights, whose sha256 it lists
as ``exported_from_sha256``), checked against Keras the same way and listed under the runtime's ``yamnet``; one with
``audioset_windows`` gets ``efficientat.onnx`` (:func:`~genretag.models.fusion.build_audioset_scorer`) the same way,
under ``efficientat``. Such a bundle's per-window network has no EfficientAT, so ``learn``'s features cannot be a
second output of ``model.onnx``: they get a network of their own, ``features.onnx`` (:func:`_export_features`:
:func:`genretag.learn.network.build_features`, from the shipped pretrained weights), listed under the runtime's
``features`` with its ``file``.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from genretag.errors import ModelError
from genretag.files import replace_atomically

ARTIFACT = "model.onnx"
FEATURES_ARTIFACT = "features.onnx"
"""``learn``'s feature network of a bundle whose per-window network has no EfficientAT (``audioset_windows``)."""
TOLERANCE = 1e-4
"""The largest difference allowed between a window's probability under OpenVINO and under Keras."""
FEATURE_TOLERANCE = 1e-3
"""The largest difference allowed in a window's learn feature (values up to ~100; the store keeps them as
float16, which rounds such values by up to 3e-2). Measured: 2.7e-5 on 16 random windows."""


def export_runtime(folder: Path, windows: np.ndarray, *, checked_on: str, tolerance: float = TOLERANCE,
                   command: str = "", features: bool | None = None) -> dict[str, Any]:
    """Write ``folder/model.onnx`` from the bundle's ``model.keras``, check it on ``windows``
    (``float32 [n, n_mels, n_frames]``, real ones; ``checked_on`` says where they came from) and
    list it in the card. Returns the card's new ``runtime`` entry. Raises ModelError (and leaves no
    artifact) when an exporter is missing or the check fails. ``features``: also output each window's
    learn features (second output; the model must be a fused musicnn + EfficientAT one; for a card with
    ``audioset_windows``, ``features.onnx`` instead); None: when it is, or has ``audioset_windows``; False: never."""
    from genretag.models.bundle import CARD_FILE, read_bundle, sha256_file, verify_bundle
    from genretag.models.runtime import KerasClassifier, _load_openvino, import_keras, import_openvino

    folder = Path(folder)
    bundle = read_bundle(folder)
    if bundle.card.kind != "keras":
        raise ModelError(f"a {bundle.card.kind} bundle has no Keras model to export", folder)
    try:
        import tf2onnx  # noqa: F401 - Keras' ONNX export needs it
    except ImportError as exc:
        raise ModelError("exporting model.onnx needs tf2onnx (pip install 'genretag[train]')", folder) from exc
    openvino = import_openvino()
    if openvino is None:
        raise ModelError("checking model.onnx needs openvino (pip install openvino)", folder)
    bundle = replace(bundle, card=replace(bundle.card, runtime={}))  # the old artifact, if any, is replaced
    verify_bundle(bundle)
    keras = import_keras()
    if bundle.card.features.audioset_rate:
        from genretag.models.fusion import register_layers

        register_layers()
    model = keras.saving.load_model(bundle.weights_path, compile=False, safe_mode=True)
    from genretag.learn.network import has_features, with_features

    standalone = features is not False and bool(bundle.card.features.audioset_windows)  # features.onnx instead
    if features is None or standalone:
        features = not standalone and has_features(model)
    if features:
        if not has_features(model):
            raise ModelError("the learn features need a fused musicnn + EfficientAT model", folder)
        model = with_features(model)
    model.predict_on_batch(windows[:1])  # built, so the export traces it
    artifact = _write_onnx(model, folder, ARTIFACT)
    runtime: dict[str, Any] = {
        "format": "onnx", "file": ARTIFACT, "sha256": sha256_file(artifact),
        "exported_from_sha256": bundle.card.sha256, "runner": "openvino", "precision": "f32",
    }
    trial = replace(bundle, card=replace(bundle.card, runtime=runtime))
    if features:
        expected, actual, learn = _compare_with_features(model, _load_openvino(openvino, trial, 64, expert=False).model, windows,
                                                         config=bundle.card.features)
    else:
        expected = KerasClassifier(model, bundle.card.labels).predict(windows)
        actual = _load_openvino(openvino, trial, 64, expert=False).predict(windows)
    diff = float(np.abs(actual - expected).max())
    n = len(bundle.card.labels)
    flipped = int((actual[:, :n].argmax(axis=1) != expected[:, :n].argmax(axis=1)).sum())
    if diff > tolerance or flipped:
        artifact.unlink()
        raise ModelError(f"model.onnx refused: OpenVINO differs from Keras by up to {diff:.2e} (tolerance "
                         f"{tolerance:g}), {flipped} windows change genre", folder)
    if features and learn["max_abs_diff_vs_keras"] > FEATURE_TOLERANCE:
        artifact.unlink()
        raise ModelError(f"model.onnx refused: its learn features differ from Keras' by up to "
                         f"{learn['max_abs_diff_vs_keras']:.2e} (tolerance {FEATURE_TOLERANCE:g})", folder)
    if features:
        runtime["features"] = learn
    elif standalone:
        try:
            runtime["features"] = _export_features(folder, bundle.card.features, windows, openvino)
        except ModelError:
            artifact.unlink()
            raise
    from genretag.models.track_experts import expert_names

    for name in expert_names(bundle.card.features):
        try:
            runtime[name] = _export_expert(folder, bundle.card.features, windows, openvino, name=name,
                                           tolerance=tolerance)
        except ModelError:
            artifact.unlink()
            for other in (*expert_names(bundle.card.features), "features"):
                if isinstance(runtime.get(other), dict) and "file" in runtime[other]:
                    (folder / runtime[other]["file"]).unlink(missing_ok=True)
            raise
    runtime.update({
        "max_abs_diff_vs_keras": float(f"{diff:.3g}"), "windows_checked": int(len(windows)), "checked_on": checked_on,
        "exported_with": (f"keras {_version('keras')}, tensorflow {_version('tensorflow-cpu', 'tensorflow')}, "
                          f"tf2onnx {_version('tf2onnx')}, openvino {_version('openvino')}"),
        **({"command": command} if command else {}),
    })
    card_path = folder / CARD_FILE
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["runtime"] = runtime
    text = json.dumps(card, indent=2) + "\n"
    replace_atomically(card_path, lambda fh: fh.write(text.encode()))
    verify_bundle(read_bundle(folder))
    return runtime


def _export_expert(folder: Path, config, windows: np.ndarray, openvino, *, name: str,
                   tolerance: float) -> dict[str, Any]:
    """Write a track-level expert's network (``name``: ``yamnet``, :func:`~genretag.models.fusion.build_yamnet_scorer`,
    or ``efficientat``, :func:`~genretag.models.fusion.build_audioset_scorer`; from the shipped pretrained weights)
    to ``folder/<name>.onnx``, check it against Keras on the rows of those ``windows`` that carry them (the picked
    ones) and return the card's ``runtime[name]`` entry; ModelError (no artifact left) when the scores differ by
    more than ``tolerance``."""
    from genretag.config import AUDIOSET_MELS, YAMNET_MELS
    from genretag.models import efficientat, yamnet
    from genretag.models.bundle import sha256_file
    from genretag.models.fusion import build_audioset_scorer, build_yamnet_scorer
    from genretag.models.track_experts import ARTIFACTS

    if name == "yamnet":
        row, mels, frames, what = config.yamnet_row, YAMNET_MELS, config.yamnet_frames, "YAMNet"
        build, n_classes, weights = build_yamnet_scorer, yamnet.N_CLASSES, yamnet.WEIGHTS_SHA256
    else:
        row, mels, frames, what = config.n_mels, AUDIOSET_MELS, config.audioset_frames, "EfficientAT"
        build, n_classes, weights = build_audioset_scorer, efficientat.N_CLASSES, efficientat.WEIGHTS_SHA256
    file = ARTIFACTS[name]
    bands = windows[:, row : row + mels, :frames]
    bands = np.ascontiguousarray(bands[np.abs(bands).reshape(len(bands), -1).max(axis=1) > 0], np.float32)
    if not len(bands):
        raise ModelError(f"no check window carries {what}'s log-mel to compare {file} on", folder)
    artifact, diff, _ = _export_checked(build(config), folder, file, bands, openvino, tolerance=tolerance,
                                        what=f" of {what}")
    return {"format": "onnx", "file": file, "sha256": sha256_file(artifact),
            "exported_from_sha256": weights, "input": f"[b, {mels}, {frames}]",
            "output": f"[b, {n_classes}]", "max_abs_diff_vs_keras": float(f"{diff:.3g}"),
            "windows_checked": len(bands)}


def _write_onnx(model, folder: Path, file: str, *, what: str = "") -> Path:
    """``folder/file``: ``model`` exported to ONNX by Keras (written atomically); ModelError when the export fails."""
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # tf2onnx's own use of NumPy's deprecated names
            model.export(os.path.join(tmp, file), format="onnx", verbose=False)
            data = Path(tmp, file).read_bytes()
    except Exception as exc:  # noqa: BLE001 - the exporters raise many types
        raise ModelError(f"ONNX export{what} failed: {exc}", folder) from exc
    artifact = folder / file
    replace_atomically(artifact, lambda fh: fh.write(data))
    return artifact


def _export_checked(model, folder: Path, file: str, inputs: np.ndarray, openvino, *, tolerance: float,
                    what: str) -> tuple[Path, float, np.ndarray]:
    """``model`` (one output) exported to ``folder/file``, run by OpenVINO on ``inputs`` beside Keras: ``(artifact,
    largest difference, Keras' outputs)``; ModelError (no artifact left) when they differ by more than
    ``tolerance``."""
    from genretag.models.batches import OPENVINO_CONFIG

    model.predict_on_batch(inputs[:1])  # built, so the export traces it
    artifact = _write_onnx(model, folder, file, what=what)
    core = openvino.Core()
    compiled = core.compile_model(core.read_model(str(artifact)), "CPU", OPENVINO_CONFIG)
    expected = _outputs(model.predict_on_batch, inputs)[0]
    diff = float(np.abs(_outputs(lambda x: compiled(x)[0], inputs)[0] - expected).max())
    if diff > tolerance:
        artifact.unlink()
        raise ModelError(f"{file} refused: OpenVINO differs from Keras by up to {diff:.2e} (tolerance "
                         f"{tolerance:g})", folder)
    return artifact, diff, expected


def _export_features(folder: Path, config, windows: np.ndarray, openvino) -> dict[str, Any]:
    """Write ``folder/features.onnx``, ``learn``'s feature network (:func:`~genretag.learn.network.build_features` on
    the shipped pretrained weights) for a bundle whose per-window network has no EfficientAT, check it against Keras
    on those ``windows`` whose EfficientAT rows are filled (:data:`FEATURE_TOLERANCE`) and return the card's
    ``runtime.features`` entry (its ``file``; ``output`` 0); ModelError (no artifact left) otherwise."""
    from genretag.config import AUDIOSET_MELS
    from genretag.learn.network import FEATURE_SETS, block_sizes, build_features
    from genretag.models.bundle import features_source, sha256_file

    rows = windows[:, config.n_mels : config.n_mels + AUDIOSET_MELS]
    heard = np.ascontiguousarray(windows[np.abs(rows).reshape(len(windows), -1).max(axis=1) > 0], np.float32)
    if not len(heard):
        raise ModelError(f"no check window carries EfficientAT's log-mel to compare {FEATURES_ARTIFACT} on", folder)
    model = build_features(config)
    artifact, diff, expected = _export_checked(model, folder, FEATURES_ARTIFACT, heard, openvino,
                                               tolerance=FEATURE_TOLERANCE, what=" of the learn features")
    return {"format": "onnx", "file": FEATURES_ARTIFACT, "sha256": sha256_file(artifact),
            "exported_from_sha256": features_source(), "output": 0, "width": int(expected.shape[1]),
            "order": list(FEATURE_SETS), "blocks": block_sizes(model), "max_abs_diff_vs_keras": float(f"{diff:.3g}"),
            "windows_checked": len(heard)}


def _compare_with_features(model, compiled, windows: np.ndarray, *, config) -> tuple[np.ndarray, np.ndarray, dict]:
    """Keras' and OpenVINO's first outputs for ``windows`` (``model``: :func:`~genretag.learn.network.with_features`,
    ``compiled``: its export), and the card's ``features`` entry: which output, its width and blocks, and the
    largest difference of either runtime's features from :func:`~genretag.learn.network.build_features` (what
    learn runs on Keras)."""
    from genretag.learn.network import FEATURE_SETS, block_sizes, build_features

    network = build_features(config)
    expected = _outputs(model.predict_on_batch, windows)
    actual = _outputs(lambda x: _each_output(compiled(x), len(compiled.outputs)), windows)
    reference = _outputs(network.predict_on_batch, windows)[0]
    diff = max(float(np.abs(expected[1] - reference).max()), float(np.abs(actual[1] - reference).max()))
    entry = {"output": 1, "width": int(reference.shape[1]), "order": list(FEATURE_SETS),
             "blocks": block_sizes(network), "max_abs_diff_vs_keras": float(f"{diff:.3g}")}
    return expected[0], actual[0], entry


def _outputs(run, windows: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    """Each output of ``run`` (a model's batch call, one or several outputs) over ``windows``, concatenated."""
    parts = []
    for start in range(0, len(windows), batch_size):
        out = run(np.ascontiguousarray(windows[start : start + batch_size], np.float32))
        parts.append([np.asarray(o, np.float32) for o in (out if isinstance(out, (list, tuple)) else [out])])
    return [np.concatenate(column) for column in zip(*parts)]


def _each_output(result, n: int) -> list[np.ndarray]:
    return [result[i] for i in range(n)]


def _version(*names: str) -> str:
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "?"
