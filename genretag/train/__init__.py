"""The training half: features cached per clip, augmented crops, the fit loops, the bundle.

:func:`train` is the entry point; :mod:`~genretag.train.kerasfit` trains Keras
networks from scratch, :mod:`~genretag.train.transferfit` a genre layer on the
pretrained musicnn; the k-NN/SVM baselines fit in :mod:`~genretag.train.core`.
"""

from genretag.train.core import TrainResult, model_features, train

__all__ = ["TrainResult", "model_features", "train"]
