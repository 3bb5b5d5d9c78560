"""The prediction store's rows as Python values, and back: :class:`Entry` (a file's prediction by one model),
:class:`Review` (what a person decided), :class:`StoredFeatures` (``genretag learn``'s features).

A row that is not what genretag writes (a damaged or hand-edited store) is a ValueError or TypeError here;
the store takes such a row for no row.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, get_args

import numpy as np

from genretag.files import Identity
from genretag.tags import TagState


class Result(Protocol):
    """What the store records of a scan result (a :class:`genretag.scan.ScanResult` is one)."""

    path: Path
    status: str
    prediction: object | None
    """A :class:`genretag.scan.Prediction` (``labels``, ``probabilities``, ``windows``, ``styles``,
    ``style_scores``, ``music``), or None."""
    previous: tuple[str, ...]
    provenance: str | None
    error: str | None
    tags: TagState | None


@dataclass(frozen=True)
class Entry:
    """One stored row."""

    path: Path
    model: str
    identity: Identity
    status: StoredStatus
    """``predicted``, ``not-music``, ``silent``, ``failed`` or ``kept``."""
    labels: tuple[str, ...]
    probabilities: np.ndarray | None
    """``float32 [n_classes]``; None unless ``predicted`` or ``not-music``."""
    windows: int
    previous: tuple[str, ...]
    provenance: str | None
    error: str | None
    tags: TagState | None
    outcome: str | None
    updated: float
    styles: tuple[str, ...] = ()
    """The model's style names; empty: it has none (or the row predates schema 2)."""
    style_scores: np.ndarray | None = None
    """``float32 [n_styles]`` in ``styles`` order; None unless ``predicted`` by a model with styles."""
    music: float | None = None
    """The track's music score; None unless predicted by a model with one (or the row predates schema 6)."""


@dataclass(frozen=True)
class Review:
    """A decision a person made for one file (see :meth:`~genretag.store.Store.review`)."""

    path: Path
    field: str
    genres: tuple[str, ...]
    """Empty: leave the file alone."""
    model: str | None
    updated: float


@dataclass(frozen=True)
class StoredFeatures:
    """A track's features as ``genretag learn`` recorded them (see :meth:`~genretag.store.Store.put_features`)."""

    status: str
    """``ok``, ``silent`` or ``failed``."""
    vector: np.ndarray | None
    """``float32 [d]`` (stored as float16) when ``ok``."""
    windows: int
    error: str | None


def path_key(path: str | Path) -> bytes:
    """What a row is keyed by: the file's absolute path as bytes (any file name)."""
    return os.fsencode(os.path.abspath(path))


def tags_json(tags: TagState | None) -> str | None:
    """The tags read from a file, as a row keeps them."""
    return None if tags is None else json.dumps(dataclasses.asdict(tags))


StoredStatus = Literal["predicted", "not-music", "silent", "failed", "kept"]
"""The statuses a row may hold (stored as text)."""
STATUSES: tuple[str, ...] = get_args(StoredStatus)


def as_text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a text, got {type(value).__name__}")
    return value


def as_texts(raw: object) -> tuple[str, ...]:
    """A JSON list of texts; ValueError or TypeError for anything else."""
    value = json.loads(as_text(raw))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a JSON list of texts")
    return tuple(value)


def as_integer(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _scores(blob: object, names: tuple[str, ...]) -> np.ndarray:
    """A float32 blob with one finite value per name."""
    if not isinstance(blob, bytes) or len(blob) != 4 * len(names):
        raise ValueError(f"a scores blob that is not {len(names)} float32 values")
    scores = np.frombuffer(blob, "<f4").astype(np.float32)
    if not np.all(np.isfinite(scores)):
        raise ValueError("a score that is not a finite number")
    return scores


def _tags_of(raw: str | None) -> TagState | None:
    if not raw:
        return None
    data = json.loads(as_text(raw))
    if not isinstance(data, dict):
        raise TypeError("tags: expected a JSON object")
    tags = TagState(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    for name in ("genres", "own_genres", "ape_genres", "placeholders", "provenance_values"):
        if not all(isinstance(v, str) for v in getattr(tags, name)):
            raise TypeError(f"tags: {name} must be texts")
    for name in ("provenance", "album", "artist", "album_artist"):
        if getattr(tags, name) is not None:
            as_text(getattr(tags, name))
    return tags


def entry_of(row: tuple) -> Entry:
    """A row as an :class:`Entry`; ValueError or TypeError when it is malformed (a damaged or hand-edited
    store): probabilities that are not one float32 per label, JSON that is not what genretag writes."""
    (path, model, size, mtime_ns, status, labels, probs, windows, previous, provenance, error, tags, outcome,
     updated, styles, scores, ctime_ns, inode, music) = row
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    names = as_texts(labels) if labels else ()
    probabilities = _scores(probs, names) if probs is not None else None
    if (probabilities is None or not names) and status in ("predicted", "not-music"):
        raise ValueError("a prediction without probabilities")
    if music is not None and (isinstance(music, bool) or not isinstance(music, (int, float))
                              or not 0.0 <= music <= 1.0):
        raise ValueError(f"a music score that is not a number from 0 to 1: {music!r}")
    style_names = as_texts(styles) if styles and scores is not None else ()
    return Entry(
        path=Path(os.fsdecode(path)), model=as_text(model),
        identity=Identity(as_integer(size), as_integer(mtime_ns),
                          ctime_ns if ctime_ns is None else as_integer(ctime_ns),
                          inode if inode is None else as_integer(inode)),
        status=status, labels=names, probabilities=probabilities,
        windows=int(windows or 0), previous=as_texts(previous),
        provenance=provenance if provenance is None else as_text(provenance),
        error=error if error is None else as_text(error),
        tags=_tags_of(tags), outcome=outcome if outcome is None else as_text(outcome), updated=float(updated),
        styles=style_names,
        style_scores=_scores(scores, style_names) if style_names else None,
        music=None if music is None else float(music),
    )
