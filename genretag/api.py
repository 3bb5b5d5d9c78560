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

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from genretag.config import ScanOptions, WindowPolicy
from genretag.errors import DecodeError

if TYPE_CHECKING:
    from genretag.discover import Discovery
    from genretag.models.bundle import Bundle, Style
    from genretag.models.runtime import Classifier
    from genretag.scan import Prediction, ScanResult
    from genretag.store import Store

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
    """``model`` loading in the background. When files may turn out to keep their genre undecoded
    (``options.skips_kept``) the load starts with the first file that needs the model (the pipeline
    starts it), so a scan of files that all keep theirs loads none."""
    from genretag.models.registry import resolve_model
    from genretag.models.runtime import DeferredClassifier

    if isinstance(model, Model):
        return model
    bundle = resolve_model(str(model))
    return Model(bundle, DeferredClassifier(bundle, batch_size=options.batch_size, start=not options.skips_kept))


def predict_file(path: str | Path, *, model: str | Path | Model = "default",
                 windows: int = WindowPolicy.windows) -> Prediction:
    """The genre distribution of one file: ``windows`` 3-s windows, decoded here, averaged.

    Raises :class:`~genretag.errors.DecodeError` naming the file when it can't be
    decoded, is too short, or is silent (no genre to give). A model with a music score (its card's
    ``music``) fills the prediction's ``music``: below the card's ``music.floor``, a scan would call the file
    ``not-music`` and write no genre.
    """
    from genretag.scan import extract_track
    from genretag.scan.batching import from_windows

    loaded = _as_model(model, ScanOptions())
    track = extract_track(Path(path), config=loaded.bundle.card.features, policy=WindowPolicy(windows=windows))
    if track.status == "error":
        raise DecodeError(track.error or "decode failed", path)
    if track.status == "silent":
        raise DecodeError(f"silent (below {WindowPolicy.silence_dbfs:g} dBFS): no genre", path)
    outputs = loaded.classifier.predict(track.windows)
    card = loaded.bundle.card
    return from_windows(Path(path), outputs, labels=card.labels, styles=card.style_names,
                        temperature=card.temperature, pooling=card.pooling, music=card.music is not None)


def predict(paths: Iterable[str | Path] | Discovery, *, model: str | Path | Model = "default",
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
    without it and ``store.failed`` says why.
    """
    yield from _run(paths, model=model, options=options, on_progress=on_progress, store=store, settle=False)


def tag(paths: Iterable[str | Path] | Discovery, *, model: str | Path | Model = "default",
        options: ScanOptions = ScanOptions(), on_progress: Progress | None = None,
        store: Store | None = None, named: Iterable[str | Path] = ()) -> Iterator[ScanResult]:
    """:func:`predict`, :func:`decide` and (unless ``options.dry_run``) :func:`write` for every file:
    what ``genretag scan`` does (named ``tag`` here: ``genretag.scan`` is the pipeline's package).
    Temporary copies a killed earlier run left beside these files are removed first
    (not in a dry run). With a ``store``, what each file got is recorded too, and a file a person reviewed
    (``apply_report``) keeps what they decided unless ``options.overwrite`` and the file is among ``named``
    (the files the user named, not a folder holding them)."""
    yield from _run(paths, model=model, options=options, on_progress=on_progress, store=store, settle=True,
                    named=named)


def apply(paths: Iterable[str | Path] | Discovery, *, store: Store, model: str | Path | Model = "default",
          options: ScanOptions = ScanOptions(), on_progress: Progress | None = None,
          named: Iterable[str | Path] = ()) -> Iterator[ScanResult]:
    """Tag files from their stored predictions, decoding nothing: :func:`decide` and (unless
    ``options.dry_run``) :func:`write` with ``options``, as :func:`tag` would.

    A file with no stored prediction by ``model``, or one that changed since it was
    predicted, is a ``failed`` result saying so (scan it again); it is never tagged
    from an old prediction.
    """
    yield from _run(paths, model=model, options=options, on_progress=on_progress, store=store, settle=True,
                    decode=False, named=named)


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
    from genretag.scan import decide_row, read_report, write
    from genretag.scan.decide import writable

    rows = report if isinstance(report, list) else read_report(report)
    bundle = model.bundle if isinstance(model, Model) else model
    recorder = StoreRecorder(store if bundle is not None else None)
    if not options.dry_run:  # as a scan does: what a killed earlier write left beside these files goes
        from genretag.scan.review import row_file
        from genretag.tags import remove_stale_copies

        remove_stale_copies(path for row in rows if (path := row_file(row)) is not None)
    for done, row in enumerate(rows, start=1):
        decided = decide_row(row, options=options)
        provenance = row.get("model") or model_id
        if decided.status == "would-tag" and not provenance:
            decided = replace(decided, status="failed",
                              error="the report does not say which model predicted it (give the model)")
        elif decided.status == "would-tag" and options.dry_run:
            decided = writable(decided)  # a file that can't be written is said so, not "would tag"
        elif decided.status == "would-tag":
            decided = write(decided, model_id=provenance, options=options, reviewed=True)
            if bundle is not None and provenance == bundle.card.model_id:
                recorder.after_write(decided, store_key(bundle, options))
            if decided.status == "tagged":
                recorder.note_review(decided.path, field=options.write_to, genres=decided.genres, model=provenance)
        elif _left_alone(row, decided) and not options.dry_run:
            recorder.note_review(decided.path, field=options.write_to, genres=(), model=provenance)
        if on_progress is not None:
            on_progress(done, len(rows))
        yield decided


def _left_alone(row: dict, decided: ScanResult) -> bool:
    """A reviewed row whose genres the person emptied (it was to be tagged): leave that file alone."""
    return decided.status == "excluded" and not row.get("genres") and row.get("status") in (
        "would-tag", "tagged", "kept", "predicted", "excluded")


def _run(paths, *, model: str | Path | Model, options: ScanOptions, on_progress: Progress | None,
         store: Store | None, settle: bool, decode: bool = True, named: Iterable[str | Path] = ()
         ) -> Iterator[ScanResult]:
    import os
    from contextlib import closing

    from genretag.discover import Discovery, discover
    from genretag.scan import ScanResult, predict_files, with_groups
    from genretag.scan import settle as settle_result
    from genretag.tags import remove_stale_copies

    found = paths if isinstance(paths, Discovery) else discover(paths)
    total, done = len(found.files) + len(found.problems), 0
    recorder = StoreRecorder(store)
    named_files = {os.path.realpath(p) for p in named}

    def tick(result: ScanResult) -> ScanResult:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)
        return result

    def finish(result: ScanResult, *, counted: bool = False) -> ScanResult:
        undecided = result
        if settle:
            # A review that left the file alone lives only in the store; one that chose genres lives in the
            # file's provenance ("reviewed genre"), so it goes when the file is replaced by other music.
            review = recorder.review_of(result.path)
            result = replace(result, named=os.path.realpath(result.path) in named_files,
                             review=review if review == () else None)
            result = settle_result(result, model_id=bundle.card.model_id, options=options, styles=bundle.card.styles,
                                   unless_unchanged=not decode)
            if result.status == "tagged" and result.review is not None:  # --overwrite named it
                recorder.forget_review(result.path)
        # The store keeps what the prediction found (a tag-read problem), never a failed write's reason:
        # a file that was read-only is tried again once it can be written.
        recorder.record(replace(result, error=undecided.error) if result.failed and undecided.prediction is not None
                        else result, store_key(bundle, options))
        return result if counted else tick(result)

    def produce() -> Iterator[ScanResult]:
        """Every file's undecided result: from the store where it knows the file, else decoded."""
        todo = list(found.files)
        if recorder.store is not None and (not options.force or not decode):  # apply always reads the store
            todo = []
            for path in found.files:
                # apply decides again even for files this model tagged; a scan skips them
                known = recorder.known(path, store_key(bundle, options), provenance=bundle.card.model_id,
                                       skip_own=decode,
                                       kept_ok=options.skips_kept if decode else options.keeps_genres)
                if known is None:
                    todo.append(path)
                else:
                    yield known
        if not decode:
            for path in todo:
                yield ScanResult(path, "failed", error=recorder.why_unknown(path, store_key(bundle, options)))
            return
        if not todo:
            return  # everything came from the store: no model loaded, nothing decoded
        loaded = _as_model(model, options)
        # With a store, a file this model tagged that the store does not know (a run stopped between the write
        # and the store's update: Ctrl-C, kill -9, a power cut) is predicted again and recorded, then skipped as
        # ever: else each scan would skip it unrecorded and apply would find no prediction of it.
        unknown_own = recorder.store is not None and not options.force
        with closing(predict_files(todo, bundle=loaded.bundle, classifier=loaded.classifier, options=options,
                                   skip_own=not unknown_own)) as results:  # closed with this generator, as yield from
            for result in results:
                if unknown_own and result.status == "predicted" and result.provenance == bundle.card.model_id:
                    recorder.record(result, store_key(bundle, options))
                    result = replace(result, status="skipped", prediction=None)
                yield result

    for path, reason in found.problems:
        yield tick(ScanResult(path, "failed", error=reason))
    if not found.files:
        return
    bundle = model.bundle if isinstance(model, Model) else find_model(model)
    options = options.for_model(bundle.card.calibration)  # floors left open: the model's own
    if settle and not options.dry_run:
        remove_stale_copies(found.files)
    if options.group == "track":
        for result in produce():
            yield finish(result)
        return
    # Grouped: every prediction first (each safe in the store as it comes), then each group's decision.
    collected = []
    for result in produce():
        recorder.record(result, store_key(bundle, options))
        collected.append(tick(result))
    for result in with_groups(collected, options.group, pooling=bundle.card.pooling):
        yield finish(result, counted=True)


def store_key(bundle: Bundle, options: ScanOptions = ScanOptions()) -> str:
    """What the prediction store files a model's predictions under: its id, the start of its weights'
    sha256 (a retrained bundle with the same name and version is another model), the windows a track
    is listened to (``--windows 32`` is another prediction than 8) and a fingerprint of everything else on
    the card that shapes a stored prediction (labels, features, calibration, pooling, styles, runtime: a
    re-calibrated card is another model), e.g. ``genretag-default 3.0 977094d2bb9e w8 c1a2b3c4d``."""
    import hashlib
    import json

    card = bundle.card.to_dict()
    shaping = {k: card.get(k) for k in ("labels", "features", "sha256", "calibration", "pooling", "runtime",
                                        "styles")}
    fingerprint = hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()
    return f"{bundle.card.model_id} {bundle.card.sha256[:12]} w{options.windows} c{fingerprint[:9]}"


def find_model(model: str | Path = "default") -> Bundle:
    """A model's bundle (its card: ``.card.model_id``, ``.card.labels``, features...) without loading
    it: no Keras import, no weights read. Raises :class:`~genretag.errors.ModelError`."""
    from genretag.models.registry import resolve_model

    return resolve_model(str(model))


class StoreRecorder:
    """The store as a run uses it: entries still valid for a file, results recorded; a store that
    fails is set aside (``store.failed`` keeps the error) and the run goes on without it."""

    def __init__(self, store: Store | None) -> None:
        self.store = store
        self._outcomes: dict[Path, str | None] = {}
        """What the store said the last run made of each file taken from it (to skip rewriting it)."""

    def known(self, path: Path, key: str, *, provenance: str, skip_own: bool = True,
              kept_ok: bool = False) -> ScanResult | None:
        """The stored result of ``path``, or None when it must be decoded. ``kept_ok``: an entry of a
        file that kept its genre without being predicted will do (the run needs no prediction of it)."""
        from genretag.errors import StoreError

        try:
            entry = self.store.current(path, key) if self.store is not None else None
        except StoreError:
            self.store = None
            return None
        if entry is None or entry.status == "failed" or (entry.status == "kept" and not kept_ok):
            return None
        self._outcomes[path] = entry.outcome
        return _from_entry(entry, provenance if skip_own else None, path=path)

    def why_unknown(self, path: Path, key: str) -> str:
        """Why the store has no usable prediction of ``path``."""
        entry = None
        if self.store is not None:
            try:
                entry = self.store.get(path, key)
            except Exception:  # noqa: BLE001 - only the message depends on it
                entry = None
        if entry is None:
            return "no stored prediction by this model (scan it first)"
        if entry.status == "failed":
            return f"its last scan failed ({entry.error}); scan it again"
        if entry.status == "kept":
            return "it kept its genre, so its last scan did not predict it (scan it with --overwrite or a report)"
        return "changed since it was predicted (scan it again)"

    def review_of(self, path: Path) -> tuple[str, ...] | None:
        """The genres a person chose for ``path`` (``()``: leave it alone), or None."""
        from genretag.errors import StoreError

        try:
            review = self.store.reviewed(path) if self.store is not None else None
        except StoreError:
            self.store = None
            return None
        return None if review is None else review.genres

    def note_review(self, path: Path, *, field: str, genres: tuple[str, ...], model: str | None) -> None:
        from genretag.errors import StoreError

        try:
            if self.store is not None:
                self.store.review(path, field=field, genres=genres, model=model)
        except StoreError:
            self.store = None

    def forget_review(self, path: Path) -> None:
        from genretag.errors import StoreError

        try:
            if self.store is not None:
                self.store.forget_review(path)
        except StoreError:
            self.store = None

    def after_write(self, result: ScanResult, key: str) -> None:
        """A file was tagged outside a scan (from a report): update its entry, if it has one."""
        from genretag.errors import StoreError

        if self.store is None or result.status != "tagged" or result.tags is None:
            return
        try:
            self.store.after_write(result.path, key, tags=result.tags, outcome="tagged")
        except StoreError:
            self.store = None

    def record(self, result: ScanResult, key: str) -> None:
        from genretag.errors import StoreError

        if self.store is None:
            return
        if result.path in self._outcomes and self._outcomes.pop(result.path) == result.status != "tagged":
            return  # taken from the store and nothing new happened to it
        try:
            self.store.put(result, model=key, identity=result.identity)
            if result.status == "tagged" and result.tags is not None:
                self.store.after_write(result.path, key, tags=result.tags, outcome="tagged")
        except StoreError:
            self.store = None


def _from_entry(entry, provenance: str | None, *, path: Path) -> ScanResult:
    """A stored prediction of the file at ``path`` as the pipeline would have produced it
    (``skipped`` if the model ``provenance`` names tagged the file)."""
    from genretag.scan import Prediction, ScanResult

    base = {"path": path, "previous": entry.previous, "provenance": entry.provenance,
            "identity": entry.identity, "error": entry.error, "tags": entry.tags}
    if entry.status == "silent":
        return ScanResult(**base, status="silent")
    if entry.status == "kept":
        return ScanResult(**base, status="kept")
    prediction = Prediction(path, entry.labels, entry.probabilities, entry.windows, entry.styles, entry.style_scores,
                            entry.music)
    if entry.status == "not-music":
        return ScanResult(**base, status="not-music", prediction=prediction)
    status = "skipped" if provenance is not None and entry.provenance == provenance else "predicted"
    return ScanResult(**base, status=status, prediction=prediction)


def decide(result: ScanResult, options: ScanOptions = ScanOptions(), *, model: Model | None = None,
           styles: Sequence[Style] | None = None) -> ScanResult:
    """What a ``predicted`` file gets under ``options`` (top-k, floors, genre map, overwrite, styles...); pure.
    With ``model``, confidence floors left at None are the model's own (as :func:`tag` uses them);
    without, they are 0. ``styles`` (a model card's ``styles``): what ``options.styles`` chooses among;
    default: ``model``'s, else none. See :func:`genretag.scan.decide`."""
    from genretag.scan import decide as decide_

    if styles is None:
        styles = model.bundle.card.styles if model is not None else ()
    return decide_(result, options.for_model(model.bundle.card.calibration) if model is not None else options,
                   styles=styles)


def write(result: ScanResult, *, model_id: str, options: ScanOptions = ScanOptions()) -> ScanResult:
    """Write a decided (``would-tag``) result into its file, atomically; ``tagged`` or ``failed`` back.
    ``model_id`` goes into the provenance field. See :func:`genretag.scan.write`."""
    from genretag.scan import write as write_

    return write_(result, model_id=model_id, options=options)
