"""The AudioSet network (EfficientAT mn04), its front end, and the fused genre model built on it."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from genretag.config import AUDIOSET_RATE, FeatureConfig
from genretag.features import audioset_log_mel, track_windows
from genretag.models import efficientat, musicnn
from genretag.models.fusion import GENRE_CLASSES, STYLE_CLASSES, membership

FUSED = replace(musicnn.FEATURES, audioset_rate=AUDIOSET_RATE)
CLASS_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "pretrained" / "audioset_class_labels_indices.csv"
LABELS = tuple(sorted(GENRE_CLASSES))


def _tone(seconds: float, rate: int, *, hz: float = 440.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    noise = np.random.default_rng(seed).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.02 * noise).astype(np.float32)


# --- front end -------------------------------------------------------------------------------------------------


def test_audioset_front_end_shape_and_range():
    x = np.stack([_tone(2.976, AUDIOSET_RATE, seed=s) for s in range(2)])
    out = audioset_log_mel(x, AUDIOSET_RATE)
    assert out.shape == (2, 128, 298) == (2, 128, FUSED.audioset_frames)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    floor = (np.log(1e-5) + 4.5) / 5.0  # (ln(0 + 1e-5) + 4.5) / 5: nothing in the band
    assert out.min() >= floor - 1e-4
    band = out[0].mean(axis=1).argmax()  # the 440 Hz tone's band: Kaldi mel, 128 bands to 15 kHz
    centre = 700 * (np.exp((band + 1) * (1127 * np.log(1 + 15000 / 700) / 129) / 1127) - 1)
    assert 350 < centre < 550


def test_16k_audio_is_raised_to_32k_and_hears_nothing_above_8k():
    x = np.random.default_rng(3).standard_normal(int(2.976 * 16_000)).astype(np.float32) * 0.1
    out = audioset_log_mel(x, 16_000)
    assert out.shape == (128, 298)
    centres = 700 * (np.exp(np.arange(1, 129) * (1127 * np.log(1 + 15000 / 700) / 129) / 1127) - 1)
    above = centres > 8_800  # a band centred at 8.3 kHz still reaches below 8 kHz
    floor = (np.log(1e-5) + 4.5) / 5.0
    inner = out[:, 3:-3]  # the edge frames' reflect padding bends the signal: a little of every band there
    assert np.abs(inner[above] - floor).max() < 0.05  # bands above 8 kHz are empty
    assert (inner[centres < 7_500].mean(axis=1) > floor + 0.5).all()  # the bands below hold the noise


def _dense_audioset_log_mel(x: np.ndarray) -> np.ndarray:
    """EfficientAT's front end as its authors define it, the plain way: reflect-padded centred 1024-sample frames,
    an 800-sample symmetric Hann window centred in each, and the whole Kaldi filterbank as one dense product."""
    from genretag.features import kaldi_mel_banks

    x = np.asarray(x, np.float64)
    x = np.pad(x[1:] - 0.97 * x[:-1], 512, mode="reflect")
    window = np.zeros(1024)
    window[112:912] = np.hanning(800)  # symmetric
    frames = np.lib.stride_tricks.sliding_window_view(x, 1024)[::320]
    spectrum = np.fft.rfft(frames * window, axis=-1)
    mel = (spectrum.real**2 + spectrum.imag**2) @ kaldi_mel_banks().T
    return ((np.log(mel + 1e-5) + 4.5) / 5.0).T


@pytest.mark.parametrize("seed, gain", [(0, 1.0), (1, 1e-4), (2, 30.0)])
def test_audioset_front_end_equals_the_dense_definition(seed, gain):
    # the fast path (800-sample frames, banded filterbank, concatenated padding) changes no value
    x = _tone(2.976, AUDIOSET_RATE, hz=220.0 * (seed + 1), seed=seed) * np.float32(gain)
    np.testing.assert_allclose(audioset_log_mel(x, AUDIOSET_RATE), _dense_audioset_log_mel(x), rtol=0, atol=1e-5)


def test_mel_bands_equal_the_dense_product_and_leave_empty_blocks_zero():
    from genretag.features import MelBands, kaldi_mel_banks

    power = np.random.default_rng(4).random((7, 513)) ** 4
    banks = kaldi_mel_banks()
    np.testing.assert_allclose(MelBands.of(banks).apply(power), power @ banks.T, rtol=1e-12, atol=0)
    sparse = np.zeros((40, 513))
    sparse[33, 100:110] = 1.0  # one filter; the blocks before and after it are all zero
    bands = MelBands.of(sparse, group=8)
    assert [(lo, hi, first, end) for lo, hi, first, end, _ in bands.blocks] == [(100, 110, 32, 40)]
    out = bands.apply(power)
    np.testing.assert_allclose(out, power @ sparse.T, rtol=1e-12, atol=0)
    assert (np.delete(out, 33, axis=1) == 0).all()


def test_audioset_rate_stacks_both_inputs_in_one_patch():
    assert FUSED.patch_shape == (96 + 128, 298) and musicnn.FEATURES.patch_shape == (96, 187)
    seg16 = np.stack([_tone(2.976, 16_000, seed=s) for s in range(3)])
    seg32 = np.stack([_tone(2.976, AUDIOSET_RATE, seed=s) for s in range(3)])
    patch = track_windows(seg16, FUSED, wide=seg32)
    assert patch.shape == (3, 224, 298) and patch.dtype == np.float32
    np.testing.assert_allclose(patch[:, :96, :187], track_windows(seg16, musicnn.FEATURES), atol=1e-6)
    assert not patch[:, :96, 187:].any()  # nothing right of musicnn's 187 frames
    quiet = track_windows(seg16 * np.float32(0.25), FUSED, wide=seg32 * np.float32(0.25))  # -12 dB
    np.testing.assert_allclose(quiet[:, :96], patch[:, :96], atol=2e-3)  # musicnn's part: brought to one level
    loud = patch[:, 96:] > 0.5  # EfficientAT's part: the level as decoded, ln(1/16) / 5 lower (far above 1e-5)
    np.testing.assert_allclose((patch - quiet)[:, 96:][loud], np.log(16.0) / 5.0, atol=2e-3)
    with pytest.raises(ValueError, match="needs the segments at that rate"):
        track_windows(seg16, FUSED)


def test_audioset_rate_in_the_card():
    assert "audioset_rate" not in musicnn.FEATURES.to_dict()  # an older genretag reads a card without it
    assert FeatureConfig.from_dict(FUSED.to_dict()) == FUSED
    with pytest.raises(ValueError, match="audioset_rate must be 0 or between sample_rate and 32000"):
        replace(musicnn.FEATURES, audioset_rate=44_100)


# --- the network -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network():
    return efficientat.build_network(n_frames=298)


def test_network_outputs(network):
    x = audioset_log_mel(np.stack([_tone(2.976, AUDIOSET_RATE, seed=s) for s in range(2)]), AUDIOSET_RATE)
    logits, embedding = (np.asarray(a) for a in network.predict_on_batch(x))
    assert logits.shape == (2, 527) and embedding.shape == (2, 384)
    assert np.isfinite(logits).all() and (embedding >= -0.375).all()  # hard swish's minimum


def test_network_hears_music_in_a_real_clip(network, corpus):
    from genretag.audio import load_segments, probe

    clip = corpus / "emotify" / "rock" / "1.mp3"
    info = probe(clip)
    audio = load_segments(clip, [info.duration / 2 - 1.5], seconds=2.976, sample_rate=AUDIOSET_RATE, info=info)
    logits = np.asarray(network.predict_on_batch(audioset_log_mel(audio, AUDIOSET_RATE))[0])[0]
    order = list(np.argsort(-logits))
    assert order[0] == 137  # "Music" (then Drum kit, Drum, Musical instrument, Bass drum, Rock music)
    assert set(order[:8]) & {i for i, _ in GENRE_CLASSES["Rock"]}


def test_damaged_weights_are_refused(tmp_path):
    from genretag.errors import ModelError

    bad = tmp_path / "w.npz"
    bad.write_bytes(efficientat.WEIGHTS.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelError, match="damaged"):
        efficientat.load_weights(bad)


# --- fusion ----------------------------------------------------------------------------------------------------


def test_mapping_names_match_audioset_class_list():
    if not CLASS_CSV.is_file():
        pytest.skip("../shared/pretrained is not present")
    with open(CLASS_CSV, newline="") as fh:
        names = {int(row["index"]): row["display_name"] for row in csv.DictReader(fh)}
    for label, classes in GENRE_CLASSES.items():
        for index, name in classes:
            assert names[index] == name, (label, index)
    for style, (parent, index) in STYLE_CLASSES.items():
        assert parent in GENRE_CLASSES and index in {i for i, _ in GENRE_CLASSES[parent]}, style
    m = membership(LABELS)
    assert m.shape == (10, 527) and m.sum() == sum(len(v) for v in GENRE_CLASSES.values())


@pytest.mark.parametrize("weight", [0.0, 0.35, 1.0])
def test_fusion_is_a_weighted_product_of_the_two_distributions(weight):
    from genretag.models.fusion import register_layers

    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(10), size=4).astype(np.float32)
    logits = rng.normal(-3.0, 2.0, (4, 527)).astype(np.float32)
    layer = register_layers()["GenreFusion"](10, weight)
    layer.build([(None, 10), (None, 527)])
    layer.set_weights([membership(LABELS)])
    got = np.asarray(layer([p, logits]))
    sig = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    q = np.stack([[sig[i, [c for c, _ in GENRE_CLASSES[label]]].max() for label in LABELS] for i in range(4)])
    want = np.exp((1 - weight) * np.log(p) + weight * np.log(q))
    want /= want.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-5)
    if weight == 0.0:
        np.testing.assert_allclose(got, p, atol=1e-5)
