"""The networks, in pure Keras 3 (keras.layers only; no tf.*).

Every model takes ``float32 [batch, n_mels, n_frames]`` (normalised log-mel
windows) and returns class probabilities ``[batch, n_classes]``. The same code
runs on the TensorFlow, JAX and PyTorch backends.

- ``cnn``: the study's residual CNN (five residual blocks, ~1.2M parameters).
- ``crnn``: four conv blocks, then a GRU over time.
- ``cnn-rnn``: a conv branch beside a BiGRU-with-attention branch, concatenated.
- ``cnn1d``: a lean 1-D CNN over time with the mel bands as channels (~150k
  parameters, many times faster than the others; model 1.0's architecture,
  the first default, before the musicnn head of :mod:`genretag.models.musicnn`).
"""

from __future__ import annotations

from collections.abc import Callable

from genretag.config import CLASSIC_MODELS, MODEL_CHOICES, PRETRAINED_MODELS

KERAS_ARCHITECTURES = tuple(m for m in MODEL_CHOICES if m not in CLASSIC_MODELS + PRETRAINED_MODELS)

BN_MOMENTUM = 0.9
"""Batch-norm moving-average momentum of the study's networks. Keras' 0.99 needs
thousands of steps before the inference statistics settle; on a few hundred
clips (a few hundred steps) the residual CNN then scored at chance on
validation while fitting its training batches."""


def build_model(architecture: str, *, n_mels: int, n_frames: int, n_classes: int, dropout: float = 0.3,
                name: str | None = None):
    """Build an uncompiled ``keras.Model`` of the named architecture (``name`` defaults to it)."""
    try:
        builder = _BUILDERS[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; choose from {', '.join(KERAS_ARCHITECTURES)}") from None
    model = builder(n_mels=n_mels, n_frames=n_frames, n_classes=n_classes, dropout=dropout)
    if name is not None:
        model.name = name
    return model


def build_ensemble(members: list, *, n_mels: int, n_frames: int, name: str = "ensemble"):
    """One model whose output is the mean of ``members``' class probabilities.

    Each member must have a distinct ``name``. Saved and loaded as one ``.keras`` file.
    """
    import keras
    from keras import layers

    if len(members) == 1:
        return members[0]
    inputs = keras.Input((n_mels, n_frames), name="logmel")
    outputs = layers.Average(name="mean_probability")([m(inputs) for m in members])
    return keras.Model(inputs, outputs, name=name)


def _cnn1d(*, n_mels: int, n_frames: int, n_classes: int, dropout: float):
    import keras
    from keras import layers

    inputs = keras.Input((n_mels, n_frames), name="logmel")
    x = layers.Permute((2, 1))(inputs)  # [frames, mels]: time is the conv axis, bands the channels
    for i, filters in enumerate((96, 96, 128, 128)):
        x = layers.Conv1D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU()(x)
        if i < 3:
            x = layers.MaxPooling1D(2)(x)
    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="genre")(x)
    return keras.Model(inputs, outputs, name="cnn1d")


def _residual_block(x, filters: int, index: int):
    from keras import layers

    shortcut = layers.Conv2D(filters, 1, padding="same", name=f"res{index}_shortcut")(x)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"res{index}_conv_a")(x)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"res{index}_bn_a")(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"res{index}_conv_b")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"res{index}_bn_b")(y)
    y = layers.ReLU()(layers.Add()([y, shortcut]))
    return layers.MaxPooling2D(2)(y)


def _cnn(*, n_mels: int, n_frames: int, n_classes: int, dropout: float):
    import keras
    from keras import layers

    inputs = keras.Input((n_mels, n_frames), name="logmel")
    x = layers.Reshape((n_mels, n_frames, 1))(inputs)
    for i, filters in enumerate((16, 32, 64, 128, 256)):
        x = _residual_block(x, filters, i)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="genre")(x)
    return keras.Model(inputs, outputs, name="cnn")


def _conv_stack(x, filters: tuple[int, ...], pools: tuple[tuple[int, int], ...], dropout: float, prefix: str):
    """The C-RNN's conv blocks: Conv2D, max-pool, batch norm, ReLU, dropout."""
    from keras import layers

    for i, (f, pool) in enumerate(zip(filters, pools)):
        x = layers.Conv2D(f, 3, padding="same", name=f"{prefix}_conv{i}")(x)
        x = layers.MaxPooling2D(pool)(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn{i}")(x)
        x = layers.ReLU()(x)
        x = layers.Dropout(dropout / 3)(x)
    return x


def _crnn(*, n_mels: int, n_frames: int, n_classes: int, dropout: float):
    import keras
    from keras import layers

    inputs = keras.Input((n_mels, n_frames), name="logmel")
    x = layers.Reshape((n_mels, n_frames, 1))(inputs)
    # Pool frequency harder than time, so the GRU still sees 16 steps of time.
    x = _conv_stack(x, (32, 64, 64, 64), ((2, 2), (2, 2), (4, 2), (4, 1)), dropout, "crnn")
    _, freq, time, ch = x.shape
    x = layers.Permute((2, 1, 3))(x)  # [time, freq, channels]: the GRU runs over TIME
    x = layers.Reshape((time, freq * ch))(x)
    x = layers.GRU(64, name="gru")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="genre")(x)
    return keras.Model(inputs, outputs, name="crnn")


def _cnn_rnn(*, n_mels: int, n_frames: int, n_classes: int, dropout: float):
    import keras
    from keras import layers

    inputs = keras.Input((n_mels, n_frames), name="logmel")
    image = layers.Reshape((n_mels, n_frames, 1))(inputs)
    conv = _conv_stack(image, (16, 32, 64, 64), ((2, 2),) * 4, dropout, "cnn")
    conv = layers.GlobalAveragePooling2D()(conv)

    # RNN branch: pool the spectrogram, embed each frame, BiGRU over time, attention.
    seq = layers.MaxPooling2D((2, 2))(image)  # [mels/2, frames/2, 1]
    seq = layers.Permute((2, 1, 3))(seq)
    seq = layers.Reshape((n_frames // 2, n_mels // 2))(seq)
    seq = layers.Dense(64, activation="relu", name="frame_embedding")(seq)
    states = layers.Bidirectional(layers.GRU(64, return_sequences=True), name="bigru")(seq)
    scores = layers.Dense(1, name="attention_score")(states)
    weights = layers.Softmax(axis=1, name="attention")(scores)
    context = layers.Flatten()(layers.Dot(axes=1)([weights, states]))  # sum_t w_t * h_t

    x = layers.Concatenate()([conv, context])
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="genre")(x)
    return keras.Model(inputs, outputs, name="cnn_rnn")


_BUILDERS: dict[str, Callable] = {"cnn1d": _cnn1d, "cnn": _cnn, "crnn": _crnn, "cnn-rnn": _cnn_rnn}
