"""The pretrained musicnn extractor and the head trained on it (``--model musicnn``)."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from genretag.cli import app
from genretag.errors import ModelError
from genretag.features import LEVEL_TARGET, log_mel, logc_gain, track_windows
from genretag.models import musicnn
from genretag.train.transferfit import fold_standardisation


def test_logc_features_equal_librosa_musicnn_input():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    t = np.arange(musicnn.FEATURES.window_samples) / 16_000
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    ours = log_mel(y, musicnn.FEATURES)
    # what musicnn's own extractor computes (librosa.load at 16 kHz, then this)
    mel = librosa.feature.melspectrogram(y=y, sr=16_000, hop_length=256, n_fft=512, n_mels=96, pad_mode="constant")
    theirs = np.log10(10_000 * mel + 1)
    assert ours.shape == (96, 187) == theirs.shape
    assert musicnn.FEATURES.hop_length == 256
    np.testing.assert_allclose(ours, theirs, atol=2e-4)


@pytest.fixture(scope="module")
def extractor():
    return musicnn.build_extractor()


def test_extractor_gives_finite_pooled_features_that_follow_the_input(extractor):
    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 4.0, (4, 96, 187)).astype(np.float32)
    a = np.asarray(extractor.predict_on_batch(x))
    assert a.shape == (4, musicnn.pooled_width()) == (4, 514) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, np.asarray(extractor.predict_on_batch(x)))  # inference mode: no dropout, fixed BN
    assert not extractor.trainable
    quieter = np.asarray(extractor.predict_on_batch(x * 0.5))
    assert np.abs(a - quieter).max() > 0.1  # it looks at the input


def test_damaged_pretrained_weights_are_refused(tmp_path):
    copy = tmp_path / "msd_musicnn.npz"
    shutil.copyfile(musicnn.WEIGHTS, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        musicnn.load_weights(copy)
    with pytest.raises(ModelError, match="missing"):
        musicnn.load_weights(tmp_path / "nothing.npz")


def test_folded_standardisation_gives_the_same_logits():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 7)) * 3 + 1
    mean, std = x.mean(0), x.std(0)
    live = np.array([1, 1, 0, 1, 1, 1, 0], float)
    weight, bias = rng.standard_normal((7, 3)), rng.standard_normal(3)
    kernel, folded = fold_standardisation(weight, bias, mean=mean, scale=live / std)
    np.testing.assert_allclose(x @ kernel + folded, ((x - mean) / std * live) @ weight + bias, atol=1e-12)


@pytest.mark.parametrize("option", [("--fmax", "8000"), ("--ensemble", "2")])
def test_musicnn_refuses_options_that_do_not_apply(option, synth_dataset, tmp_path):
    result = CliRunner().invoke(app, ["train", "--dataset", str(synth_dataset), "--model", "musicnn", *option,
                                      "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and option[0] in lines[0], result.stderr


def test_level_normalisation_makes_the_features_independent_of_playback_level():
    rng = np.random.default_rng(3)
    t = np.arange(3 * musicnn.FEATURES.window_samples) / 16_000
    y = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
         + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
    windows = y.reshape(3, -1)
    loud = track_windows(windows, musicnn.FEATURES)
    assert loud.mean() == pytest.approx(LEVEL_TARGET, abs=1e-3)
    for gain_db in (-20.0, -6.0, 3.0):
        quieter = track_windows(windows * np.float32(10 ** (gain_db / 20)), musicnn.FEATURES)
        np.testing.assert_allclose(quieter, loud, atol=2e-3)
    raw = replace(musicnn.FEATURES, normalize="none")
    assert np.abs(track_windows(windows * np.float32(0.1), raw) - track_windows(windows, raw)).max() > 0.5


def test_gain_augmentation_is_a_level_change():
    rng = np.random.default_rng(4)
    logc = rng.uniform(0.0, 5.0, (2, 96, 187)).astype(np.float32)
    louder = logc_gain(logc, np.full((2, 1, 1), 10.0))
    power = 10.0 ** logc.astype(np.float64) - 1
    np.testing.assert_allclose(louder, np.log10(1 + 10 * power), rtol=1e-5)
    np.testing.assert_allclose(logc_gain(louder, np.full((2, 1, 1), -10.0)), logc, atol=1e-4)


def test_training_reports_progress_while_embedding(synth_dataset, tmp_path):
    from genretag.config import TrainConfig
    from genretag.datasets import load_dataset
    from genretag.train import model_features, train

    events: list[tuple[str, dict]] = []
    data = load_dataset(synth_dataset)
    train(data, tmp_path / "run", config=TrainConfig(model="musicnn", epochs=1, augment=("balance",)),
          features=model_features("musicnn"), cache_dir=tmp_path / "cache", jobs=0,
          on_event=lambda kind, info: events.append((kind, info)), export=False)
    done = [info["done"] for kind, info in events if kind == "embedding"]
    total = len(data.split("train")) + len(data.split("val"))
    assert done and done == sorted(done) and done[-1] == total
    assert [kind for kind, _ in events].count("epoch") == 1
