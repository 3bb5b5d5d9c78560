"""YAMNet as a track-level expert (``features.yamnet_windows``): the card option, which windows it hears, and a
tiny bundle whose scans (OpenVINO, Keras, one file, Ray) give the rule computed by hand from its networks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from track_checks import changing_clips, scan_windows

from genretag.config import AUDIOSET_RATE, YAMNET_RATE, FeatureConfig
from genretag.features import track_picks, yamnet_patches
from genretag.models import musicnn

WEIGHT, YAMNET_WEIGHT, TEMPERATURE = 0.2, 0.35, 0.7


def _config(**changes) -> FeatureConfig:
    base = replace(musicnn.FEATURES, audioset_rate=AUDIOSET_RATE, yamnet_rate=YAMNET_RATE)
    return replace(base, **{"yamnet_windows": 2, "yamnet_weight": YAMNET_WEIGHT, **changes})


def test_yamnet_windows_in_the_card_and_its_checks():
    config = _config()
    data = config.to_dict()
    assert (data["yamnet_windows"], data["yamnet_weight"]) == (2, YAMNET_WEIGHT)
    assert FeatureConfig.from_dict(json.loads(json.dumps(data))) == config
    plain = _config(yamnet_windows=0, yamnet_weight=0.0)
    assert "yamnet_windows" not in plain.to_dict() and "yamnet_weight" not in plain.to_dict()  # older cards read the same
    assert config.patch_shape == plain.patch_shape  # the same window; only the picked ones carry YAMNet's rows
    for bad, message in (({"yamnet_windows": -1}, "yamnet_windows must be an integer from 0 to 64, got -1"),
                         ({"yamnet_windows": 65}, "yamnet_windows must be an integer from 0 to 64, got 65"),
                         ({"yamnet_windows": 2.0}, "yamnet_windows must be an integer from 0 to 64, got 2.0"),
                         ({"yamnet_windows": True}, "yamnet_windows must be an integer from 0 to 64, got True"),
                         ({"yamnet_weight": 1.0}, "yamnet_weight must be a number from 0 to below 1, got 1.0"),
                         ({"yamnet_weight": "0.3"}, "yamnet_weight must be a number from 0 to below 1, got '0.3'"),
                         ({"yamnet_weight": 0.0}, "yamnet_weight goes with yamnet_windows"),
                         ({"yamnet_windows": 0}, "yamnet_weight goes with yamnet_windows")):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            _config(**bad)
    with pytest.raises(ValueError, match="yamnet_windows needs yamnet_rate"):
        replace(musicnn.FEATURES, audioset_rate=AUDIOSET_RATE, yamnet_windows=2, yamnet_weight=0.3)


def test_a_card_with_a_bad_yamnet_windows_is_refused(tmp_path):
    from genretag.errors import ModelError
    from genretag.models.bundle import ModelCard
    from genretag.models.registry import BUNDLED_DIR

    data = json.loads((BUNDLED_DIR / "default" / "card.json").read_text())
    data["features"].pop("yamnet_weight", None)
    data["runtime"].pop("yamnet", None)
    data["features"].update(yamnet_windows=2)
    with pytest.raises(ModelError, match="malformed card.json: yamnet_weight goes with yamnet_windows"):
        ModelCard.from_dict(data, tmp_path / "card.json")
    data["features"].update(yamnet_weight=0.35)  # valid features, but the exported runtime lacks YAMNet's artifact
    with pytest.raises(ModelError, match="features have yamnet_windows but the runtime lists no yamnet artifact"):
        ModelCard.from_dict(data, tmp_path / "card.json")
    data["runtime"]["yamnet"] = {"format": "onnx", "file": "yamnet.onnx"}
    with pytest.raises(ModelError, match="runtime.yamnet lacks sha256, exported_from_sha256"):
        ModelCard.from_dict(data, tmp_path / "card.json")
    data["runtime"]["yamnet"].update(file="../yamnet.onnx", sha256="0", exported_from_sha256="0")
    with pytest.raises(ModelError, match="runtime.yamnet names a file outside the bundle"):
        ModelCard.from_dict(data, tmp_path / "card.json")


def test_picked_windows_are_the_centres_of_k_equal_parts():
    assert track_picks(8, 2) == [2, 6] and track_picks(8, 1) == [4] and track_picks(8, 4) == [1, 3, 5, 7]
    assert track_picks(7, 2) == [1, 5] and track_picks(4, 2) == [1, 3] and track_picks(3, 2) == [0, 2]
    assert track_picks(1, 2) == [0] and track_picks(2, 4) == [0, 1] and track_picks(8, 8) == list(range(8))


def test_picked_windows_are_the_ones_the_offline_study_scored():
    """``tools/explore_experts.py``'s ``spread`` chose the rule's windows; the product picks the same for any track."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "explore_experts.py"
    spec = importlib.util.spec_from_file_location("explore_experts", path)
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    for n in range(1, 17):
        for k in range(1, 9):
            assert track_picks(n, k) == study.spread(n, k), (n, k)


def test_only_the_picked_windows_carry_yamnet_log_mel():
    from genretag.features import track_windows

    config = _config()
    rng = np.random.default_rng(0)
    seg16 = (0.1 * rng.standard_normal((7, config.window_samples))).astype(np.float32)
    patch = track_windows(seg16, config, wide=np.repeat(seg16, 2, axis=1))
    every = track_windows(seg16, _config(yamnet_windows=0, yamnet_weight=0.0), wide=np.repeat(seg16, 2, axis=1))
    rows = slice(config.yamnet_row, config.yamnet_row + 64)
    np.testing.assert_array_equal(patch[[1, 5]], every[[1, 5]])
    assert not patch[[0, 2, 3, 4, 6]][:, rows].any()
    np.testing.assert_array_equal(patch[:, : config.yamnet_row], every[:, : config.yamnet_row])


# --- a tiny bundle with a track-level YAMNet -------------------------------------------------------------------

@pytest.fixture(scope="module")
def k2_bundle(tmp_path_factory):
    """A random genre head on musicnn's log-mel + the shipped EfficientAT (weight 0.2, with the music score) and a
    track-level YAMNet on 2 windows (0.35), calibrated at T 0.7, exported (model.onnx and yamnet.onnx)."""
    pytest.importorskip("openvino")
    pytest.importorskip("tf2onnx")
    from track_checks import saved_bundle, tiny_head

    from genretag.models.bundle import MusicScore
    from genretag.models.fusion import GENRE_CLASSES, build_fused

    config, labels = _config(), tuple(sorted(GENRE_CLASSES))
    model = build_fused(tiny_head(config, labels), labels=labels, features=config, weight=WEIGHT,
                        yamnet_weight=YAMNET_WEIGHT, music=True)
    assert not any(layer.name == "yamnet" for layer in model.layers)  # not in the per-window network
    return saved_bundle(tmp_path_factory.mktemp("k2"), model, tmp_path_factory.mktemp("k2_clips"), name="tiny-k2",
                        config=config, labels=labels, temperature=TEMPERATURE, music=MusicScore(floor=0.01))


def _by_hand(folder: Path, windows: np.ndarray, picked: list[int]) -> tuple[np.ndarray, float]:
    """The rule from the sub-networks' outputs: ``softmax((log mean_w softmax(0.45 log p + 0.2 log q) + 0.35 log
    q_y) / T)``, q_y from YAMNet's sigmoid averaged over 5 patches and the picked windows; and the music score."""
    import keras

    from genretag.models import efficientat, yamnet
    from genretag.models.fusion import GENRE_CLASSES, membership, register_layers, yamnet_membership

    register_layers()
    config = _config()
    model = keras.saving.load_model(folder / "model.keras", compile=False, safe_mode=True)
    head = model.get_layer("tiny_head")
    p = np.asarray(head.predict_on_batch(windows[:, : config.n_mels, : config.n_frames]), np.float64)
    logits = np.asarray(model.get_layer(efficientat.NAME).predict_on_batch(
        windows[:, config.n_mels : config.n_mels + 128, : config.audioset_frames])[0], np.float64)
    labels = tuple(sorted(GENRE_CLASSES))
    m = membership(labels) > 0
    log_q = np.stack([(-np.logaddexp(0.0, -logits))[:, row].max(1) for row in m], 1)
    z = 0.45 * np.log(np.clip(p, 1e-7, 1)) + WEIGHT * log_q
    per_window = np.exp(z - z.max(1, keepdims=True))
    per_window /= per_window.sum(1, keepdims=True)
    assert windows[picked, config.yamnet_row :].any(axis=(1, 2)).all(), f"windows {picked} lack YAMNet's log-mel"
    bands = windows[picked, config.yamnet_row : config.yamnet_row + 64, : config.yamnet_frames]
    patches = yamnet_patches(bands.transpose(0, 2, 1)).reshape(-1, 96, 64)
    y_logits = np.asarray(yamnet.build_network().predict_on_batch(patches)[0], np.float64)
    scores = (1.0 / (1.0 + np.exp(-y_logits))).mean(axis=0)  # over patches and windows: each window has 5
    my = yamnet_membership(labels) > 0
    log_y = np.array([np.log(np.clip(scores[row], 1e-7, 1)).max() for row in my])
    track = (np.log(per_window.mean(0)) + YAMNET_WEIGHT * log_y) / TEMPERATURE
    track = np.exp(track - track.max())
    music = np.asarray(model.predict_on_batch(windows))[:, -1].mean()
    return track / track.sum(), float(music)


@pytest.mark.parametrize("runtime", ["openvino", "keras"])
def test_scan_gives_the_rule_by_hand(k2_bundle, tmp_path, monkeypatch, runtime):
    import genretag
    from genretag.models.runtime import RUNTIME_ENV

    monkeypatch.setenv(RUNTIME_ENV, runtime)
    clips = changing_clips(tmp_path)
    model = genretag.load_model(k2_bundle)
    assert model.classifier.runtime == runtime and [e.runtime for e in model.classifier.experts] == [runtime]
    found = {r.path: r.prediction for r in genretag.predict(clips, model=model,
                                                            options=genretag.ScanOptions(jobs=0, batch_size=8))}
    config = model.bundle.card.features
    for clip, n in zip(clips, (8, 4, 1)):
        windows = scan_windows(clip, config)
        assert len(windows) == n == found[clip].windows
        want, music = _by_hand(k2_bundle, windows, {8: [2, 6], 4: [1, 3], 1: [0]}[n])
        np.testing.assert_allclose(found[clip].probabilities, want, atol=2e-4)
        assert found[clip].music == pytest.approx(music, abs=1e-4)  # the music score: EfficientAT's, per window
        single = genretag.predict_file(clip, model=model)  # one file, outside the batches: the same
        np.testing.assert_allclose(single.probabilities, found[clip].probabilities, atol=1e-5)
    # YAMNet moved the 8-window track, and which windows it heard matters: without its term, or with windows 3 and 7
    # (their YAMNet rows cut as every window's would be), the distribution differs
    from genretag.models.runtime import track_mean

    every = scan_windows(clips[0], replace(config, yamnet_windows=0, yamnet_weight=0.0))
    np.testing.assert_array_equal(every[[2, 6]], scan_windows(clips[0], config)[[2, 6]])
    plain = track_mean(model.classifier.predict(every)[:, :10], temperature=TEMPERATURE)
    assert np.abs(plain - found[clips[0]].probabilities).max() > 1e-3
    other, _ = _by_hand(k2_bundle, every, [3, 7])
    assert np.abs(other - found[clips[0]].probabilities).max() > 1e-3


def test_the_yamnet_artifact_is_checked(k2_bundle, tmp_path):
    import shutil

    from genretag.errors import ModelError
    from genretag.models.bundle import read_bundle, verify_bundle

    folder = Path(shutil.copytree(k2_bundle, tmp_path / "b"))
    card = json.loads((folder / "card.json").read_text())
    entry = card["runtime"]["yamnet"]
    assert entry["file"] == "yamnet.onnx" and entry["max_abs_diff_vs_keras"] <= 1e-4
    assert card["features"]["yamnet_windows"] == 2
    with open(folder / "yamnet.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="runtime file yamnet.onnx does not match card.json sha256"):
        verify_bundle(read_bundle(folder))
    (folder / "yamnet.onnx").unlink()
    with pytest.raises(ModelError, match="runtime file yamnet.onnx missing from bundle"):
        verify_bundle(read_bundle(folder))


def test_ray_engine_agrees(k2_bundle, tmp_path):
    ray = pytest.importorskip("ray")
    from track_checks import local_and_ray

    local, rows = local_and_ray(ray, changing_clips(tmp_path), k2_bundle, tmp_path)
    for row in rows:
        np.testing.assert_allclose(row["probabilities"], local[row["path"]].probabilities, atol=1e-4)
        assert row["windows"] == local[row["path"]].windows


def test_a_learned_model_on_such_a_base_has_no_yamnet():
    """``genretag learn`` puts its own layer on musicnn and EfficientAT: its card keeps the base's musicnn and
    EfficientAT windows but neither the base's YAMNet term (which would otherwise be added to the learned genres) nor
    YAMNet's rows (which no network of it reads); a base without YAMNet is kept as it is."""
    from genretag.learn.bundle import _window_features

    learned = _window_features(_config())
    assert (learned.yamnet_rate, learned.yamnet_windows, learned.yamnet_weight) == (0, 0, 0.0)
    assert learned.patch_shape == (learned.n_mels + 128, _config().patch_shape[1])
    assert replace(learned, yamnet_rate=YAMNET_RATE, yamnet_windows=2, yamnet_weight=YAMNET_WEIGHT) == _config()
    plain = replace(_config(), yamnet_rate=0, yamnet_windows=0, yamnet_weight=0.0)
    assert _window_features(plain) is plain


def test_a_scan_with_it_imports_no_tensorflow(k2_bundle, tmp_path):
    """Both networks on OpenVINO: the CLI's scan of such a bundle never loads TensorFlow or Keras."""
    from track_checks import scan_modules

    modules = scan_modules(k2_bundle, tmp_path)
    assert "openvino" in modules and modules.isdisjoint({"tensorflow", "keras", "tf_keras"})
