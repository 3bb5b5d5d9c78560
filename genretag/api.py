"""The library API every front end calls: the CLI, the benchmarks, the golden test, plugins, engines.

    >>> import genretag
    >>> genretag.predict_file("song.mp3").genre               # one file
    'Rock'
    >>> for r in genretag.predict(["~/Music"]):                # many files: pool, batches, averages
    ...     print(r.path, r.status, r.prediction and r.prediction.genre)
    >>> r = genretag.decide(r, genretag.ScanOptions(top_k=2))  # what it would get (pure)
    >>> r = genretag.write(r, model_id="genretag-default 2.0")   # write it (atomic)

Importing this module is cheap: the pipeline, mutagen and the model runtime are
imported when a function needs them, and Keras only when a model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from genretag.config import ScanOptions, WindowPolicy
from genretag.errors import DecodeError

if TYPE_CHECKING:
    from genretag.discover import Discovery
    from genretag.models.bundle import Bundle
    from genretag.models.runtime import Classifier
    from genretag.scan import Prediction, ScanResult

Progress = Callable[[int, int], None]
"""``on_progress(done, total)``: files finished so far, out of all files found."""


@dataclass(frozen=True)
class Model:
    """A model bundle with its classifier, ready to predict (load it once with :func:`load_model`)."""

    bundle: Bundle
    classifier: Classifier

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.card.labels

    @property
    def model_id(self) -> str:
        """What the provenance tag records: ``name version``."""
        return self.bundle.card.model_id


def load_model(model: str | Path = "default", *, batch_size: int = ScanOptions.batch_size,
               background: bool = False) -> Model:
    """A bundled model by name (``"default"``) or a bundle folder that ``genretag train`` wrote.

    The weights' sha256 is checked first. ``background=True`` loads Keras and the
    weights in a thread and returns at once (the first prediction waits for it),
    so decoding can start meanwhile. Raises :class:`~genretag.errors.ModelError`.
    """
    from genretag.models.registry import resolve_model
    from genretag.models.runtime import DeferredClassifier, load_classifier

    bundle = resolve_model(str(model))
    loader = DeferredClassifier if background else load_classifier
    return Model(bundle, loader(bundle, batch_size=batch_size))


def _as_model(model: str | Path | Model, options: ScanOptions) -> Model:
    if isinstance(model, Model):
        return model
    return load_model(model, batch_size=options.batch_size, background=True)


def predict_file(path: str | Path, *, model: str | Path | Model = "default",
                 windows: int = WindowPolicy.windows) -> Prediction:
    """The genre distribution of one file: ``windows`` 3-s windows, decoded here, averaged.

    Raises :class:`~genretag.errors.DecodeError` naming the file when it can't be
    decoded, is too short, or is silent (no genre to give).
    """
    from genretag.models.runtime import track_mean
    from genretag.scan import Prediction, extract_track

    loaded = _as_model(model, ScanOptions())
    track = extract_track(Path(path), config=loaded.bundle.card.features, policy=WindowPolicy(windows=windows))
    if track.status == "error":
        raise DecodeError(track.error or "decode failed", path)
    if track.status == "silent":
        raise DecodeError(f"silent (below {WindowPolicy.silence_dbfs:g} dBFS): no genre", path)
    probs = loaded.classifier.predict(track.windows)
    return Prediction(Path(path), loaded.labels, track_mean(probs), len(track.windows))


def predict(paths: Iterable[str | Path] | Discovery, *, model: str | Path | Model = "default",
            options: ScanOptions = ScanOptions(), on_progress: Progress | None = None) -> Iterator[ScanResult]:
    """Predict every audio file under ``paths`` (files and folders); writes nothing.

    The batch pipeline: a pool of ``options.jobs`` decode workers, windows of many
    tracks through the model in batches of ``options.batch_size``, probabilities
    averaged per track. Yields one :class:`~genretag.scan.ScanResult` per file as
    each finishes, with status ``predicted`` (see ``.prediction``), ``skipped``
    (already tagged by this model, unless ``options.force``), ``silent`` or
    ``failed`` (see ``.error``): a bad file is a value, never an exception.
    Pass the result to :func:`decide` and :func:`write` to tag it.
    """
    from genretag.scan import predict_files

    yield from _run(predict_files, paths, model=model, options=options, on_progress=on_progress)


def tag(paths: Iterable[str | Path] | Discovery, *, model: str | Path | Model = "default",
        options: ScanOptions = ScanOptions(), on_progress: Progress | None = None) -> Iterator[ScanResult]:
    """:func:`predict`, :func:`decide` and (unless ``options.dry_run``) :func:`write` for every file:
    what ``genretag scan`` does (named ``tag`` here: ``genretag.scan`` is the pipeline's package). Temporary copies a killed earlier run left beside
    these files are removed first (not in a dry run)."""
    from genretag.scan import scan_files

    yield from _run(scan_files, paths, model=model, options=options, on_progress=on_progress)


def _run(stage, paths, *, model, options: ScanOptions, on_progress: Progress | None) -> Iterator[ScanResult]:
    from genretag.discover import Discovery, discover
    from genretag.scan import ScanResult

    found = paths if isinstance(paths, Discovery) else discover(paths)
    total, done = len(found.files) + len(found.problems), 0

    def tick() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    for path, reason in found.problems:
        tick()
        yield ScanResult(path, "failed", error=reason)
    if not found.files:
        return
    loaded = _as_model(model, options)
    for result in stage(found.files, bundle=loaded.bundle, classifier=loaded.classifier, options=options):
        tick()
        yield result


def decide(result: ScanResult, options: ScanOptions = ScanOptions()) -> ScanResult:
    """What a ``predicted`` file gets under ``options`` (top-k, floor, genre map, overwrite); pure.
    See :func:`genretag.scan.decide`."""
    from genretag.scan import decide as decide_

    return decide_(result, options)


def write(result: ScanResult, *, model_id: str, options: ScanOptions = ScanOptions()) -> ScanResult:
    """Write a decided (``would-tag``) result into its file, atomically; ``tagged`` or ``failed`` back.
    ``model_id`` goes into the provenance field. See :func:`genretag.scan.write`."""
    from genretag.scan import write as write_

    return write_(result, model_id=model_id, options=options)
