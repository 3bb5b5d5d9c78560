"""YAMNet, pretrained on AudioSet, in pure Keras 3.

YAMNet (Google, ``tensorflow/models`` ``research/audioset/yamnet``; Apache-2.0, see
``genretag/pretrained/LICENSE-yamnet.txt``) is a MobileNet v1 (27 convolutions, 3.7 M parameters) that
learned 521 of AudioSet's 527 sound classes from about 2 million human-labelled clips. Its input is one
patch of 0.96 s: 96 frames x 64 log-mel bands of 16 kHz audio (:func:`genretag.features.yamnet_log_mel`,
:func:`genretag.features.yamnet_patches`); its outputs a sigmoid per class and a 1024-value embedding.

The weights in ``yamnet_as.npz`` come from the TensorFlow Lite file shipped for Coral Dev Board Micro
(``yamnet_spectra_in.tflite``), converted by ``tools/convert_yamnet.py``. That file is quantised to 8
bits (weights per output channel, activations per tensor, batch norm folded, ReLU6); the conversion
dequantises the weights and this network runs in float32, so its scores differ from the 8-bit
interpreter's by that interpreter's rounding (its scores come in steps of 1/256), not by more
(``tools/convert_yamnet.py`` checks every layer and the outputs on real clips).

Its 521 outputs are AudioSet's classes less six (:data:`DROPPED`); :func:`audioset_index` maps one to
AudioSet's index (``genretag.models.fusion.GENRE_CLASSES`` is written in AudioSet's). Nothing here needs
TensorFlow Lite or TensorFlow beyond Keras' backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genretag.config import YAMNET_MELS, YAMNET_PATCH_FRAMES

WEIGHTS = Path(__file__).resolve().parent.parent / "pretrained" / "yamnet_as.npz"
WEIGHTS_SHA256 = "358fbdd46c58ef0f78a9ca7cc84f094358c8e964cfe24c459861a985a8d27f60"
"""What tools/convert_yamnet.py printed for the shipped file."""
SOURCE_SHA256 = "0a266465c46718f3fcc4137366be82882a8c93bfcc4f0278581a11d11dddcdf9"
"""sha256 of ``yamnet_spectra_in.tflite`` the weights were converted from."""

N_CLASSES = 521
EMBEDDING = 1024
NAME = "yamnet"
"""The network's name as a layer of a genretag model."""
LAYERS: tuple[tuple[str, int, int], ...] = (
    ("conv", 2, 32),
    ("sep", 1, 64), ("sep", 2, 128), ("sep", 1, 128), ("sep", 2, 256), ("sep", 1, 256), ("sep", 2, 512),
    ("sep", 1, 512), ("sep", 1, 512), ("sep", 1, 512), ("sep", 1, 512), ("sep", 1, 512),
    ("sep", 2, 1024), ("sep", 1, 1024),
)
"""YAMNet's ``_YAMNET_LAYER_DEFS``: (kind, stride, channels), every kernel 3x3. A ``sep`` is two layers of the
tflite file's numbering: a depthwise convolution (the stride) then a 1x1 one (the channels)."""
DROPPED: tuple[int, ...] = (1, 2, 12, 32, 33, 277)
"""AudioSet indices (``audioset_class_labels_indices.csv``) YAMNet has no output for: Male speech, Female speech,
Battle cry, Male singing, Female singing, Funny music. Found by matching the AudioSet ids of YAMNet's published
class map (``research/audioset/yamnet/yamnet_class_map.csv``, 521 rows, in AudioSet's order) with AudioSet's;
the other 521 keep their order (YAMNet's Music, 132, is AudioSet's 137)."""


def audioset_index(yamnet_index: int) -> int:
    """AudioSet's index of YAMNet's output ``yamnet_index`` (0-520)."""
    for dropped in DROPPED:
        if dropped <= yamnet_index:
            yamnet_index += 1
    return yamnet_index


def yamnet_columns(audioset_indices) -> list[int]:
    """YAMNet's output indices of AudioSet classes (ValueError for one YAMNet lacks)."""
    lookup = {audioset_index(i): i for i in range(N_CLASSES)}
    missing = [i for i in audioset_indices if i not in lookup]
    if missing:
        raise ValueError(f"YAMNet has no output for AudioSet classes {missing}")
    return [lookup[i] for i in audioset_indices]


# --- network ---------------------------------------------------------------------------------------------------


def build_network(weights: dict[str, np.ndarray] | None = None, *, name: str = NAME):
    """The pretrained network, frozen: input ``float32 [batch, 96, 64]`` (one patch: frames, bands); outputs
    the 521 logits ``float32 [batch, 521]`` (a sigmoid each gives YAMNet's scores) and the embedding
    ``float32 [batch, 1024]``."""
    import keras
    from keras import layers

    w = dequantise(load_weights() if weights is None else weights)
    inputs = keras.Input((YAMNET_PATCH_FRAMES, YAMNET_MELS), name="yamnet_logmel")
    x = layers.Reshape((YAMNET_PATCH_FRAMES, YAMNET_MELS, 1))(inputs)
    number, convs = 1, []
    for kind, stride, channels in LAYERS:
        if kind == "sep":
            conv = layers.DepthwiseConv2D(3, strides=stride, padding="same", name=f"layer{number}")
            x = layers.ReLU(6.0, name=f"layer{number}_relu6")(conv(x))
            convs.append(conv)
            number += 1
            stride, k = 1, 1
        else:
            k = 3
        conv = layers.Conv2D(channels, k, strides=stride, padding="same", name=f"layer{number}")
        x = layers.ReLU(6.0, name=f"layer{number}_relu6")(conv(x))
        convs.append(conv)
        number += 1
    embedding = layers.GlobalAveragePooling2D(name="embedding")(x)
    dense = layers.Dense(N_CLASSES, name="yamnet_logits")
    logits = dense(embedding)
    for conv in convs:
        conv.set_weights([w[f"{conv.name}.kernel"], w[f"{conv.name}.bias"]])
    dense.set_weights([w["logits.kernel"], w["logits.bias"]])
    model = keras.Model(inputs, [logits, embedding], name=name)
    model.trainable = False
    return model


def dequantise(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stored weights (int8 kernels ``*.kernel_q`` with their scales ``*.kernel_scale``) with float32
    kernels ``*.kernel``: ``q * scale``, as the 8-bit interpreter dequantises them; already-float weights pass."""
    out = {k: v for k, v in weights.items() if not k.endswith(("kernel_q", "kernel_scale"))}
    for key, q in weights.items():
        if key.endswith(".kernel_q"):
            stem = key.removesuffix("_q")
            out[stem] = (q.astype(np.float32) * weights[f"{stem}_scale"]).astype(np.float32)
    return out


def load_weights(path: Path = WEIGHTS) -> dict[str, np.ndarray]:
    """The shipped pretrained weights (sha256-checked, never unpickled)."""
    from genretag.models.bundle import load_pretrained

    return load_pretrained(path, WEIGHTS_SHA256, "YAMNet")
