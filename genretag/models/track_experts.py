"""Track-level experts: YAMNet (a card whose features have ``yamnet_windows``) and EfficientAT (``audioset_windows``).

Such an expert is not in the per-window network: it runs as a network of its own (YAMNet's
:func:`genretag.models.fusion.build_yamnet_scorer`, EfficientAT's :func:`~genretag.models.fusion.build_audioset_scorer`:
OpenVINO on the card's ``runtime.yamnet`` / ``runtime.efficientat`` artifact, Keras when that cannot run) on the ``k``
windows of each track :func:`genretag.features.track_picks` names, whose rows the decode worker filled. Its windows'
mean scores, mapped onto the labels, are added to the log of the track's pooled genre distribution
(:func:`genretag.models.runtime.track_mean`'s ``expert``):

    track score = log(mean_w softmax(a log p_w [+ w log q_w])) + w_e log q_e + w_y log q_y

then calibrated (``softmax(score / T)``). A track-level EfficientAT also gives the track's style scores (each style
class's mean probability over its windows) and music score (the mean over its windows of their largest
:data:`~genretag.models.fusion.MUSIC_CLASSES` probability), which a per-window EfficientAT would have given.
A scan's batches: windows of many tracks through the main network, the picked windows of the tracks a batch
completes through each expert's, pooled per track.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from genretag.config import AUDIOSET_MELS, YAMNET_MELS, FeatureConfig
from genretag.models.batches import OPENVINO_CONFIG, batched

ARTIFACTS = {"yamnet": "yamnet.onnx", "efficientat": "efficientat.onnx"}
"""Each track-level expert's artifact in a bundle, by its key in the card's ``runtime``."""


@dataclass(frozen=True)
class TrackOpinion:
    """What the track-level experts say of one track."""

    log: np.ndarray
    """``float64 [n_labels]``: their weighted log-scores (``w_e log q_e + w_y log q_y``), added to the log of the
    pooled genres."""
    columns: np.ndarray | None = None
    """``float64 [n_styles (+ 1)]``: the track's style scores, then its music score (with the card's ``music``),
    from a track-level EfficientAT; None when the per-window network gives them."""


@dataclass
class TrackExpert:
    """One expert's network for a bundle's picked windows, and how its opinion joins a track's."""

    name: str
    """``yamnet`` or ``efficientat`` (its key in :data:`ARTIFACTS`)."""
    run: Callable[[np.ndarray], np.ndarray]
    """``float32 [b, mels, frames]`` -> ``float32 [b, n_classes]`` (one compiled batch)."""
    features: FeatureConfig
    labels: tuple[str, ...]
    batch_size: int = 64
    runtime: str = "keras"
    styles: tuple[str, ...] = ()
    """The card's style names (a track-level EfficientAT scores them)."""
    music: bool = False
    """The card has a music score (a track-level EfficientAT gives it)."""

    @property
    def weight(self) -> float:
        config = self.features
        return config.yamnet_weight if self.name == "yamnet" else config.audioset_weight

    @property
    def n_classes(self) -> int:
        return 521 if self.name == "yamnet" else 527

    def bands(self, windows: np.ndarray) -> np.ndarray:
        """A track's picked windows' rows of this expert: ``float32 [n, *patch_shape]`` -> ``float32 [k, mels,
        frames]`` (YAMNet's ``[k, 64, yamnet_frames]``, EfficientAT's ``[k, 128, audioset_frames]``)."""
        from genretag.features import track_picks

        config = self.features
        if self.name == "yamnet":
            row, mels, frames, k = config.yamnet_row, YAMNET_MELS, config.yamnet_frames, config.yamnet_windows
        else:
            row, mels, frames, k = config.n_mels, AUDIOSET_MELS, config.audioset_frames, config.audioset_windows
        return windows[track_picks(len(windows), k), row : row + mels, :frames]

    def scores(self, bands: np.ndarray) -> np.ndarray:
        """``float32 [m, mels, frames]`` -> the network's scores ``float32 [m, n_classes]``, in padded batches."""
        return batched(self.run, bands, batch_size=self.batch_size, n_out=self.n_classes)

    def opinions(self, tracks: Sequence[np.ndarray]) -> list[TrackOpinion]:
        """Each track's :class:`TrackOpinion` from its windows ``float32 [n, *patch_shape]``: the picked windows of
        all of them through the network in shared batches."""
        cuts = [self.bands(np.asarray(w)) for w in tracks]
        if not cuts:
            return []
        scores = np.split(self.scores(np.concatenate(cuts)), np.cumsum([len(c) for c in cuts])[:-1])
        return [self.opinion(s) for s in scores]

    def opinion(self, scores: np.ndarray) -> TrackOpinion:
        """One track's opinion from its picked windows' scores ``float [k, n_classes]``."""
        from genretag.models import fusion

        if self.name == "yamnet":
            return TrackOpinion(self.weight * fusion.yamnet_track_log(scores, self.labels))
        scores = np.asarray(scores, np.float64)
        columns = scores[:, [fusion.STYLE_CLASSES[s][1] for s in self.styles]].mean(axis=0)
        if self.music:
            music = scores[:, [index for index, _ in fusion.MUSIC_CLASSES]].max(axis=1).mean()
            columns = np.append(columns, music)
        return TrackOpinion(self.weight * fusion.audioset_track_log(scores, self.labels), np.clip(columns, 0.0, 1.0))

    def track_logs(self, tracks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each track's weighted log-term ``float64 [n_labels]`` (:meth:`opinions` without the columns)."""
        return [o.log for o in self.opinions(tracks)]


def track_opinions(classifier, tracks: Sequence[np.ndarray]) -> list[TrackOpinion | None]:
    """What ``classifier``'s track-level experts (its ``experts``) say of each track, joined (their log-terms
    summed, the columns EfficientAT's), or None per track for a classifier without any: what
    :func:`~genretag.models.runtime.track_mean` takes as ``expert``."""
    experts = getattr(classifier, "experts", ())
    if not experts:
        return [None] * len(tracks)
    joined = [TrackOpinion(np.zeros(len(classifier.labels)))] * len(tracks)
    for expert in experts:
        joined = [TrackOpinion(j.log + o.log, o.columns if o.columns is not None else j.columns)
                  for j, o in zip(joined, expert.opinions(tracks))]
    return joined


def expert_names(features: FeatureConfig) -> tuple[str, ...]:
    """The track-level experts a card's features ask for, in the order they are run."""
    return (("efficientat",) if features.audioset_windows else ()) + (("yamnet",) if features.yamnet_windows else ())


def load_openvino(core, bundle, batch_size: int, name: str = "yamnet") -> TrackExpert:
    """Compile the card's ``runtime[name]`` artifact (its sha256 checked by ``verify_bundle``) and check its shapes."""
    from genretag.errors import ModelError, describe

    card = bundle.card
    entry = card.runtime.get(name)
    if not isinstance(entry, dict):
        raise ModelError(f"card.json has {_option(name)} but its runtime lists no {name} artifact; export it again "
                         "(tools/export_runtime.py)", bundle.path)
    path = bundle.path / entry["file"]
    try:
        compiled = core.compile_model(core.read_model(str(path)), "CPU", OPENVINO_CONFIG)
        shapes = compiled.input(0).get_partial_shape().to_string(), compiled.output(0).get_partial_shape().to_string()
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError and its own types for a bad file
        raise ModelError(f"cannot load {entry['file']} with OpenVINO: {describe(exc)}", path) from exc
    expert = _expert(name, lambda x: compiled(x)[0], card, batch_size, "openvino")
    mels, frames = _input_shape(expert)
    if shapes != (f"[?,{mels},{frames}]", f"[?,{expert.n_classes}]"):
        raise ModelError(f"{entry['file']} shape {shapes[0]}->{shapes[1]} does not match card.json", path)
    return expert


def load_keras(card, batch_size: int, name: str = "yamnet") -> TrackExpert:
    """The expert's network built in Keras from the shipped (sha256-checked) pretrained weights."""
    from genretag.models.fusion import build_audioset_scorer, build_yamnet_scorer

    model = (build_yamnet_scorer if name == "yamnet" else build_audioset_scorer)(card.features)
    return _expert(name, model.predict_on_batch, card, batch_size, "keras")


def _expert(name: str, run, card, batch_size: int, runtime: str) -> TrackExpert:
    return TrackExpert(name, run, card.features, card.labels, batch_size, runtime, card.style_names,
                       card.music is not None)


def _input_shape(expert: TrackExpert) -> tuple[int, int]:
    config = expert.features
    return (YAMNET_MELS, config.yamnet_frames) if expert.name == "yamnet" else (AUDIOSET_MELS, config.audioset_frames)


def _option(name: str) -> str:
    return "yamnet_windows" if name == "yamnet" else "audioset_windows"
