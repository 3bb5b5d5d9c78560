"""Each training augmentation does what its name says, measured on inputs whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from genretag.config import FeatureConfig
from genretag.features import log_mel
from genretag.models.musicnn import FEATURES as MUSICNN
from genretag.train.augment import WindowSampler, mel_hz, mixup, random_gain

CONFIG = FeatureConfig()
N_MELS, N_FRAMES = CONFIG.n_mels, CONFIG.n_frames


def sampler(augment: set[str], mel: np.ndarray, seed: int = 0) -> WindowSampler:
    return WindowSampler([mel], np.array([0]), 1, CONFIG, frozenset(augment), seed=seed)


def tone_mel(hz: float) -> np.ndarray:
    """``float32 [n_mels, n_frames]`` dB log-mel of one window of a sine at ``hz``."""
    t = np.arange(CONFIG.window_samples) / CONFIG.sample_rate
    return log_mel(np.sin(2 * np.pi * hz * t).astype(np.float32), CONFIG)


def peak_band(mel: np.ndarray) -> int:
    return int(np.argmax(mel.mean(axis=1)))


@pytest.mark.parametrize("semitones", [-2.0, -1.0, 1.0, 2.0])
def test_pitch_shift_moves_a_tone_to_the_band_of_the_shifted_tone(semitones):
    """+2 semitones of a 1 kHz tone peaks where a 1122 Hz tone does (within a band)."""
    base = tone_mel(1000.0)
    shifted = sampler({"pitch"}, base)._pitch(base, semitones)
    expected = peak_band(tone_mel(1000.0 * 2 ** (semitones / 12)))
    assert abs(peak_band(shifted) - expected) <= 1
    assert np.sign(peak_band(shifted) - peak_band(base)) == np.sign(semitones)


def test_pitch_augmentation_shifts_by_at_most_two_semitones_both_ways():
    base = tone_mel(1000.0)
    hz = mel_hz(CONFIG)
    lo, hi = (int(np.argmin(abs(hz - 1000.0 * 2 ** (s / 12)))) for s in (-2.0, 2.0))
    peaks = [peak_band(sampler({"pitch"}, base, seed).window(base)) for seed in range(40)]
    assert all(lo - 1 <= p <= hi + 1 for p in peaks)
    assert min(peaks) < peak_band(base) < max(peaks)


def test_stretch_takes_between_0_9_and_1_1_windows_of_time():
    """On a clip whose value is its frame index, a window's time slope is the stretch factor."""
    ramp = np.tile(np.arange(400, dtype=np.float32), (N_MELS, 1))
    factors = []
    for seed in range(30):
        w = sampler({"stretch"}, ramp, seed).window(ramp)
        steps = np.diff(w[0])
        np.testing.assert_allclose(steps, steps.mean(), atol=1e-3)  # resampled evenly: a straight line
        np.testing.assert_array_equal(w, np.broadcast_to(w[0], w.shape))
        factors.append(float(steps.mean()))
    assert all(0.9 - 1 / N_FRAMES <= f <= 1.1 + 1 / N_FRAMES for f in factors)
    assert min(factors) < 0.97 and max(factors) > 1.03


def _runs(mask: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def test_specaugment_masks_two_bands_and_two_spans_of_at_most_12():
    mel = np.random.default_rng(0).standard_normal((N_MELS, N_FRAMES)).astype(np.float32)
    widths = []
    for seed in range(30):
        w = sampler({"specaugment"}, mel, seed).window(mel)
        fill = float(mel.mean())
        masked = np.isclose(w, fill, atol=1e-6)
        rows, cols = masked.all(axis=1), masked.all(axis=0)
        np.testing.assert_array_equal(masked, rows[:, None] | cols[None, :])  # whole bands and whole frames only
        for runs in (_runs(rows), _runs(cols)):
            assert len(runs) <= 2 and all(r <= 24 for r in runs)  # two masks, overlapping or not
        assert rows.sum() <= 24 and cols.sum() <= 24
        widths += _runs(rows) + _runs(cols)
    assert max(widths) > 6


def test_tilt_adds_one_straight_slope_across_the_bands():
    flat = np.zeros((N_MELS, N_FRAMES), np.float32)
    slopes = []
    for seed in range(30):
        w = sampler({"tilt"}, flat, seed).window(flat)
        np.testing.assert_allclose(w, np.broadcast_to(w[:, :1], w.shape), atol=1e-6)  # the same at every frame
        column = w[:, 0]
        np.testing.assert_allclose(np.diff(column), np.diff(column).mean(), atol=1e-5)  # straight
        assert column[0] == pytest.approx(-column[-1], abs=1e-5)  # about the middle band
        slopes.append(float(column[-1]))  # half the change from lowest to highest band
    assert all(abs(s) <= 0.5 + 1e-6 for s in slopes)
    assert min(slopes) < -0.2 and max(slopes) > 0.2


def test_gain_is_an_exact_level_change_of_the_audio():
    """``random_gain`` on musicnn's logc windows equals the features of the audio played louder or quieter."""
    config = FeatureConfig(**{**MUSICNN.to_dict(), "normalize": "none"})
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((4, config.window_samples))).astype(np.float32)
    gains_db = np.random.default_rng(7).uniform(-12.0, 12.0, size=(4, 1, 1))
    played = log_mel(audio * (10 ** (gains_db[:, :, 0] / 20)).astype(np.float32), config)
    np.testing.assert_allclose(random_gain(np.random.default_rng(7), log_mel(audio, config), max_db=12.0), played,
                               atol=2e-3)


def test_mixup_mixes_labels_exactly_as_it_mixes_inputs():
    rng = np.random.default_rng(0)
    y = np.eye(4, dtype=np.float32)[rng.integers(4, size=64)]
    x = np.repeat(y[:, :, None], 3, axis=2)  # each input carries its own label
    mixed_x, mixed_y = mixup(np.random.default_rng(1), x, y, alpha=0.4)
    assert mixed_x.dtype == x.dtype and mixed_y.dtype == y.dtype
    np.testing.assert_allclose(mixed_x, np.repeat(mixed_y[:, :, None], 3, axis=2), atol=1e-6)
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, rtol=1e-6)
    first = y.argmax(axis=1)
    assert (mixed_y[np.arange(64), first] >= 0.5 - 1e-6).all()  # the first of each pair dominates
    assert ((mixed_y > 1e-3) & (mixed_y < 1 - 1e-3)).any()

