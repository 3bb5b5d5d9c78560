"""Whole-clip log-mel features for training and evaluation, cached on disk.

Each track becomes one ``[n_mels, t]`` log-mel array over (at most) the middle
``max_seconds`` of the clip, finished per track exactly as scan finishes its
windows (:func:`genretag.features.finish_track`). Training crops windows from
it; evaluation cuts the windows scan would cut. Extraction runs in the process
pool; the result is cached in one ``.npz`` keyed by the feature parameters and
the file list (path, size, mtime), so a second run decodes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genretag.config import FeatureConfig, default_jobs, user_folder
from genretag.errors import DecodeError
from genretag.files import replace_atomically
from genretag.scan.pool import run_pool

CACHE_VERSION = 1


@dataclass(frozen=True)
class ClipFeatures:
    """Cached features of a list of files, in the list's order."""

    paths: tuple[Path, ...]
    mels: tuple[np.ndarray | None, ...]
    """Per file ``float16 [n_mels, t]`` (finished log-mel), or None when it failed."""
    durations: np.ndarray
    """``float64 [n]``: seconds of audio the features cover."""
    errors: dict[Path, str]
    """Files that could not be decoded, with the reason."""
    from_cache: bool


def cache_dir_default() -> Path:
    return user_folder("cache") / "features"


def clip_mel(path: Path, *, config: FeatureConfig, max_seconds: float) -> tuple[np.ndarray, float]:
    """Decode the middle ``max_seconds`` of one file -> (``float16 [n_mels, t]``, seconds).

    Clips shorter than one window are looped to a full window. Raises DecodeError.
    """
    from genretag.audio import load_audio, probe
    from genretag.features import finish_track, fit_length, log_mel

    info = probe(path)
    offset = max(0.0, (info.duration - max_seconds) / 2)
    samples = load_audio(path, sample_rate=config.sample_rate, offset=offset,
                         duration=min(max_seconds, info.duration), info=info)
    if len(samples) < config.sample_rate // 2:
        raise DecodeError(f"too short ({len(samples) / config.sample_rate:.2f} s of audio)", path)
    seconds = len(samples) / config.sample_rate
    if len(samples) < config.window_samples:
        samples = fit_length(samples, config.window_samples)
    mel = finish_track(log_mel(samples, config), config)
    return mel.astype(np.float16), seconds


def _cache_key(paths: Sequence[Path], config: FeatureConfig, max_seconds: float) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"v": CACHE_VERSION, "features": config.to_dict(), "max_seconds": max_seconds},
                             sort_keys=True).encode())
    for p in paths:
        try:
            st = p.stat()
            digest.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{p}\0missing\n".encode())
    return digest.hexdigest()[:24]


def load_features(
    paths: Sequence[Path],
    *,
    config: FeatureConfig,
    max_seconds: float,
    cache_dir: Path | None = None,
    jobs: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ClipFeatures:
    """Features for ``paths`` from the cache, or extracted (and cached) now.

    ``on_progress(done, total)`` is called as files finish extracting.
    """
    paths = tuple(Path(p) for p in paths)
    cache_dir = cache_dir or cache_dir_default()
    cache_file = cache_dir / f"{_cache_key(paths, config, max_seconds)}.npz"
    if cache_file.is_file():
        cached = _read_cache(cache_file, paths)
        if cached is not None:
            return cached
    index = {p: i for i, p in enumerate(paths)}
    mels: list[np.ndarray | None] = [None] * len(paths)
    durations = np.zeros(len(paths))
    errors: dict[Path, str] = {}
    kwargs = {"config": config, "max_seconds": max_seconds}
    for done, outcome in enumerate(run_pool(_clip_mel_safe, paths, jobs=default_jobs() if jobs is None else jobs,
                                            timeout=300, kwargs=kwargs), start=1):
        i = index[outcome.item]
        if outcome.ok and isinstance(outcome.value, tuple):
            mels[i], durations[i] = outcome.value
        else:
            errors[outcome.item] = outcome.error or str(outcome.value)
        if on_progress is not None:
            on_progress(done, len(paths))
    result = ClipFeatures(paths, tuple(mels), durations, errors, from_cache=False)
    _write_cache(cache_file, result)
    return result


@dataclass(frozen=True)
class ScanWindows:
    """The windows scan itself cuts from each file (:func:`genretag.scan.extract_track`), in the list's order."""

    paths: tuple[Path, ...]
    windows: tuple[np.ndarray | None, ...]
    """Per file ``float16 [k, n_mels, n_frames]``, or None when scan could not use it."""
    errors: dict[Path, str]


def load_scan_windows(
    paths: Sequence[Path],
    *,
    config: FeatureConfig,
    windows: int,
    cache_dir: Path | None = None,
    jobs: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ScanWindows:
    """Each file's ``windows`` scan windows, decoded by scan's own worker (seeking to each window,
    one log-mel and one level per track as scan does), cached like :func:`load_features`.

    Training and evaluation on these see exactly what a scan sees; windows cut from a whole-clip
    log-mel (:func:`~genretag.features.eval_windows`) start a fraction of a hop apart and are brought
    to one level over the whole clip, which moved musicnn's track decisions by up to 0.18 in
    probability.
    """
    from genretag.config import WindowPolicy
    from genretag.scan.extract import extract_track

    paths = tuple(Path(p) for p in paths)
    cache_dir = cache_dir or cache_dir_default()
    cache_file = cache_dir / f"scan-w{windows}-{_cache_key(paths, config, float(windows))}.npz"
    if cache_file.is_file():
        cached = _read_cache(cache_file, paths)
        if cached is not None:
            return _as_windows(cached, config)
    mels: list[np.ndarray | None] = [None] * len(paths)
    counts = np.zeros(len(paths))
    errors: dict[Path, str] = {}
    index = {p: i for i, p in enumerate(paths)}
    kwargs = {"config": config, "policy": WindowPolicy(windows=windows)}
    for done, outcome in enumerate(run_pool(extract_track, paths, jobs=default_jobs() if jobs is None else jobs,
                                            timeout=300, kwargs=kwargs), start=1):
        track = outcome.value
        i = index[outcome.item]
        if outcome.ok and track is not None and track.status == "ok":
            w = track.windows.astype(np.float16)
            mels[i], counts[i] = np.concatenate(list(w), axis=1), len(w)  # [n_mels, k * n_frames]
        else:
            errors[outcome.item] = (outcome.error or (track.error if track is not None else None)
                                    or (track.status if track is not None else "failed"))
        if on_progress is not None:
            on_progress(done, len(paths))
    flat = ClipFeatures(paths, tuple(mels), counts, errors, from_cache=False)
    _write_cache(cache_file, flat)
    return _as_windows(flat, config)


def _as_windows(flat: ClipFeatures, config: FeatureConfig) -> ScanWindows:
    """The window cache's rows (windows laid side by side; ``durations`` holds the count) as windows."""
    out = []
    for mel, count in zip(flat.mels, flat.durations):
        out.append(None if mel is None else
                   np.stack(np.split(mel, int(count), axis=1)) if count else None)
    return ScanWindows(flat.paths, tuple(out), flat.errors)


def _clip_mel_safe(path: Path, **kwargs) -> tuple[np.ndarray, float] | str:
    """Worker entry: a DecodeError becomes its one-line reason (a str)."""
    try:
        return clip_mel(path, **kwargs)
    except DecodeError as exc:
        return exc.reason


def _write_cache(cache_file: Path, features: ClipFeatures) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    lengths = [0 if m is None else m.shape[1] for m in features.mels]
    n_mels = next((m.shape[0] for m in features.mels if m is not None), 0)
    flat = np.concatenate([m for m in features.mels if m is not None], axis=1) if any(lengths) else np.zeros((n_mels, 0), np.float16)
    errors = json.dumps({str(p): r for p, r in features.errors.items()})
    arrays = {"mels": flat, "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
              "paths": np.array([str(p) for p in features.paths]), "durations": features.durations,
              "errors": np.array(errors)}
    replace_atomically(cache_file, lambda fh: np.savez(fh, **arrays))


def _read_cache(cache_file: Path, paths: tuple[Path, ...]) -> ClipFeatures | None:
    try:
        with np.load(cache_file, allow_pickle=False) as data:
            if tuple(data["paths"].tolist()) != tuple(str(p) for p in paths):
                return None
            flat, offsets = data["mels"], data["offsets"]
            errors = {Path(p): r for p, r in json.loads(str(data["errors"])).items()}
            durations = data["durations"]
    except (OSError, ValueError, KeyError):
        return None  # a damaged cache is rebuilt, not trusted
    mels = tuple(None if Path(p) in errors or offsets[i] == offsets[i + 1] else flat[:, offsets[i]:offsets[i + 1]]
                 for i, p in enumerate(paths))
    return ClipFeatures(paths, mels, durations, errors, from_cache=True)
