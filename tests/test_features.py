"""Features: log-mel window properties, window placement, decode-by-segment, and
the one-file stage (:func:`extract_track`) on good, silent, short and broken files.

Audio is synthesised from seeded RNGs; nothing here needs the corpus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

import synth
from genretag.audio import load_segments, probe
from genretag.config import FeatureConfig, WindowPolicy
from genretag.scan.extract import TrackFeatures, extract_track
from genretag.features import finish_track, fit_length, log_mel, rms_dbfs, track_windows, window_starts

CONFIG = FeatureConfig()
POLICY = WindowPolicy()


def _extract(path: Path, **kwargs) -> TrackFeatures:
    return extract_track(path, config=CONFIG, policy=POLICY, **kwargs)


def _assert_model_ready(windows: np.ndarray, k: int | None = None) -> None:
    """float32 [k, 128, 128], finite, normalised over the whole track."""
    assert windows.dtype == np.float32
    assert windows.ndim == 3 and windows.shape[1:] == (128, 128)
    if k is not None:
        assert windows.shape[0] == k
    assert np.all(np.isfinite(windows))
    assert abs(float(windows.mean())) < 1e-3
    assert abs(float(windows.std()) - 1.0) < 1e-3


@pytest.fixture(scope="module")
def wav_44k(tmp_path_factory) -> Path:
    """20 s of 'Mid' at 44.1 kHz (so decoding resamples to 22,050 Hz)."""
    path = tmp_path_factory.mktemp("features") / "mid-44k.wav"
    sf.write(path, synth.tone_mix("Mid", seconds=20.0, sr=44_100, seed=3), 44_100)
    return path


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory) -> Path:
    """10 minutes of seeded noise at 8 kHz, 16-bit (about 10 MB)."""
    path = tmp_path_factory.mktemp("features-long") / "ten-minutes.wav"
    rng = np.random.default_rng(7)
    sf.write(path, (0.2 * rng.standard_normal(600 * 8_000)).astype(np.float32), 8_000, subtype="PCM_16")
    return path


# --- configuration ------------------------------------------------------------------------


def test_default_hop_is_520_and_a_window_has_n_frames():
    assert CONFIG.window_samples == 66_150
    assert CONFIG.hop_length == 520
    mel = log_mel(np.zeros(CONFIG.window_samples, np.float32), CONFIG)
    assert mel.shape == (CONFIG.n_mels, CONFIG.n_frames) == (128, 128)


@pytest.mark.parametrize("sample_rate, seconds, n_frames, n_mels", [
    (16_000, 3.0, 128, 64), (22_050, 2.0, 96, 128), (44_100, 3.0, 128, 96),
])
def test_other_configs_also_give_exactly_n_frames(sample_rate, seconds, n_frames, n_mels):
    config = FeatureConfig(sample_rate=sample_rate, window_seconds=seconds, n_frames=n_frames, n_mels=n_mels)
    rng = np.random.default_rng(0)
    mel = log_mel(rng.standard_normal((2, config.window_samples)).astype(np.float32), config)
    assert mel.shape == (2, n_mels, n_frames)
    assert mel.dtype == np.float32


# --- pure features ------------------------------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(k=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       gain=st.floats(1e-3, 1.0), label=st.sampled_from(sorted(synth.CLASS_BANDS)))
def test_track_windows_shape_dtype_finite_normalised(k, seed, gain, label):
    rng = np.random.default_rng(seed)
    clip = synth.tone_mix(label, seconds=3.0 * k, seed=seed % 1000) * np.float32(gain)
    clip = clip + np.float32(1e-4) * rng.standard_normal(len(clip)).astype(np.float32)
    segments = clip[: k * CONFIG.window_samples].reshape(k, CONFIG.window_samples)
    _assert_model_ready(track_windows(segments, CONFIG), k)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.1, 50.0), shift=st.floats(-120.0, 20.0))
def test_finish_track_clips_to_top_db_below_the_track_max(seed, scale, shift):
    rng = np.random.default_rng(seed)
    db = (shift + scale * rng.standard_normal((3, 16, 20))).astype(np.float32)
    raw = finish_track(db, FeatureConfig(normalize="none"))
    assert raw.max() == pytest.approx(float(db.max()))
    assert raw.min() >= db.max() - CONFIG.top_db - 1e-3
    assert np.array_equal(raw, np.maximum(db, db.max() - CONFIG.top_db))
    normed = finish_track(db, CONFIG)
    assert normed.dtype == np.float32 and normed.shape == db.shape
    assert abs(float(normed.mean())) < 1e-4 and abs(float(normed.std()) - 1.0) < 1e-3


def test_normalisation_ignores_gain():
    """Per-track normalisation: the same track 20 dB quieter gives the same windows."""
    clip = synth.tone_mix("Low", seconds=6.0, seed=1)[: 2 * CONFIG.window_samples].reshape(2, -1)
    loud, quiet = track_windows(clip, CONFIG), track_windows(clip * np.float32(0.1), CONFIG)
    np.testing.assert_allclose(loud, quiet, atol=1e-3)


def test_unknown_normalisation_refused():
    with pytest.raises(ValueError, match="unknown normalisation"):
        finish_track(np.zeros((1, 4, 4), np.float32), FeatureConfig(normalize="global"))


def test_fit_length_loops_short_audio_and_trims_long():
    short = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(fit_length(short, 12), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1])
    np.testing.assert_array_equal(fit_length(np.arange(20.0), 7), np.arange(7.0))
    batch = np.stack([np.arange(3.0), 10 + np.arange(3.0)])
    np.testing.assert_array_equal(fit_length(batch, 5), [[0, 1, 2, 0, 1], [10, 11, 12, 10, 11]])
    empty = fit_length(np.zeros((2, 0), np.float32), 4)
    assert empty.shape == (2, 4) and not empty.any()


def test_rms_dbfs():
    assert rms_dbfs(np.ones(100, np.float32)) == pytest.approx(0.0)
    assert rms_dbfs(np.full(100, 0.1, np.float32)) == pytest.approx(-20.0)
    assert rms_dbfs(np.zeros(100, np.float32)) == pytest.approx(-200.0)


# --- where windows go ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(duration=st.floats(0.5, 3_600.0), windows=st.integers(1, 16))
def test_window_starts_properties(duration, windows):
    policy = WindowPolicy(windows=windows)
    win = CONFIG.window_seconds
    starts = window_starts(duration, config=CONFIG, policy=policy)
    assert starts.dtype == np.float64 and starts.ndim == 1
    assert 1 <= len(starts) <= windows
    assert starts.min() >= 0.0
    assert starts.max() <= max(0.0, duration - win) + 1e-9
    if len(starts) > 1:
        gaps = np.diff(starts)
        assert np.all(gaps >= policy.min_spacing * win - 1e-9)  # sorted, and not piled up
        np.testing.assert_allclose(gaps, gaps[0], rtol=1e-9, atol=1e-9)  # evenly spread


@pytest.mark.parametrize("duration", [0.5, 1.2, 2.999, 3.0])
def test_track_no_longer_than_a_window_gets_one_window_at_zero(duration):
    np.testing.assert_array_equal(window_starts(duration, config=CONFIG, policy=POLICY), [0.0])


def test_short_track_gets_fewer_windows():
    # 6 s: starts may range over 3 s, at least 1.5 s apart -> 3 windows
    np.testing.assert_allclose(window_starts(6.0, config=CONFIG, policy=POLICY), [0.0, 1.5, 3.0])
    assert len(window_starts(3.5, config=CONFIG, policy=POLICY)) == 1


def test_ten_minute_track_windows_spread_with_edge_margins():
    duration = 600.0
    starts = window_starts(duration, config=CONFIG, policy=POLICY)
    margin = POLICY.edge_margin * duration  # 30 s
    assert len(starts) == POLICY.windows == 8
    assert starts[0] == pytest.approx(margin)
    assert starts[-1] + CONFIG.window_seconds == pytest.approx(duration - margin)
    np.testing.assert_allclose(np.diff(starts), (duration - 2 * margin - CONFIG.window_seconds) / 7)


def test_windows_argument_overrides_the_policy():
    assert len(window_starts(600.0, config=CONFIG, policy=POLICY, windows=3)) == 3
    assert len(window_starts(600.0, config=CONFIG, policy=POLICY, windows=1)) == 1


# --- decoding segments ----------------------------------------------------------------------


def test_load_segments_of_a_long_file_seeks_to_each_start(long_wav):
    info = probe(long_wav)
    assert info.duration == pytest.approx(600.0) and info.sample_rate == 8_000 and info.backend == "soundfile"
    starts = window_starts(info.duration, config=CONFIG, policy=POLICY)
    segments = load_segments(long_wav, starts, seconds=CONFIG.window_seconds, sample_rate=22_050, info=info)
    assert segments.shape == (8, CONFIG.window_samples) and segments.dtype == np.float32
    data, rate = sf.read(long_wav, dtype="float32")
    pad = rate  # resample one extra second each side, compare away from the edges
    for start, row in zip(starts, segments):
        first = int(round(start * rate))
        ref = soxr.resample(data[first - pad: first + 3 * rate + pad], rate, 22_050, quality="HQ")
        ref = ref[22_050: 22_050 + CONFIG.window_samples]
        inner = slice(2_205, -2_205)
        np.testing.assert_allclose(row[inner], ref[inner], atol=1e-4)


def test_load_segments_pads_past_the_end_and_handles_no_starts(wav_44k):
    segments = load_segments(wav_44k, [19.0], seconds=3.0, sample_rate=22_050)
    assert segments.shape == (1, 66_150)
    assert np.abs(segments[0, :20_000]).max() > 0.01  # the last second is audio...
    assert not segments[0, 23_000:].any()  # ...and the rest is zeros
    assert load_segments(wav_44k, [], seconds=3.0, sample_rate=22_050).shape == (0, 66_150)


# --- one file: extract_track --------------------------------------------------------------------


def test_extract_track_windows_are_model_ready(wav_44k):
    track = _extract(wav_44k)
    assert track.status == "ok" and track.error is None
    assert track.duration == pytest.approx(20.0)
    _assert_model_ready(track.windows, len(window_starts(20.0, config=CONFIG, policy=POLICY)))


def test_path_and_array_give_the_same_windows(wav_44k):
    track = _extract(wav_44k)
    starts = window_starts(probe(wav_44k).duration, config=CONFIG, policy=POLICY)
    from_segments = track_windows(
        load_segments(wav_44k, starts, seconds=CONFIG.window_seconds, sample_rate=CONFIG.sample_rate), CONFIG)
    np.testing.assert_array_equal(track.windows, from_segments)

    # the same numbers from the plain samples: read, resample, cut at the starts
    data, rate = sf.read(wav_44k, dtype="float32")
    samples = soxr.resample(data, rate, CONFIG.sample_rate, quality="HQ")
    n = CONFIG.window_samples
    segments = np.stack([fit_length(samples[int(round(s * CONFIG.sample_rate)):][:n], n) for s in starts])
    np.testing.assert_allclose(track.windows, track_windows(segments, CONFIG), atol=1e-2)


def test_track_shorter_than_a_window_is_looped(tmp_path):
    clip = synth.tone_mix("High", seconds=1.2, seed=5)
    path = synth.write_audio(tmp_path / "short.wav", clip)
    track = _extract(path)
    assert track.status == "ok"
    _assert_model_ready(track.windows, 1)
    decoded, _ = sf.read(path, dtype="float32")  # 16-bit PCM: compare with what the file holds
    np.testing.assert_allclose(track.windows, track_windows(decoded[None, :], CONFIG), atol=1e-4)
    zero_padded = track_windows(np.pad(decoded, (0, CONFIG.window_samples - len(decoded)))[None, :], CONFIG)
    assert np.abs(track.windows - zero_padded).max() > 0.5


def test_silence_is_reported_silent(tmp_path):
    path = synth.write_audio(tmp_path / "silence.wav", np.zeros(22_050 * 10, np.float32))
    track = _extract(path)
    assert track.status == "silent"
    assert track.windows is None and track.error is None
    assert track.duration == pytest.approx(10.0)


def test_very_quiet_noise_is_silent_but_quiet_music_is_not(tmp_path):
    rng = np.random.default_rng(0)
    hiss = synth.write_audio(tmp_path / "hiss.flac", (1e-4 * rng.standard_normal(22_050 * 5)).astype(np.float32))
    assert _extract(hiss).status == "silent"  # -80 dBFS
    quiet = synth.write_audio(tmp_path / "quiet.flac", synth.tone_mix("Low", seconds=5.0, seed=2) * np.float32(0.05))
    assert _extract(quiet).status == "ok"  # about -45 dBFS


def test_too_short_file_is_an_error(tmp_path):
    path = synth.write_audio(tmp_path / "blip.wav", synth.tone_mix("Mid", seconds=0.3, seed=0))
    track = _extract(path)
    assert track.status == "error"
    assert track.error.startswith("too short")
    assert "0.30 s" in track.error and "\n" not in track.error


@pytest.mark.parametrize("name, content", [
    ("notes.mp3", b"this is a text file, not audio\n" * 20),
    ("empty.flac", b""),
    ("noise.ogg", bytes(np.random.default_rng(1).integers(0, 256, 4_000, dtype=np.uint8))),
])
def test_unreadable_file_is_an_error_with_one_line_reason(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    track = _extract(path)  # must not raise
    assert track.status == "error"
    assert track.path == path and track.windows is None
    assert track.error and "\n" not in track.error and len(track.error) < 300
    assert path.read_bytes() == content


def test_missing_file_is_an_error_not_an_exception(tmp_path):
    track = _extract(tmp_path / "gone.mp3")
    assert track.status == "error" and "file not found" in track.error


def test_skipped_when_already_tagged_by_the_model(tmp_path):
    from genretag.tags import write_genre

    path = synth.write_audio(tmp_path / "tagged.flac", synth.tone_mix("Low", seconds=4.0, seed=9))
    write_genre(path, ["Low"], provenance="tiny 0.1")
    skipped = _extract(path, skip_if_tagged_by="tiny 0.1")
    assert skipped.status == "skipped" and skipped.windows is None
    assert skipped.genres == ("Low",) and skipped.provenance == "tiny 0.1"
    other = _extract(path, skip_if_tagged_by="other 2.0")
    assert other.status == "ok" and other.genres == ("Low",)


@pytest.mark.parametrize("fmax,n_mels,fmin", [(None, 128, 0.0), (8000.0, 128, 0.0), (None, 64, 30.0)])
def test_log_mel_equals_librosa_melspectrogram(fmax, n_mels, fmin):
    """The NumPy STFT + mel filterbank reproduces librosa's melspectrogram (to float rounding)."""
    import librosa

    from genretag.features import log_mel, mel_basis

    config = FeatureConfig(fmax=fmax, n_mels=n_mels, fmin=fmin)
    ref_basis = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    np.testing.assert_allclose(mel_basis(config.sample_rate, config.n_fft, n_mels, fmin, fmax), ref_basis, atol=1e-7)
    y = np.random.default_rng(3).standard_normal((2, config.window_samples)).astype(np.float32) * 0.1
    ref = librosa.feature.melspectrogram(y=y, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length,
                                         n_mels=n_mels, fmin=fmin, fmax=fmax, power=2.0, center=True)
    np.testing.assert_allclose(log_mel(y, config), 10 * np.log10(np.maximum(ref, 1e-10)), atol=1e-3)


def test_decode_workers_do_not_import_librosa():
    """A worker's imports (extract, audio, features, tags) stay light: no librosa, numba or TensorFlow, and not
    the prediction store (sqlite3): a file's identity lives in genretag.files."""
    import subprocess
    import sys

    code = ("import sys; import genretag.scan.extract, genretag.audio, genretag.features, genretag.tags.containers, genretag.scan.pool; "
            "print(sorted(m for m in ('librosa', 'numba', 'tensorflow', 'keras', 'sqlite3', 'genretag.store') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
