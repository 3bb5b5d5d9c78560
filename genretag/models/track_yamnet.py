"""YAMNet as a track-level expert (a card whose features have ``yamnet_windows``).

Such a bundle's per-window network is musicnn's head and EfficientAT alone; YAMNet runs as a network of its own
(:func:`genretag.models.fusion.build_yamnet_scorer`: OpenVINO on the card's ``runtime.yamnet`` artifact, Keras
when that cannot run) on the ``k`` windows of each track :func:`genretag.features.yamnet_picks` names, whose
YAMNet rows the decode worker filled. Its windows' mean scores, mapped onto the labels, are added to the log of
the track's pooled genre distribution (:func:`genretag.models.runtime.track_mean`'s ``expert_log``):

    track score = log(mean_w softmax((1 - w - w_y) log p_w + w log q_w)) + w_y log q_y

then calibrated (``softmax(score / T)``). A scan's batches: windows of many tracks through the main network, the
picked windows of the tracks a batch completes through YAMNet's, pooled per track.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from genretag.config import YAMNET_MELS, FeatureConfig
from genretag.models.batches import OPENVINO_CONFIG, batched

ARTIFACT = "yamnet.onnx"


@dataclass
class TrackYamnet:
    """YAMNet's network for a bundle's picked windows, and how its opinion joins a track's."""

    run: Callable[[np.ndarray], np.ndarray]
    """``float32 [b, 64, yamnet_frames]`` -> ``float32 [b, 521]`` (one compiled batch)."""
    features: FeatureConfig
    labels: tuple[str, ...]
    batch_size: int = 64
    runtime: str = "keras"

    @property
    def weight(self) -> float:
        return self.features.yamnet_weight

    def bands(self, windows: np.ndarray) -> np.ndarray:
        """A track's picked windows' YAMNet rows: ``float32 [n, *patch_shape]`` -> ``float32 [k, 64, yamnet_frames]``."""
        from genretag.features import yamnet_picks

        config = self.features
        picks = yamnet_picks(len(windows), config.yamnet_windows)
        return windows[picks, config.yamnet_row : config.yamnet_row + YAMNET_MELS, : config.yamnet_frames]

    def scores(self, bands: np.ndarray) -> np.ndarray:
        """``float32 [m, 64, yamnet_frames]`` -> YAMNet's scores ``float32 [m, 521]``, in padded batches."""
        return batched(self.run, bands, batch_size=self.batch_size, n_out=521)

    def track_logs(self, tracks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each track's weighted YAMNet term ``w_y log q_y``, ``float64 [n_labels]``, from its windows ``float32 [n,
        *patch_shape]``: the picked windows of all of them through the network in shared batches."""
        from genretag.models.fusion import yamnet_track_log

        cuts = [self.bands(np.asarray(w)) for w in tracks]
        if not cuts:
            return []
        scores = np.split(self.scores(np.concatenate(cuts)), np.cumsum([len(c) for c in cuts])[:-1])
        return [self.weight * yamnet_track_log(s, self.labels) for s in scores]


def track_logs(classifier, tracks: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    """:meth:`TrackYamnet.track_logs` of ``classifier``'s track-level YAMNet (its ``yamnet``), or None per track
    for a classifier without one: what :func:`~genretag.models.runtime.track_mean` takes as ``expert_log``."""
    expert = getattr(classifier, "yamnet", None)
    return expert.track_logs(tracks) if expert is not None else [None] * len(tracks)


def load_openvino(core, bundle, batch_size: int) -> TrackYamnet:
    """Compile the card's ``runtime.yamnet`` artifact (its sha256 checked by ``verify_bundle``) and check its shapes."""
    from genretag.errors import ModelError, describe

    card = bundle.card
    entry = card.runtime.get("yamnet")
    if not isinstance(entry, dict):
        raise ModelError("card.json has yamnet_windows but its runtime lists no yamnet artifact; export it again "
                         "(tools/export_runtime.py)", bundle.path)
    path = bundle.path / entry["file"]
    try:
        compiled = core.compile_model(core.read_model(str(path)), "CPU", OPENVINO_CONFIG)
        shapes = compiled.input(0).get_partial_shape().to_string(), compiled.output(0).get_partial_shape().to_string()
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError and its own types for a bad file
        raise ModelError(f"cannot load {entry['file']} with OpenVINO: {describe(exc)}", path) from exc
    if shapes != (f"[?,{YAMNET_MELS},{card.features.yamnet_frames}]", "[?,521]"):
        raise ModelError(f"{entry['file']} shape {shapes[0]}->{shapes[1]} does not match card.json", path)
    return TrackYamnet(lambda x: compiled(x)[0], card.features, card.labels, batch_size, "openvino")


def load_keras(card, batch_size: int) -> TrackYamnet:
    """YAMNet's network built in Keras from the shipped (sha256-checked) pretrained weights."""
    from genretag.models.fusion import build_yamnet_scorer

    model = build_yamnet_scorer(card.features)
    return TrackYamnet(model.predict_on_batch, card.features, card.labels, batch_size, "keras")
