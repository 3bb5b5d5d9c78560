"""The study's baselines: PCA + k-NN and PCA + RBF SVM (scikit-learn to fit).

Windows are flattened, standardised and reduced by PCA to 15 components.
Fitted models are stored as plain arrays in an ``.npz`` (loaded with
``allow_pickle=False``) and predicted with NumPy, so loading never unpickles.
The SVM prediction reimplements libsvm's one-vs-one decision and is checked
against scikit-learn in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genretag.errors import ModelError, describe

PCA_COMPONENTS = 15
KNN_NEIGHBOURS = 8
_COMMON_ARRAYS = ("kind", "mean", "scale", "pca_mean", "components", "n_classes")
_ARRAYS = {
    "knn": ("points", "point_labels"),
    "svm": ("support_vectors", "dual_coef", "intercept", "n_support", "gamma", "classes"),
}
"""The arrays a fitted model's ``.npz`` holds besides the common ones, by kind (see :func:`fit_classic`)."""


def fit_classic(kind: str, windows: np.ndarray, y: np.ndarray, *, n_classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Fit ``knn`` or ``svm`` on ``float32 [n, n_mels, n_frames]`` windows with class indices ``y``.

    Returns the arrays that :class:`ClassicClassifier` needs.
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    flat = windows.reshape(len(windows), -1)
    scaler = StandardScaler().fit(flat)
    pca = PCA(n_components=min(PCA_COMPONENTS, *flat.shape), random_state=seed, svd_solver="randomized")
    z = pca.fit_transform(scaler.transform(flat))
    arrays = {"kind": np.array(kind), "mean": scaler.mean_, "scale": scaler.scale_,
              "pca_mean": pca.mean_, "components": pca.components_, "n_classes": np.array(n_classes)}
    if kind == "knn":
        arrays.update(points=z.astype(np.float32), point_labels=y.astype(np.int64))
    elif kind == "svm":
        from sklearn.svm import SVC

        svc = SVC(kernel="rbf", C=1.0, gamma="scale", random_state=seed).fit(z, y)
        arrays.update(support_vectors=svc.support_vectors_, dual_coef=svc.dual_coef_, intercept=svc.intercept_,
                      n_support=svc.n_support_, gamma=np.array(svc._gamma), classes=svc.classes_)
    else:
        raise ValueError(f"unknown classic model {kind!r}")
    return arrays


@dataclass
class ClassicClassifier:
    """NumPy inference for a fitted k-NN or SVM."""

    arrays: dict[str, np.ndarray]
    labels: tuple[str, ...]

    @classmethod
    def load(cls, path: Path, labels: tuple[str, ...]) -> "ClassicClassifier":
        """Read the arrays (never unpickling) and check that predicting can use them."""
        import zipfile

        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelError(f"cannot read classic model: {describe(exc)}", path) from exc
        kind = str(arrays.get("kind"))
        if kind not in _ARRAYS:
            raise ModelError("not a k-NN/SVM model file", path)
        missing = sorted({*_COMMON_ARRAYS, *_ARRAYS[kind]} - arrays.keys())
        if missing:
            raise ModelError(f"cannot read classic model: no {', '.join(missing)} array", path)
        n_classes = arrays["n_classes"]
        if n_classes.shape != () or not np.issubdtype(n_classes.dtype, np.integer) or int(n_classes) != len(labels):
            raise ModelError(f"cannot read classic model: n_classes is {n_classes}, "
                             f"card.json has {len(labels)} labels", path)
        return cls(arrays, labels)

    def save(self, path: Path) -> None:
        np.savez(path, **self.arrays)

    def embed(self, windows: np.ndarray) -> np.ndarray:
        a = self.arrays
        flat = windows.reshape(len(windows), -1).astype(np.float64)
        return ((flat - a["mean"]) / a["scale"] - a["pca_mean"]) @ a["components"].T

    def predict(self, windows: np.ndarray) -> np.ndarray:
        z = self.embed(windows)
        kind = str(self.arrays["kind"])
        return (self._knn(z) if kind == "knn" else self._svm(z)).astype(np.float32)

    def _knn(self, z: np.ndarray) -> np.ndarray:
        """Distance-weighted vote of the k nearest training windows."""
        pts, lab = self.arrays["points"], self.arrays["point_labels"]
        k = min(KNN_NEIGHBOURS, len(pts))
        d = np.sqrt(np.maximum(((z[:, None, :] - pts[None, :, :]) ** 2).sum(-1), 0.0))
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
        w = 1.0 / np.maximum(np.take_along_axis(d, nearest, axis=1), 1e-9)
        probs = np.zeros((len(z), int(self.arrays["n_classes"])))
        np.add.at(probs, (np.arange(len(z))[:, None], lab[nearest]), w)
        return probs / probs.sum(axis=1, keepdims=True)

    def decision(self, z: np.ndarray) -> np.ndarray:
        """libsvm's one-vs-one decision values ``[n, C*(C-1)/2]`` (sklearn's order)."""
        a = self.arrays
        sv, coef, n_sup = a["support_vectors"], a["dual_coef"], a["n_support"]
        kernel = np.exp(-float(a["gamma"]) * ((z[:, None, :] - sv[None, :, :]) ** 2).sum(-1))
        starts = np.concatenate([[0], np.cumsum(n_sup)])
        out, col = [], 0
        for i in range(len(n_sup)):
            for j in range(i + 1, len(n_sup)):
                si, sj = slice(starts[i], starts[i + 1]), slice(starts[j], starts[j + 1])
                value = kernel[:, si] @ coef[j - 1, si] + kernel[:, sj] @ coef[i, sj] + a["intercept"][col]
                out.append(value)
                col += 1
        return np.stack(out, axis=1)

    def _svm(self, z: np.ndarray) -> np.ndarray:
        """Votes of the pairwise classifiers, softened by their margins, as probabilities."""
        classes = self.arrays["classes"]
        n_classes = int(self.arrays["n_classes"])
        dec = self.decision(z)
        votes = np.zeros((len(z), len(classes)))
        col = 0
        for i in range(len(classes)):
            for j in range(i + 1, len(classes)):
                wins_i = dec[:, col] > 0
                votes[:, i] += wins_i + 0.1 * np.tanh(dec[:, col])
                votes[:, j] += ~wins_i - 0.1 * np.tanh(dec[:, col])
                col += 1
        probs = np.zeros((len(z), n_classes))
        exp = np.exp(votes - votes.max(axis=1, keepdims=True))
        probs[:, classes] = exp / exp.sum(axis=1, keepdims=True)
        return probs
