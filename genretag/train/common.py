"""Types the fit loops and :func:`genretag.train.train` share (kept apart so neither imports the other)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genretag.datasets import Track

CHECKPOINT_DIR = "checkpoint"

Progress = Callable[[str, dict[str, Any]], None]
"""``on_event(kind, info)``: ``features`` (done, total), ``embedding`` (done, total: musicnn),
``epoch`` (epoch, epochs, best_epoch, and the epoch's logs), ``stage`` (name: what runs after the last epoch)."""


@dataclass(frozen=True)
class SplitData:
    """One split's decoded tracks."""

    tracks: tuple[Track, ...]
    mels: tuple[np.ndarray, ...]
    """Whole-clip log-mels the networks trained from scratch crop from; empty for ``musicnn`` (it reads ``windows``)."""
    durations: np.ndarray
    y: np.ndarray
    windows: tuple[np.ndarray, ...] | None = None
    """Each track's windows as scan cuts them (:func:`~genretag.train.featurecache.load_scan_windows`):
    what evaluation judges, and what the musicnn head trains on."""


@dataclass(frozen=True)
class PartialData:
    """Decoded tracks with partial labels (:mod:`genretag.datasets.partial`)."""

    masks: np.ndarray
    """``float32 [n, n_labels]``: 1 for each genre the track may be."""
    windows: tuple[np.ndarray, ...]
    """Each track's windows as scan cuts them (as :attr:`SplitData.windows`)."""


@dataclass(frozen=True)
class Fitted:
    """What a fitting routine hands back to :func:`train`."""

    classifier: Any
    weights: Path
    params: int
    epochs_run: int
    """Epochs in all, counting those before a ``--resume``."""
    best_epoch: int
    windows_seen: int
    """Training windows this run (not before a resume)."""
    epochs_trained: int = 1
    """Epochs this run trained (for seconds per epoch)."""
