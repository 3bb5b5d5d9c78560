"""A run over many files, as the library API drives it: the prediction store consulted and kept up to date
(:mod:`genretag.scan.recorder`), the pipeline (:func:`~genretag.scan.pipeline.predict_files`) for the files it
does not know, then each file decided and written, on its own or with its album or artist; and a reviewed
report's rows written (:func:`apply_rows`). Nothing here prints: results are yielded, progress goes to
``on_progress(done, total)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from genretag.config import ScanOptions
from genretag.discover import Discovery, discover
from genretag.scan.decide import ScanResult
from genretag.scan.writing import decide_and_write, writable, write
from genretag.scan.group import with_groups
from genretag.scan.pipeline import predict_files
from genretag.scan.recorder import StoreRecorder, store_key
from genretag.scan.review import decide_row, row_file
from genretag.tags import remove_stale_copies

if TYPE_CHECKING:
    from genretag.models.bundle import Bundle
    from genretag.models.runtime import Classifier
    from genretag.store import Store

Progress = Callable[[int, int], None]


def run_files(paths: Iterable[str | Path] | Discovery, *, bundle: Bundle, load: Callable[[bool], Classifier],
              options: ScanOptions, on_progress: Progress | None, store: Store | None, write_tags: bool,
              decode: bool = True, named: Iterable[str | Path] = ()) -> Iterator[ScanResult]:
    """Every file under ``paths`` through the prediction store, the pipeline and (``write_tags``) the decision and
    the write, with ``options`` (the :attr:`~genretag.config.ScanOptions.decision`'s floors left at None: the
    model card's): what :meth:`genretag.Model.predict` (``write_tags=False``), :meth:`~genretag.Model.tag` and
    :meth:`~genretag.Model.apply` (``decode=False``: from the store only) run. ``load(start)``: the model's
    classifier (``start``: begin loading it now), asked for only when a file must be decoded."""
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
        if write_tags:
            # A review that left the file alone lives only in the store; one that chose genres lives in the
            # file's provenance ("reviewed genre"), so it goes when the file is replaced by other music.
            review = recorder.review_of(result.path)
            result = replace(result, named=os.path.realpath(result.path) in named_files,
                             review=review if review == () else None)
            result = decide_and_write(result, model_id=bundle.card.model_id, decision=decision,
                                      writing=options.writing, styles=bundle.card.styles, unless_unchanged=not decode)
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
                                       accept_unpredicted=options.leaves_kept_undecoded if decode else options.keeps_foreign_genres)
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
        classifier = load(not options.leaves_kept_undecoded)  # a scan of files that all keep theirs loads none
        # With a store, a file this model tagged that the store does not know (a run stopped between the write
        # and the store's update: Ctrl-C, kill -9, a power cut) is predicted again and recorded, then skipped as
        # ever: else each scan would skip it unrecorded and apply would find no prediction of it.
        unknown_own = recorder.store is not None and not options.force
        with closing(predict_files(todo, bundle=bundle, classifier=classifier, options=options,
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
    decision = options.decision.for_model(bundle.card.calibration)  # finish()'s; floors left open: the model's
    if write_tags and not options.dry_run:
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


def apply_rows(rows: list[dict], *, model_id: str | None, options: ScanOptions, on_progress: Progress | None,
               store: Store | None, bundle: Bundle | None) -> Iterator[ScanResult]:
    """A reviewed report's rows written (see :func:`genretag.apply_report`): each row's genres decided
    (:func:`~genretag.scan.review.decide_row`) and written with provenance ``reviewed``; the store, with the
    ``bundle`` that predicted the rows, records the writes and the reviews."""
    recorder = StoreRecorder(store if bundle is not None else None)
    if not options.dry_run:  # as a scan does: what a killed earlier write left beside these files goes
        remove_stale_copies(path for row in rows if (path := row_file(row)) is not None)
    for done, row in enumerate(rows, start=1):
        decided = decide_row(row, options=options.decision)
        provenance = row.get("model") or model_id
        if decided.status == "would-tag" and not provenance:
            decided = replace(decided, status="failed",
                              error="the report does not say which model predicted it (give the model)")
        elif decided.status == "would-tag" and options.dry_run:
            decided = writable(decided)  # a file that can't be written is said so, not "would tag"
        elif decided.status == "would-tag":
            decided = write(decided, model_id=provenance, decision=options.decision, writing=options.writing,
                            reviewed=True)
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
