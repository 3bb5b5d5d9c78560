"""Model bundles (card + weights + sha256), the registry, batched inference,
the NumPy k-NN/SVM baselines and the Keras architectures."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genretag.models.registry as registry
from genretag.config import FeatureConfig
from genretag.errors import ModelError
from genretag.scan.extract import TrackFeatures
from genretag.scan.batching import Prediction, predict_stream
from genretag.models.bundle import CARD_FILE, ModelCard, read_bundle, sha256_file, write_card
from genretag.models.classic import ClassicClassifier, fit_classic
from genretag.models.registry import list_bundled, resolve_model
from genretag.models.runtime import load_classifier

ARCHITECTURES_PY = Path(__file__).resolve().parents[1] / "genretag" / "models" / "architectures.py"


def _copy_bundle(src: Path, dst: Path) -> Path:
    """Card and weights only (the training reports are not part of what loads)."""
    dst.mkdir(parents=True)
    card = json.loads((src / CARD_FILE).read_text())
    for name in (CARD_FILE, card["weights"]):
        shutil.copyfile(src / name, dst / name)
    return dst


def _edit_card(folder: Path, **changes) -> None:
    card = json.loads((folder / CARD_FILE).read_text())
    card.update(changes)
    (folder / CARD_FILE).write_text(json.dumps(card))


@pytest.fixture(scope="module")
def tiny_classifier(tiny_bundle):
    return load_classifier(read_bundle(tiny_bundle), batch_size=5)


# --- bundles ------------------------------------------------------------------------------------


def test_bundle_round_trip(tiny_bundle):
    bundle = read_bundle(tiny_bundle)
    card = bundle.card
    assert bundle.path == tiny_bundle
    assert sorted(card.labels) == ["High", "Low", "Mid"]
    assert card.kind == "keras" and card.architecture == "cnn1d"
    assert card.model_id == "tiny 0.1"
    assert card.features == FeatureConfig()
    assert card.weights == "model.keras" and bundle.weights_path == tiny_bundle / "model.keras"
    digest = hashlib.sha256(bundle.weights_path.read_bytes()).hexdigest()
    assert card.sha256 == digest == sha256_file(bundle.weights_path)
    assert card.params > 0 and card.training["config"]["model"] == "cnn1d"
    assert "val" in card.metrics
    # the card written back reads back the same
    again = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())), tiny_bundle / CARD_FILE)
    assert again == card
    # read_bundle accepts the card file itself too
    assert read_bundle(tiny_bundle / CARD_FILE) == bundle


def test_loaded_model_matches_card(tiny_bundle, tiny_classifier):
    card = read_bundle(tiny_bundle).card
    assert tiny_classifier.labels == card.labels
    probs = tiny_classifier.predict(np.random.default_rng(0).standard_normal((3, 128, 128)).astype(np.float32))
    assert probs.shape == (3, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_modified_weights_refused(tiny_bundle, tmp_path):
    folder = _copy_bundle(tiny_bundle, tmp_path / "tampered")
    with open(folder / "model.keras", "ab") as fh:
        fh.write(b"\0")
    bundle = read_bundle(folder)  # the card alone is still fine
    with pytest.raises(ModelError, match="sha256") as info:
        load_classifier(bundle)
    assert info.value.path == folder / "model.keras"
    assert "\n" not in str(info.value)


def test_missing_weights_refused(tiny_bundle, tmp_path):
    folder = _copy_bundle(tiny_bundle, tmp_path / "no-weights")
    (folder / "model.keras").unlink()
    with pytest.raises(ModelError, match="weights file model.keras missing"):
        load_classifier(read_bundle(folder))


def test_folder_without_card_is_not_a_bundle(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"weights")
    with pytest.raises(ModelError, match="not a model bundle") as info:
        read_bundle(tmp_path)
    assert info.value.path == tmp_path


@pytest.mark.parametrize("changes, message", [
    ({"format": "something-else"}, "not a genretag model bundle"),
    ({"format": None}, "not a genretag model bundle"),
    ({"format_version": 99}, "newer genretag"),
    ({"labels": None}, "malformed card.json"),
    ({"weights": "../elsewhere/model.keras"}, "outside the bundle"),
])
def test_bad_card_refused(tiny_bundle, tmp_path, changes, message):
    folder = _copy_bundle(tiny_bundle, tmp_path / "bad")
    _edit_card(folder, **changes)
    with pytest.raises(ModelError, match=message):
        read_bundle(folder)


def test_card_without_required_field_refused(tiny_bundle, tmp_path):
    folder = _copy_bundle(tiny_bundle, tmp_path / "bad")
    card = json.loads((folder / CARD_FILE).read_text())
    del card["sha256"]
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match="malformed card.json"):
        read_bundle(folder)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_unparsable_card_refused(tmp_path, text):
    (tmp_path / CARD_FILE).write_text(text)
    with pytest.raises(ModelError, match="card.json"):
        read_bundle(tmp_path)


@pytest.mark.parametrize("field, value, message", [
    ("scale", "mel", "unknown scale 'mel'"),
    ("normalize", "global", "unknown normalisation 'global'"),
    ("n_frames", 0, r"n_frames 0 is out of range \(2 to 10000\)"),
])
def test_card_with_invalid_features_is_one_model_error_at_load(tiny_bundle, tmp_path, field, value, message):
    """A bad feature config is refused when the card is read, not once per decoded file."""
    folder = _copy_bundle(tiny_bundle, tmp_path / "bad-features")
    card = json.loads((folder / CARD_FILE).read_text())
    card["features"][field] = value
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelError, match=f"malformed card.json: .*{message}") as info:
        read_bundle(folder)
    assert info.value.path == folder / CARD_FILE and "\n" not in str(info.value)


def test_card_from_a_future_feature_config_ignores_unknown_keys(tiny_bundle, tmp_path):
    folder = _copy_bundle(tiny_bundle, tmp_path / "future")
    card = json.loads((folder / CARD_FILE).read_text())
    card["features"]["some_new_option"] = 1
    card["unknown_top_level"] = "ignored"
    (folder / CARD_FILE).write_text(json.dumps(card))
    assert read_bundle(folder).card.features == FeatureConfig()


# --- registry -----------------------------------------------------------------------------------


def test_resolve_model_by_path(tiny_bundle):
    assert resolve_model(str(tiny_bundle)) == read_bundle(tiny_bundle)


def test_no_default_model_gives_a_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "BUNDLED_DIR", tmp_path / "bundled-none")
    with pytest.raises(ModelError, match="no default model is installed") as info:
        resolve_model("default")
    assert "genretag train" in info.value.reason and "--model DIR" in info.value.reason
    assert "\n" not in str(info.value)


def test_unknown_model_name(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "BUNDLED_DIR", tmp_path / "bundled-none")
    with pytest.raises(ModelError, match="no model named 'nope'.*no models are bundled"):
        resolve_model("nope")


def test_bundled_models_found_by_name(tiny_bundle, tmp_path, monkeypatch):
    bundled = tmp_path / "bundled"
    _copy_bundle(tiny_bundle, bundled / "default")
    _copy_bundle(tiny_bundle, bundled / "another")
    (bundled / "not-a-model").mkdir()
    monkeypatch.setattr(registry, "BUNDLED_DIR", bundled)
    assert [b.path.name for b in list_bundled()] == ["another", "default"]
    assert resolve_model("default").path == bundled / "default"
    with pytest.raises(ModelError, match="bundled models: another, default"):
        resolve_model("missing")


# --- batched inference --------------------------------------------------------------------------


class FakeClassifier:
    """Deterministic per-window probabilities; records the size of every batch."""

    labels = ("A", "B", "C")

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, windows: np.ndarray) -> np.ndarray:
        self.batches.append(len(windows))
        logits = windows.reshape(len(windows), -1)[:, :3].astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _tracks(spec: list[tuple[str, int]], seed: int = 0) -> list[TrackFeatures]:
    rng = np.random.default_rng(seed)
    out = []
    for i, (status, n) in enumerate(spec):
        windows = rng.standard_normal((n, 4, 4)).astype(np.float32) if status == "ok" else None
        out.append(TrackFeatures(Path(f"track{i:02d}.mp3"), status, windows=windows,
                                 error="bad" if status == "error" else None))
    return out


def _alone(classifier, track: TrackFeatures) -> np.ndarray:
    mean = classifier.predict(track.windows).mean(axis=0)
    return mean / mean.sum()


def _check_stream(tracks, results, classifier) -> None:
    assert sorted(t.path for t, _ in results) == sorted(t.path for t in tracks)  # each exactly once
    ok_in = [t.path for t in tracks if t.status == "ok" and len(t.windows)]
    ok_out = [t.path for t, p in results if p is not None]
    assert ok_out == ok_in  # predictions come out in arrival order
    for track, prediction in results:
        if track.status != "ok" or not len(track.windows):
            assert prediction is None
            continue
        assert prediction.path == track.path and prediction.windows == len(track.windows)
        assert prediction.labels == classifier.labels
        np.testing.assert_allclose(prediction.probabilities, _alone(classifier, track), atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(spec=st.lists(st.tuples(st.sampled_from(["ok", "ok", "ok", "skipped", "silent", "error"]),
                               st.integers(1, 9)), max_size=12),
       batch_size=st.integers(1, 8), seed=st.integers(0, 1000))
def test_predict_stream_packs_full_batches_and_matches_per_track(spec, batch_size, seed):
    tracks = _tracks(spec, seed)
    fake = FakeClassifier()
    results = list(predict_stream(iter(tracks), fake, batch_size=batch_size))
    _check_stream(tracks, results, FakeClassifier())
    total = sum(len(t.windows) for t in tracks if t.status == "ok")
    assert sum(fake.batches) == total
    assert all(b == batch_size for b in fake.batches[:-1])  # only the last batch may be short
    assert all(0 < b <= batch_size for b in fake.batches)


def test_predict_stream_yields_a_track_as_soon_as_its_windows_are_done():
    tracks = _tracks([("ok", 2), ("ok", 3), ("ok", 1)])
    consumed = []

    def feed():
        for t in tracks:
            consumed.append(t.path)
            yield t

    stream = predict_stream(feed(), FakeClassifier(), batch_size=2)
    first, prediction = next(stream)
    assert first.path == tracks[0].path and prediction is not None
    assert consumed == [tracks[0].path]  # did not wait for the rest of the library


def test_ok_track_without_windows_passes_through():
    empty = TrackFeatures(Path("empty.mp3"), "ok", windows=np.zeros((0, 4, 4), np.float32))
    assert list(predict_stream([empty], FakeClassifier(), batch_size=4)) == [(empty, None)]


def test_predict_stream_with_the_keras_model_straddling_batches(tiny_classifier):
    rng = np.random.default_rng(3)
    spec = [("ok", 3), ("skipped", 0), ("ok", 7), ("ok", 1), ("error", 0), ("ok", 4), ("silent", 0), ("ok", 6)]
    tracks = []
    for i, (status, n) in enumerate(spec):
        windows = rng.standard_normal((n, 128, 128)).astype(np.float32) if status == "ok" else None
        tracks.append(TrackFeatures(Path(f"{i}.flac"), status, windows=windows))
    results = list(predict_stream(tracks, tiny_classifier, batch_size=5))
    _check_stream(tracks, results, tiny_classifier)


def test_prediction_ranking():
    p = Prediction(Path("x"), ("A", "B", "C"), np.array([0.2, 0.5, 0.3], np.float32), windows=2)
    assert [g for g, _ in p.ranked()] == ["B", "C", "A"]
    assert p.genre == "B" and p.confidence == pytest.approx(0.5)


# --- k-NN and SVM baselines ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def classic_data():
    """Four overlapping Gaussian classes of [8, 8] 'windows', train and test."""
    rng = np.random.default_rng(42)
    centres = rng.standard_normal((4, 8, 8))

    def draw(n):
        y = np.repeat(np.arange(4), n)
        return (centres[y] + 1.5 * rng.standard_normal((len(y), 8, 8))).astype(np.float32), y

    return draw(25), draw(10)


def _sklearn_fit(x: np.ndarray, y: np.ndarray):
    """The scaler, PCA and SVC that fit_classic fits, fitted the same way here."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    flat = x.reshape(len(x), -1)
    scaler = StandardScaler().fit(flat)
    pca = PCA(n_components=15, random_state=0, svd_solver="randomized")
    z = pca.fit_transform(scaler.transform(flat))
    svc = SVC(kernel="rbf", C=1.0, gamma="scale", random_state=0, decision_function_shape="ovo").fit(z, y)
    return scaler, pca, svc


def test_svm_decision_equals_sklearn(classic_data, tmp_path):
    (x, y), (x_test, _) = classic_data
    clf = ClassicClassifier(fit_classic("svm", x, y, n_classes=4), ("A", "B", "C", "D"))
    scaler, pca, svc = _sklearn_fit(x, y)
    z_test = pca.transform(scaler.transform(x_test.reshape(len(x_test), -1)))
    expected = svc.decision_function(z_test)
    assert expected.shape == (len(x_test), 6)  # 4 classes: 6 one-vs-one pairs
    np.testing.assert_allclose(clf.decision(z_test), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(clf.embed(x_test), z_test, atol=1e-4)

    probs = clf.predict(x_test)
    assert probs.shape == (len(x_test), 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == svc.predict(z_test)).mean() >= 0.9

    # saved as plain arrays and loaded without pickle, it predicts the same
    clf.save(tmp_path / "model.npz")
    loaded = ClassicClassifier.load(tmp_path / "model.npz", clf.labels)
    np.testing.assert_allclose(loaded.predict(x_test), probs)


def test_knn_probabilities(classic_data):
    (x, y), (x_test, _) = classic_data
    clf = ClassicClassifier(fit_classic("knn", x, y, n_classes=4), ("A", "B", "C", "D"))
    probs = clf.predict(x_test)
    assert probs.shape == (len(x_test), 4)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert (clf.predict(x).argmax(axis=1) == y).mean() > 0.95  # each training window is its own neighbour


def test_classic_bundle_loads_through_load_classifier(classic_data, tmp_path):
    (x, y), (x_test, _) = classic_data
    clf = ClassicClassifier(fit_classic("knn", x, y, n_classes=4), ("A", "B", "C", "D"))
    clf.save(tmp_path / "model.npz")
    card = ModelCard(name="knn-test", version="1", kind="classic", architecture="knn", labels=clf.labels,
                     features=FeatureConfig(), weights="model.npz", sha256=sha256_file(tmp_path / "model.npz"))
    write_card(tmp_path, card)
    loaded = load_classifier(read_bundle(tmp_path))
    assert isinstance(loaded, ClassicClassifier)
    np.testing.assert_allclose(loaded.predict(x_test), clf.predict(x_test))


def test_unknown_classic_kind_refused(classic_data):
    (x, y), _ = classic_data
    with pytest.raises(ValueError, match="unknown classic model"):
        fit_classic("forest", x, y, n_classes=4)


def test_npz_that_is_not_a_classic_model_refused(tmp_path):
    np.savez(tmp_path / "model.npz", kind=np.array("tree"))
    with pytest.raises(ModelError, match="not a k-NN/SVM model"):
        ClassicClassifier.load(tmp_path / "model.npz", ("A",))


# --- Keras architectures ------------------------------------------------------------------------


def _architectures() -> tuple[str, ...]:
    from genretag.models.architectures import KERAS_ARCHITECTURES

    return KERAS_ARCHITECTURES


@pytest.mark.parametrize("architecture", _architectures())
def test_architecture_outputs_a_softmax(architecture):
    from genretag.models.architectures import build_model
    from genretag.models.runtime import import_keras

    import_keras()
    model = build_model(architecture, n_mels=128, n_frames=128, n_classes=5)
    assert tuple(model.input_shape) == (None, 128, 128)
    assert tuple(model.output_shape) == (None, 5)
    x = np.random.default_rng(0).standard_normal((2, 128, 128)).astype(np.float32)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (2, 5)
    assert np.all(probs >= 0) and np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_unknown_architecture_refused():
    from genretag.models.architectures import build_model

    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        build_model("vgg", n_mels=128, n_frames=128, n_classes=3)


def test_architectures_use_pure_keras():
    """No tf.* and no TensorFlow import in the model code (docstrings may mention them)."""
    tree = ast.parse(ARCHITECTURES_PY.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Name):
            assert node.id not in ("tf", "tensorflow"), f"line {node.lineno} uses {node.id}"
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "tf", "torch", "jax")]
    assert {m.split(".")[0] for m in imported} <= {"__future__", "collections", "keras", "genretag"}
