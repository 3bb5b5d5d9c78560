"""The owner's genre layer: a shrinkage linear discriminant on track features, judged by album-grouped
cross-validation.

Closed form: each genre's mean of the standardised features, their pooled within-genre covariance shrunk
towards its mean variance (``(1 - s) C + s (tr C / d) I``), and the linear discriminant with equal priors
(``softmax(z C_s^-1 mu_g - mu_g C_s^-1 mu_g / 2)``, so each genre weighs the same whatever its count). One
eigendecomposition of ``C`` per fold gives the layer for every shrinkage in :data:`SHRINKAGE_GRID`: a whole
cross-validation is seconds where the softmax regression it replaced took a minute per thousand tracks,
and it told the corpus's genres apart as well (measured in benchmarks/README.md). A track with several
genres is a partial label: it counts a share ``1 / k`` in each of its ``k`` genres' means and scatter.
Cross-validation folds keep each album (:attr:`~genretag.learn.labels.LabelledFile.group`) on one side
(scikit-learn's ``StratifiedGroupKFold``, stratified by each track's first genre); the shrinkage is chosen
on those folds and the out-of-fold logits give each genre's precision and recall and the calibration
temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHRINKAGE_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Shrinkages tried by cross-validation: the share of the covariance replaced by its mean variance."""
STD_FLOOR = 1e-3
"""Features whose spread over the training tracks is below this are left out (constant)."""
CHUNK = 8192
"""Tracks per block when summing the scatter (bounds the memory a large library's fit takes)."""


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

    def divided(self, temperature: float) -> Layer:
        """The same layer with its logits divided by ``temperature`` (calibration folded in)."""
        return Layer((self.kernel / temperature).astype(np.float32), (self.bias / temperature).astype(np.float32),
                     self.columns)


@dataclass(frozen=True)
class CrossValidation:
    """The out-of-fold judgement of a layer on given genres."""

    genres: tuple[str, ...]
    scores: tuple[GenreScore, ...]
    accuracy: float
    """Share of tracks whose predicted genre is among theirs."""
    logits: np.ndarray
    """``float32 [n, n_genres]``: each track's logits from the fold that did not see its album."""
    shrinkage: float
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


@dataclass(frozen=True)
class _Discriminant:
    """What every shrinkage's layer is made from: one eigendecomposition of the training tracks' scatter."""

    mean: np.ndarray
    scale: np.ndarray
    """Standardisation: ``z = (x - mean) * scale`` (0 for constant features)."""
    centres: np.ndarray
    """``[n_genres, d]``: each genre's mean of ``z``, in the eigenbasis."""
    variances: np.ndarray
    basis: np.ndarray

    def weights(self, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
        """The kernel ``[d, n_genres]`` and bias on ``z`` in the eigenbasis."""
        spread = (1.0 - shrinkage) * self.variances + shrinkage * max(float(self.variances.mean()), 1e-12)
        w = (self.centres / spread).T
        return w, -0.5 * (self.centres * w.T).sum(1)

    def layer(self, shrinkage: float, columns: np.ndarray) -> Layer:
        w, b = self.weights(shrinkage)
        w = self.basis @ w  # back from the eigenbasis to z
        kernel = w * self.scale[:, None]
        bias = b - (self.mean * self.scale) @ w
        return Layer(kernel.astype(np.float32), bias.astype(np.float32), np.asarray(columns))


def _discriminant(x: np.ndarray, masks: np.ndarray, columns: np.ndarray) -> _Discriminant:
    z = x[:, columns].astype(np.float64)
    mean, std = z.mean(0), z.std(0)
    scale = np.where(std >= STD_FLOOR, 1.0 / np.maximum(std, STD_FLOOR), 0.0)
    z = (z - mean) * scale
    share = masks / np.maximum(masks.sum(1, keepdims=True), 1)  # a track's weight in each of its genres
    centres = (share.T @ z) / np.maximum(share.sum(0), 1e-12)[:, None]
    tracks, genres = np.nonzero(share)
    scatter = np.zeros((z.shape[1], z.shape[1]))
    for at in range(0, len(tracks), CHUNK):
        t, g = tracks[at : at + CHUNK], genres[at : at + CHUNK]
        r = (z[t] - centres[g]) * np.sqrt(share[t, g])[:, None]
        scatter += r.T @ r
    variances, basis = np.linalg.eigh(scatter / share.sum())
    return _Discriminant(mean, scale, centres @ basis, np.maximum(variances, 0.0), basis)


def fit_layer(x: np.ndarray, masks: np.ndarray, *, columns: np.ndarray, shrinkage: float) -> Layer:
    """Fit the layer on ``x`` (``float32 [n, d]``) and ``masks`` (``bool [n, c]``, each row a track's genres)."""
    return _discriminant(x, masks, columns).layer(shrinkage, columns)


def cross_validate(x: np.ndarray, masks: np.ndarray, groups, genres: tuple[str, ...], *, columns: np.ndarray,
                   folds: int, seed: int, shrinkages=SHRINKAGE_GRID) -> CrossValidation:
    """Out-of-fold logits of every track with album-grouped folds, for each shrinkage in ``shrinkages`` (one
    eigendecomposition per fold serves them all); the shrinkage whose folds put most tracks inside their
    genres is kept (the strongest among equals), with its per-genre scores."""
    splits = fold_indices(masks, groups, folds=folds, seed=seed)
    judged = {s: np.zeros(masks.shape, np.float32) for s in shrinkages}
    for train, test in splits:
        fitted = _discriminant(x[train], masks[train], columns)
        z = ((x[test][:, columns] - fitted.mean) * fitted.scale) @ fitted.basis
        for s in shrinkages:
            w, b = fitted.weights(s)
            judged[s][test] = z @ w + b
    best = None
    for s in sorted(shrinkages, reverse=True):
        logits = judged[s]
        accuracy = float(masks[np.arange(len(masks)), logits.argmax(1)].mean())
        if best is None or accuracy > best[0] + 1e-9:
            best = (accuracy, s, logits)
    accuracy, shrinkage, logits = best
    return CrossValidation(genres, genre_scores(logits, masks, genres), accuracy, logits, shrinkage, len(splits))


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
    """The temperature ``T`` (0.05 to 1,000, searched in ``log T``) that makes ``softmax(logits / T)`` best
    calibrated on ``masks`` (least mean ``-log`` probability of the track's genres). A discriminant's logits
    grow with the features' dimension, so ``T`` is often well above 1."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        inside = np.log(np.maximum((np.exp(log_p) * masks).sum(1), 1e-12))
        return float(-inside.mean())

    return float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(1000.0)), method="bounded").x))


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` per row."""
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(1, keepdims=True)
