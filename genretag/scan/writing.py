"""Writing what was decided into the file: :func:`write` (atomic, the keep rule checked again under the
write's lock), :func:`writable` (what a dry run says of it), and :func:`decide_and_write` (both halves for
one file, as a scan does them). The decision itself is :mod:`genretag.scan.decide`'s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from genretag.config import DecisionOptions, WriteOptions
from genretag.errors import GenretagError, TagError
from genretag.files import Identity
from genretag.scan.decide import ScanResult, current_genres, decide, decide_genres
from genretag.tags import TagState

if TYPE_CHECKING:
    from genretag.models.bundle import Style


def decide_and_write(result: ScanResult, *, model_id: str, decision: DecisionOptions, writing: WriteOptions,
                     styles: Sequence[Style] = (), unless_unchanged: bool = False) -> ScanResult:
    """:func:`~genretag.scan.decide.decide` with ``decision``, then :func:`write`; with ``writing.dry_run`` only
    :func:`writable` (a file that can't be written is ``failed`` with the reason the write would give, not
    ``would-tag``). ``unless_unchanged``: see :func:`skip_if_unchanged`."""
    decided = decide(result, decision, styles=styles)
    if unless_unchanged:
        decided = skip_if_unchanged(decided, model_id=model_id, field=decision.write_to, id3v23=writing.id3v23)
    if writing.dry_run:
        return writable(decided)
    return write(decided, model_id=model_id, decision=decision, writing=writing)


def write(result: ScanResult, *, model_id: str, decision: DecisionOptions = DecisionOptions(),
          writing: WriteOptions = WriteOptions(), reviewed: bool = False) -> ScanResult:
    """Write a ``would-tag`` result's genres into its file (atomically); other results come back as they are.

    ``model_id`` goes into the provenance field, with which field was written and its values, what the
    genre field held before genretag first wrote it (for ``genretag undo``) and, when ``reviewed`` (the
    genres are a person's review), that it was reviewed (:mod:`genretag.tags.provenance`). Whether the file
    keeps its genre is decided again (``decision``'s keep rule) on its tags as they are at write time (read
    under the write's lock, see :func:`at_write_time`), never on what was read earlier or stored: a file that
    gained a genre since comes back ``kept``, and one that is no longer the file predicted (``result.identity``:
    replaced, or edited) ``failed``. Returns the result as ``tagged``, ``kept``, or ``failed`` with the reason
    (the file is then as it was). ``writing``: the ID3 version and separator, the modification time
    (``dry_run`` is the caller's: this writes).
    """
    from genretag.tags import Plan, write_genre
    from genretag.tags.provenance import after_write

    if result.status != "would-tag":
        return result
    verdict: list[ScanResult] = []

    def choose(state: TagState) -> Plan | None:
        verdict.append(at_write_time(result, state, decision))
        if verdict[-1].status != "would-tag":
            return None
        genres = verdict[-1].genres
        return Plan(genres, after_write(state, model=model_id, name=decision.write_to, genres=genres,
                                        reviewed=reviewed))

    try:
        after = write_genre(result.path, result.genres, provenance=model_id, field=decision.write_to,
                            id3v23=writing.id3v23, id3v23_sep=writing.id3v23_sep, keep_mtime=writing.keep_mtime,
                            choose=choose)
    except GenretagError as exc:
        return replace(result, status="failed", error=exc.reason)
    except (ValueError, TypeError) as exc:  # a genre no tag can hold (a control character in a reviewed report...)
        return replace(result, status="failed", error=f"cannot write tags: {exc}")
    if verdict and verdict[-1].status != "would-tag":
        return verdict[-1]
    return replace(result, status="tagged", genres=verdict[-1].genres if verdict else result.genres, tags=after,
                   identity=Identity.of(result.path))


def at_write_time(result: ScanResult, state: TagState, decision: DecisionOptions) -> ScanResult:
    """What a ``would-tag`` ``result`` gets when its file's tags are ``state`` (read under the write's
    lock): ``kept`` when the keep rule says so on these tags (a genre the user set after the file was
    read is kept, with a note), else ``would-tag`` with the genres (merged anew with ``merge``). Raises
    :class:`TagError` ``changed since it was predicted (scan it again)`` when the file is no longer the
    one predicted (its identity is not ``result.identity``): its prediction is not its music's."""
    now = replace(result, tags=state, previous=state.genres, provenance=state.provenance, notes=())
    decided = decide_genres(now, result.genres, decision)
    if decided.status == "kept":
        earlier = current_genres(result, decision.write_to)
        note = () if state.field(decision.write_to) == earlier else (
            f"its genre became {'; '.join(state.field(decision.write_to))!r} after it was read: kept",)
        return replace(decided, notes=result.notes + note, identity=Identity.of(result.path))
    if result.identity is not None and not result.identity.holds_for(Identity.of(result.path)):
        raise TagError("changed since it was predicted (scan it again)", result.path)
    if decided.status != "would-tag":
        raise TagError(decided.error or "unreadable tags", result.path)
    return replace(decided, notes=result.notes)


def skip_if_unchanged(result: ScanResult, *, model_id: str, field: str, id3v23: bool) -> ScanResult:
    """A ``would-tag`` result becomes ``skipped`` when a write would change nothing but the file's inode and
    modification time: its file, read now, is still the one predicted (``result.identity``) and already holds
    exactly its genres in the field to write (``field``; and no v2.4 ID3 tag to convert with ``id3v23``), with
    the provenance the write would record (written by ``model_id``, genretag's own values, not a review: see
    :func:`~genretag.tags.provenance.rewrite_changes_nothing`). A file with a review in the store (``--overwrite``
    named it) is written, which ends the review. Anything else is left to :func:`write`, whose keep rule and
    identity check run under the write's lock. (``apply`` from the store decides again for files this model
    tagged.)"""
    from genretag.tags import read_tags
    from genretag.tags.provenance import rewrite_changes_nothing

    if result.status != "would-tag" or result.review is not None:
        return result
    if result.identity is not None and not result.identity.holds_for(Identity.of(result.path)):
        return result  # the write says "changed since it was predicted"
    try:
        now = read_tags(result.path)
    except GenretagError:
        return result  # the write says why
    if (rewrite_changes_nothing(now, model=model_id, name=field, genres=result.genres)
            and not (id3v23 and now.id3_version == 4)):  # --id3v23 would still convert a v2.4 tag
        return replace(result, status="skipped", tags=now)
    return result


def writable(result: ScanResult) -> ScanResult:
    """A ``would-tag`` result as a dry run reports it: ``failed`` with the reason when the file could not be
    written (``file is read-only``, ``permission denied``, ``read-only file system``...), checked as the write
    checks it before copying; other results come back as they are. Writes nothing."""
    from genretag.tags.safefile import check_writable

    if result.status != "would-tag":
        return result
    try:
        check_writable(result.path)
    except GenretagError as exc:
        return replace(result, status="failed", error=exc.reason)
    return result
