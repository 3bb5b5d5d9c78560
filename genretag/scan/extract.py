"""One file in, model-ready windows out: the stage the decode workers run.

Never raises: every failure becomes a :class:`TrackFeatures` with status
``error`` and a one-line reason, so a bad file cannot stop a batch. Imports no
TensorFlow (workers stay light).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from genretag.config import FeatureConfig, WindowPolicy
from genretag.errors import GenretagError, describe
from genretag.files import Identity
from genretag.tags import TagState

TrackStatus = Literal["ok", "skipped", "kept", "silent", "error"]
"""``ok`` (windows ready), ``skipped`` (already tagged by this model), ``kept`` (has a genre it keeps; asked not
to decode it), ``silent`` (no audible signal), or ``error``. A :class:`~genretag.scan.decide.ScanResult`'s
:data:`~genretag.scan.decide.Status` is made from it (``error`` becomes ``failed``)."""


@dataclass(frozen=True)
class TrackFeatures:
    """A decoded track, or why it was not decoded."""

    path: Path
    status: TrackStatus
    windows: np.ndarray | None = None
    """``float32 [k, n_mels, n_frames]`` when status is ``ok``."""
    duration: float = 0.0
    """Seconds, from the file's header."""
    genres: tuple[str, ...] = ()
    """Genre tags the file had before the scan."""
    provenance: str | None = None
    error: str | None = None
    """One-line reason when status is ``error`` (or a tag-read problem)."""
    identity: Identity | None = None
    """Size and modification time of the file when it was opened (for the prediction store)."""
    tags: TagState | None = None
    """Everything read from the file's tags (genre fields, album, artist...); None if unreadable."""


def extract_track(
    path: Path,
    *,
    config: FeatureConfig,
    policy: WindowPolicy,
    skip_if_tagged_by: str | None = None,
    skip_if_genre: bool = False,
) -> TrackFeatures:
    """Read tags, then decode only the windows the policy asks for.

    ``skip_if_tagged_by``: a model id; a file whose provenance tag equals it is
    returned as ``skipped`` without decoding. ``skip_if_genre``: a file whose genre
    field has a value and no provenance tag (a genre genretag did not write) is
    returned as ``kept`` without decoding (:attr:`~genretag.config.ScanOptions.predict_kept_files`).
    """
    from genretag.audio import load_segments, probe, resample
    from genretag.features import rms_dbfs, track_windows, window_starts
    from genretag.tags import read_tags

    path = Path(path)
    found = Identity.of(path)
    result = functools.partial(TrackFeatures, path, identity=found)
    genres: tuple[str, ...] = ()
    provenance = tag_error = None
    try:
        state = read_tags(path)
        genres, provenance = state.genres, state.provenance
        result = functools.partial(result, tags=state)
    except GenretagError as exc:
        tag_error = f"unreadable tags: {exc.reason.removeprefix('unsupported or unreadable tags: ')}"
    if skip_if_tagged_by is not None and provenance == skip_if_tagged_by:
        return result("skipped", genres=genres, provenance=provenance)
    if skip_if_genre and tag_error is None and genres and provenance is None:
        return result("kept", genres=genres)
    try:
        info = probe(path)
        if info.duration < policy.min_seconds:
            return result("error", duration=info.duration, genres=genres, provenance=provenance,
                          error=f"too short ({info.duration:.2f} s; needs at least {policy.min_seconds:g} s)")
        starts = window_starts(info.duration, config=config, policy=policy)
        rate = config.audioset_rate or config.sample_rate  # decoded once, at the higher rate a model needs
        wide = load_segments(path, starts, seconds=config.window_seconds, sample_rate=rate, info=info)
        segments = wide if rate == config.sample_rate else resample(wide, rate, config.sample_rate)
        usable = segments[:, : int(round(min(info.duration, config.window_seconds) * config.sample_rate))]
        if usable.size == 0 or rms_dbfs(usable) < policy.silence_dbfs:
            return result("silent", duration=info.duration, genres=genres, provenance=provenance, error=tag_error)
        if info.duration < config.window_seconds:  # looped to a full window, not zero-padded
            segments = usable
            wide = wide[:, : int(round(min(info.duration, config.window_seconds) * rate))]
        windows = track_windows(segments, config, wide=wide if config.audioset_rate else None)
    except GenretagError as exc:
        return result("error", genres=genres, provenance=provenance, error=exc.reason)
    except Exception as exc:  # noqa: BLE001 - a worker must turn every failure into a result
        return result("error", genres=genres, provenance=provenance,
                      error=f"decode failed: {describe(exc, with_type=True)}")
    return result("ok", windows=windows, duration=info.duration, genres=genres, provenance=provenance,
                  error=tag_error)
