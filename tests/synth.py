"""Seeded synthetic audio for tests, written in every container genretag reads.

Nothing here reads the corpus; real clips come from ``../shared/corpus``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

CONTAINERS = ("mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff", "wma")
"""Every container the tag and decode tests cover."""

CLASS_BANDS = {
    "Low": (80.0, 300.0),
    "Mid": (600.0, 1_500.0),
    "High": (3_000.0, 7_000.0),
}
"""Synthetic 'genres': tone clusters and click rates that a tiny model separates."""


def tone_mix(label: str, *, seconds: float = 4.0, sr: int = 22_050, seed: int = 0) -> np.ndarray:
    """A separable synthetic clip of class ``label``.

    Returns ``float32 [n]`` in [-1, 1]: a few random partials inside the
    class's band, amplitude-modulated at a class-specific rate, plus noise.
    """
    rng = np.random.default_rng(seed)
    lo, hi = CLASS_BANDS[label]
    n = int(seconds * sr)
    t = np.arange(n) / sr
    y = np.zeros(n)
    for f in rng.uniform(lo, hi, size=4):
        y += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    rate = {"Low": 2.0, "Mid": 5.0, "High": 9.0}[label]
    y *= 0.6 + 0.4 * np.sin(2 * np.pi * rate * t)
    y += 0.05 * rng.standard_normal(n)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray, sr: int = 22_050) -> Path:
    """Write ``samples`` (``float32 [n]`` or ``[n, channels]``) in the container its suffix names.

    wav/flac/ogg/mp3/aiff/opus go through soundfile; m4a and wma through ffmpeg.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower().lstrip(".")
    if ext in ("wav", "flac", "aiff", "aif"):
        sf.write(path, samples, sr, format={"aif": "AIFF"}.get(ext, ext.upper()))
    elif ext == "ogg":
        sf.write(path, samples, sr, format="OGG", subtype="VORBIS")
    elif ext == "opus":
        data = _resample_48k(samples, sr)
        sf.write(path, data, 48_000, format="OGG", subtype="OPUS")
    elif ext == "mp3":
        sf.write(path, samples, sr, format="MP3", subtype="MPEG_LAYER_III")
    elif ext in ("m4a", "wma"):
        codec = ["-c:a", "aac", "-b:a", "96k"] if ext == "m4a" else ["-c:a", "wmav2", "-b:a", "96k"]
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "in.wav"
            sf.write(wav, samples, sr)
            subprocess.run(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), *codec, str(path)],
                check=True,
            )
    else:
        raise ValueError(f"unknown container {ext!r}")
    return path


def _resample_48k(samples: np.ndarray, sr: int) -> np.ndarray:
    import soxr

    return soxr.resample(samples, sr, 48_000).astype(np.float32)


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None
