"""``genretag learn``'s feature pass on the runtime a scan uses.

The default bundle's ``model.onnx`` has a second output, each window's learn features; OpenVINO runs it
without TensorFlow, and its vectors are Keras' (:func:`genretag.learn.network.build_features`) within the
export's tolerance, so features stored by an earlier (Keras) pass, and models learned on them, still fit.
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
from synth import tone_mix, write_audio

from genretag.config import WindowPolicy
from genretag.errors import ModelError
from genretag.models.bundle import CARD_FILE, read_bundle
from genretag.models.export import FEATURE_TOLERANCE
from genretag.models.registry import resolve_model
from genretag.models.runtime import RUNTIME_ENV

REPO = Path(__file__).resolve().parents[1]
CLASSICAL = REPO.parent / "shared" / "corpus" / "emotify" / "classical"
"""Real clips compared too where the corpus is beside the checkout."""
pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def default_bundle():
    bundle = resolve_model("default")
    if not (bundle.card.runtime or {}).get("features"):
        pytest.skip("the default bundle's model.onnx has no features output")
    return bundle


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("clips")
    return [write_audio(root / f"{i}-{label}.flac", tone_mix(label, seconds=7.0, seed=i))
            for i, label in enumerate(("Low", "Mid", "High"))]


def _windows(paths, bundle) -> np.ndarray:
    from genretag.scan.extract import extract_track

    from genretag.learn.features import pass_features

    return np.concatenate([extract_track(p, config=pass_features(bundle.card.features), policy=WindowPolicy()).windows
                           for p in paths])


def _copy_bundle(src: Path, dst: Path, edit) -> Path:
    dst.mkdir(parents=True)
    for path in src.iterdir():  # the weights and every runtime artifact (model.onnx, yamnet.onnx...)
        if path.name != CARD_FILE:
            shutil.copyfile(path, dst / path.name)
    card = json.loads((src / CARD_FILE).read_text())
    edit(card)
    (dst / CARD_FILE).write_text(json.dumps(card))
    return dst


def test_the_card_describes_the_features_output(default_bundle):
    from genretag.learn.core import feature_columns

    spec = default_bundle.card.runtime["features"]
    # model.onnx's second output, or (a default model whose windows' network has no EfficientAT) its own file
    assert (spec.get("file"), spec["output"]) in ((None, 1), ("features.onnx", 0))
    assert spec["order"] == ["musicnn", "embedding", "audioset"]
    assert spec["width"] == sum(spec["blocks"].values()) == len(feature_columns(spec["order"])) == 1425
    assert spec["max_abs_diff_vs_keras"] <= FEATURE_TOLERANCE


def test_openvino_features_are_keras_features(monkeypatch, default_bundle, clips):
    """The same windows through the exported artifact (OpenVINO) and through learn's Keras network: equal
    within FEATURE_TOLERANCE (1e-3; values reach ~90). Synthetic clips, and real ones where the corpus is;
    a partial batch too."""
    from genretag.learn.features import feature_network

    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    real = sorted(CLASSICAL.glob("*.mp3"))[:4]
    windows = _windows([*clips, *real], default_bundle)
    light = feature_network(default_bundle)
    monkeypatch.setenv(RUNTIME_ENV, "keras")
    heavy = feature_network(default_bundle)
    assert (light.runtime, heavy.runtime) == ("openvino", "keras")
    for x in (windows[:3], windows):
        a, b = light.predict(x), heavy.predict(x)
        assert a.shape == b.shape == (len(x), 1425) and a.dtype == np.float32
        assert np.isfinite(a).all() and np.abs(b).max() > 1.0
        assert np.abs(a - b).max() <= FEATURE_TOLERANCE


def test_the_feature_pass_imports_no_tensorflow(clips):
    """The slim install (no train extra) can run the feature pass: TensorFlow and Keras blocked, the vectors
    still come (from OpenVINO)."""
    script = (
        "import sys, json\n"
        "sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "from pathlib import Path\n"
        "from genretag.learn.features import track_features\n"
        "from genretag.models.registry import resolve_model\n"
        f"paths = [Path(p) for p in {[str(p) for p in clips]!r}]\n"
        "v = track_features(paths, bundle=resolve_model('default'), store=None, windows=8, jobs=0, timeout=60)\n"
        "print(json.dumps({'shape': list(v.vectors.shape), 'failed': len(v.failed), 'decoded': v.decoded}))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.pop(RUNTIME_ENV, None)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"shape": [3, 1425], "failed": 0, "decoded": 3}


def test_features_stored_by_a_keras_pass_are_used_by_an_openvino_pass(monkeypatch, tmp_path, default_bundle, clips):
    """The store's key is unchanged: what an earlier learn decoded on Keras is not decoded again, and a fresh
    OpenVINO pass gives the same vectors as stored (float16: within its rounding)."""
    from genretag.learn.features import track_features
    from genretag.store import Store

    with Store(tmp_path / "s.sqlite") as store:
        monkeypatch.setenv(RUNTIME_ENV, "keras")
        before = track_features(clips, bundle=default_bundle, store=store, windows=8, jobs=0, timeout=60)
        monkeypatch.delenv(RUNTIME_ENV)
        again = track_features(clips, bundle=default_bundle, store=store, windows=8, jobs=0, timeout=60)
    fresh = track_features(clips, bundle=default_bundle, store=None, windows=8, jobs=0, timeout=60)
    assert (before.decoded, again.decoded, fresh.decoded) == (3, 0, 3)
    np.testing.assert_array_equal(again.vectors, before.vectors)
    ulp = np.spacing(np.abs(before.vectors).astype(np.float16)).astype(np.float32)  # one float16 step
    assert (np.abs(fresh.vectors - before.vectors) <= ulp + FEATURE_TOLERANCE).all()


def test_without_a_features_output_the_pass_runs_on_keras_or_says_why(monkeypatch, tmp_path, default_bundle):
    from genretag.learn.features import feature_network

    folder = _copy_bundle(default_bundle.path, tmp_path / "old", lambda card: card["runtime"].pop("features"))
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    assert feature_network(read_bundle(folder)).runtime == "keras"
    monkeypatch.setenv(RUNTIME_ENV, "openvino")
    with pytest.raises(ModelError, match=r"GENRETAG_RUNTIME=openvino, but card.json lists no features output "
                                         r"\(tools/export_runtime.py\)"):
        feature_network(read_bundle(folder))


def test_a_features_entry_that_does_not_match_the_artifact_is_refused(monkeypatch, tmp_path, default_bundle):
    from genretag.learn.features import feature_network

    folder = _copy_bundle(default_bundle.path, tmp_path / "bad",
                          lambda card: card["runtime"]["features"].update(width=1000))
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    file = default_bundle.card.runtime["features"].get("file", "model.onnx")
    with pytest.raises(ModelError, match=rf"{file} features output \[\?,1425\] does not match card.json"):
        feature_network(read_bundle(folder))
