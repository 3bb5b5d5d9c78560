"""The learned model's network: the default model's two pretrained networks, feature extractors.

Each window (the default model's patch: musicnn's log-mel above EfficientAT's) becomes one
feature vector: musicnn's pooled features (:func:`genretag.models.musicnn.build_extractor`), then
EfficientAT's 384-dim embedding and its 527 AudioSet logits. A learned genre layer
(:func:`attach_head`) reads a slice of that vector. The default model holds the same two networks
with the same weights, so :func:`with_features` gives it that vector as a second output, which
its exported ``model.onnx`` then carries: ``learn``'s feature pass runs on OpenVINO like a scan.
Only :mod:`genretag.learn` and the export (:mod:`genretag.models.export`) import this module,
where a model is built or run (it imports Keras). Pure Keras 3.
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


HEAD = "musicnn_genre"
"""The fused default model's musicnn genre head (``logmel -> musicnn_msd -> genre``)."""


def has_features(model) -> bool:
    """Whether ``model`` (a loaded bundle's Keras model) is a fused model whose networks give
    :func:`build_features`' vector: a musicnn head (``musicnn_msd`` then ``genre``) and EfficientAT."""
    from genretag.models.efficientat import NAME

    names = {layer.name: layer for layer in model.layers}
    head = names.get(HEAD)
    return NAME in names and head is not None and [layer.name for layer in head.layers[1:]] == ["musicnn_msd", "genre"]


def with_features(model):
    """The fused default ``model`` with a second output: each window's :func:`build_features` vector,
    ``float32 [b, *patch] -> [float32 [b, n_outputs], float32 [b, d]]``. Its layers are the model's
    own (shared, not copied), so the first output is unchanged and the second is computed in the same
    pass: musicnn's pooled features are the head's, taken before its genre layer; EfficientAT's embedding
    and logits are the ones the fusion reads. The pretrained weights inside the default model are the
    shipped ``msd_musicnn.npz`` and ``efficientat_mn04_as.npz`` ones, so the vector is the one
    :func:`build_features` gives (the export checks it on real windows). ValueError unless
    :func:`has_features`."""
    import keras
    from keras import layers

    from genretag.models.efficientat import NAME

    if not has_features(model):
        raise ValueError(f"{model.name} has no musicnn head and EfficientAT network to take features from")
    head = model.get_layer(HEAD)
    extractor, genre = head.get_layer("musicnn_msd"), head.get_layer("genre")
    taken: dict[str, object] = {}

    def call(layer, *args, **kwargs):
        if layer is head:  # the head as its two steps, so its pooled features are a tensor of this graph
            taken["pooled"] = extractor(*args, **kwargs)
            return genre(taken["pooled"])
        outputs = layer(*args, **kwargs)
        if layer.name == NAME:
            taken["logits"], taken["embedding"] = outputs
        return outputs

    same = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    window = layers.Concatenate(name="window_features")([taken["pooled"], taken["embedding"], taken["logits"]])
    out = keras.Model(same.input, [same.output, window], name=f"{model.name}_features")
    out.trainable = False
    return out
