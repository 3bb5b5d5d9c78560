"""The owner's genre layer: a softmax regression on track features, judged by album-grouped cross-validation.

Fitted in NumPy/SciPy (L-BFGS on the standardised features, an L2 penalty): one fit on ~830 tracks of
1,425 features takes about 2 s on 2 cores, and cross-validation runs 4 penalties x 5 folds of them per round of
:func:`genretag.learn.core.choose_genres`. A track with several genres is a partial label: its loss is ``-log`` of the
summed probability of its genres (as ``genretag train --partial-labels``). Cross-validation folds keep
each album (:attr:`~genretag.learn.labels.LabelledFile.group`) on one side (scikit-learn's
``StratifiedGroupKFold``, stratified by each track's first genre); the L2 penalty is chosen on those
folds from :data:`L2_GRID` and the out-of-fold probabilities give each genre's precision and recall and
the calibration temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
"""L2 penalties tried by cross-validation (per training track, on standardised features)."""
STD_FLOOR = 1e-3
"""Features whose spread over the training tracks is below this are left out (constant)."""


@dataclass(frozen=True)
class GenreScore:
    """How well one genre is told apart, out of fold."""

    genre: str
    precision: float
    """Of the tracks predicted this genre, the share that have it."""
    recall: float
    """Of the tracks that have it, the share predicted it."""
    tracks: int
    predicted: int


@dataclass(frozen=True)
class Layer:
    """A fitted softmax layer on raw track features: ``softmax(x[columns] @ kernel + bias)``."""

    kernel: np.ndarray
    """``float32 [len(columns), n_genres]``, standardisation folded in."""
    bias: np.ndarray
    columns: np.ndarray
    """Indices of the features it reads."""

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x[:, self.columns] @ self.kernel + self.bias


@dataclass(frozen=True)
class CrossValidation:
    """The out-of-fold judgement of a layer on given genres."""

    genres: tuple[str, ...]
    scores: tuple[GenreScore, ...]
    accuracy: float
    """Share of tracks whose predicted genre is among theirs."""
    logits: np.ndarray
    """``float32 [n, n_genres]``: each track's logits from the fold that did not see its album."""
    l2: float
    folds: int


def masks_of(genres_per_track, genres: tuple[str, ...]) -> np.ndarray:
    """``bool [n, n_genres]``: which of ``genres`` each track has."""
    index = {g: i for i, g in enumerate(genres)}
    masks = np.zeros((len(genres_per_track), len(genres)), bool)
    for row, values in enumerate(genres_per_track):
        for g in values:
            if g in index:
                masks[row, index[g]] = True
    return masks


def fit_layer(x: np.ndarray, masks: np.ndarray, *, columns: np.ndarray, l2: float, balance: bool = True) -> Layer:
    """Fit the layer on ``x`` (``float32 [n, d]``) and ``masks`` (``bool [n, c]``, each row a track's genres)."""
    return _fit(x, masks, columns=columns, l2=l2, balance=balance)[0]


def _fit(x: np.ndarray, masks: np.ndarray, *, columns: np.ndarray, l2: float, balance: bool,
         start: np.ndarray | None = None) -> tuple[Layer, np.ndarray]:
    """:func:`fit_layer`, starting L-BFGS from ``start`` (the parameters of a fit on the same tracks with
    another L2, from the zeros when None); also returns the parameters found, to start the next from."""
    from scipy.optimize import minimize

    z = x[:, columns].astype(np.float64)
    mean, std = z.mean(0), z.std(0)
    live = std >= STD_FLOOR
    scale = np.where(live, 1.0 / np.maximum(std, STD_FLOOR), 0.0)
    z = (z - mean) * scale
    n, d = z.shape
    c = masks.shape[1]
    weights = _balanced(masks) if balance else np.ones(n)
    weights = weights / weights.sum()
    target = masks.astype(np.float64)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * c].reshape(d, c), theta[d * c :]
        logits = z @ w + b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        inside = np.maximum((p * target).sum(1), 1e-12)
        q = p * target / inside[:, None]
        grad_logits = (p - q) * weights[:, None]
        value = float(-(weights * np.log(inside)).sum() + 0.5 * l2 * (w * w).sum())
        grad = np.concatenate([(z.T @ grad_logits + l2 * w).ravel(), grad_logits.sum(0)])
        return value, grad

    result = minimize(loss, np.zeros(d * c + c) if start is None else start, jac=True, method="L-BFGS-B",
                      options={"maxiter": 500})
    w, b = result.x[: d * c].reshape(d, c), result.x[d * c :]
    kernel = w * scale[:, None]
    bias = b - (mean * scale) @ w
    return Layer(kernel.astype(np.float32), bias.astype(np.float32), np.asarray(columns)), result.x


def cross_validate(x: np.ndarray, masks: np.ndarray, groups, genres: tuple[str, ...], *, columns: np.ndarray,
                   folds: int, seed: int, l2_grid=L2_GRID, balance: bool = True) -> CrossValidation:
    """Out-of-fold logits of every track with album-grouped folds, for each L2 in ``l2_grid``; the L2 whose
    folds put most tracks inside their genres is kept (the first in ``l2_grid`` among equals), with its
    per-genre scores. Each fold's fits run from the strongest penalty to the weakest, each starting where
    the one before ended (a warm start: the same convex optimum up to L-BFGS's tolerance, in fewer steps)."""
    splits = fold_indices(masks, groups, folds=folds, seed=seed)
    starts: list[np.ndarray | None] = [None] * len(splits)
    judged = {}
    for l2 in sorted(l2_grid, reverse=True):
        logits = np.zeros(masks.shape, np.float32)
        for k, (train, test) in enumerate(splits):
            layer, starts[k] = _fit(x[train], masks[train], columns=columns, l2=l2, balance=balance,
                                    start=starts[k])
            logits[test] = layer.logits(x[test])
        judged[l2] = (float(masks[np.arange(len(masks)), logits.argmax(1)].mean()), logits)
    best = None
    for l2 in l2_grid:
        accuracy, logits = judged[l2]
        if best is None or accuracy > best[0] + 1e-9:
            best = (accuracy, l2, logits)
    accuracy, l2, logits = best
    return CrossValidation(genres, genre_scores(logits, masks, genres), accuracy, logits, l2, len(splits))


def fold_indices(masks: np.ndarray, groups, *, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` index pairs, each group on one side, stratified by each track's first genre."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.asarray(groups)
    n_groups = len(set(groups.tolist()))
    folds = max(2, min(folds, n_groups))
    first = masks.argmax(1)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only N members": said per genre
        return [(train, test) for train, test in splitter.split(np.zeros(len(masks)), first, groups)]


def genre_scores(logits: np.ndarray, masks: np.ndarray, genres: tuple[str, ...]) -> tuple[GenreScore, ...]:
    """Each genre's precision (predicted it and has it / predicted it) and recall (predicted it / has it)."""
    predicted = logits.argmax(1)
    scores = []
    for i, genre in enumerate(genres):
        said = predicted == i
        has = masks[:, i]
        precision = float((said & has).sum() / said.sum()) if said.any() else 0.0
        recall = float((said & has).sum() / has.sum()) if has.any() else 0.0
        scores.append(GenreScore(genre, precision, recall, int(has.sum()), int(said.sum())))
    return tuple(scores)


def fit_temperature(logits: np.ndarray, masks: np.ndarray) -> float:
    """The temperature ``T`` (0.05 to 20) that makes ``softmax(logits / T)`` best calibrated on ``masks``
    (least mean ``-log`` probability of the track's genres)."""
    from scipy.optimize import minimize_scalar

    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        inside = np.log(np.maximum((np.exp(log_p) * masks).sum(1), 1e-12))
        return float(-inside.mean())

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` per row."""
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)


def _balanced(masks: np.ndarray) -> np.ndarray:
    """Each track weighs ``n / (n_genres * tracks of its first genre)`` (scikit-learn's ``balanced``)."""
    first = masks.argmax(1)
    counts = np.bincount(first, minlength=masks.shape[1]).astype(np.float64)
    return len(first) / (masks.shape[1] * counts[first])
