"""Training windows and augmentation, in NumPy (backend-independent).

Windows are cropped at random from each track's cached whole-clip log-mel.
The study's audio-domain augmentations are done on the mel spectrogram, which
is equivalent for these features and costs nothing per epoch:

- ``crops``: a new random 3-s crop of the clip every time (else the middle one).
- ``stretch``: time stretch by a factor in [0.9, 1.1] (crop more or fewer frames, resample to n_frames).
- ``pitch``: pitch shift by up to +-2 semitones (resample the mel axis on the Hz scale).
- ``specaugment``: two frequency masks (<= 12 bands) and two time masks (<= 12 frames).
- ``tilt``: a random spectral tilt (+-0.5 std from lowest to highest band), as a
  different microphone, mix or mastering EQ would give.
- ``mixup``: convex mixes of pairs of windows and their labels (:func:`mixup`,
  ``TrainConfig.mixup_alpha``).
- ``balance``: draw tracks class-balanced rather than in proportion.
- ``gain`` (``--model musicnn`` only): each window played up to ``TrainConfig.gain_db``
  louder or quieter (:func:`random_gain`), before the pretrained network sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genretag.config import AUGMENTATIONS, FeatureConfig, TrainConfig
from genretag.features import logc_gain

__all__ = ["AUGMENTATIONS", "WindowSampler", "mel_hz", "mixup", "random_gain"]


def mel_hz(config: FeatureConfig) -> np.ndarray:
    """Centre frequencies (Hz) of the mel bands: ``float64 [n_mels]``."""
    import librosa

    return librosa.mel_frequencies(config.n_mels + 2, fmin=config.fmin,
                                   fmax=config.fmax or config.sample_rate / 2)[1:-1]


@dataclass
class WindowSampler:
    """Draws augmented training batches from whole-clip features."""

    mels: Sequence[np.ndarray]
    """Per track ``[n_mels, t]`` finished log-mel (t >= n_frames)."""
    labels: np.ndarray
    """``int [n_tracks]`` class index per track."""
    n_classes: int
    config: FeatureConfig
    augment: frozenset[str]
    seed: int = 0
    mixup_alpha: float = TrainConfig.mixup_alpha

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self._hz = mel_hz(self.config)
        self._by_class = [np.flatnonzero(self.labels == c) for c in range(self.n_classes)]

    def draw_tracks(self, n: int) -> np.ndarray:
        """``n`` track indices: class-balanced with ``balance``, else uniform."""
        if "balance" in self.augment:
            present = [idx for idx in self._by_class if len(idx)]
            classes = self.rng.integers(len(present), size=n)
            return np.array([present[c][self.rng.integers(len(present[c]))] for c in classes])
        return self.rng.integers(len(self.mels), size=n)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(float32 [size, n_mels, n_frames], float32 [size, n_classes])``."""
        tracks = self.draw_tracks(size)
        x = np.stack([self.window(self.mels[t]) for t in tracks])
        y = np.eye(self.n_classes, dtype=np.float32)[self.labels[tracks]]
        if "mixup" in self.augment:
            x, y = mixup(self.rng, x, y, alpha=self.mixup_alpha)
        return x.astype(np.float32), y

    def window(self, mel: np.ndarray) -> np.ndarray:
        """One augmented ``float32 [n_mels, n_frames]`` window from a clip."""
        n = self.config.n_frames
        rate = self.rng.uniform(0.9, 1.1) if "stretch" in self.augment else 1.0
        span = min(mel.shape[1], max(2, int(round(n * rate))))
        if "crops" in self.augment:
            start = self.rng.integers(mel.shape[1] - span + 1)
        else:
            start = (mel.shape[1] - span) // 2
        w = mel[:, start : start + span].astype(np.float32)
        if span != n:
            w = _resample_axis(w, n, axis=1)
        if "pitch" in self.augment:
            w = self._pitch(w, self.rng.uniform(-2.0, 2.0))
        if "tilt" in self.augment:
            w = w + np.linspace(-1.0, 1.0, w.shape[0], dtype=np.float32)[:, None] * self.rng.uniform(-0.5, 0.5)
        if "specaugment" in self.augment:
            w = self._mask(w)
        return w

    def _pitch(self, w: np.ndarray, semitones: float) -> np.ndarray:
        """Shift by ``semitones``: the value at f comes from f / 2**(s/12)."""
        src = self._hz / 2.0 ** (semitones / 12.0)
        pos = np.interp(src, self._hz, np.arange(len(self._hz)))
        lo = np.clip(np.floor(pos).astype(int), 0, len(self._hz) - 1)
        hi = np.clip(lo + 1, 0, len(self._hz) - 1)
        frac = (pos - lo)[:, None].astype(np.float32)
        return (1 - frac) * w[lo] + frac * w[hi]

    def _mask(self, w: np.ndarray) -> np.ndarray:
        w = w.copy()
        fill = float(w.mean())
        for axis, size in ((0, w.shape[0]), (1, w.shape[1])):
            for _ in range(2):
                width = int(self.rng.integers(0, 13))
                start = int(self.rng.integers(0, max(1, size - width)))
                if axis == 0:
                    w[start : start + width] = fill
                else:
                    w[:, start : start + width] = fill
        return w


def mixup(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, *,
          alpha: float = TrainConfig.mixup_alpha) -> tuple[np.ndarray, np.ndarray]:
    """Each example mixed with a random partner from the batch (Zhang et al. 2018).

    ``x``: ``[n, ...]``, ``y``: ``float [n, n_classes]``. Example ``i`` becomes
    ``lam_i * x_i + (1 - lam_i) * x_p(i)`` (and its label likewise), ``lam`` from
    Beta(``alpha``, ``alpha``) folded into [0.5, 1] so the first of each pair dominates
    (a per-example weight or class stays the first one's). Same dtypes out.
    """
    lam, partner = _pairs(rng, len(x), alpha)
    lx = lam.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype)
    ly = lam[:, None].astype(y.dtype)
    return lx * x + (1 - lx) * x[partner], ly * y + (1 - ly) * y[partner]


def mixup_sets(rng: np.random.Generator, x: np.ndarray, masks: np.ndarray, *,
               alpha: float = TrainConfig.mixup_alpha) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mixup` for partial labels: ``masks`` ``float [n, C]`` (1 for each class a track may be);
    returns the mixed ``x`` and ``float [n, 2C]``: ``lam_i * mask_i`` then ``(1 - lam_i) * mask_p(i)``, the
    two sets kept apart for :func:`genretag.train.transferfit.set_loss`."""
    lam, partner = _pairs(rng, len(x), alpha)
    lx = lam.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype)
    ly = lam[:, None].astype(masks.dtype)
    return lx * x + (1 - lx) * x[partner], np.concatenate([ly * masks, (1 - ly) * masks[partner]], axis=1)


def _pairs(rng: np.random.Generator, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Mixing weights from Beta(alpha, alpha) folded into [0.5, 1], and a random partner for each example."""
    lam = rng.beta(alpha, alpha, size=n)
    return np.maximum(lam, 1 - lam), rng.permutation(n)


def random_gain(rng: np.random.Generator, windows: np.ndarray, *, max_db: float) -> np.ndarray:
    """``logc`` windows ``float32 [n, n_mels, n_frames]``, each played at its own random
    gain in +-``max_db`` dB (uniform): an exact level change of the audio (:func:`logc_gain`)."""
    return logc_gain(windows, rng.uniform(-max_db, max_db, size=(len(windows), 1, 1)))


def _resample_axis(x: np.ndarray, n: int, *, axis: int) -> np.ndarray:
    """Linear interpolation of ``x`` to length ``n`` along ``axis``."""
    m = x.shape[axis]
    pos = np.linspace(0, m - 1, n)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, m - 1)
    frac = (pos - lo).astype(np.float32)
    a, b = np.take(x, lo, axis=axis), np.take(x, hi, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = n
    return a + (b - a) * frac.reshape(shape)
