"""Pure feature code: samples -> log-mel windows. No TensorFlow, no file I/O.

Scan (a few windows decoded per track) and training (the whole clip's mel,
cropped) share :func:`log_mel` and :func:`finish_track`, so a model sees the
same numbers in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from genretag.config import (
    AUDIOSET_HOP,
    AUDIOSET_MELS,
    AUDIOSET_RATE,
    YAMNET_FMAX,
    YAMNET_FMIN,
    YAMNET_GAIN,
    YAMNET_HOP,
    YAMNET_MELS,
    YAMNET_N_FFT,
    YAMNET_PATCH_FRAMES,
    YAMNET_PATCH_HOP,
    YAMNET_RATE,
    YAMNET_WINDOW,
    FeatureConfig,
    WindowPolicy,
)

AMIN = 1e-10
"""Power floor before taking dB (-100 dB)."""
LOGC_GAIN = 10_000.0
"""``logc`` scale: ``log10(1 + LOGC_GAIN * power)`` (musicnn's "logC")."""
LEVEL_TARGET = 2.1978
"""``normalize="level"``: every recording is brought to this mean ``logc`` value, the
mean input musicnn saw in training (its input batch norm's moving mean)."""


def window_starts(duration: float, *, config: FeatureConfig, policy: WindowPolicy, windows: int | None = None) -> np.ndarray:
    """Start times (s) of the windows to cut from a track of ``duration`` seconds.

    Returns ``float64 [k]``, ``1 <= k <= windows``. Windows are spread evenly;
    consecutive starts are at least ``policy.min_spacing`` windows apart, so
    short tracks get fewer windows; long tracks skip ``policy.edge_margin`` of
    their length at each end. A track shorter than a window gets one window at 0.
    """
    count = policy.windows if windows is None else windows
    win = config.window_seconds
    if duration <= win or count <= 1:
        return np.array([max(0.0, (duration - win) / 2)])
    margin = policy.edge_margin * duration
    lo, hi = (margin, duration - margin) if duration - 2 * margin >= count * win else (0.0, duration)
    span = hi - lo - win
    count = min(count, int(span // (policy.min_spacing * win)) + 1)
    return lo + np.linspace(0.0, span, count) if count > 1 else np.array([lo + span / 2])


def fit_length(samples: np.ndarray, n: int) -> np.ndarray:
    """Loop ``samples`` (``[..., m]``) until it is ``n`` long, or trim it to ``n``.

    Looping rather than zero-padding keeps a short clip's statistics those of music.
    """
    m = samples.shape[-1]
    if m == 0:
        return np.zeros(samples.shape[:-1] + (n,), np.float32)
    if m < n:
        samples = np.concatenate([samples] * (n // m + 1), axis=-1)
    return samples[..., :n]


def log_mel(samples: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Log-power mel spectrogram, in dB or ``logc`` (``config.scale``; no clipping, no normalisation).

    ``samples``: ``float32 [..., n]`` mono at ``config.sample_rate``.
    Returns ``float32 [..., n_mels, 1 + n // hop_length]``; a window of
    ``config.window_samples`` gives exactly ``config.n_frames`` frames.
    Equal (to float rounding) to ``librosa.feature.melspectrogram`` with
    ``center=True`` and a periodic Hann window, then ``10 * log10`` (or
    ``log10(1 + 10000 * power)``); done in
    NumPy so decode workers never import librosa (numba, scipy: seconds of
    start-up per worker).
    """
    if config.scale not in ("logc", "db"):
        raise ValueError(f"unknown scale {config.scale!r}")
    samples = np.asarray(samples, dtype=np.float32)
    rows = samples.reshape(-1, samples.shape[-1])
    to_mel = mel_basis(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax).T.astype(np.float64)
    n_frames = 1 + samples.shape[-1] // config.hop_length
    mel = np.empty((len(rows), config.n_mels, n_frames), np.float32)
    for i, row in enumerate(rows):  # one signal at a time: its arrays stay in cache (2x faster than all at once)
        mel[i] = (stft_power(row, n_fft=config.n_fft, hop_length=config.hop_length) @ to_mel).T
    if config.scale == "logc":
        out = np.log10(1.0 + LOGC_GAIN * mel)
    else:
        out = 10.0 * np.log10(np.maximum(mel, AMIN))
    return out.astype(np.float32, copy=False).reshape(samples.shape[:-1] + mel.shape[1:])


def stft_power(samples: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """``|STFT|**2`` of one signal ``[n]``: centred frames (zero-padded by ``n_fft // 2``),
    periodic Hann window. Returns ``float64 [1 + n // hop, 1 + n_fft // 2]`` (frames, bins).

    In float64: NumPy's float32 FFT is ~3x slower than its float64 one here.
    """
    padded = np.pad(np.asarray(samples, dtype=np.float64), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    spectrum = np.fft.rfft(frames * hann(n_fft), axis=-1)
    return spectrum.real**2 + spectrum.imag**2


@lru_cache(maxsize=4)
def hann(n: int) -> np.ndarray:
    """Periodic Hann window ``float64 [n]`` (scipy ``get_window("hann", n)``)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


@lru_cache(maxsize=8)
def mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """Slaney-style mel filterbank, area-normalised: ``float32 [n_mels, 1 + n_fft // 2]``.

    The same matrix as ``librosa.filters.mel`` (htk=False, norm="slaney"),
    built once per parameter set.
    """
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    fft_hz = np.linspace(0.0, sample_rate / 2.0, 1 + n_fft // 2)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2 : n_mels + 2] - mel_hz[:n_mels]))[:, None]
    return weights.astype(np.float32)


@dataclass(frozen=True)
class MelBands:
    """A mel filterbank stored as dense blocks of consecutive filters, each with only the FFT bins where
    one of its filters is non-zero: applying it does the dense product's multiply-adds on those bins alone.

    Every filter is a triangle over a few bins, so most of a dense ``[bins, mels]`` matrix is zeros:
    EfficientAT's 128 Kaldi bands over 513 bins in blocks of 16 skip ~80% of the product; the result equals
    the dense product to float64 rounding (each mel value sums the same non-zero terms). musicnn's 96 Slaney
    bands over 257 bins gained nothing measurable this way, so :func:`log_mel` keeps the dense product.
    """

    n_mels: int
    blocks: tuple[tuple[int, int, int, int, np.ndarray], ...]
    """``(first_bin, end_bin, first_mel, end_mel, float64 [end_bin - first_bin, end_mel - first_mel])``."""

    @classmethod
    def of(cls, basis: np.ndarray, *, group: int = 16) -> MelBands:
        """From a dense ``[n_mels, n_bins]`` filterbank (as :func:`kaldi_mel_banks` returns), ``group`` filters a block."""
        to_mel = np.asarray(basis, np.float64).T
        blocks = []
        for first in range(0, to_mel.shape[1], group):
            end = min(first + group, to_mel.shape[1])
            bins = np.flatnonzero(to_mel[:, first:end].any(axis=1))
            if bins.size:  # an all-zero block (possible at low frequencies) stays 0
                lo, hi = int(bins[0]), int(bins[-1]) + 1
                blocks.append((lo, hi, first, end, np.ascontiguousarray(to_mel[lo:hi, first:end])))
        return cls(to_mel.shape[1], tuple(blocks))

    def apply(self, power: np.ndarray) -> np.ndarray:
        """``float64 [frames, n_bins]`` power spectra -> ``float64 [frames, n_mels]`` (``power @ basis.T``)."""
        mel = np.zeros((power.shape[0], self.n_mels), np.float64)
        for lo, hi, first, end, weights in self.blocks:
            mel[:, first:end] = power[:, lo:hi] @ weights
        return mel


_F_SP = 200.0 / 3  # Slaney mel scale: linear below 1 kHz (66.67 Hz per mel) ...
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15 mels
_LOGSTEP = np.log(6.4) / 27.0  # ... and logarithmic above


def _hz_to_mel(hz: float) -> float:
    hz = float(hz)
    return hz / _F_SP if hz < _MIN_LOG_HZ else _MIN_LOG_MEL + np.log(hz / _MIN_LOG_HZ) / _LOGSTEP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    return np.where(mels >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels - _MIN_LOG_MEL)), _F_SP * mels)


AUDIOSET_N_FFT = 1024
AUDIOSET_WINDOW = 800  # 25 ms
AUDIOSET_FMAX = 15_000.0
"""EfficientAT's front end (the AudioSet network of :mod:`genretag.models.efficientat`): 32 kHz audio,
pre-emphasis 0.97, 800-sample symmetric Hann windows in a 1024-point FFT every 320 samples, 128 Kaldi
mel bands from 0 Hz to ``16 kHz - 1 kHz`` (its authors' inference range), ``(ln(mel + 1e-5) + 4.5) / 5``."""


def _kaldi_mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(hz, np.float64) / 700.0)


@lru_cache(maxsize=2)
def kaldi_mel_banks(n_mels: int = AUDIOSET_MELS, n_fft: int = AUDIOSET_N_FFT, sample_rate: int = AUDIOSET_RATE,
                    fmin: float = 0.0, fmax: float = AUDIOSET_FMAX) -> np.ndarray:
    """Kaldi's triangular mel filters (triangles in mel, peak 1, not area-normalised), as
    ``torchaudio.compliance.kaldi.get_mel_banks`` builds them and EfficientAT pads them:
    ``float64 [n_mels, 1 + n_fft // 2]`` (the Nyquist bin's column is 0)."""
    low, high = _kaldi_mel(fmin), _kaldi_mel(fmax)
    delta = (high - low) / (n_mels + 1)
    left = low + np.arange(n_mels)[:, None] * delta
    center, right = left + delta, left + 2 * delta
    mel = _kaldi_mel(sample_rate / n_fft * np.arange(n_fft // 2))[None, :]
    banks = np.maximum(0.0, np.minimum((mel - left) / (center - left), (right - mel) / (right - center)))
    return np.pad(banks, ((0, 0), (0, 1)))


def resample_fft(samples: np.ndarray, n: int) -> np.ndarray:
    """``float [..., m]`` -> ``float64 [..., n]`` by zero-padding (or cutting) the spectrum: ideal
    band-limited interpolation, so 16 kHz audio raised to 32 kHz has nothing above 8 kHz."""
    m = samples.shape[-1]
    spectrum = np.fft.rfft(np.asarray(samples, np.float64), axis=-1)
    out = np.zeros(samples.shape[:-1] + (n // 2 + 1,), complex)
    k = min(spectrum.shape[-1], out.shape[-1])
    out[..., :k] = spectrum[..., :k]
    if m % 2 == 0 and n > m:
        out[..., m // 2] *= 0.5  # the old Nyquist bin is shared by +-f after upsampling
    return np.fft.irfft(out, n, axis=-1) * (n / m)


def audioset_log_mel(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """EfficientAT's input for ``float32 [..., n]`` mono audio at ``sample_rate`` (raised to 32 kHz by
    :func:`resample_fft` first when lower): ``float32 [..., 128, 1 + (m - 1) // 320]``, ``m`` the
    32 kHz length (298 frames for 2.976 s). Equal (to float rounding) to its authors' PyTorch front end at
    inference (``AugmentMelSTFT`` in eval mode: a reflect-padded, centred ``torch.stft``)."""
    samples = np.asarray(samples, np.float32)
    rows = samples.reshape(-1, samples.shape[-1])
    m = int(round(rows.shape[-1] * AUDIOSET_RATE / sample_rate))
    # The 800-sample window sits centred in each 1024-sample frame, zeros either side: only those 800 samples
    # are taken and the FFT pads them to 1024 at the end instead, which shifts each frame in time and so
    # changes every bin's phase, never its power.
    offset = (AUDIOSET_N_FFT - AUDIOSET_WINDOW) // 2  # 112
    half = AUDIOSET_N_FFT // 2
    window = _symmetric_hann(AUDIOSET_WINDOW)
    banks = kaldi_bands()
    out = np.empty((len(rows), AUDIOSET_MELS, 1 + (m - 1) // AUDIOSET_HOP), np.float32)
    for i, row in enumerate(rows):  # one signal at a time, as log_mel
        x = resample_fft(row, m) if m != len(row) else row.astype(np.float64)
        x = x[1:] - 0.97 * x[:-1]
        x = np.concatenate([x[half:0:-1], x, x[-2 : -half - 2 : -1]])  # np.pad(x, half, "reflect"), 8x faster
        frames = np.lib.stride_tricks.sliding_window_view(x, AUDIOSET_N_FFT)[::AUDIOSET_HOP, offset : offset + AUDIOSET_WINDOW]
        spectrum = np.fft.rfft(frames * window, n=AUDIOSET_N_FFT, axis=-1)
        mel = banks.apply(spectrum.real**2 + spectrum.imag**2)
        out[i] = ((np.log(mel + 1e-5) + 4.5) / 5.0).T
    return out.reshape(samples.shape[:-1] + out.shape[1:])


@lru_cache(maxsize=2)
def _symmetric_hann(n: int) -> np.ndarray:
    """Symmetric Hann window ``float64 [n]`` (``torch.hann_window(n, periodic=False)``)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / (n - 1))


@lru_cache(maxsize=1)
def kaldi_bands() -> MelBands:
    """:func:`kaldi_mel_banks` (EfficientAT's) as :class:`MelBands`, built once."""
    return MelBands.of(kaldi_mel_banks())


@lru_cache(maxsize=1)
def yamnet_mel_matrix() -> np.ndarray:
    """YAMNet's mel filters, ``float64 [257, 64]`` (FFT bins, bands): ``tf.signal.linear_to_mel_weight_matrix(64,
    257, 16000, 125, 7500)`` rebuilt in NumPy (HTK mel, triangles of peak 1, the DC bin's row 0)."""
    bins = YAMNET_N_FFT // 2 + 1
    hz = np.linspace(0.0, YAMNET_RATE / 2.0, bins)[1:]
    mel = _kaldi_mel(hz)[:, None]  # 1127 ln(1 + f / 700): HTK's mel, as tf.signal's
    edges = np.linspace(_kaldi_mel(YAMNET_FMIN), _kaldi_mel(YAMNET_FMAX), YAMNET_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((mel - lower) / (center - lower), (upper - mel) / (upper - center)))
    return np.pad(weights, ((1, 0), (0, 0)))


def yamnet_log_mel(samples: np.ndarray) -> np.ndarray:
    """YAMNet's front end (``research/audioset/yamnet/features.py``) for ``float32 [..., n]`` mono 16 kHz audio
    in [-1, 1], scaled by :data:`~genretag.config.YAMNET_GAIN` first: ``log(|STFT| @ mel + 0.001)`` with 25 ms
    periodic-Hann frames every 10 ms, no padding, a 512-point FFT. Returns ``float32 [..., 1 + (n - 400) // 160,
    64]`` (frames, bands: YAMNet's own layout; 298 frames for 3 s). Matches ``tf.signal.stft`` and its mel
    matrix within 2e-3 on real clips (float32 rounding in tf.signal; ``tools/convert_yamnet.py``)."""
    samples = np.asarray(samples, np.float32)
    rows = samples.reshape(-1, samples.shape[-1])
    n_frames = 1 + (rows.shape[-1] - YAMNET_WINDOW) // YAMNET_HOP
    if n_frames < 1:
        raise ValueError(f"YAMNet needs at least {YAMNET_WINDOW} samples, got {rows.shape[-1]}")
    window, to_mel = hann(YAMNET_WINDOW), yamnet_mel_matrix()
    out = np.empty((len(rows), n_frames, YAMNET_MELS), np.float32)
    for i, row in enumerate(rows):  # one signal at a time, as log_mel
        frames = np.lib.stride_tricks.sliding_window_view(row.astype(np.float64) * YAMNET_GAIN, YAMNET_WINDOW)
        out[i] = np.log(np.abs(np.fft.rfft(frames[::YAMNET_HOP] * window, YAMNET_N_FFT)) @ to_mel + 0.001)
    return out.reshape(samples.shape[:-1] + out.shape[1:])


def yamnet_patches(logmel: np.ndarray) -> np.ndarray:
    """``float32 [..., t, 64]`` -> ``float32 [..., k, 96, 64]``: YAMNet's patches of 0.96 s every 0.48 s,
    ``k = 1 + (t - 96) // 48`` (5 for a 3-s window's 298 frames)."""
    k = 1 + (logmel.shape[-2] - YAMNET_PATCH_FRAMES) // YAMNET_PATCH_HOP
    if k < 1:
        raise ValueError(f"a YAMNet patch needs {YAMNET_PATCH_FRAMES} frames, got {logmel.shape[-2]}")
    return np.stack([logmel[..., j * YAMNET_PATCH_HOP : j * YAMNET_PATCH_HOP + YAMNET_PATCH_FRAMES, :]
                     for j in range(k)], axis=-3)


def finish_track(db: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Clip and normalise all of one track's log-mel values together.

    ``db``: ``float32 [..., n_mels, t]`` from :func:`log_mel`, every window (or
    the whole clip) of ONE track. In dB, values below the track's maximum minus
    ``top_db`` are raised to that floor; ``normalize == "level"`` (``logc``) applies
    the gain that gives the track a mean of ``LEVEL_TARGET``; with ``normalize == "track"`` the result is shifted
    and scaled to zero mean and unit variance over the whole track. Returns a
    new ``float32`` array of the same shape.
    """
    clip = config.top_db and config.scale == "db"
    out = np.maximum(db, db.max() - config.top_db) if clip else db.copy()
    if config.normalize == "track":
        out = (out - out.mean()) / max(float(out.std()), 1e-3)
    elif config.normalize == "level":
        out = level_logc(out, LEVEL_TARGET)
    elif config.normalize != "none":
        raise ValueError(f"unknown normalisation {config.normalize!r}")
    return out.astype(np.float32)


def level_logc(logc: np.ndarray, target: float, *, max_db: float = 40.0) -> np.ndarray:
    """Apply the one gain (at most +-``max_db`` dB) that brings the mean of ``logc``
    values (``log10(1 + 10000 * power)``) to ``target``.

    A gain on the audio multiplies the mel power; the mean of the compressed
    values is an increasing convex function of the log gain ``c`` (a mean of
    softplus curves), so Newton's method from ``c = 0`` finds it in a few steps.
    The result is the same for a recording played at any level (within the bound).
    """
    # float32 values (means summed in float64): twice as fast as float64, the same result to ~1e-5
    power = np.power(np.float32(10.0), np.asarray(logc, np.float32)) - np.float32(1.0)  # = 10000 * mel power
    bound = max_db / 10.0  # log10 of the power gain
    c = 0.0
    for _ in range(30):
        scaled = power * np.float32(10.0**c)
        miss = float(np.log10(1.0 + scaled).mean(dtype=np.float64)) - target
        if abs(miss) < 1e-6 or (c == bound and miss < 0) or (c == -bound and miss > 0):
            break  # on target, or at the bound on the side that can't get closer
        slope = float((scaled / (1.0 + scaled)).mean(dtype=np.float64))  # d mean / d c
        c = float(np.clip(c - miss / max(slope, 1e-6), -bound, bound))
    return np.log10(1.0 + power * np.float32(10.0**c)).astype(np.float32)


def logc_gain(logc: np.ndarray, db: np.ndarray | float) -> np.ndarray:
    """``logc`` values of the same audio played ``db`` louder (power gain ``10**(db/10)``)."""
    power = np.power(10.0, logc.astype(np.float64)) - 1.0
    return np.log10(1.0 + power * np.power(10.0, np.asarray(db) / 10.0)).astype(np.float32)


def track_windows(segments: np.ndarray, config: FeatureConfig, *, wide: np.ndarray | None = None) -> np.ndarray:
    """Model input for one track from its decoded segments.

    ``segments``: ``float32 [k, m]`` (m <= window_samples is looped to fill).
    Returns ``float32 [k, n_mels, n_frames]``, finished per track; with ``config.audioset_rate``,
    ``float32 [k, *config.patch_shape]``: EfficientAT's log-mel of ``wide`` (the same segments at
    ``audioset_rate``) stacked beneath, at the level it was decoded (AudioSet's clips were not levelled:
    giving it musicnn's level as well made the fused model right less often on every source checked,
    e.g. 22 instead of 24 of 40 wesnoth songs Classical; docs/model-card.md); with ``config.yamnet_rate``,
    YAMNet's log-mel of ``segments`` (bands first, as decoded) beneath that: in every window, or with
    ``config.yamnet_windows`` only in the windows :func:`track_picks` names (zeros in the others). The same for
    EfficientAT's rows with ``config.audioset_windows`` (a track-level EfficientAT: its log-mel, the costly part,
    is computed for those windows only).
    """
    segments = fit_length(segments, config.window_samples)
    mel = log_mel(segments, config)
    if not config.audioset_rate and not config.yamnet_rate:
        return finish_track(mel, config)
    out = np.zeros((len(segments),) + config.patch_shape, np.float32)
    out[:, : config.n_mels, : config.n_frames] = finish_track(mel, config)
    if config.audioset_rate:
        if wide is None:
            raise ValueError("a config with audioset_rate needs the segments at that rate too")
        wide = fit_length(wide, int(round(config.window_seconds * config.audioset_rate)))
        picked = track_picks(len(segments), config.audioset_windows) if config.audioset_windows else slice(None)
        out[picked, config.n_mels : config.n_mels + AUDIOSET_MELS, : config.audioset_frames] = audioset_log_mel(
            wide[picked], config.audioset_rate)
    if config.yamnet_rate:
        rows = slice(config.yamnet_row, config.yamnet_row + YAMNET_MELS)
        picked = track_picks(len(segments), config.yamnet_windows) if config.yamnet_windows else slice(None)
        out[picked, rows, : config.yamnet_frames] = yamnet_log_mel(segments[picked]).transpose(0, 2, 1)
    return out


def track_picks(n: int, k: int) -> list[int]:
    """Which of a track's ``n`` windows a track-level expert hears (:attr:`FeatureConfig.yamnet_windows` or
    :attr:`FeatureConfig.audioset_windows` ``k``): the centre window of each of ``k`` equal parts, at most ``n``
    (n 8: k 1 -> 4; 2 -> 2, 6; 3 -> 1, 4, 6; 4 -> 1, 3, 5, 7; n 7, k 2: 1, 5; n 1: 0). Only those windows carry
    the expert's log-mel; the others' rows stay zero."""
    return sorted({min(n - 1, int(n * (i + 0.5) / k)) for i in range(k)})


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level of ``samples`` in dB relative to full scale (-inf-safe: floor -200)."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return 20.0 * np.log10(max(rms, 1e-10))


def eval_windows(mel: np.ndarray, duration: float, *, config: FeatureConfig, starts_s: np.ndarray) -> np.ndarray:
    """The windows scan would cut, taken from a whole-clip mel.

    ``starts_s``: window starts in seconds relative to the clip's start.
    Returns ``float32 [k, n_mels, n_frames]``.
    """
    n = config.n_frames
    frames_per_s = config.sample_rate / config.hop_length
    out = np.empty((len(starts_s), mel.shape[0], n), np.float32)
    for i, s in enumerate(starts_s):
        start = int(min(max(0, round(s * frames_per_s)), max(0, mel.shape[1] - n)))
        w = mel[:, start : start + n]
        if w.shape[1] < n:  # a clip shorter than a window was looped when cached; guard anyway
            w = np.pad(w, ((0, 0), (0, n - w.shape[1])), mode="wrap")
        out[i] = w
    return out
