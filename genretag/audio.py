"""Decode audio: only the parts the windows need, as float32 mono at a given rate.

libsndfile (through soundfile) reads wav, flac, ogg/opus, mp3 and aiff and can
seek; ffmpeg handles the rest (m4a/aac, wma) with input seeking, and MPEG audio
inside a WAV (libsndfile's mpg123 path reads past the ``data`` chunk into any
chunk after it, such as the ``id3 `` chunk a tag writer adds). No TensorFlow.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genretag.errors import DecodeError, describe, os_reason

FFMPEG_HINT = "install ffmpeg (e.g. 'apt-get install ffmpeg' or 'brew install ffmpeg') to read this format"
"""Appended to errors about containers only ffmpeg can decode."""
_FFMPEG_WAV_TAGS = frozenset({0x0050, 0x0055})
"""WAV format tags sent to ffmpeg: MPEG (layer 1/2) and MPEG layer 3."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header."""

    duration: float
    """Seconds."""
    sample_rate: int
    channels: int
    backend: str
    """``soundfile`` or ``ffmpeg``: which decoder reads it."""


def probe(path: str | Path) -> AudioInfo:
    """Read duration, rate and channels without decoding the audio.

    Raises :class:`DecodeError` naming the file when neither decoder can read it.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if not fh.read(16):
                raise DecodeError("empty file (0 bytes)", path)
        wav_tag = _wav_format_tag(path)
    except OSError as exc:
        raise DecodeError(os_reason(exc), path) from exc
    if wav_tag in _FFMPEG_WAV_TAGS:
        return _probe_ffmpeg(path)
    try:
        import soundfile as sf

        info = sf.info(os.fsencode(path))  # bytes: any file name, UTF-8 or not
        if info.frames > 0 and info.samplerate > 0:
            return AudioInfo(info.frames / info.samplerate, int(info.samplerate), int(info.channels), "soundfile")
    except (RuntimeError, ValueError, OSError):
        pass  # not a libsndfile format (or a broken one): ffmpeg decides
    return _probe_ffmpeg(path)


def _wav_format_tag(path: Path, *, limit: int = 65_536) -> int | None:
    """The format tag of a RIFF WAVE's ``fmt `` chunk within its first ``limit`` bytes; None if not a WAV."""
    with open(path, "rb") as fh:
        data = fh.read(limit)
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 10 <= len(data):
        name, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if name == b"fmt ":
            return struct.unpack_from("<H", data, pos + 8)[0]
        pos += 8 + size + (size & 1)
    return None


def load_segments(
    path: str | Path,
    starts: Sequence[float],
    *,
    seconds: float,
    sample_rate: int,
    info: AudioInfo | None = None,
) -> np.ndarray:
    """Decode ``len(starts)`` segments of ``seconds`` each.

    Returns ``float32 [len(starts), round(seconds * sample_rate)]``: mono,
    resampled to ``sample_rate``. A segment running past the end of the file is
    zero-padded. When the segments cover most of the span between the first
    start and the last end, that span is read once; otherwise each segment is
    read with a seek, so a long track costs about what a short one does.
    """
    path = Path(path)
    info = info or probe(path)
    n_out = int(round(seconds * sample_rate))
    starts = [max(0.0, float(s)) for s in starts]
    if not starts:
        return np.zeros((0, n_out), np.float32)
    span = (min(starts), max(starts) + seconds)
    if len(starts) * seconds >= 0.5 * (span[1] - span[0]):
        (whole,) = _read(path, info, [(span[0], span[1] - span[0])], sample_rate)
        pieces = [whole[int(round((s - span[0]) * sample_rate)):][:n_out] for s in starts]
    else:
        pieces = _read(path, info, [(s, seconds) for s in starts], sample_rate)
    out = np.zeros((len(pieces), n_out), np.float32)
    for row, piece in zip(out, pieces):
        row[: len(piece)] = piece[:n_out]
    return out


def load_audio(
    path: str | Path,
    *,
    sample_rate: int,
    offset: float = 0.0,
    duration: float | None = None,
    info: AudioInfo | None = None,
) -> np.ndarray:
    """Decode ``duration`` seconds from ``offset`` (all of it when None).

    Returns ``float32 [n]`` mono at ``sample_rate``; shorter when the file ends first.
    """
    path = Path(path)
    info = info or probe(path)
    if duration is None:
        duration = max(0.0, info.duration - offset)
    return _read(path, info, [(offset, duration)], sample_rate)[0]


def _read(path: Path, info: AudioInfo, spans: Sequence[tuple[float, float]], sample_rate: int) -> list[np.ndarray]:
    """Decode ``(offset, seconds)`` spans -> mono ``float32`` arrays at ``sample_rate``."""
    if info.backend == "soundfile":
        try:
            return _read_soundfile(path, info, spans, sample_rate)
        except DecodeError as exc:
            return _fallback_ffmpeg(path, spans, sample_rate, exc)
    return [_read_ffmpeg(path, offset, seconds, sample_rate) for offset, seconds in spans]


def _fallback_ffmpeg(path: Path, spans: Sequence[tuple[float, float]], sample_rate: int,
                     failed: DecodeError) -> list[np.ndarray]:
    """The spans through ffmpeg after libsndfile gave up mid-file (its mpg123 stops at a damaged frame with
    "Unspecified internal error." where ffmpeg skips it and goes on): an mp3 either decodes is tagged. When
    ffmpeg is missing, fails too, or decodes nothing, the error says so in plain words. Other formats keep
    libsndfile's verdict."""
    if shutil.which("ffmpeg") is None or _soundfile_format(path) != "MP3":
        raise failed  # (a truncated FLAC stays an error: what libsndfile refuses there is refused)
    try:
        pieces = [_read_ffmpeg(path, offset, seconds, sample_rate) for offset, seconds in spans]
    except DecodeError:
        pieces = []
    if not any(len(piece) for piece in pieces):
        raise DecodeError("decode failed: the audio data is damaged (neither libsndfile nor ffmpeg decodes it)",
                          path) from failed
    return pieces


def _read_soundfile(path: Path, info: AudioInfo, spans: Sequence[tuple[float, float]], sample_rate: int) -> list[np.ndarray]:
    """All spans through one open file (opening an MP3 scans it: once per track, not per window)."""
    import soundfile as sf

    out = []
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            for offset, seconds in spans:
                start = int(round(offset * info.sample_rate))
                if start:
                    f.seek(min(start, max(0, f.frames - 1)) if f.frames > 0 else start)
                data = f.read(int(round(seconds * info.sample_rate)), dtype="float32", always_2d=True)
                out.append(_to_rate(downmix(data), info.sample_rate, sample_rate, path))
    except (RuntimeError, ValueError, OSError) as exc:
        raise DecodeError(f"decode failed: {describe(exc, path=path)}", path) from exc
    return out


def _soundfile_format(path: Path) -> str | None:
    import soundfile as sf

    try:
        return sf.info(os.fsencode(path)).format
    except (RuntimeError, ValueError, OSError):
        return None


def resample(segments: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """``float32 [k, n]`` at ``rate`` -> ``float32 [k, round(n * sample_rate / rate)]`` (soxr, HQ, as decoding
    resamples): a window decoded once serves two models' rates."""
    import soxr

    n = int(round(segments.shape[-1] * sample_rate / rate))
    out = np.zeros((len(segments), n), np.float32)
    for row, segment in zip(out, segments):
        done = soxr.resample(segment, rate, sample_rate, quality="HQ")[:n]
        row[: len(done)] = done
    return out


def _to_rate(mono: np.ndarray, rate: int, sample_rate: int, path: Path) -> np.ndarray:
    import soxr

    if not np.all(np.isfinite(mono)):
        raise DecodeError("decode failed: audio contains NaN or infinite samples", path)
    if rate != sample_rate and len(mono):
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def downmix(data: np.ndarray) -> np.ndarray:
    """``float32 [n, channels]`` -> ``float32 [n]``: the mean of the channels.

    Summing column by column is several times faster than ``data.mean(axis=1)``
    on interleaved frames.
    """
    mono = data[:, 0].copy()
    for ch in range(1, data.shape[1]):
        mono += data[:, ch]
    if data.shape[1] > 1:
        mono *= np.float32(1.0 / data.shape[1])
    return mono


def _ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise FileNotFoundError("ffmpeg")
    return exe


def _read_ffmpeg(path: Path, offset: float, seconds: float, sample_rate: int) -> np.ndarray:
    try:
        cmd = [_ffmpeg(), "-nostdin", "-v", "error", "-ss", f"{offset:.3f}", "-t", f"{seconds:.3f}",
               "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
        proc = subprocess.run(cmd, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise DecodeError(f"cannot decode {path.suffix or 'this file'}: {FFMPEG_HINT}", path) from exc
    if proc.returncode != 0:
        raise DecodeError(f"decode failed: {_last_line(proc.stderr, path)}", path)
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(samples)):
        raise DecodeError("decode failed: audio contains NaN or infinite samples", path)
    return samples


def _probe_ffmpeg(path: Path) -> AudioInfo:
    """Duration from mutagen (header only), rate and channels from ffprobe's stream info."""
    exe = shutil.which("ffprobe")
    if exe is None:
        raise DecodeError(f"not readable by libsndfile; {FFMPEG_HINT}", path)
    cmd = [exe, "-v", "error", "-select_streams", "a:0", "-show_entries",
           "stream=sample_rate,channels:format=duration", "-of", "default=noprint_wrappers=1", str(path)]
    proc = subprocess.run(cmd, capture_output=True, check=False, stdin=subprocess.DEVNULL)
    fields = dict(line.split("=", 1) for line in proc.stdout.decode(errors="replace").splitlines() if "=" in line)
    try:
        rate, channels = int(fields["sample_rate"]), int(fields["channels"])
        duration = float(fields["duration"])
    except (KeyError, ValueError) as exc:
        reason = _last_line(proc.stderr, path) if proc.stderr.strip() else "no audio stream found"
        raise DecodeError(f"not an audio file, or corrupt (ffprobe: {reason})", path) from exc
    if duration <= 0 or rate <= 0:
        raise DecodeError("decode failed: no audio in file", path)
    return AudioInfo(duration, rate, channels, "ffmpeg")


def _last_line(stderr: bytes, path: Path) -> str:
    """ffmpeg's last complaint, without the path it starts with (the error line names the file once)."""
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    line = lines[-1] if lines else "ffmpeg failed"
    for prefix in (f"{path}: ", f"{path.resolve()}: "):
        line = line.removeprefix(prefix)
    return line[:200]
