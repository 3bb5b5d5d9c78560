"""EfficientAT mn04, pretrained on AudioSet, in pure Keras 3, fed from musicnn's own input.

EfficientAT "mn04_as" (Schmid, Koutini & Widmer, "Efficient Large-Scale Audio Tagging via
Transformer-to-CNN Knowledge Distillation", ICASSP 2023; MIT licence, see
``genretag/pretrained/LICENSE-EfficientAT.txt``) is a MobileNetV3-style CNN (width 0.4, 0.98 M
parameters) that learned AudioSet's 527 sound classes from about 2 million human-labelled clips,
among them ~60 music genres and sub-genres (Rock music, Heavy metal, Jazz, Swing music, Classical
music, House music, Reggae, ...) and what is not music (Speech, noise, silence). Those classes are
priors learned from far more, and far more varied, music than genretag's corpus.

Its weights in ``efficientat_mn04_as.npz`` are the authors' state dict
(``mn04_as_mAP_432.pt``), converted by ``tools/convert_efficientat.py`` with batch norm folded
into each convolution; nothing here needs PyTorch.

Its input is EfficientAT's own log-mel (:func:`genretag.features.audioset_log_mel`: 128 Kaldi mel
bands of 32 kHz audio, 25 ms windows every 10 ms), which genretag computes from the same decoded
window as musicnn's input. Fed from 16 kHz audio raised to 32 kHz, it hears nothing above 8 kHz,
which denies it a cue of where a recording came from (bandwidth: Emotify's 44.1 kHz against 4Q's
32 kHz). A layer that derived this input from musicnn's own log-mel inside the network (least
squares from 96 Slaney bands to 128 Kaldi bands, frames interpolated from 16 to 10 ms) was tried
and dropped: it differed from the real front end by 0.24 (std, normalised log units) and its
zero-shot genres fell from 0.47 to 0.33 on the corpus test split and from 13 to 0 of 40 wesnoth
songs classical.
Pure Keras 3 (keras.layers, keras.ops): runs on TensorFlow or JAX.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genretag.config import AUDIOSET_MELS


WEIGHTS = Path(__file__).resolve().parent.parent / "pretrained" / "efficientat_mn04_as.npz"
WEIGHTS_SHA256 = "555fa2e2b3273bbdd7bbef5c8b26227a116d7a3c483df549f76ca18739cb5213"
"""What tools/convert_efficientat.py printed for the shipped file."""
SOURCE_SHA256 = "899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"
"""sha256 of the authors' ``mn04_as_mAP_432.pt`` the weights were converted from."""

BN_EPSILON = 1e-3

STRIDE_2 = (2, 4, 7, 13)
"""The inverted-residual blocks (``features.<i>``) that halve both axes; ``features.0`` does too."""
HARD_SWISH_FROM = 7
"""Blocks from ``features.7`` on use hard swish, the ones before ReLU (MobileNetV3-Large)."""
N_BLOCKS = 15
N_CLASSES = 527
NAME = "efficientat_mn04"
"""The network's name as a layer of a genretag model."""
EMBEDDING = 384
"""Channels of the last convolution, averaged over frequency and time: the network's embedding."""


# --- network ---------------------------------------------------------------------------------------------------


def build_network(weights: dict[str, np.ndarray] | None = None, *, n_frames: int, name: str = NAME):
    """The pretrained network, frozen: input ``float32 [batch, 128, n_frames]`` (EfficientAT's
    normalised log-mel, mel bands first like every genretag model); outputs the 527 AudioSet
    logits ``float32 [batch, 527]`` (a sigmoid each) and the embedding ``float32 [batch, 384]``."""
    import keras
    from keras import layers

    w = load_weights() if weights is None else weights
    inputs = keras.Input((AUDIOSET_MELS, n_frames), name="audioset_logmel")
    x = layers.Reshape((AUDIOSET_MELS, n_frames, 1))(inputs)
    x = _conv(x, w, "features.0", stride=2, activation="hard_silu")
    for i in range(1, N_BLOCKS + 1):
        x = _block(x, w, f"features.{i}", stride=2 if i in STRIDE_2 else 1,
                   activation="hard_silu" if i >= HARD_SWISH_FROM else "relu")
    x = _conv(x, w, f"features.{N_BLOCKS + 1}", activation="hard_silu")
    embedding = layers.GlobalAveragePooling2D(name="embedding")(x)
    h = layers.Dense(w["classifier.2.weight"].shape[0], activation="hard_silu", name="classifier_hidden")(embedding)
    logits = layers.Dense(N_CLASSES, name="audioset_logits")(h)
    model = keras.Model(inputs, [logits, embedding], name=name)
    model.get_layer("classifier_hidden").set_weights([w["classifier.2.weight"].T, w["classifier.2.bias"]])
    model.get_layer("audioset_logits").set_weights([w["classifier.5.weight"].T, w["classifier.5.bias"]])
    model.trainable = False
    return model


def _folded(w: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight ``[out, in/groups, kh, kw]`` with its batch norm ``prefix.1`` folded in:
    ``(kernel [out, in/groups, kh, kw], bias [out])``."""
    kernel = w[f"{prefix}.0.weight"]
    scale = w[f"{prefix}.1.weight"] / np.sqrt(w[f"{prefix}.1.running_var"] + BN_EPSILON)
    bias = w[f"{prefix}.1.bias"] - w[f"{prefix}.1.running_mean"] * scale
    return (kernel * scale[:, None, None, None]).astype(np.float32), bias.astype(np.float32)


def _conv(x, w, prefix: str, *, stride: int = 1, activation: str | None = None, depthwise: bool = False):
    """Convolution + folded batch norm + activation, padded ``(k - 1) // 2`` on every side as PyTorch pads
    (Keras' ``same`` pads a stride-2 convolution on one side only)."""
    from keras import layers

    kernel, bias = _folded(w, prefix)
    k = kernel.shape[-1]
    name = prefix.replace(".", "_")
    if k > 1:
        x = layers.ZeroPadding2D((k - 1) // 2, name=f"{name}_pad")(x)
    if depthwise:
        conv = layers.DepthwiseConv2D(k, strides=stride, name=name)
        x = conv(x)
        conv.set_weights([kernel.transpose(2, 3, 0, 1), bias])  # [c, 1, kh, kw] -> [kh, kw, c, 1]
    else:
        conv = layers.Conv2D(kernel.shape[0], k, strides=stride, name=name)
        x = conv(x)
        conv.set_weights([kernel.transpose(2, 3, 1, 0), bias])  # [out, in, kh, kw] -> [kh, kw, in, out]
    return layers.Activation(activation, name=f"{name}_act")(x) if activation else x


def _block(x, w, prefix: str, *, stride: int, activation: str):
    """An inverted residual: optional 1x1 expansion, depthwise convolution, optional channel
    squeeze-and-excitation, 1x1 projection, and the shortcut when shapes allow."""
    from keras import layers

    inputs, y, part = x, x, 0
    if w[f"{prefix}.block.0.0.weight"].shape[-1] == 1:  # a 1x1 expansion first (features.1 has none)
        y = _conv(y, w, f"{prefix}.block.0", activation=activation)
        part = 1
    y = _conv(y, w, f"{prefix}.block.{part}", stride=stride, activation=activation, depthwise=True)
    part += 1
    se = f"{prefix}.block.{part}.conc_se_layers.0"
    if f"{se}.fc1.weight" in w:
        name = prefix.replace(".", "_")
        s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_pool")(y)
        squeeze = layers.Dense(w[f"{se}.fc1.weight"].shape[0], activation="relu", name=f"{name}_se_fc1")
        excite = layers.Dense(w[f"{se}.fc2.weight"].shape[0], activation="sigmoid", name=f"{name}_se_fc2")
        s = excite(squeeze(s))
        squeeze.set_weights([w[f"{se}.fc1.weight"].T, w[f"{se}.fc1.bias"]])
        excite.set_weights([w[f"{se}.fc2.weight"].T, w[f"{se}.fc2.bias"]])
        y = layers.Multiply(name=f"{name}_se")([y, s])
        part += 1
    y = _conv(y, w, f"{prefix}.block.{part}")
    if stride == 1 and inputs.shape[-1] == y.shape[-1]:
        y = layers.Add(name=f"{prefix.replace('.', '_')}_residual")([inputs, y])
    return y


def load_weights(path: Path = WEIGHTS) -> dict[str, np.ndarray]:
    """The shipped pretrained weights (sha256-checked, never unpickled)."""
    from genretag.models.bundle import load_pretrained

    return load_pretrained(path, WEIGHTS_SHA256, "EfficientAT")

