"""Score a classifier on held-out tracks, the way scan would judge them.

Each track is judged by the windows scan would cut (probabilities averaged),
and, for comparison with the study, by its single middle window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genretag.config import FeatureConfig, WindowPolicy
from genretag.evaluate.report import EvalReport, build_report
from genretag.features import eval_windows, window_starts
from genretag.models.runtime import Classifier, track_mean
from genretag.models.track_experts import track_opinions


@dataclass(frozen=True)
class TrackScores:
    """Per-track probabilities: ``float32 [n, n_classes]`` each."""

    track: np.ndarray
    single_window: np.ndarray
    windows_per_track: int


def score_tracks(
    classifier: Classifier,
    mels: Sequence[np.ndarray],
    durations: Sequence[float],
    *,
    config: FeatureConfig,
    policy: WindowPolicy = WindowPolicy(),
    pooling: str = "mean",
    windows: Sequence[np.ndarray] | None = None,
) -> TrackScores:
    """Run the classifier over every track's scan windows (averaged by
    :func:`~genretag.models.runtime.track_mean`) and its middle window.

    ``windows``: each track's windows as scan itself cut them
    (:func:`~genretag.train.featurecache.load_scan_windows`); then ``mels`` are not used and the
    single window is the middle one of them. Without it they are cut from each whole-clip log-mel.
    """
    if windows is not None:
        parts = [np.asarray(w, np.float32) for w in windows]
        middles = [w[len(w) // 2 : len(w) // 2 + 1] for w in parts]
        mels, durations = (), ()
    else:
        parts, middles = [], []
    for mel, duration in zip(mels, durations):
        starts = window_starts(float(duration), config=config, policy=policy)
        parts.append(eval_windows(mel, float(duration), config=config, starts_s=starts))
        middle = np.array([max(0.0, (float(duration) - config.window_seconds) / 2)])
        middles.append(eval_windows(mel, float(duration), config=config, starts_s=middle))
    n_classes = len(classifier.labels)
    if not parts:
        empty = np.zeros((0, n_classes), np.float32)
        return TrackScores(empty, empty, policy.windows)
    probs = classifier.predict(np.concatenate(parts))[:, :n_classes]  # a model's style scores follow: not scored here
    bounds = np.cumsum([len(w) for w in parts])[:-1]
    logs = track_opinions(classifier, parts)  # the track-level experts' opinion (their picked windows); None without
    track = np.stack([track_mean(p, pooling=pooling, expert=log)[:n_classes]
                      for p, log in zip(np.split(probs, bounds), logs)])
    single = classifier.predict(np.concatenate(middles))[:, :n_classes]
    return TrackScores(track, single, policy.windows)


def evaluate(
    classifier: Classifier,
    *,
    model_id: str,
    dataset: str,
    labels: Sequence[str],
    sources: Sequence[str] | None,
    config: FeatureConfig,
    mels: Sequence[np.ndarray] = (),
    durations: Sequence[float] = (),
    windows: Sequence[np.ndarray] | None = None,
    extra: dict | None = None,
    pooling: str = "mean",
) -> EvalReport:
    """An :class:`EvalReport` of ``classifier`` on tracks whose true labels are ``labels``, judged on
    ``windows`` (each track's, as scan cuts them) or on windows cut from ``mels`` (see :func:`score_tracks`).

    Tracks whose label the model doesn't know are counted as wrong (they can't be right).
    """
    index = {name: i for i, name in enumerate(classifier.labels)}
    known = list(classifier.labels)
    unknown = sorted({lab for lab in labels if lab not in index})
    names = known + unknown  # unknown true labels get columns of their own, never predicted
    y_true = np.array([names.index(lab) for lab in labels], dtype=int)
    scores = score_tracks(classifier, mels, durations, config=config, pooling=pooling, windows=windows)
    pad = np.zeros((len(labels), len(unknown)), np.float32)
    return build_report(
        model=model_id, dataset=dataset, labels=names, y_true=y_true,
        track_probs=np.hstack([scores.track, pad]), window_probs=np.hstack([scores.single_window, pad]),
        sources=sources, windows_per_track=scores.windows_per_track, extra=extra or {},
    )
