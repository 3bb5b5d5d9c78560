"""The learned model's network: the default model's two pretrained networks, feature extractors.

Each window (the default model's patch: musicnn's log-mel above EfficientAT's) becomes one
feature vector: musicnn's pooled features (:func:`genretag.models.musicnn.build_extractor`), then
EfficientAT's 384-dim embedding and its 527 AudioSet logits. A learned genre layer
(:func:`attach_head`) reads a slice of that vector. Only :mod:`genretag.learn` imports this
module, where a model is built or run (it imports Keras). Pure Keras 3.
"""

from __future__ import annotations

import numpy as np

from genretag.config import FeatureConfig

FEATURE_SETS = ("musicnn", "embedding", "audioset")
"""The blocks of a window's feature vector, in order: musicnn pooled, EfficientAT embedding, AudioSet logits."""


def build_features(features: FeatureConfig, *, name: str = "learn_features"):
    """Windows ``float32 [b, *features.patch_shape]`` -> ``float32 [b, d]``: musicnn pooled features,
    EfficientAT embedding (384) and AudioSet logits (527), concatenated in :data:`FEATURE_SETS` order.
    Frozen; built from the shipped pretrained weights."""
    import keras
    from keras import layers

    from genretag.models import efficientat, musicnn
    from genretag.models.fusion import split_patch

    inputs, _, small, wide = split_patch(features)
    pooled = musicnn.build_extractor()(small)
    logits, embedding = efficientat.build_network(n_frames=features.audioset_frames, name=efficientat.NAME)(wide)
    out = layers.Concatenate(name="window_features")([pooled, embedding, logits])
    model = keras.Model(inputs, out, name=name)
    model.trainable = False
    return model


def block_sizes(model) -> dict[str, int]:
    """The width of each block of :func:`build_features`' output, by :data:`FEATURE_SETS` name."""
    total = int(model.output.shape[-1])
    from genretag.models.efficientat import EMBEDDING, N_CLASSES

    return {"musicnn": total - EMBEDDING - N_CLASSES, "embedding": EMBEDDING, "audioset": N_CLASSES}


def attach_head(extractor, kernel: np.ndarray, bias: np.ndarray, *, columns: np.ndarray, name: str):
    """``extractor`` (:func:`build_features`) followed by a softmax layer on its feature ``columns``
    (indices into its output): ``float32 [b, *patch] -> [b, n_labels]``. The layer's weights are
    ``kernel`` ``[len(columns), n]`` and ``bias`` ``[n]``, standardisation already folded in."""
    import keras

    full = np.zeros((int(extractor.output.shape[-1]), kernel.shape[1]), np.float32)
    full[columns] = kernel  # unused features weigh nothing (a Dense layer on all is one matmul)
    genre = keras.layers.Dense(kernel.shape[1], activation="softmax", name="genre")
    outputs = genre(extractor(extractor.input))
    genre.set_weights([full, bias.astype(np.float32)])
    model = keras.Model(extractor.input, outputs, name=name)
    model.trainable = False
    return model
