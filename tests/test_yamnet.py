"""YAMNet (AudioSet), its front end, and its class numbering."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from genretag.config import YAMNET_RATE
from genretag.features import yamnet_log_mel, yamnet_mel_matrix, yamnet_patches
from genretag.models import yamnet
from genretag.models.fusion import GENRE_CLASSES

PRETRAINED = Path(__file__).resolve().parents[1].parent / "shared" / "pretrained"


def _tone(seconds: float, *, hz: float = 440.0, seed: int = 0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * YAMNET_RATE))) / YAMNET_RATE
    noise = np.random.default_rng(seed).standard_normal(len(t))
    return (amplitude * np.sin(2 * np.pi * hz * t) + 0.002 * noise).astype(np.float32)


def _band_centres() -> np.ndarray:
    """Centre (Hz) of each of YAMNet's 64 HTK mel bands, 125-7500 Hz."""
    low, high = (1127.0 * np.log(1.0 + hz / 700.0) for hz in (125.0, 7500.0))
    edges = np.linspace(low, high, 66)
    return 700.0 * (np.exp(edges[1:-1] / 1127.0) - 1.0)


# --- front end -------------------------------------------------------------------------------------------------


def test_front_end_shape_and_the_tone_in_its_band():
    x = np.stack([_tone(3.0, seed=s) for s in range(2)])
    out = yamnet_log_mel(x)
    assert out.shape == (2, 298, 64) and out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= np.log(0.001) - 1e-5  # log(mel + 0.001): nothing in a band is ln 0.001
    band = out[0].mean(axis=0).argmax()
    assert abs(_band_centres()[band] - 440.0) < 40.0


def test_front_end_is_linear_in_level_above_its_floor():
    """Magnitude, not power: 6 dB more level adds ln 2 to every band well above the 0.001 floor."""
    x = _tone(1.0, amplitude=0.1)
    a, b = yamnet_log_mel(x), yamnet_log_mel(2.0 * x)
    loud = a > 0.0
    assert loud.sum() > 100
    np.testing.assert_allclose(b[loud] - a[loud], np.log(2.0), atol=1e-3)


def test_front_end_refuses_audio_shorter_than_a_frame():
    with pytest.raises(ValueError, match="at least 400 samples"):
        yamnet_log_mel(np.zeros(399, np.float32))


def test_mel_matrix_covers_125_to_7500_hz():
    m = yamnet_mel_matrix()
    assert m.shape == (257, 64)
    hz = np.linspace(0.0, 8000.0, 257)
    used = m.sum(axis=1) > 0
    assert not used[0] and hz[used].min() > 125.0 and hz[used].max() < 7500.0
    assert (m.max(axis=0) > 0.6).all() and m.max() <= 1.0  # triangles of peak 1, sampled at the FFT bins


def test_patches_of_a_3_second_window():
    logmel = np.arange(298 * 64, dtype=np.float32).reshape(298, 64)
    p = yamnet_patches(logmel)
    assert p.shape == (5, 96, 64)
    np.testing.assert_array_equal(p[1], logmel[48:144])
    with pytest.raises(ValueError, match="96 frames"):
        yamnet_patches(logmel[:95])


def test_front_end_matches_the_reference_pair_shipped_with_the_network():
    audio, spectra = PRETRAINED / "yamnet_test_audio.bin", PRETRAINED / "yamnet_test_spectra.bin"
    if not audio.is_file():
        pytest.skip("../shared/pretrained is not present")
    wave = np.fromfile(audio, np.int16).astype(np.float32) / 32768
    expected = np.fromfile(spectra, np.float32).reshape(96, 64)
    got = yamnet_log_mel(wave)[:96]
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.9999
    assert np.abs(got - expected).mean() < 0.02


# --- class numbering -------------------------------------------------------------------------------------------


def test_class_numbering_skips_the_six_classes_yamnet_lacks():
    assert yamnet.audioset_index(0) == 0 and yamnet.audioset_index(1) == 3  # Speech; Child speech
    assert yamnet.audioset_index(132) == 137  # Music
    assert yamnet.audioset_index(520) == 526
    mapped = [yamnet.audioset_index(i) for i in range(yamnet.N_CLASSES)]
    assert sorted(set(mapped) | set(yamnet.DROPPED)) == list(range(527))
    with pytest.raises(ValueError, match=r"\[277\]"):
        yamnet.yamnet_columns([277])  # Funny music
    every_genre_class = [i for classes in GENRE_CLASSES.values() for i, _ in classes]
    assert [yamnet.audioset_index(c) for c in yamnet.yamnet_columns(every_genre_class)] == every_genre_class


def test_dropped_classes_are_the_ones_named():
    path = PRETRAINED / "audioset_class_labels_indices.csv"
    if not path.is_file():
        pytest.skip("../shared/pretrained is not present")
    with open(path, newline="") as fh:
        names = {int(row["index"]): row["display_name"] for row in csv.DictReader(fh)}
    assert [names[i] for i in yamnet.DROPPED] == ["Male speech, man speaking", "Female speech, woman speaking",
                                                  "Battle cry", "Male singing", "Female singing", "Funny music"]


# --- network ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network():
    return yamnet.build_network()


def test_network_shapes_and_a_sine_heard_as_one(network):
    patches = yamnet_patches(yamnet_log_mel(_tone(3.0)))
    logits, embedding = (np.asarray(a) for a in network.predict_on_batch(patches))
    assert logits.shape == (5, 521) and embedding.shape == (5, 1024)
    assert np.isfinite(logits).all() and (embedding >= 0).all() and (embedding <= 6).all()  # after a ReLU6
    top = [yamnet.audioset_index(i) for i in np.argsort(-logits.mean(0))[:5]]
    assert 501 in top  # AudioSet's "Sine wave" (with Telephone, Dial tone, Busy signal, Alarm)


def test_network_agrees_with_the_tflite_file_on_a_real_clip(network, corpus):
    tflite = PRETRAINED / "yamnet_spectra_in.tflite"
    if not tflite.is_file():
        pytest.skip("../shared/pretrained is not present")
    tf = pytest.importorskip("tensorflow")
    from genretag.audio import load_segments, probe

    clip = corpus / "emotify" / "classical" / "65.mp3"
    info = probe(clip)
    audio = load_segments(clip, [info.duration / 2], seconds=0.975, sample_rate=YAMNET_RATE, info=info)[0]
    patch = yamnet_patches(yamnet_log_mel(audio))[:1]
    net = tf.lite.Interpreter(str(tflite))
    net.allocate_tensors()
    net.set_tensor(net.get_input_details()[0]["index"], patch)
    net.invoke()
    expected = net.get_tensor(net.get_output_details()[0]["index"])[0]
    scores = 1.0 / (1.0 + np.exp(-np.asarray(network.predict_on_batch(patch)[0])[0]))
    assert np.abs(scores - expected).max() < 0.03  # the interpreter's 8-bit rounding (steps of 1/256)
    assert int(scores.argmax()) == int(expected.argmax()) == 132  # Music


def test_damaged_weights_are_refused(tmp_path):
    from genretag.errors import ModelError

    bad = tmp_path / "w.npz"
    bad.write_bytes(yamnet.WEIGHTS.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelError, match="damaged"):
        yamnet.load_weights(bad)


# --- YAMNet in the fused model ---------------------------------------------------------------------------------

def _fused_config():
    from dataclasses import replace

    from genretag.config import AUDIOSET_RATE
    from genretag.models import musicnn

    return replace(musicnn.FEATURES, audioset_rate=AUDIOSET_RATE, yamnet_rate=YAMNET_RATE)


def test_yamnet_rate_in_the_card_and_its_checks():
    from dataclasses import replace

    from genretag.config import FeatureConfig
    from genretag.models import musicnn

    config = _fused_config()
    assert "yamnet_rate" not in musicnn.FEATURES.to_dict()  # an older genretag reads a card without it
    assert FeatureConfig.from_dict(config.to_dict()) == config
    assert config.yamnet_frames == 296 and config.yamnet_row == 96 + 128
    assert config.patch_shape == (96 + 128 + 64, 298)
    assert replace(config, audioset_rate=0).patch_shape == (96 + 64, 296)
    with pytest.raises(ValueError, match="yamnet_rate must be 0 or 16000"):
        replace(config, yamnet_rate=22_050)
    with pytest.raises(ValueError, match="yamnet_rate needs sample_rate 16000"):
        FeatureConfig(sample_rate=22_050, yamnet_rate=YAMNET_RATE)
    with pytest.raises(ValueError, match="at least 0.975 s"):
        replace(config, window_seconds=0.9, n_frames=20)


def test_track_windows_carry_yamnet_log_mel_as_decoded():
    from genretag.features import track_windows

    config = _fused_config()
    seg16 = np.stack([_tone(2.976, seed=s) for s in range(2)])
    seg32 = np.repeat(seg16, 2, axis=1)
    patch = track_windows(seg16, config, wide=seg32)
    assert patch.shape == (2, *config.patch_shape)
    rows = slice(config.yamnet_row, config.yamnet_row + 64)
    np.testing.assert_allclose(patch[:, rows, :296], yamnet_log_mel(seg16).transpose(0, 2, 1), atol=1e-6)
    assert not patch[:, rows, 296:].any()  # right of YAMNet's 296 frames: zeros
    quiet = track_windows(seg16 * np.float32(0.5), config, wide=seg32 * np.float32(0.5))
    np.testing.assert_allclose(quiet[:, :96], patch[:, :96], atol=2e-3)  # musicnn's part: one level
    loud = patch[:, rows] > 0.0
    np.testing.assert_allclose((patch - quiet)[:, rows][loud], np.log(2.0), atol=2e-3)  # YAMNet's: as decoded


def test_three_expert_fusion_is_the_weighted_product(network, tmp_path):
    """The fused model equals its rule computed by hand from the three networks, and survives save and load."""
    import keras

    from genretag.features import audioset_log_mel, track_windows
    from genretag.models import efficientat
    from genretag.models.fusion import build_fused, membership, with_styles, yamnet_membership

    config = _fused_config()
    labels = tuple(sorted(GENRE_CLASSES))
    inputs = keras.Input((config.n_mels, config.n_frames))
    head = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs)))
    eat = efficientat.build_network(n_frames=config.audioset_frames)
    model = build_fused(head, labels=labels, features=config, weight=0.15, network=eat, yamnet_weight=0.25,
                        yamnet_network=network)
    seg16 = np.stack([_tone(2.976, hz=hz) for hz in (220.0, 880.0)])
    windows = track_windows(seg16, config, wide=np.repeat(seg16, 2, axis=1))
    got = np.asarray(model.predict_on_batch(windows))

    p = np.asarray(head.predict_on_batch(windows[:, :96, :187]))
    log_eat = -np.logaddexp(0.0, -np.asarray(eat.predict_on_batch(audioset_log_mel(np.repeat(seg16, 2, axis=1),
                                                                                   32_000))[0]))
    patches = yamnet_patches(yamnet_log_mel(seg16))  # [2, 5, 96, 64]
    logits = np.asarray(network.predict_on_batch(patches.reshape(-1, 96, 64))[0]).reshape(2, 5, 521)
    scores = (1.0 / (1.0 + np.exp(-logits))).mean(axis=1)
    m, my = membership(labels) > 0, yamnet_membership(labels) > 0
    log_q = np.stack([log_eat[:, m[i]].max(1) for i in range(10)], 1)
    log_y = np.stack([np.log(np.clip(scores[:, my[i]], 1e-7, 1)).max(1) for i in range(10)], 1)
    z = 0.6 * np.log(np.clip(p, 1e-7, 1)) + 0.15 * log_q + 0.25 * log_y
    want = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(got, want / want.sum(1, keepdims=True), atol=2e-4)  # window rounding in the front ends

    model.save(tmp_path / "fused.keras")
    loaded = keras.saving.load_model(tmp_path / "fused.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(windows)), got, atol=1e-6)
    styled = with_styles(loaded, ("Heavy Metal",), labels=labels, features=config)
    np.testing.assert_allclose(np.asarray(styled.predict_on_batch(windows))[:, :10], got, atol=1e-6)


def test_yamnet_patches_in_the_card_and_its_checks():
    from dataclasses import replace

    from genretag.config import FeatureConfig

    config = _fused_config()
    one, three = replace(config, yamnet_patches=1), replace(config, yamnet_patches=3)
    assert config.yamnet_patches == 5 and config.yamnet_patch_count == 5
    assert (config.yamnet_heard, three.yamnet_heard, one.yamnet_heard) == ((0, 1, 2, 3, 4), (0, 2, 4), (2,))
    assert "yamnet_patches" not in config.to_dict()  # the default: cards built before it read the same
    assert one.to_dict()["yamnet_patches"] == 1 and FeatureConfig.from_dict(one.to_dict()) == one
    assert three.to_dict()["yamnet_patches"] == 3 and FeatureConfig.from_dict(three.to_dict()) == three
    assert one.patch_shape == three.patch_shape == config.patch_shape  # the window carries the same log-mel
    for bad in (0, 2, 4, True, 1.0, 3.0):
        with pytest.raises(ValueError, match=f"yamnet_patches must be 1, 3 or 5, got {bad!r}"):
            replace(config, yamnet_patches=bad)
    with pytest.raises(ValueError, match="yamnet_patches 5 needs windows of at least 2.895 s"):
        replace(config, window_seconds=2.0)
    # patches 0, 2 and 4 need all five: a 2.0-s window holds 3 (0-2), so it would hear only 0 and 2
    with pytest.raises(ValueError, match=r"yamnet_patches 3 needs windows of at least 2.895 s \(this window holds 3\)"):
        replace(three, window_seconds=2.0)
    assert replace(one, window_seconds=2.0).yamnet_patch_count == 3  # one patch fits a shorter window


def test_a_card_with_another_patch_count_is_refused(tmp_path):
    import json

    from genretag.errors import ModelError
    from genretag.models.bundle import ModelCard
    from genretag.models.registry import BUNDLED_DIR

    data = json.loads((BUNDLED_DIR / "default" / "card.json").read_text())
    data["features"].update(yamnet_rate=YAMNET_RATE, yamnet_patches=2)
    with pytest.raises(ModelError, match="malformed card.json: yamnet_patches must be 1, 3 or 5, got 2"):
        ModelCard.from_dict(data, tmp_path / "card.json")
    for count in (1, 3):
        data["features"]["yamnet_patches"] = count
        assert ModelCard.from_dict(data, tmp_path / "card.json").features.yamnet_patches == count


def test_one_yamnet_patch_is_the_middle_one(network, tmp_path):
    """With ``yamnet_patches=1`` YAMNet hears frames 96-191 of the window only: its scores are the network's on
    that patch, not the average of the five, and the choice survives save and load. With 3 it hears patches 0, 2
    and 4 (frames 0-95, 96-191, 192-287), averaged."""
    from dataclasses import replace

    import keras

    from genretag.features import track_windows
    from genretag.models.fusion import register_layers, yamnet_scores

    config = _fused_config()
    one, three = replace(config, yamnet_patches=1), replace(config, yamnet_patches=3)
    # a voice-like chirp train in the middle second, a low hum around it: the patches disagree
    seg16 = _tone(2.976, hz=110.0)
    middle = slice(int(0.96 * YAMNET_RATE), int(1.92 * YAMNET_RATE))
    seg16[middle] = _tone(0.96, hz=1_500.0, seed=1) * (np.arange(middle.stop - middle.start) % 1600 < 800)
    windows = track_windows(seg16[None], config, wide=np.repeat(seg16[None], 2, axis=1))

    def scorer(features):
        inputs = keras.Input(features.patch_shape)
        image = keras.layers.Reshape((*features.patch_shape, 1))(inputs)
        return keras.Model(inputs, yamnet_scores(image, features, network))

    got_one = np.asarray(scorer(one).predict_on_batch(windows))
    got_all = np.asarray(scorer(config).predict_on_batch(windows))
    got_three = np.asarray(scorer(three).predict_on_batch(windows))
    patches = yamnet_patches(yamnet_log_mel(seg16[None]))  # [1, 5, 96, 64]
    logits = np.asarray(network.predict_on_batch(patches.reshape(-1, 96, 64))[0])
    scores = 1.0 / (1.0 + np.exp(-logits))
    np.testing.assert_allclose(got_one[0], scores[2], atol=1e-5)
    np.testing.assert_allclose(got_all[0], scores.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(got_three[0], scores[[0, 2, 4]].mean(axis=0), atol=1e-5)
    assert np.abs(got_one - got_all).max() > 0.05  # the outer patches were heard differently
    assert np.abs(got_three - got_all).max() > 0.01 and np.abs(got_three - got_one).max() > 0.05

    model = scorer(one)
    model.save(tmp_path / "one.keras")
    register_layers()
    loaded = keras.saving.load_model(tmp_path / "one.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(windows)), got_one, atol=1e-6)
    assert [layer.name for layer in loaded.layers if layer.name.startswith("yamnet_patch")] == ["yamnet_patch2"]
    scorer(three).save(tmp_path / "three.keras")
    loaded = keras.saving.load_model(tmp_path / "three.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded.predict_on_batch(windows)), got_three, atol=1e-6)
    assert [layer.name for layer in loaded.layers if layer.name.startswith("yamnet_patch")] == [
        "yamnet_patch0", "yamnet_patch2", "yamnet_patch4"]
