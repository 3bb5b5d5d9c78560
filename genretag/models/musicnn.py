"""musicnn, pretrained on the Million Song Dataset, as a frozen feature extractor.

musicnn (Pons & Serra, "musicnn: pre-trained convolutional neural networks for
music audio tagging", ISMIR 2019 LBD; ISC licence, see
``genretag/pretrained/LICENSE-musicnn``) learned 50 last.fm tags (rock, pop,
jazz, Hip-Hop, soul, blues, country, electronic...) from about 200,000 MSD
previews. Its front end (vertical "timbral" and horizontal "temporal" filters
over a log-compressed mel spectrogram), mid end (three 1-D convolutions with
residual connections) and temporal max/mean pooling give a track description
that a genre head trained on a few hundred clips can use: a logistic regression
on it scored 0.70 test accuracy on the corpus where every network trained from
scratch scored 0.40-0.43 (docs/model-card.md).

The weights in ``msd_musicnn.npz`` are the ``MSD_musicnn`` checkpoint of the
``musicnn`` 0.1.0 wheel, converted by ``tools/convert_musicnn.py``. Filters
that never fire on the MSD (batch-norm moving variance below 1e-12: 370 of the
408 timbral and 126 of the 153 temporal filters) are left out: their output is
a constant, so the pooled features they feed carry no information and the
network runs five to seven times faster (46 -> 249 windows/s here).
Pure Keras 3 (runs on TensorFlow or JAX).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genretag.config import FeatureConfig
from genretag.errors import ModelError

WEIGHTS = Path(__file__).resolve().parent.parent / "pretrained" / "msd_musicnn.npz"
WEIGHTS_SHA256 = "9edbddb7066f9e262f80a454f8d676562e77f01c06346fc095256367061758f0"
"""What tools/convert_musicnn.py printed for the shipped file."""

FEATURES = FeatureConfig(
    sample_rate=16_000, n_fft=512, n_mels=96, n_frames=187, window_seconds=2.976,
    top_db=0.0, normalize="level", scale="logc",
)
"""musicnn's input: 16 kHz, 512-point FFT, hop 256, 96 Slaney mel bands up to
8 kHz, ``log10(1 + 10000 * power)``, 187 frames (2.976 s). Each recording is
first brought to one level (``normalize="level"``): the compression makes the
features depend on loudness, and without it a -12 dB copy of the test split
scored 0.600 instead of 0.667, +6 dB 0.533."""

BN_EPSILON = 1e-3
"""tf.compat.v1.layers.batch_normalization's epsilon, which the weights were trained with."""

TIMBRAL_HEIGHTS = (0.4, 0.7)
"""Timbral filter heights as fractions of the mel bands (38 and 67 of 96)."""
TEMPORAL_LENGTHS = (128, 64, 32)
"""Temporal filter lengths in frames."""

MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient",
    "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening",
    "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House",
    "happy",
)
"""The 50 last.fm tags musicnn's back end predicts, in its output order (musicnn's ``MSD_LABELS``)."""


def pooled_width(weights: dict[str, np.ndarray] | None = None) -> int:
    """Width of :func:`build_extractor`'s output for ``weights`` (default: the shipped file, pruned: 514), read
    from the weights alone (no Keras): max and mean of every front-end and mid-end channel."""
    w = load_weights() if weights is None else weights
    front = sum(w[f"timbral{i}/kernel"].shape[-1] for i in range(len(TIMBRAL_HEIGHTS)))
    front += sum(w[f"temporal{i}/kernel"].shape[-1] for i in range(len(TEMPORAL_LENGTHS)))
    return 2 * (front + sum(w[f"mid{i}/kernel"].shape[-1] for i in range(3)))


def build_extractor(weights: dict[str, np.ndarray] | None = None, *, name: str = "musicnn_msd"):
    """The pretrained network up to its pooled features, frozen.

    Input ``float32 [batch, 96, 187]`` (``FEATURES`` windows, mel bands first like
    every genretag model); output ``float32 [batch, features]``: the max and the
    mean over time of each front-end and mid-end channel, interleaved as the
    original flattens them. ``weights`` defaults to the shipped file.
    """
    import keras
    from keras import layers

    w = load_weights() if weights is None else weights
    n_mels, n_frames = FEATURES.n_mels, FEATURES.n_frames
    inputs = keras.Input((n_mels, n_frames), name="logmel")
    x = layers.Permute((2, 1))(inputs)  # [frames, mels], the original's layout
    x = layers.Reshape((n_frames, n_mels, 1))(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="input_bn")(x)
    padded = layers.ZeroPadding2D(((3, 3), (0, 0)))(x)
    branches = []
    for i, height in enumerate(TIMBRAL_HEIGHTS):
        k = int(height * n_mels)
        filters = w[f"timbral{i}/kernel"].shape[-1]
        y = layers.Conv2D(filters, (7, k), activation="relu", name=f"timbral{i}")(padded)
        y = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"timbral{i}_bn")(y)
        y = layers.MaxPooling2D((1, n_mels - k + 1))(y)  # max over frequency
        branches.append(layers.Reshape((n_frames, filters))(y))
    for i, length in enumerate(TEMPORAL_LENGTHS):
        filters = w[f"temporal{i}/kernel"].shape[-1]
        y = layers.Conv2D(filters, (length, 1), padding="same", activation="relu", name=f"temporal{i}")(x)
        y = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"temporal{i}_bn")(y)
        y = layers.MaxPooling2D((1, n_mels))(y)
        branches.append(layers.Reshape((n_frames, filters))(y))
    front = layers.Concatenate(name="frontend")(branches)
    mids = [front]
    for i in range(3):
        y = layers.Conv1D(w[f"mid{i}/kernel"].shape[-1], 7, padding="same", activation="relu", name=f"mid{i}")(mids[-1])
        y = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"mid{i}_bn")(y)
        mids.append(y if i == 0 else layers.Add(name=f"mid{i}_residual")([y, mids[-1]]))
    mid = layers.Concatenate(name="midend")(mids)
    width = mid.shape[-1]
    peak = layers.Reshape((width, 1))(layers.GlobalMaxPooling1D()(mid))
    mean = layers.Reshape((width, 1))(layers.GlobalAveragePooling1D()(mid))
    pooled = layers.Flatten(name="pooled")(layers.Concatenate()([peak, mean]))
    model = keras.Model(inputs, pooled, name=name)
    set_weights(model, w)
    model.trainable = False
    return model


def build_tagger(extractor, weights: dict[str, np.ndarray] | None = None, *, name: str = "musicnn_msd_tags"):
    """musicnn's own back end on ``extractor``'s pooled features: the probability of each of
    :data:`MSD_TAGS` (``float32 [batch, 50]``, independent sigmoids, as it was trained), frozen.

    Batch norm, a 200-unit ReLU layer, batch norm, 50 sigmoid outputs; the pooled
    features of pruned filters were constants, folded into the first layer's bias by
    ``tools/convert_musicnn.py``.
    """
    import keras
    from keras import layers

    w = load_weights() if weights is None else weights
    inputs = keras.Input(extractor.output.shape[1:], name="pooled")
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="pool_bn")(inputs)
    x = layers.Dense(w["penultimate/kernel"].shape[-1], activation="relu", name="penultimate")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="penultimate_bn")(x)
    tags = layers.Dense(len(MSD_TAGS), activation="sigmoid", name="tags")(x)
    model = keras.Model(inputs, tags, name=name)
    set_weights(model, w)
    model.trainable = False
    return model


def set_weights(model, weights: dict[str, np.ndarray]) -> None:
    """Copy ``weights`` (``layer/kernel``, ``layer/bias``, ``layer/gamma``...) into ``model``'s layers."""
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name.endswith("_bn"):
            keys = ("gamma", "beta", "moving_mean", "moving_variance")
        else:
            keys = ("kernel", "bias")
        try:
            layer.set_weights([weights[f"{layer.name}/{k}"] for k in keys])
        except (KeyError, ValueError) as exc:
            raise ModelError(f"pretrained musicnn weights do not fit layer {layer.name}: {exc}", WEIGHTS) from exc


def load_weights(path: Path = WEIGHTS) -> dict[str, np.ndarray]:
    """The shipped pretrained weights (sha256-checked, never unpickled)."""
    from genretag.models.bundle import load_pretrained

    return load_pretrained(path, WEIGHTS_SHA256, "musicnn")


def attach_styles(model, styles: list[tuple[str, str, tuple[str, ...]]]):
    """A genre model built on :func:`build_extractor` (windows -> genre probabilities) with style scores
    appended to its output: ``styles`` are ``(name, parent, MSD tags)``, each scored as the mean
    probability of its tags under musicnn's own back end (:func:`build_tagger`), one pass through
    the network for both. The genre block is unchanged."""
    import keras

    extractor = next(layer for layer in model.layers if layer.name == "musicnn_msd")
    tagger = build_tagger(extractor)
    index = {t: i for i, t in enumerate(MSD_TAGS)}
    mapping = np.zeros((len(MSD_TAGS), len(styles)), np.float32)
    for j, (_, _, tags) in enumerate(styles):
        mapping[[index[t] for t in tags], j] = 1.0 / len(tags)
    style = keras.layers.Dense(len(styles), use_bias=False, name="styles", trainable=False)
    inputs = model.input
    pooled = extractor(inputs)  # one pass through the network feeds both heads
    scores = style(tagger(pooled))
    style.set_weights([mapping])
    outputs = keras.layers.Concatenate(name="genres_styles")([model.get_layer("genre")(pooled), scores])
    return keras.Model(inputs, outputs, name="musicnn_genre_styles")
