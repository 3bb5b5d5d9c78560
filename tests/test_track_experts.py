"""EfficientAT as a track-level expert (``features.audioset_windows``), beside a track-level YAMNet: the card option,
which windows carry EfficientAT's log-mel, and a tiny bundle whose scans (OpenVINO, Keras, one file, Ray) give the
rule computed by hand from its networks, styles and music score included."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from synth import tone_mix, write_audio
from track_checks import changing_clips, scan_windows

from genretag.config import AUDIOSET_RATE, YAMNET_RATE, FeatureConfig
from genretag.features import track_picks, track_windows, yamnet_patches
from genretag.models import musicnn

HEAD_WEIGHT, WEIGHT, YAMNET_WEIGHT, TEMPERATURE = 0.65, 0.25, 0.4, 0.7
STYLES = (("Heavy Metal", "Rock"), ("Reggae", "International"), ("Ambient", "Electronic"))
PICKS = {8: ([1, 4, 6], [2, 6]), 4: ([0, 2, 3], [1, 3]), 1: ([0], [0])}
"""Windows EfficientAT (3) and YAMNet (2) hear, by the track's window count."""


def _config(**changes) -> FeatureConfig:
    base = replace(musicnn.FEATURES, audioset_rate=AUDIOSET_RATE, yamnet_rate=YAMNET_RATE, yamnet_windows=2,
                   yamnet_weight=YAMNET_WEIGHT)
    return replace(base, **{"audioset_windows": 3, "audioset_weight": WEIGHT, **changes})


def test_audioset_windows_in_the_card_and_its_checks():
    config = _config()
    data = config.to_dict()
    assert (data["audioset_windows"], data["audioset_weight"]) == (3, WEIGHT)
    assert FeatureConfig.from_dict(data) == config
    plain = _config(audioset_windows=0, audioset_weight=0.0)
    assert "audioset_windows" not in plain.to_dict() and "audioset_weight" not in plain.to_dict()
    for bad, message in (({"audioset_windows": 65}, "audioset_windows must be an integer from 0 to 64, got 65"),
                         ({"audioset_windows": 2.0}, "audioset_windows must be an integer from 0 to 64, got 2.0"),
                         ({"audioset_weight": 1.0}, "audioset_weight must be a number from 0 to below 1, got 1.0"),
                         ({"audioset_weight": 0.0}, "audioset_weight goes with audioset_windows"),
                         ({"audioset_windows": 0}, "audioset_weight goes with audioset_windows")):
        with pytest.raises(ValueError, match=message):
            _config(**bad)
    with pytest.raises(ValueError, match="audioset_windows needs audioset_rate"):
        replace(musicnn.FEATURES, audioset_windows=3, audioset_weight=0.25)
    assert track_picks(8, 3) == [1, 4, 6] and track_picks(4, 3) == [0, 2, 3] and track_picks(1, 3) == [0]


def test_only_the_picked_windows_carry_efficientat_log_mel():
    rng = np.random.default_rng(0)
    seg16 = rng.standard_normal((8, 47_616)).astype(np.float32) * 0.1
    wide = rng.standard_normal((8, 95_232)).astype(np.float32) * 0.1
    config = _config()
    patch = track_windows(seg16, config, wide=wide)
    every = track_windows(seg16, _config(audioset_windows=0, audioset_weight=0.0), wide=wide)
    rows = slice(config.n_mels, config.n_mels + 128)
    assert patch[[1, 4, 6], rows].any(axis=(1, 2)).all()
    assert not patch[[0, 2, 3, 5, 7], rows].any()
    np.testing.assert_array_equal(patch[[1, 4, 6]], every[[1, 4, 6]])
    np.testing.assert_array_equal(np.delete(patch, rows, axis=1), np.delete(every, rows, axis=1))


# --- a tiny bundle with track-level EfficientAT and YAMNet ---------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A random genre head on musicnn's log-mel (weight 0.65 in its windows), EfficientAT on 3 windows (0.25, with
    3 styles and the music score) and YAMNet on 2 (0.4), calibrated at T 0.7, exported (4 artifacts: learn's features.onnx too)."""
    pytest.importorskip("openvino")
    pytest.importorskip("tf2onnx")
    from track_checks import saved_bundle, tiny_head

    from genretag.models.bundle import MusicScore, Style
    from genretag.models.fusion import GENRE_CLASSES, build_fused

    config, labels = _config(), tuple(sorted(GENRE_CLASSES))
    model = build_fused(tiny_head(config, labels), labels=labels, features=config, weight=WEIGHT,
                        yamnet_weight=YAMNET_WEIGHT, head_weight=HEAD_WEIGHT)
    assert model.output_shape == (None, len(labels))
    names = {layer.name for layer in model.layers}
    assert "efficientat_mn04" not in names and "yamnet" not in names  # neither in the per-window network
    return saved_bundle(tmp_path_factory.mktemp("eat3"), model, tmp_path_factory.mktemp("eat3_clips"),
                        name="tiny-eat3", config=config, labels=labels, temperature=TEMPERATURE,
                        music=MusicScore(floor=0.01), styles=tuple(Style(name, parent, 0.0) for name, parent in STYLES))


def _by_hand(folder: Path, windows: np.ndarray, eat: list[int], yam: list[int]):
    """The rule from Keras networks: ``softmax((log mean_w softmax(0.65 log p_w) + 0.25 log q_e + 0.4 log q_y) /
    T)``, q_e from EfficientAT's sigmoids averaged over windows ``eat``, q_y from YAMNet's over ``yam``; the styles'
    mean probabilities and the mean of the largest music-class probability over ``eat``."""
    import keras

    from genretag.models import efficientat, yamnet
    from genretag.models.fusion import (
        GENRE_CLASSES,
        MUSIC_CLASSES,
        STYLE_CLASSES,
        membership,
        register_layers,
        yamnet_membership,
    )

    register_layers()
    config, labels = _config(), tuple(sorted(GENRE_CLASSES))
    model = keras.saving.load_model(folder / "model.keras", compile=False, safe_mode=True)
    p = np.asarray(model.get_layer("tiny_head").predict_on_batch(windows[:, : config.n_mels, : config.n_frames]),
                   np.float64)
    z = HEAD_WEIGHT * np.log(np.clip(p, 1e-7, 1))
    per_window = np.exp(z - z.max(1, keepdims=True))
    per_window /= per_window.sum(1, keepdims=True)
    rows = windows[eat, config.n_mels : config.n_mels + 128, : config.audioset_frames]
    assert rows.any(axis=(1, 2)).all(), f"windows {eat} lack EfficientAT's log-mel"
    net = efficientat.build_network(n_frames=config.audioset_frames)
    s = 1.0 / (1.0 + np.exp(-np.asarray(net.predict_on_batch(rows)[0], np.float64)))
    m = s.mean(axis=0)
    log_e = np.array([np.log(np.clip(m[row], 1e-7, 1)).max() for row in membership(labels) > 0])
    bands = windows[yam, config.yamnet_row : config.yamnet_row + 64, : config.yamnet_frames]
    patches = yamnet_patches(bands.transpose(0, 2, 1)).reshape(-1, 96, 64)
    y = 1.0 / (1.0 + np.exp(-np.asarray(yamnet.build_network().predict_on_batch(patches)[0], np.float64)))
    log_y = np.array([np.log(np.clip(y.mean(0)[row], 1e-7, 1)).max() for row in yamnet_membership(labels) > 0])
    track = (np.log(per_window.mean(0)) + WEIGHT * log_e + YAMNET_WEIGHT * log_y) / TEMPERATURE
    track = np.exp(track - track.max())
    styles = m[[STYLE_CLASSES[name][1] for name, _ in STYLES]]
    music = s[:, [index for index, _ in MUSIC_CLASSES]].max(axis=1).mean()
    return track / track.sum(), styles, float(music)


@pytest.mark.parametrize("runtime", ["openvino", "keras"])
def test_scan_gives_the_rule_by_hand(bundle, tmp_path, monkeypatch, runtime):
    import genretag
    from genretag.models.runtime import RUNTIME_ENV

    monkeypatch.setenv(RUNTIME_ENV, runtime)
    clips = changing_clips(tmp_path)
    model = genretag.load_model(bundle)
    experts = model.classifier.experts
    assert model.classifier.runtime == runtime and [(e.name, e.runtime) for e in experts] == [
        ("efficientat", runtime), ("yamnet", runtime)]
    found = {r.path: r.prediction for r in genretag.predict(clips, model=model,
                                                            options=genretag.ScanOptions(jobs=0, batch_size=8))}
    config = model.bundle.card.features
    for clip, n in zip(clips, (8, 4, 1)):
        windows = scan_windows(clip, config)
        assert len(windows) == n == found[clip].windows
        want, styles, music = _by_hand(bundle, windows, *PICKS[n])
        np.testing.assert_allclose(found[clip].probabilities, want, atol=2e-4)
        np.testing.assert_allclose(found[clip].style_scores, styles, atol=1e-4)
        assert found[clip].music == pytest.approx(music, abs=1e-4)
        single = genretag.predict_file(clip, model=model)  # one file, outside the batches: the same
        np.testing.assert_allclose(single.probabilities, found[clip].probabilities, atol=1e-5)
        np.testing.assert_allclose(single.style_scores, found[clip].style_scores, atol=1e-6)
    # which windows EfficientAT heard matters: windows 0, 3, 7 (their rows cut as every window's would be) differ
    every = scan_windows(clips[0], replace(config, audioset_windows=0, audioset_weight=0.0))
    other, other_styles, _ = _by_hand(bundle, every, [0, 3, 7], [2, 6])
    assert np.abs(other - found[clips[0]].probabilities).max() > 1e-3
    assert np.abs(other_styles - found[clips[0]].style_scores).max() > 1e-4


def test_the_efficientat_artifact_is_checked(bundle, tmp_path):
    import shutil

    from genretag.errors import ModelError
    from genretag.models.bundle import read_bundle, verify_bundle
    from genretag.models.efficientat import WEIGHTS_SHA256

    folder = Path(shutil.copytree(bundle, tmp_path / "b"))
    card = json.loads((folder / "card.json").read_text())
    entry = card["runtime"]["efficientat"]
    assert entry["file"] == "efficientat.onnx" and entry["max_abs_diff_vs_keras"] <= 1e-4
    assert entry["exported_from_sha256"] == WEIGHTS_SHA256 and entry["output"] == "[b, 527]"
    assert "yamnet" in card["runtime"] and card["features"]["audioset_windows"] == 3
    with open(folder / "efficientat.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="runtime file efficientat.onnx does not match card.json sha256"):
        verify_bundle(read_bundle(folder))
    del card["runtime"]["efficientat"]
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="features have audioset_windows but the runtime lists no efficientat"):
        read_bundle(folder)


def test_learns_features_have_a_network_of_their_own(bundle, tmp_path, monkeypatch):
    """The per-window network has no EfficientAT, so learn's features come from ``features.onnx``: on OpenVINO
    the vectors Keras' ``build_features`` gives (windows with EfficientAT in each, as the feature pass cuts them);
    the artifact is checked like the others."""
    import shutil

    from genretag.errors import ModelError
    from genretag.learn.features import feature_network, pass_features
    from genretag.models.bundle import features_source, read_bundle, verify_bundle
    from genretag.models.export import FEATURE_TOLERANCE
    from genretag.models.runtime import RUNTIME_ENV

    entry = json.loads((bundle / "card.json").read_text())["runtime"]["features"]
    assert (entry["file"], entry["output"], entry["width"]) == ("features.onnx", 0, 1425)
    assert entry["exported_from_sha256"] == features_source() and entry["max_abs_diff_vs_keras"] <= FEATURE_TOLERANCE
    found = read_bundle(bundle)
    heard = pass_features(found.card.features)
    windows = np.concatenate([scan_windows(c, heard) for c in changing_clips(tmp_path / "c")])
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    light = feature_network(found)
    monkeypatch.setenv(RUNTIME_ENV, "keras")
    heavy = feature_network(found)
    assert (light.runtime, heavy.runtime) == ("openvino", "keras")
    a, b = light.predict(windows), heavy.predict(windows)
    assert a.shape == b.shape == (len(windows), 1425) and np.abs(b).max() > 1.0
    assert np.abs(a - b).max() <= FEATURE_TOLERANCE
    folder = Path(shutil.copytree(bundle, tmp_path / "b"))
    with open(folder / "features.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="runtime file features.onnx does not match card.json sha256"):
        verify_bundle(read_bundle(folder))


def test_ray_engine_agrees(bundle, tmp_path):
    ray = pytest.importorskip("ray")
    from track_checks import local_and_ray

    local, rows = local_and_ray(ray, changing_clips(tmp_path), bundle, tmp_path)
    for row in rows:
        np.testing.assert_allclose(row["probabilities"], local[row["path"]].probabilities, atol=1e-4)
        np.testing.assert_allclose(row["style_scores"], local[row["path"]].style_scores, atol=1e-4)
        assert row["windows"] == local[row["path"]].windows


def test_a_learned_model_on_such_a_base_hears_efficientat_in_every_window():
    """A learned model's windows: musicnn's and EfficientAT's log-mel in each, no YAMNet rows (its layer reads none);
    learn's feature pass cuts EfficientAT in every window too, and files features under the same key as with
    EfficientAT heard in every window (the vectors are the same)."""
    from genretag.learn.bundle import _window_features
    from genretag.learn.features import extractor_key, pass_features
    from genretag.models.bundle import Bundle, ModelCard

    learned = _window_features(_config())
    assert (learned.audioset_windows, learned.audioset_weight, learned.yamnet_windows, learned.yamnet_rate) == (
        0, 0.0, 0, 0)
    assert learned.patch_shape == (learned.n_mels + 128, _config().patch_shape[1])
    assert learned.audioset_rate == AUDIOSET_RATE
    heard = pass_features(_config())
    assert (heard.audioset_windows, heard.yamnet_windows) == (0, 2)
    rng = np.random.default_rng(1)
    patch = track_windows(rng.standard_normal((8, 47_616)).astype(np.float32) * 0.1, heard,
                          wide=rng.standard_normal((8, 95_232)).astype(np.float32) * 0.1)
    assert patch[:, heard.n_mels : heard.n_mels + 128].any(axis=(1, 2)).all()

    def key(config):
        card = ModelCard(name="b", version="1", kind="keras", architecture="a", labels=("x",), features=config,
                         weights="model.keras", sha256="0" * 64)
        return extractor_key(Bundle(Path("."), card), 8)

    assert key(_config()) == key(_config(audioset_windows=0, audioset_weight=0.0))
    assert key(_config()) != key(_config(audioset_rate=0, audioset_windows=0, audioset_weight=0.0))


def test_a_scan_with_it_imports_no_tensorflow(bundle, tmp_path):
    """Every network on OpenVINO: the CLI's scan of such a bundle never loads TensorFlow or Keras."""
    from track_checks import scan_modules

    modules = scan_modules(bundle, tmp_path)
    assert "openvino" in modules and modules.isdisjoint({"tensorflow", "keras", "tf_keras"})


def test_add_music_and_add_styles_only_edit_its_card(bundle, tmp_path):
    """The track-level EfficientAT already gives every class: the tools list the music score and the shipped styles
    in the card and leave the networks (and their sha256s) alone; scan then gives the new columns."""
    import shutil
    import subprocess
    import sys

    import genretag

    folder = Path(shutil.copytree(bundle, tmp_path / "b"))
    card = json.loads((folder / "card.json").read_text())
    del card["styles"], card["music"]
    (folder / "card.json").write_text(json.dumps(card))
    repo = Path(__file__).resolve().parents[1]
    for tool in ("add_music.py", "add_styles.py"):
        proc = subprocess.run([sys.executable, str(repo / "tools" / tool), str(folder)], capture_output=True,
                              text=True, check=False, cwd=repo, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    after = json.loads((folder / "card.json").read_text())
    assert after["music"]["floor"] == 0.2 and "picked window" in after["music"]["score"]
    assert [s["name"] for s in after["styles"]] and after["sha256"] == card["sha256"]
    assert after["runtime"] == card["runtime"]
    clip = write_audio(tmp_path / "clip.wav", tone_mix("Mid", seconds=8.0, seed=3))
    prediction = genretag.predict_file(clip, model=genretag.load_model(folder))
    assert len(prediction.style_scores) == len(after["styles"]) and 0.0 <= prediction.music <= 1.0


def test_other_fusion_layers_keep_their_config():
    """A model without ``head_weight`` or ``audioset_windows`` saves the same fusion config as before."""
    pytest.importorskip("keras")
    from genretag.models.fusion import register_layers

    layer = register_layers()["GenreFusion"](10, 0.2, 0.35, True, name="genre_fusion")
    config = layer.get_config()
    assert "head_weight" not in config and "audioset_later" not in config and config["yamnet_later"] is True
    later = register_layers()["GenreFusion"](10, 0.25, 0.4, True, 0.65, True, name="genre_fusion")
    assert (later.get_config()["head_weight"], later.get_config()["audioset_later"]) == (0.65, True)
    assert not later.weights  # no AudioSet membership: EfficientAT is not in the per-window network
