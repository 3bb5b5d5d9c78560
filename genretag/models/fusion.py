"""A genre model that hears each window twice: a musicnn genre head and the AudioSet network.

The default model fuses two opinions per window (the model card, ``docs/model-card.md``, says how
each was chosen):

- a genre head on musicnn (pretrained on the Million Song Dataset; the head learned genretag's
  10 labels from the corpus): ``p``, a distribution over the labels;
- EfficientAT mn04 (pretrained on AudioSet's ~2 M human-labelled clips, never trained on the
  corpus): its genre classes mapped onto the labels (:data:`GENRE_CLASSES`), each label scored by
  its most probable class: ``q``.

The window's genre distribution is ``softmax((1 - w) * log p + w * log q)``, a weighted product of
the two (``w``: :class:`GenreFusion`'s ``weight``). The input is one patch per window
(:attr:`genretag.config.FeatureConfig.patch_shape`): musicnn's log-mel in the top-left corner,
EfficientAT's beneath it. Styles are AudioSet sub-genre classes scored on their own
(:data:`STYLE_CLASSES`), and the music score (whether the window is music at all) is the largest probability of
AudioSet's ``Music`` and its singing classes (:data:`MUSIC_CLASSES`). Pure Keras 3 (keras.layers, keras.ops).

A third expert is optional (``yamnet_weight``; not in a shipped model yet): YAMNet (:mod:`genretag.models.yamnet`)
on its own log-mel of the window's 16 kHz audio, beneath EfficientAT's in the patch
(:attr:`~genretag.config.FeatureConfig.yamnet_rate`), its scores averaged over the window's 0.96-s patches
(every other one, or the middle one alone: ``yamnet_patches``) and mapped the same way: ``softmax((1 - w - w_y) * log p + w * log q + w_y * log q_y)``.
With ``yamnet_windows`` (:attr:`~genretag.config.FeatureConfig.yamnet_windows`) YAMNet leaves the per-window network:
it hears k of a track's windows in a network of its own (:func:`build_yamnet_scorer`), and the track's score is
``log(mean_w softmax((1 - w - w_y) log p_w + w log q_w)) + w_y log q_y`` over those k windows' mean scores
(:func:`yamnet_track_log`, :func:`genretag.models.runtime.track_mean`).
"""

from __future__ import annotations

import numpy as np

from genretag.config import AUDIOSET_MELS, FeatureConfig

GENRE_CLASSES: dict[str, tuple[tuple[int, str], ...]] = {
    "Blues": ((251, "Blues"),),
    "Classical": ((237, "Classical music"), (238, "Opera"), (184, "Orchestra")),
    "Country": ((229, "Country"), (231, "Bluegrass")),
    "Electronic": ((239, "Electronic music"), (240, "House music"), (241, "Techno"), (242, "Dubstep"),
                   (243, "Drum and bass"), (244, "Electronica"), (245, "Electronic dance music"),
                   (246, "Ambient music"), (247, "Trance music")),
    "Hip-Hop": ((217, "Hip hop music"),),
    "International": ((228, "Reggae"), (248, "Music of Latin America"), (249, "Salsa music"), (250, "Flamenco"),
                      (256, "Music of Africa"), (257, "Afrobeat"), (234, "Middle Eastern music"),
                      (260, "Music of Asia"), (261, "Carnatic music"), (262, "Music of Bollywood"), (263, "Ska"),
                      (264, "Traditional music")),
    "Jazz": ((235, "Jazz"), (230, "Swing music")),
    "Pop": ((216, "Pop music"),),
    "Rock": ((219, "Rock music"), (220, "Heavy metal"), (221, "Punk rock"), (222, "Grunge"),
             (223, "Progressive rock"), (224, "Rock and roll"), (225, "Psychedelic rock")),
    "Soul-RnB": ((226, "Rhythm and blues"), (227, "Soul music"), (232, "Funk"), (259, "Gospel music")),
}
"""AudioSet classes (output index, name in ``audioset_class_labels_indices.csv``) beneath each of the
corpus's labels, by the FMA taxonomy the labels come from (Reggae, Latin and other regional musics
are FMA's International; Funk and Gospel its Soul-RnB). ``Orchestra`` is an instrument class, not a
genre: taken for Classical because, among the 10 labels, orchestral music has no other home (on
the wesnoth score it raised the mapping from 20 to 26 of 40 songs Classical; see the card)."""

STYLE_CLASSES: dict[str, tuple[str, int]] = {
    "Heavy Metal": ("Rock", 220), "Punk": ("Rock", 221), "Grunge": ("Rock", 222),
    "Progressive Rock": ("Rock", 223), "Rock & Roll": ("Rock", 224), "Psychedelic Rock": ("Rock", 225),
    "House": ("Electronic", 240), "Techno": ("Electronic", 241), "Dubstep": ("Electronic", 242),
    "Drum & Bass": ("Electronic", 243), "Trance": ("Electronic", 247), "Ambient": ("Electronic", 246),
    "Swing": ("Jazz", 230), "Bluegrass": ("Country", 231),
    "Reggae": ("International", 228), "Ska": ("International", 263), "Salsa": ("International", 249),
    "Flamenco": ("International", 250), "Afrobeat": ("International", 257), "Latin": ("International", 248),
    "Funk": ("Soul-RnB", 232), "Gospel": ("Soul-RnB", 259), "Soul": ("Soul-RnB", 227), "R&B": ("Soul-RnB", 226),
    "Opera": ("Classical", 238),
}
"""Candidate styles: a name to write, its parent label and its AudioSet class index. Scored by the class's
probability (a sigmoid; the mean over a track's windows); the card lists the ones that ship, with floors."""

MUSIC_CLASS = 137
"""AudioSet's ``Music``."""

MUSIC_CLASSES: tuple[tuple[int, str], ...] = (
    (MUSIC_CLASS, "Music"), (27, "Singing"), (28, "Choir"), (29, "Yodeling"), (30, "Chant"), (31, "Mantra"),
    (32, "Male singing"), (33, "Female singing"), (34, "Child singing"), (35, "Synthetic singing"), (36, "Rapping"),
    (37, "Humming"),
)
"""The classes whose largest probability (a sigmoid each) is a fused model's music score per window
(``music=True``); scan calls a track ``not-music`` when the mean over its windows is below the card's floor
(tools/add_music.py). AudioSet files singing under Human voice, not under Music: on ``Music`` alone, two 4Q
clips of chant and mantra scored 0.12 and 0.17, as low as espeak-ng's speech (0.12); with the singing classes
every music file scored 0.34 or more and no speech file above 0.12 (tools/check_music.py, the model card)."""


def membership(labels: tuple[str, ...]) -> np.ndarray:
    """``float32 [n_labels, 527]``: 1 where an AudioSet class is beneath a label (:data:`GENRE_CLASSES`)."""
    from genretag.models.efficientat import N_CLASSES

    out = np.zeros((len(labels), N_CLASSES), np.float32)
    for i, label in enumerate(labels):
        out[i, [index for index, _ in GENRE_CLASSES[label]]] = 1.0
    return out


_LAYERS: dict[str, type] = {}


def register_layers() -> dict[str, type]:
    """Define (once) and register the fusion layer, so that a saved model loads in Keras' safe mode."""
    if _LAYERS:
        return _LAYERS
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="genretag")
    class GenreFusion(keras.layers.Layer):
        """``[p float32 [b, n], logits float32 [b, 527]]`` (and, with ``yamnet_weight``, YAMNet's scores
        ``float32 [b, 521]``) -> ``float32 [b, n]``: ``softmax((1 - w - w_y) * log p + w * log q + w_y * log
        q_y)``, ``log q`` of a label the largest log-sigmoid of its AudioSet classes (``members``: ``[n, 527]``,
        0/1), ``log q_y`` the largest log-score of its YAMNet classes (``yamnet_members``: ``[n, 521]``).
        ``yamnet_later``: YAMNet is fused per track, after pooling (:attr:`FeatureConfig.yamnet_windows`): the
        layer takes ``[p, logits]`` only and gives ``softmax((1 - w - w_y) * log p + w * log q)``. ``head_weight``
        ``a``: the head's weight, in place of ``1 - w - w_y``. ``audioset_later``: EfficientAT is fused per track too
        (:attr:`FeatureConfig.audioset_windows`; ``w`` its track-level weight): the layer takes ``[p]`` only and
        gives ``softmax(a * log p)``."""

        def __init__(self, n_labels: int, weight: float, yamnet_weight: float = 0.0, yamnet_later: bool = False,
                     head_weight: float | None = None, audioset_later: bool = False, **kwargs):
            super().__init__(**kwargs)
            self.n_labels, self.weight, self.yamnet_weight = n_labels, float(weight), float(yamnet_weight)
            self.yamnet_later, self.audioset_later = bool(yamnet_later), bool(audioset_later)
            self.head_weight = None if head_weight is None else float(head_weight)
            if not self.audioset_later:
                self.members = self.add_weight(shape=(n_labels, 527), initializer="zeros", trainable=False,
                                               name="members")
            if self.yamnet_weight and not self.yamnet_later:
                self.yamnet_members = self.add_weight(shape=(n_labels, 521), initializer="zeros",
                                                      trainable=False, name="yamnet_members")

        def call(self, inputs):
            log_p = ops.log(ops.clip(inputs[0], 1e-7, 1.0))
            a = 1.0 - self.weight - self.yamnet_weight if self.head_weight is None else self.head_weight
            if self.audioset_later:
                return ops.softmax(a * log_p, axis=-1)
            log_s = ops.log_sigmoid(inputs[1])[:, None, :] + (self.members[None] - 1.0) * 1e4  # others far below
            z = a * log_p + self.weight * ops.max(log_s, axis=-1)
            if self.yamnet_weight and not self.yamnet_later:
                log_y = ops.log(ops.clip(inputs[2], 1e-7, 1.0))[:, None, :] + (self.yamnet_members[None] - 1.0) * 1e4
                z = z + self.yamnet_weight * ops.max(log_y, axis=-1)
            return ops.softmax(z, axis=-1)

        def compute_output_shape(self, shapes):
            return (shapes[0][0], self.n_labels)

        def get_config(self):
            config = {**super().get_config(), "n_labels": self.n_labels, "weight": self.weight}
            if self.yamnet_later:  # only then: the config of every other model stays as it was
                config["yamnet_later"] = True
            if self.head_weight is not None:  # the same
                config["head_weight"] = self.head_weight
            if self.audioset_later:
                config["audioset_later"] = True
            return {**config, "yamnet_weight": self.yamnet_weight} if self.yamnet_weight else config

    _LAYERS["GenreFusion"] = GenreFusion
    return _LAYERS


def split_patch(features: FeatureConfig):
    """A Keras input for the fused patch ``[b, *features.patch_shape]``, the patch as an image ``[b, rows, frames,
    1]`` (YAMNet's rows, if any, are cut from it) and its first two log-mels: ``(inputs, image, musicnn's [b,
    n_mels, n_frames], EfficientAT's [b, AUDIOSET_MELS, audioset_frames])`` (musicnn's rows above EfficientAT's,
    YAMNet's beneath, each left-aligned; see :attr:`FeatureConfig.patch_shape`)."""
    import keras
    from keras import layers

    rows, frames = features.patch_shape
    inputs = keras.Input((rows, frames), name="patch")
    x = layers.Reshape((rows, frames, 1))(inputs)
    below = rows - features.n_mels - AUDIOSET_MELS  # YAMNet's rows, if any
    small = layers.Cropping2D(((0, rows - features.n_mels), (0, frames - features.n_frames)))(x)
    wide = layers.Cropping2D(((features.n_mels, below), (0, frames - features.audioset_frames)))(x)
    small = layers.Reshape((features.n_mels, features.n_frames), name="musicnn_logmel")(small)
    wide = layers.Reshape((AUDIOSET_MELS, features.audioset_frames), name="audioset_logmel")(wide)
    return inputs, x, small, wide


def build_fused(head, *, labels: tuple[str, ...], features: FeatureConfig, weight: float,
                styles: tuple[str, ...] = (), music: bool = False, network=None, yamnet_weight: float = 0.0,
                yamnet_network=None, head_weight: float | None = None, name: str = "musicnn_audioset"):
    """Windows ``float32 [b, *features.patch_shape]`` -> the fused genre distribution, then one score per
    style in ``styles`` (names of :data:`STYLE_CLASSES`), then with ``music`` the window's music score
    (the largest probability of :data:`MUSIC_CLASSES`): ``float32 [b, n_labels + n_styles (+ 1)]``.

    ``head``: a Keras model from musicnn windows ``[b, n_mels, n_frames]`` to a distribution over
    ``labels`` (a genretag musicnn bundle's model). ``network``: EfficientAT (default: built from the
    shipped weights). ``yamnet_weight`` (needs ``features.yamnet_rate``): YAMNet as a third expert
    (:func:`yamnet_scores`; ``yamnet_network`` default: built from the shipped weights); with
    ``features.yamnet_windows`` it is not in this network (which ignores the patch's YAMNet rows) but fused per
    track (:func:`build_yamnet_scorer`, :func:`yamnet_track_log`), and here the head's weight is ``1 - weight -
    yamnet_weight`` unless ``head_weight`` gives it. With ``features.audioset_windows`` EfficientAT is not in this
    network either (:func:`build_audioset_scorer`; ``weight`` is then its track-level weight, ``head_weight``
    required): the network is the head alone, ``softmax(head_weight * log p)``, ``float32 [b, n_labels]`` (the
    track-level network scores styles and music: none here)."""
    import keras
    from keras import layers

    from genretag.models import efficientat

    later = bool(features.yamnet_windows)
    if later and yamnet_weight != features.yamnet_weight:
        raise ValueError(f"yamnet_weight {yamnet_weight} differs from the features' {features.yamnet_weight}")
    fusion = register_layers()["GenreFusion"](len(labels), weight, yamnet_weight, later, head_weight,
                                              bool(features.audioset_windows), name="genre_fusion")
    if features.audioset_windows:
        return _head_alone(head, fusion, features=features, weight=weight, styles=styles, music=music, name=name)
    network = network or efficientat.build_network(n_frames=features.audioset_frames, name=efficientat.NAME)
    inputs, x, small, wide = split_patch(features)
    head.trainable = False
    logits, _ = network(wide)
    if yamnet_weight and not later:
        genres = fusion([head(small), logits, yamnet_scores(x, features, yamnet_network)])
        fusion.set_weights([membership(labels), yamnet_membership(labels)])
    else:
        genres = fusion([head(small), logits])
        fusion.set_weights([membership(labels)])
    outputs = [genres]
    if styles:
        pick = np.zeros((efficientat.N_CLASSES, len(styles)), np.float32)
        for j, style in enumerate(styles):
            pick[STYLE_CLASSES[style][1], j] = 1.0
        select = layers.Dense(len(styles), use_bias=False, trainable=False, name="style_classes")
        outputs.append(layers.Activation("sigmoid", name="styles")(select(logits)))
        select.set_weights([pick])
    if music:
        pick = np.zeros((efficientat.N_CLASSES, len(MUSIC_CLASSES)), np.float32)
        pick[[index for index, _ in MUSIC_CLASSES], np.arange(len(MUSIC_CLASSES))] = 1.0
        select = layers.Dense(len(MUSIC_CLASSES), use_bias=False, trainable=False, name="music_classes")
        chosen = layers.Reshape((len(MUSIC_CLASSES), 1))(select(logits))
        top = layers.GlobalMaxPooling1D(name="music_logit")(chosen)  # the sigmoid keeps the order: max first
        outputs.append(layers.Activation("sigmoid", name="music")(top))
        select.set_weights([pick])
    out = layers.Concatenate(name="genres_styles")(outputs) if len(outputs) > 1 else genres
    model = keras.Model(inputs, out, name=name)
    model.trainable = False
    return model


def _head_alone(head, fusion, *, features: FeatureConfig, weight: float, styles: tuple[str, ...], music: bool,
                name: str):
    """:func:`build_fused`'s network for a track-level EfficientAT (``features.audioset_windows``): the head alone."""
    import keras

    if weight != features.audioset_weight:
        raise ValueError(f"weight {weight} differs from the features' audioset_weight {features.audioset_weight}")
    if fusion.head_weight is None:
        raise ValueError("a track-level EfficientAT needs the head's weight (head_weight)")
    if styles or music:
        raise ValueError("with audioset_windows, styles and the music score come from the track-level EfficientAT: "
                         "the per-window network has none")
    inputs, _, small, _ = split_patch(features)
    head.trainable = False
    model = keras.Model(inputs, fusion([head(small)]), name=name)
    model.trainable = False
    return model


def with_styles(model, styles: tuple[str, ...], *, labels: tuple[str, ...], features: FeatureConfig):
    """The fused ``model`` (a loaded bundle's) rebuilt with ``styles`` scored after its genres: the same
    head, networks and fusion weights (and music score, if it has one), so its other outputs are unchanged."""
    return rebuilt(model, labels=labels, features=features, styles=styles, music=has_music(model))


def with_music(model, *, labels: tuple[str, ...], features: FeatureConfig, styles: tuple[str, ...] = ()):
    """The fused ``model`` rebuilt with the music score last (after its genres and its ``styles``, the card's
    style names): the same head, networks and fusion weights, so its other outputs are unchanged."""
    return rebuilt(model, labels=labels, features=features, styles=styles, music=True)


def has_music(model) -> bool:
    """Whether a fused Keras model emits the music score (it has the ``music`` layer)."""
    return any(layer.name == "music" for layer in model.layers)


def rebuilt(model, *, labels: tuple[str, ...], features: FeatureConfig, styles: tuple[str, ...], music: bool):
    """The fused ``model`` (a loaded bundle's) built again with these ``styles`` and ``music``."""
    import keras

    from genretag.models import yamnet
    from genretag.models.efficientat import NAME

    fusion = model.get_layer("genre_fusion")
    head = next(layer for layer in model.layers
                if isinstance(layer, keras.Model) and layer.name not in (NAME, yamnet.NAME))
    extra = fusion.yamnet_weight
    in_window = extra and not getattr(fusion, "yamnet_later", False)
    return build_fused(head, labels=labels, features=features, weight=fusion.weight, styles=styles, music=music,
                       network=model.get_layer(NAME), yamnet_weight=extra,
                       yamnet_network=model.get_layer(yamnet.NAME) if in_window else None)


def yamnet_membership(labels: tuple[str, ...]) -> np.ndarray:
    """``float32 [n_labels, 521]``: 1 where a YAMNet output is one of a label's AudioSet classes
    (:data:`GENRE_CLASSES`, in AudioSet's numbering; YAMNet lacks none of them)."""
    from genretag.models import yamnet

    out = np.zeros((len(labels), yamnet.N_CLASSES), np.float32)
    for i, label in enumerate(labels):
        out[i, yamnet.yamnet_columns([index for index, _ in GENRE_CLASSES[label]])] = 1.0
    return out


def yamnet_scores(patch, features: FeatureConfig, network=None):
    """``patch``: the model input reshaped ``[b, rows, frames, 1]`` -> YAMNet's scores ``[b, 521]``: its log-mel
    rows (from ``features.yamnet_row``) cut into patches of 0.96 s every 0.48 s (5 in a 2.976-s window), each
    through YAMNet (one network, shared), the sigmoid scores averaged over the patches; only the patches of
    ``features.yamnet_heard``: with ``yamnet_patches`` 3 patches 0, 2 and 4 (frames 0-95, 96-191, 192-287: no
    overlap), with 1 the middle patch (frames 96-191 of 296)."""
    from keras import layers

    from genretag.config import YAMNET_MELS

    rows, frames = features.patch_shape
    bands = layers.Cropping2D(((features.yamnet_row, rows - features.yamnet_row - YAMNET_MELS),
                               (0, frames - features.yamnet_frames)), name="yamnet_rows")(patch)
    bands = layers.Reshape((YAMNET_MELS, features.yamnet_frames), name="yamnet_bands")(bands)
    return patch_scores(bands, features, network)


def patch_scores(bands, features: FeatureConfig, network=None):
    """YAMNet's log-mel of windows, bands first (``[b, 64, yamnet_frames]``) -> its scores ``[b, 521]``, the sigmoid
    averaged over the patches of ``features.yamnet_heard`` (:func:`yamnet_scores`)."""
    from keras import layers

    from genretag.config import YAMNET_PATCH_FRAMES, YAMNET_PATCH_HOP
    from genretag.models import yamnet

    network = network or yamnet.build_network()
    logmel = layers.Permute((2, 1), name="yamnet_frames")(bands)  # [b, frames, 64], YAMNet's layout
    scores = []
    for j in features.yamnet_heard:
        start = j * YAMNET_PATCH_HOP
        cut = layers.Cropping1D((start, features.yamnet_frames - start - YAMNET_PATCH_FRAMES),
                                name=f"yamnet_patch{j}")(logmel)
        scores.append(layers.Activation("sigmoid", name=f"yamnet_scores{j}")(network(cut)[0]))
    return layers.Average(name="yamnet_scores")(scores) if len(scores) > 1 else scores[0]


def build_yamnet_scorer(features: FeatureConfig, network=None, *, name: str = "yamnet_track_expert"):
    """The track-level YAMNet of :attr:`FeatureConfig.yamnet_windows`, a network of its own: YAMNet's log-mel of
    the picked windows ``float32 [b, 64, yamnet_frames]`` (a patch's YAMNet rows, bands first) -> its scores
    ``float32 [b, 521]`` averaged over the patches of ``features.yamnet_heard`` (what :func:`yamnet_scores` gives
    inside a per-window model). ``network`` default: built from the shipped weights."""
    import keras

    from genretag.config import YAMNET_MELS

    inputs = keras.Input((YAMNET_MELS, features.yamnet_frames), name="yamnet_bands")
    model = keras.Model(inputs, patch_scores(inputs, features, network), name=name)
    model.trainable = False
    return model


def yamnet_track_log(scores: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """A track's YAMNet opinion from its picked windows' scores ``float [k, 521]`` (:func:`build_yamnet_scorer`):
    ``float64 [n_labels]``, each label's largest log-score of the windows' mean, ``log(clip(mean, 1e-7, 1))``
    (the same mapping and floor as in a window, :data:`GENRE_CLASSES`). NumPy only."""
    return _track_log(scores, yamnet_membership(labels))


def build_audioset_scorer(features: FeatureConfig, network=None, *, name: str = "efficientat_track_expert"):
    """The track-level EfficientAT of :attr:`FeatureConfig.audioset_windows`, a network of its own: EfficientAT's
    log-mel of the picked windows ``float32 [b, 128, audioset_frames]`` -> its 527 class probabilities (a sigmoid
    each) ``float32 [b, 527]``. ``network`` default: built from the shipped weights."""
    import keras
    from keras import layers

    from genretag.models import efficientat

    network = network or efficientat.build_network(n_frames=features.audioset_frames, name=efficientat.NAME)
    inputs = keras.Input((AUDIOSET_MELS, features.audioset_frames), name="audioset_logmel")
    logits, _ = network(inputs)
    model = keras.Model(inputs, layers.Activation("sigmoid", name="audioset_probs")(logits), name=name)
    model.trainable = False
    return model


def audioset_track_log(probs: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """A track's EfficientAT opinion from its picked windows' probabilities ``float [k, 527]``
    (:func:`build_audioset_scorer`): ``float64 [n_labels]``, each label's largest ``log(clip(mean, 1e-7, 1))`` of
    the windows' mean (:data:`GENRE_CLASSES`), as :func:`yamnet_track_log`. NumPy only."""
    return _track_log(probs, membership(labels))


def _track_log(scores: np.ndarray, members: np.ndarray) -> np.ndarray:
    mean = np.clip(np.asarray(scores, np.float64).mean(axis=0), 1e-7, 1.0)
    return np.array([np.log(mean[row]).max() for row in members > 0])
