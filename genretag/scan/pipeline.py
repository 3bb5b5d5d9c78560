"""The scan pipeline: files -> decode+features (pool) -> batched inference -> decide -> tags.

Each stage is a plain function over paths and arrays; :func:`predict_files`
wires the first three together and yields one :class:`ScanResult` per file as
it finishes; the decision (:mod:`~genretag.scan.decide`), the write (:mod:`~genretag.scan.writing`) and the
prediction store are added by the library API (:func:`genretag.tag`). Nothing
here prints: the caller renders results and progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from genretag.config import ScanOptions, WindowPolicy
from genretag.models.bundle import Bundle
from genretag.models.runtime import Classifier
from genretag.scan.batching import Prediction, predict_stream
from genretag.scan.decide import ScanResult
from genretag.scan.extract import TrackFeatures, extract_track
from genretag.scan.pool import Outcome, run_pool


def decode_stage(
    files: Iterable[Path], *, bundle: Bundle, options: ScanOptions, skip_own: bool = True
) -> Iterator[TrackFeatures]:
    """Decode files in a process pool (or inline with ``jobs=0``). ``skip_own``: a file this model
    tagged is ``skipped`` undecoded (unless ``options.force``)."""
    policy = WindowPolicy(windows=options.windows)
    skip = None if options.force or not skip_own else bundle.card.model_id
    kwargs = {"config": bundle.card.features, "policy": policy, "skip_if_tagged_by": skip,
              "skip_if_genre": options.leaves_kept_undecoded}
    queue = options.queue_size or 4 * max(options.jobs, 1) + 8
    for outcome in run_pool(extract_track, files, jobs=options.jobs, timeout=options.timeout,
                            max_pending=queue, kwargs=kwargs):
        yield _as_features(outcome)


def _as_features(outcome: Outcome) -> TrackFeatures:
    if outcome.ok:
        return outcome.value
    return TrackFeatures(Path(outcome.item), "error", error=outcome.error)


def as_result(track: TrackFeatures, prediction: Prediction | None, *, music_floor: float | None = None,
              not_music: bool | None = None) -> ScanResult:
    """What is known of a file before anything is decided (a decoded or failed track, a stored prediction, a
    row of the Ray engine) as a ``predicted`` / ``not-music`` / ``skipped`` / ``kept`` / ``silent`` / ``failed``
    :class:`ScanResult`: the one place such a result is made. ``track.status`` says what happened to the file
    (``kept``: not decoded, it keeps its genre; ``skipped``: this model tagged it, with its prediction when one
    is at hand, e.g. a stored one). ``not_music``: whether the prediction is ``not-music`` (it keeps its
    prediction, and gets no genre); None: its music score is compared with ``music_floor`` (the model card's
    ``music.floor``; None: the model has no music score)."""
    base = {"path": track.path, "previous": track.genres, "provenance": track.provenance, "error": track.error,
            "identity": track.identity, "tags": track.tags}
    if track.status == "skipped":
        return ScanResult(**base, status="skipped", prediction=prediction)
    if track.status in ("silent", "kept"):
        return ScanResult(**base, status=track.status)
    if track.status == "error" or prediction is None:
        return ScanResult(**{**base, "error": track.error or "no audio windows"}, status="failed")
    if not_music is None:
        not_music = is_not_music(prediction, music_floor)
    return ScanResult(**base, status="not-music" if not_music else "predicted", prediction=prediction)


def is_not_music(prediction: Prediction, floor: float | None) -> bool:
    """Whether a track's music score (``prediction.music``) is below ``floor``; never for a model without
    a music score (either None)."""
    return floor is not None and prediction.music is not None and prediction.music < floor


def predict_files(
    files: Iterable[Path], *, bundle: Bundle, classifier: Classifier, options: ScanOptions, skip_own: bool = True
) -> Iterator[ScanResult]:
    """Decode and predict every file; one ``predicted`` (or not-music/skipped/silent/failed) result per
    file, as each finishes. Writes nothing. ``skip_own=False``: files this model tagged are predicted
    too (see :func:`decode_stage`)."""
    features = _starting(decode_stage(files, bundle=bundle, options=options, skip_own=skip_own), classifier)
    floor = bundle.card.music.floor if bundle.card.music is not None else None
    for track, prediction in predict_stream(features, classifier, batch_size=options.batch_size,
                                            temperature=bundle.card.temperature, pooling=bundle.card.pooling):
        yield as_result(track, prediction, music_floor=floor)


def _starting(tracks: Iterator[TrackFeatures], classifier: Classifier) -> Iterator[TrackFeatures]:
    """``tracks`` as they come; a classifier that loads on demand (``start``) starts loading with the
    first track that has windows to predict, while the rest are still being decoded."""
    start = getattr(classifier, "start", None)
    for track in tracks:
        if start is not None and track.status == "ok":
            start()
            start = None
        yield track
