"""The library API every front end calls: the CLI, the benchmarks, the golden test, plugins, engines.

    >>> import genretag
    >>> model = genretag.load_model()                           # resolved once, passed around
    >>> model.predict_file("song.mp3").genre                    # one file
    'Rock'
    >>> for r in model.predict(["~/Music"]):                    # many files: pool, batches, averages
    ...     print(r.path, r.status, r.prediction and r.prediction.genre)
    >>> r = model.decide(r, genretag.ScanOptions(top_k=2))      # what it would get (pure; the card's floors)
    >>> r = genretag.write(r, model_id=model.model_id)          # write it (atomic)

Importing this module is cheap: the pipeline, mutagen and the model runtime are
imported when a function needs them, and Keras only when a model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from genretag.config import DEFAULT_MODEL, DecisionOptions, ScanOptions, WindowPolicy
from genretag.errors import DecodeError

if TYPE_CHECKING:
    from genretag.discover import Discovery
    from genretag.models.bundle import Bundle, Style
    from genretag.models.runtime import Classifier
    from genretag.scan import Prediction, ScanResult
    from genretag.store import Store

Progress = Callable[[int, int], None]
"""``on_progress(done, total)``: files finished so far, out of all files found."""


class Model:
    """A model: its bundle (card, weights) and its classifier. Resolve it once (:func:`load_model`) and
    pass it around; its methods are the API with this model (``model.predict_file(path)``,
    ``model.predict(paths)``, ``model.tag(paths)``, ``model.decide(result)``), and its card's confidence
    floors are the default wherever ``ScanOptions`` leaves them at None.

    ``classifier``: None loads the model only when a prediction first needs it (in the background,
    the weights' sha256 checked first): a run whose files all come from the store or keep their genre
    loads none.
    """

    def __init__(self, bundle: Bundle, classifier: Classifier | None = None, *,
                 batch_size: int = ScanOptions.batch_size) -> None:
        self.bundle = bundle
        self._classifier = classifier
        self._batch_size = batch_size

    def __repr__(self) -> str:
        return f"Model({self.model_id!r}, {str(self.bundle.path)!r})"

    @property
    def labels(self) -> tuple[str, ...]:
        return self.bundle.card.labels

    @property
    def model_id(self) -> str:
        """What the provenance tag records: ``name version``."""
        return self.bundle.card.model_id

    @property
    def classifier(self) -> Classifier:
        """The loaded classifier (a model loaded on demand starts loading now)."""
        return self._loading(start=True)

    def _loading(self, *, start: bool) -> Classifier:
        """The classifier; one loaded on demand is created here, loading at once if ``start``, else when
        the pipeline first has audio for it."""
        if self._classifier is None:
            from genretag.models.runtime import DeferredClassifier

            self._classifier = DeferredClassifier(self.bundle, batch_size=self._batch_size, start=start)
        elif start and hasattr(self._classifier, "start"):
            self._classifier.start()
        return self._classifier

    def with_floors(self, decision: DecisionOptions) -> DecisionOptions:
        """``decision`` (a scan's: ``options.decision``) with the confidence floors left at None taken from this
        model's card."""
        return decision.for_model(self.bundle.card.calibration)

    def predict_file(self, path: str | Path, *, windows: int = WindowPolicy.windows) -> Prediction:
        """See :func:`genretag.predict_file`."""
        from genretag.scan import extract_track
        from genretag.scan.batching import from_windows

        card = self.bundle.card
        track = extract_track(Path(path), config=card.features, policy=WindowPolicy(windows=windows))
        if track.status == "error":
            raise DecodeError(track.error or "decode failed", path)
        if track.status == "silent":
            raise DecodeError(f"silent (below {WindowPolicy.silence_dbfs:g} dBFS): no genre", path)
        from genretag.models.track_experts import track_opinions

        outputs = self.classifier.predict(track.windows)
        return from_windows(Path(path), outputs, labels=card.labels, styles=card.style_names,
                            temperature=card.temperature, pooling=card.pooling, music=card.music is not None,
                            expert=track_opinions(self.classifier, [track.windows])[0])

    def predict(self, paths: Iterable[str | Path] | Discovery, *, options: ScanOptions = ScanOptions(),
                on_progress: Progress | None = None, store: Store | None = None) -> Iterator[ScanResult]:
        """See :func:`genretag.predict`."""
        return _run(paths, model=self, options=options, on_progress=on_progress, store=store, write_tags=False)

    def tag(self, paths: Iterable[str | Path] | Discovery, *, options: ScanOptions = ScanOptions(),
            on_progress: Progress | None = None, store: Store | None = None,
            named: Iterable[str | Path] = ()) -> Iterator[ScanResult]:
        """See :func:`genretag.tag`."""
        return _run(paths, model=self, options=options, on_progress=on_progress, store=store, write_tags=True,
                    named=named)

    def apply(self, paths: Iterable[str | Path] | Discovery, *, store: Store, options: ScanOptions = ScanOptions(),
              on_progress: Progress | None = None, named: Iterable[str | Path] = ()) -> Iterator[ScanResult]:
        """See :func:`genretag.apply`."""
        return _run(paths, model=self, options=options, on_progress=on_progress, store=store, write_tags=True,
                    decode=False, named=named)

    def decide(self, result: ScanResult, options: ScanOptions = ScanOptions(), *,
               styles: Sequence[Style] | None = None) -> ScanResult:
        """See :func:`genretag.decide`: floors left at None are this model's, ``styles`` default to its card's.
        A result this model did not predict (other labels) is a :class:`~genretag.errors.UsageError`."""
        from genretag.errors import UsageError
        from genretag.scan import decide as decide_

        prediction = result.prediction
        if prediction is not None and tuple(prediction.labels) != tuple(self.labels):
            raise UsageError(f"this result was not predicted by {self.model_id} (other labels): "
                             "pass the model that predicted it", result.path)
        return decide_(result, self.with_floors(options.decision),
                       styles=self.bundle.card.styles if styles is None else styles)


def load_model(model: str | Path | Model = DEFAULT_MODEL, *, batch_size: int = ScanOptions.batch_size,
               background: bool = False, lazy: bool = False) -> Model:
    """A bundled model by name (``"default"``) or a bundle folder that ``genretag train`` wrote
    (a :class:`Model` comes back as it is).

    The weights' sha256 is checked first. ``background=True`` loads Keras and the
    weights in a thread and returns at once (the first prediction waits for it),
    so decoding can start meanwhile. ``lazy=True`` reads the card only: the model loads (in the
    background) when a prediction first needs it. Raises :class:`~genretag.errors.ModelError`.
    """
    from genretag.models.runtime import DeferredClassifier, load_classifier

    if isinstance(model, Model):
        return model
    bundle = find_model(model)
    if lazy:
        return Model(bundle, batch_size=batch_size)
    loader = DeferredClassifier if background else load_classifier
    return Model(bundle, loader(bundle, batch_size=batch_size), batch_size=batch_size)


def _model(model: str | Path | Model, options: ScanOptions = ScanOptions()) -> Model:
    """``model`` as a :class:`Model`; a name or a folder loads on demand, in batches of ``options.batch_size``."""
    return load_model(model, batch_size=options.batch_size, lazy=True)


def predict_file(path: str | Path, *, model: str | Path | Model = DEFAULT_MODEL,
                 windows: int = WindowPolicy.windows) -> Prediction:
    """The genre distribution of one file: ``windows`` 3-s windows, decoded here, averaged.

    Raises :class:`~genretag.errors.DecodeError` naming the file when it can't be
    decoded, is too short, or is silent (no genre to give). A model with a music score (its card's
    ``music``) fills the prediction's ``music``: below the card's ``music.floor``, a scan would call the file
    ``not-music`` and write no genre.
    """
    return _model(model).predict_file(path, windows=windows)


def predict(paths: Iterable[str | Path] | Discovery, *, model: str | Path | Model = DEFAULT_MODEL,
            options: ScanOptions = ScanOptions(), on_progress: Progress | None = None,
            store: Store | None = None) -> Iterator[ScanResult]:
    """Predict every audio file under ``paths`` (files and folders); writes no tags.

    The batch pipeline: a pool of ``options.jobs`` decode workers, windows of many
    tracks through the model in batches of ``options.batch_size``, probabilities
    averaged per track. Yields one :class:`~genretag.scan.ScanResult` per file as
    each finishes, with status ``predicted`` (see ``.prediction``), ``not-music`` (the model's music
    score is below its floor: it has a prediction, and gets no genre), ``skipped``
    (already tagged by this model, unless ``options.force``), ``silent`` or
    ``failed`` (see ``.error``): a bad file is a value, never an exception.
    Pass the result to :func:`decide` and :func:`write` to tag it.

    ``store``: a :class:`~genretag.store.Store`. Files it already holds a
    prediction for (same model, file unchanged) come from it without decoding,
    and the model is not even loaded when nothing is left to decode; new
    predictions are recorded in it. If the store fails mid-run, the run goes on
    without it, ``store.failed`` says why and the ``genretag`` logger warns.
    """
    return _model(model, options).predict(paths, options=options, on_progress=on_progress, store=store)


def tag(paths: Iterable[str | Path] | Discovery, *, model: str | Path | Model = DEFAULT_MODEL,
        options: ScanOptions = ScanOptions(), on_progress: Progress | None = None,
        store: Store | None = None, named: Iterable[str | Path] = ()) -> Iterator[ScanResult]:
    """:func:`predict`, :func:`decide` and (unless ``options.dry_run``) :func:`write` for every file:
    what ``genretag scan`` does (named ``tag`` here: ``genretag.scan`` is the pipeline's package).
    Temporary copies a killed earlier run left beside these files are removed first
    (not in a dry run). With a ``store``, what each file got is recorded too, and a file a person reviewed
    (``apply_report``) keeps what they decided unless ``options.overwrite`` and the file is among ``named``
    (the files the user named, not a folder holding them)."""
    return _model(model, options).tag(paths, options=options, on_progress=on_progress, store=store, named=named)


def apply(paths: Iterable[str | Path] | Discovery, *, store: Store, model: str | Path | Model = DEFAULT_MODEL,
          options: ScanOptions = ScanOptions(), on_progress: Progress | None = None,
          named: Iterable[str | Path] = ()) -> Iterator[ScanResult]:
    """Tag files from their stored predictions, decoding nothing: :func:`decide` and (unless
    ``options.dry_run``) :func:`write` with ``options``, as :func:`tag` would.

    A file with no stored prediction by ``model``, or one that changed since it was
    predicted, is a ``failed`` result saying so (scan it again); it is never tagged
    from an old prediction.
    """
    return _model(model, options).apply(paths, store=store, options=options, on_progress=on_progress, named=named)


def apply_report(report: str | Path | list[dict], *, model_id: str | None = None,
                 options: ScanOptions = ScanOptions(), on_progress: Progress | None = None,
                 store: Store | None = None, model: Model | Bundle | None = None) -> Iterator[ScanResult]:
    """Tag files from a JSON Lines report of ``scan --json`` after a review, decoding nothing.

    Each row's ``genres`` are what is written (edit them; empty the list or delete the
    row to leave a file alone), renamed by ``options.genre_map``; a file that already
    has a genre keeps it unless ``options.overwrite`` (``merge``, ``write_to``, ``id3v23``,
    ``keep_mtime`` apply too; ``top_k``, the confidence floors and ``group`` do not: the
    row's genres are the decision). A file whose size or modification
    time is not the row's (``size``, ``mtime_ns``) changed since it was predicted and is
    a ``failed`` result. Each row's ``model`` (else ``model_id``) goes into the
    provenance field. ``report``: the file, or its rows as :func:`genretag.scan.read_report` read
    them. Raises :class:`~genretag.errors.UsageError` for a report that can't be read.

    ``store`` and ``model``: a file written from a row that ``model`` predicted gets its store entry
    updated (new size, modification time and tags), so the next scan or ``apply`` still knows it.
    Every row applied is a person's decision: the provenance field says ``reviewed``, and the store
    records the review (a row whose genres were emptied too: that file is left alone by later scans),
    so later scans and applies keep it unless ``--overwrite`` names the file. Temporary copies a killed
    earlier write left beside the rows' files are removed first (not in a dry run), as :func:`tag` does.
    """
    from genretag.scan import read_report
    from genretag.scan.run import apply_rows

    rows = report if isinstance(report, list) else read_report(report)
    bundle = model.bundle if isinstance(model, Model) else model
    yield from apply_rows(rows, model_id=model_id, options=options, on_progress=on_progress, store=store,
                          bundle=bundle)


def _run(paths, *, model: Model, options: ScanOptions, on_progress: Progress | None, store: Store | None,
         write_tags: bool, decode: bool = True, named: Iterable[str | Path] = ()) -> Iterator[ScanResult]:
    """:func:`genretag.scan.run.run_files` with this model."""
    from genretag.scan.run import run_files

    yield from run_files(paths, bundle=model.bundle, load=lambda start: model._loading(start=start),
                         options=options, on_progress=on_progress, store=store, write_tags=write_tags, decode=decode,
                         named=named)


def find_model(model: str | Path = DEFAULT_MODEL) -> Bundle:
    """A model's bundle (its card: ``.card.model_id``, ``.card.labels``, features...) without loading
    it: no Keras import, no weights read. Raises :class:`~genretag.errors.ModelError`."""
    from genretag.models.registry import resolve_model

    return resolve_model(str(model))


def decide(result: ScanResult, options: ScanOptions = ScanOptions(), *, model: str | Path | Model | None = None,
           styles: Sequence[Style] | None = None) -> ScanResult:
    """What a ``predicted`` file gets under ``options`` (top-k, floors, genre map, overwrite, styles...); pure.
    Confidence floors left at None are the model's own, as :func:`tag` uses them: ``model``'s (the model that
    predicted ``result``; default: the default model, whose labels ``result`` must then have). ``styles``
    (a model card's ``styles``): what ``options.styles`` chooses among; default: the model's. With both
    floors set and ``styles`` given, no model is read. See :func:`genretag.scan.decide`."""
    from genretag.scan import decide as decide_

    if model is None and styles is not None and None not in (options.min_confidence, options.next_min_confidence):
        return decide_(result, options.decision, styles=styles)
    return _model(DEFAULT_MODEL if model is None else model, options).decide(result, options, styles=styles)


def write(result: ScanResult, *, model_id: str, options: ScanOptions = ScanOptions()) -> ScanResult:
    """Write a decided (``would-tag``) result into its file, atomically; ``tagged`` or ``failed`` back.
    ``model_id`` goes into the provenance field. See :func:`genretag.scan.write`."""
    from genretag.scan import write as write_

    return write_(result, model_id=model_id, decision=options.decision, writing=options.writing)
