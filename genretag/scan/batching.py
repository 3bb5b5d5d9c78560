"""Batch windows from many tracks through a classifier; average per track.

Windows from consecutive tracks are packed into fixed-size batches (a track's
windows may straddle two batches), so the model always sees full batches and
small tracks don't waste work. A track's prediction is the mean of its
windows' class probabilities (and, for a model with styles, of its windows' style scores; for one with a
music score, of its windows' music scores); a track-level expert (:mod:`genretag.models.track_experts`) hears
the picked windows of the tracks each batch completes and joins their genres after pooling.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genretag.models.runtime import Classifier, track_mean
from genretag.models.track_experts import TrackOpinion, track_opinions
from genretag.scan.extract import TrackFeatures


@dataclass(frozen=True)
class Prediction:
    """A track's genre distribution (and its style scores, for a model with styles)."""

    path: Path
    labels: tuple[str, ...]
    probabilities: np.ndarray
    """``float32 [n_classes]``, sums to 1, in ``labels`` order."""
    windows: int
    styles: tuple[str, ...] = ()
    """The model's style names (:attr:`~genretag.models.bundle.ModelCard.styles`); empty: it has none."""
    style_scores: np.ndarray | None = None
    """``float32 [n_styles]`` in [0, 1], in ``styles`` order: each style's mean score over the track's
    windows (independent scores, not a distribution); None when the model has no styles."""
    music: float | None = None
    """The track's music score in [0, 1], the mean of its windows' (a model whose card has ``music``);
    None when the model has none."""

    def style_score(self, name: str) -> float | None:
        """The track's score of style ``name``; None when the prediction has no such style."""
        if self.style_scores is None or name not in self.styles:
            return None
        return float(self.style_scores[self.styles.index(name)])

    def ranked(self) -> list[tuple[str, float]]:
        """``(label, probability)`` pairs, most likely first."""
        order = np.argsort(-self.probabilities, kind="stable")
        return [(self.labels[i], float(self.probabilities[i])) for i in order]

    @property
    def genre(self) -> str:
        return self.labels[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))


class _Pending:
    __slots__ = ("track", "probs", "filled")

    def __init__(self, track: TrackFeatures, n_classes: int) -> None:
        self.track = track
        self.probs = np.zeros((len(track.windows), n_classes), np.float32)
        self.filled = 0


def predict_stream(
    tracks: Iterable[TrackFeatures], classifier: Classifier, *, batch_size: int, temperature: float = 1.0,
    pooling: str = "mean"
) -> Iterator[tuple[TrackFeatures, Prediction | None]]:
    """Yield ``(features, prediction)`` per track; ``None`` for tracks not ``ok``.

    Tracks that need no model pass straight through; the others come out once
    all their windows have been through the model, in arrival order. A classifier with
    ``styles`` emits their scores after the class probabilities; they become the
    prediction's ``style_scores`` (the calibration ``temperature`` applies to the genres only); one with
    ``music`` emits a music score last, which becomes the prediction's ``music``; one whose ``window_outputs`` is
    its labels alone (a track-level EfficientAT) has the styles and music score from its experts.
    """
    styles = tuple(getattr(classifier, "styles", ()))
    music = bool(getattr(classifier, "music", False))
    n_classes = getattr(classifier, "window_outputs", None) or len(classifier.labels) + len(styles) + music
    pending: deque[_Pending] = deque()
    queued: deque[tuple[_Pending, int]] = deque()  # (owner, first window not yet sent)
    queued_windows = 0

    def run(limit: int) -> Iterator[tuple[TrackFeatures, Prediction]]:
        nonlocal queued_windows
        parts, owners, taken = [], [], 0
        while queued and taken < limit:
            owner, start = queued.popleft()
            take = min(len(owner.track.windows) - start, limit - taken)
            parts.append(owner.track.windows[start : start + take])
            owners.append((owner, start, take))
            taken += take
            if start + take < len(owner.track.windows):
                queued.appendleft((owner, start + take))
        batch = np.concatenate(parts)
        queued_windows -= len(batch)
        probs = classifier.predict(batch)
        offset = 0
        for owner, start, take in owners:
            owner.probs[start : start + take] = probs[offset : offset + take]
            owner.filled += take
            offset += take
        done = []
        while pending and pending[0].filled == len(pending[0].probs):
            done.append(pending.popleft())
        # a track-level YAMNet hears the picked windows of the tracks this batch completed, in one batch of its own
        logs = track_opinions(classifier, [entry.track.windows for entry in done]) if done else []
        for entry, log in zip(done, logs):
            yield entry.track, from_windows(entry.track.path, entry.probs, labels=classifier.labels, styles=styles,
                                            temperature=temperature, pooling=pooling, music=music, expert=log)

    for track in tracks:
        if track.status != "ok" or track.windows is None or len(track.windows) == 0:
            yield track, None
            continue
        entry = _Pending(track, n_classes)
        pending.append(entry)
        queued.append((entry, 0))
        queued_windows += len(track.windows)
        while queued_windows >= batch_size:
            yield from run(batch_size)
    while queued:
        yield from run(batch_size)


def from_windows(path: Path, outputs: np.ndarray, *, labels: tuple[str, ...], styles: tuple[str, ...] = (),
                 temperature: float = 1.0, pooling: str = "mean", music: bool = False,
                 expert: TrackOpinion | None = None) -> Prediction:
    """A track's prediction from its windows' model outputs, ``float32 [k, n_classes + n_styles (+ 1)]``
    (:func:`~genretag.models.runtime.track_mean` of each block; ``music``: the last column is the windows'
    music score, pooled by its mean; ``expert``: what the track-level experts say of the track,
    :func:`~genretag.models.track_experts.track_opinions`: with a track-level EfficientAT the outputs are the genres
    alone, and the styles and music score are its)."""
    outputs = np.asarray(outputs)
    n = len(labels)
    if expert is not None and expert.columns is not None:
        mean = track_mean(outputs[:, :n], temperature=temperature, pooling=pooling, n_genres=n, expert=expert)
        score = float(mean[-1]) if music else None
        mean = mean[:-1] if music else mean
        return Prediction(path, labels, mean[:n], len(outputs), styles, mean[n:] if styles else None, score)
    score = float(np.clip(np.mean(outputs[:, -1], dtype=np.float64), 0.0, 1.0)) if music else None
    body = outputs[:, :-1] if music else outputs
    mean = track_mean(body, temperature=temperature, pooling=pooling, n_genres=n, expert=expert)
    return Prediction(path, labels, mean[:n], len(outputs), styles, mean[n:] if styles else None, score)
