"""The light runtime: the shipped model's exported ``model.onnx`` run by OpenVINO instead of Keras.

Same outputs as Keras on real windows, refused when tampered with or stale, Keras when
OpenVINO is missing or ``GENRETAG_RUNTIME=keras``, and a one-clip CLI scan that never
imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genretag.config import WindowPolicy
from genretag.errors import ModelError
from genretag.models.bundle import CARD_FILE, read_bundle
from genretag.models.registry import resolve_model
from genretag.models.runtime import RUNTIME_ENV, KerasClassifier, OpenVINOClassifier, load_classifier

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4
"""Largest allowed difference in a window's probability. Measured: 8.9e-7 on 303 windows of 40
corpus clips (tools/export_runtime.py), 9.2e-7 on 320 windows of 40 test-split clips."""

openvino = pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def default_bundle():
    bundle = resolve_model("default")
    if not bundle.card.runtime:
        pytest.skip("the default bundle lists no exported runtime file")
    return bundle


def _copy_bundle(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    card = json.loads((src / CARD_FILE).read_text())
    for name in (CARD_FILE, card["weights"], card["runtime"]["file"]):
        shutil.copyfile(src / name, dst / name)
    return dst


def _real_windows(corpus: Path, bundle, count: int = 12) -> np.ndarray:
    from genretag.discover import discover
    from genretag.scan import extract_track

    found = sorted(discover([corpus]).files)
    windows = []
    for path in found[:: len(found) // count][:count]:
        track = extract_track(path, config=bundle.card.features, policy=WindowPolicy())
        if track.status == "ok":
            windows.append(track.windows)
    return np.concatenate(windows)


def test_default_model_runs_on_openvino(monkeypatch, default_bundle):
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    classifier = load_classifier(default_bundle)
    assert isinstance(classifier, OpenVINOClassifier) and classifier.runtime == "openvino"
    assert classifier.labels == default_bundle.card.labels


def test_openvino_matches_keras_on_real_windows(monkeypatch, corpus, default_bundle):
    windows = _real_windows(corpus, default_bundle)
    assert len(windows) >= 60
    light = load_classifier(default_bundle, batch_size=64)
    monkeypatch.setenv(RUNTIME_ENV, "keras")
    keras = load_classifier(default_bundle, batch_size=64)
    assert isinstance(keras, KerasClassifier)
    # 3 windows: a padded partial batch; all of them: full batches plus a padded tail
    card = default_bundle.card
    n = len(card.labels)
    for x in (windows[:3], windows):
        expected, actual = keras.predict(x), light.predict(x)
        assert actual.shape == expected.shape == (len(x), card.n_outputs)  # genres (+ styles) (+ music score)
        assert actual.dtype == np.float32
        assert np.abs(actual - expected).max() <= TOLERANCE
        assert (actual[:, :n].argmax(axis=1) == expected[:, :n].argmax(axis=1)).all()
    assert light.predict(windows[:0]).shape == (0, card.n_outputs)


def test_tampered_runtime_file_is_refused(tmp_path, default_bundle):
    folder = _copy_bundle(default_bundle.path, tmp_path / "tampered")
    with open(folder / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="runtime file model.onnx does not match card.json sha256") as info:
        load_classifier(read_bundle(folder))
    assert info.value.path == folder / "model.onnx"
    assert "\n" not in str(info.value)


def test_tampered_runtime_file_is_a_one_line_cli_error(tmp_path, default_bundle):
    from synth import tone_mix, write_audio

    folder = _copy_bundle(default_bundle.path, tmp_path / "tampered")
    (folder / "model.onnx").write_bytes(b"not a model")
    clip = write_audio(tmp_path / "clip.wav", tone_mix("Mid", seconds=4.0, seed=1))
    proc = _python("-m", "genretag", "scan", str(clip), "--model", str(folder), "--dry-run", "--no-store")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: runtime file model.onnx does not match card.json sha256")


def test_stale_runtime_file_is_refused(tmp_path, default_bundle):
    folder = _copy_bundle(default_bundle.path, tmp_path / "stale")
    card = json.loads((folder / CARD_FILE).read_text())
    card["runtime"]["exported_from_sha256"] = "0" * 64
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="exported from other weights"):
        load_classifier(read_bundle(folder))


def test_missing_runtime_file_is_refused(tmp_path, default_bundle):
    folder = _copy_bundle(default_bundle.path, tmp_path / "missing")
    (folder / "model.onnx").unlink()
    with pytest.raises(ModelError, match="runtime file model.onnx missing from bundle"):
        load_classifier(read_bundle(folder))


def test_runtime_file_outside_the_bundle_is_refused(tmp_path, default_bundle):
    folder = _copy_bundle(default_bundle.path, tmp_path / "outside")
    card = json.loads((folder / CARD_FILE).read_text())
    card["runtime"]["file"] = "../model.onnx"
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="runtime file outside the bundle"):
        read_bundle(folder)


def test_malformed_runtime_entry_is_refused(tmp_path, default_bundle):
    folder = _copy_bundle(default_bundle.path, tmp_path / "malformed")
    card = json.loads((folder / CARD_FILE).read_text())
    del card["runtime"]["sha256"]
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="runtime lacks sha256"):
        read_bundle(folder)


def test_card_round_trip_keeps_the_runtime_entry(default_bundle):
    from genretag.models.bundle import ModelCard

    card = default_bundle.card
    assert ModelCard.from_dict(card.to_dict(), default_bundle.path) == card
    assert default_bundle.runtime_path == default_bundle.path / "model.onnx"


def test_missing_openvino_falls_back_to_keras(monkeypatch, default_bundle):
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    classifier = load_classifier(default_bundle)
    assert isinstance(classifier, KerasClassifier) and classifier.runtime == "keras"


def test_openvino_asked_for_but_missing_is_an_error(monkeypatch, default_bundle):
    monkeypatch.setenv(RUNTIME_ENV, "openvino")
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ModelError, match="OpenVINO cannot be imported"):
        load_classifier(default_bundle)


def test_keras_bundle_without_runtime_entry_uses_keras(monkeypatch, tmp_path, default_bundle):
    folder = _copy_bundle(default_bundle.path, tmp_path / "keras-only")
    card = json.loads((folder / CARD_FILE).read_text())
    del card["runtime"]
    (folder / CARD_FILE).write_text(json.dumps(card))
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    assert isinstance(load_classifier(read_bundle(folder)), KerasClassifier)
    monkeypatch.setenv(RUNTIME_ENV, "openvino")
    with pytest.raises(ModelError, match="lists no exported runtime file"):
        load_classifier(read_bundle(folder))


def test_unknown_runtime_choice_is_an_error(monkeypatch, default_bundle):
    monkeypatch.setenv(RUNTIME_ENV, "tflite")
    with pytest.raises(ModelError, match="GENRETAG_RUNTIME=tflite is not one of auto, keras, openvino"):
        load_classifier(default_bundle)


def test_deferred_load_uses_openvino(monkeypatch, default_bundle):
    import genretag

    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    model = genretag.load_model("default", background=True)
    assert isinstance(model.classifier.result(), OpenVINOClassifier)


def _python(*args: str, runtime: str | None = None) -> subprocess.CompletedProcess:
    # GENRETAG_HIDE_TF_STARTUP=0: the CLI would otherwise hide fd 2 while TensorFlow imports, and with it
    # the -X importtime lines that would show it
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               COLUMNS="120", GENRETAG_HIDE_TF_STARTUP="0")
    env.pop(RUNTIME_ENV, None)
    if runtime is not None:
        env[RUNTIME_ENV] = runtime
    return subprocess.run([sys.executable, *args], check=False, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def _scan_imports(clip: Path, runtime: str | None = None) -> set[str]:
    """Top-level packages a one-clip ``genretag scan`` imported (``python -X importtime``)."""
    proc = _python("-X", "importtime", "-m", "genretag", "scan", str(clip), "--dry-run", "--no-store", runtime=runtime)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "clip.wav" in proc.stdout and "1/1 files" in proc.stdout
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_one_clip_scan_imports_no_tensorflow(tmp_path, default_bundle):
    from synth import tone_mix, write_audio

    clip = write_audio(tmp_path / "clip.wav", tone_mix("Mid", seconds=8.0, seed=7))
    modules = _scan_imports(clip)
    assert "openvino" in modules  # the model did run, on OpenVINO
    assert modules.isdisjoint({"tensorflow", "keras", "tf_keras", "jax", "torch"})
    assert {"tensorflow", "keras"} <= _scan_imports(clip, runtime="keras")  # the check would see them


def test_openvino_loads_without_its_telemetry(corpus):
    """``import openvino`` would import its conversion tools, which send a usage event from a forked process
    (by default) and deadlocked a predict_file whose model loaded in a background thread."""
    clip = corpus / "emotify" / "rock" / "1.mp3"
    code = ("import sys, genretag; p = genretag.predict_file(%r); "
            "print(p.genre, 'openvino_telemetry' in sys.modules, 'openvino.tools.ovc' in sys.modules)" % str(clip))
    env = dict(os.environ, PYTHONPATH=str(REPO), GENRETAG_RUNTIME="openvino")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1:] == ["False", "False"]
