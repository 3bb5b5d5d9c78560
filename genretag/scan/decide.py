"""What a file gets: the genres to write from a prediction (:func:`decide`), and the write (:func:`write`).

The two halves are separate calls so a caller can predict in one place and
write in another (review a dry run, then write). Neither prints.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from genretag.config import MAX_GENRE_MAP_BYTES, ScanOptions
from genretag.errors import GenretagError, UsageError, os_reason
from genretag.files import Identity
from genretag.scan.batching import Prediction
from genretag.tags import TagState

if TYPE_CHECKING:
    from genretag.models.bundle import Style

STATUSES = (
    "predicted", "tagged", "would-tag", "kept", "skipped", "low-confidence", "excluded", "not-music", "silent",
    "failed",
)
"""What happened to a file.

``predicted``: the model has a prediction, nothing is decided yet (what :func:`genretag.predict` yields);
``would-tag``: decided, to be written (all a dry run does); ``tagged``: written;
``kept``: it had a genre and ``overwrite`` was off; ``skipped``: already tagged by this model;
``low-confidence``: no genre reached ``min_confidence``; ``excluded``: the genre map says never to
write the predicted genres; ``not-music``: the model's music score (a card with ``music``) says the audio
is not music (speech, noise, tones...), so no genre is written and the file is left as it is; ``silent``: no
audible signal; ``failed``: see ``error``."""


@dataclass(frozen=True)
class ScanResult:
    """One file's prediction and what became of it."""

    path: Path
    status: str
    """One of :data:`STATUSES`."""
    genres: tuple[str, ...] = ()
    """Genres written (or that a dry run would write); empty for every other status (a ``kept`` file's genres
    are ``previous``)."""
    previous: tuple[str, ...] = ()
    """Genre tags the file had before."""
    provenance: str | None = None
    """The file's ``GENRETAG_MODEL`` tag before: which model tagged it last, if any."""
    prediction: Prediction | None = None
    error: str | None = None
    """Why it failed; with status ``predicted``, a problem reading the file's tags (it will not be written)."""
    identity: Identity | None = None
    """The file's size and modification time when it was predicted."""
    tags: TagState | None = None
    """What was read from the file's tags (its own genre field, album, artist, an APEv2 genre...)."""
    group: str | None = None
    """The album or artist the file was decided with (``--group``); None: decided on its own."""
    group_prediction: Prediction | None = None
    """The group's distribution, from the windows of all its tracks; it decides the genres.
    ``prediction`` stays the track's own."""
    notes: tuple[str, ...] = ()
    """Things the user should know that are not failures (an APEv2 genre left as it was...)."""
    review: tuple[str, ...] | None = None
    """A person's decision for this file, as the prediction store recorded it (``genretag apply REPORT``):
    the genres chosen, or ``()`` to leave it alone. None: no review recorded."""
    named: bool = False
    """The user named this file itself (not a folder holding it): ``overwrite`` then replaces a reviewed
    genre too."""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def choose_genres(prediction: Prediction, options: ScanOptions = ScanOptions(), *,
                  styles: Sequence[Style] = ()) -> tuple[str, ...]:
    """Up to ``top_k`` genres, renamed by ``genre_map``, no repeats: nothing unless the top genre reaches
    ``min_confidence``; each further one needs ``next_min_confidence`` (its own floor).

    A label the genre map sends to ``""`` is never written (the next one may be, within ``top_k``).
    With ``options.styles``, each chosen genre is followed by its best style (see :func:`best_style`)
    among ``styles`` (the model card's); ``top_k`` counts genres only.
    """
    ranked = prediction.ranked()[: options.top_k]
    if not ranked or ranked[0][1] < (options.min_confidence or 0.0):
        return ()
    out: list[str] = []
    for rank, (label, p) in enumerate(ranked):
        name = options.genre_map.get(label, label)
        if (rank == 0 or p >= (options.next_min_confidence or 0.0)) and name and name not in out:
            out.append(name)
            style = best_style(prediction, label, styles, options, taken=out) if options.styles else None
            if style is not None:
                out.append(style)
    return tuple(out)


def styles_above(prediction: Prediction, parent: str, styles: Sequence[Style]) -> list[tuple[str, float]]:
    """``(style, score)`` for the styles of genre label ``parent`` whose track score reaches their own
    floor, best first (model names, before any genre map)."""
    found = []
    for style in styles:
        score = prediction.style_score(style.name) if style.parent == parent else None
        if score is not None and score >= style.floor:
            found.append((style.name, score))
    return sorted(found, key=lambda item: -item[1])


def best_style(prediction: Prediction, parent: str, styles: Sequence[Style], options: ScanOptions, *,
               taken: Sequence[str] = ()) -> str | None:
    """The style to write after genre label ``parent``: the best-scoring of its styles that reaches its
    floor, renamed by the genre map; one the map sends to ``""`` (or already in ``taken``) gives way to the
    next. None: no style of ``parent`` qualifies."""
    for name, _ in styles_above(prediction, parent, styles):
        written = options.genre_map.get(name, name)
        if written and written not in taken:
            return written
    return None


def decide(result: ScanResult, options: ScanOptions = ScanOptions(), *, styles: Sequence[Style] = ()) -> ScanResult:
    """What a ``predicted`` file gets under ``options``; other results come back as they are.

    Pure: reads and writes nothing. The genres come from the group's prediction when
    there is one (``--group``), else the file's own; ``styles`` are the model card's
    (written after their genres with ``options.styles``, see :func:`choose_genres`). The result's status becomes
    ``would-tag``, ``kept`` (the genre field has a genre genretag did not write, and
    neither ``overwrite`` nor ``merge``; or ``merge`` has nothing to add),
    ``low-confidence``, ``excluded`` or ``failed`` (tags that could not be read).
    """
    if result.status != "predicted" or result.prediction is None:
        return result
    if result.review is not None and not (options.overwrite and result.named):
        note = "reviewed: left alone" if not result.review else f"reviewed: {'; '.join(result.review)}"
        return replace(result, status="kept", genres=(), notes=result.notes + (
            f"{note} (only --overwrite naming the file changes a reviewed file)",))
    prediction = result.group_prediction or result.prediction
    genres = choose_genres(prediction, options, styles=styles)
    if not genres:
        if not options.merge and keeps_existing(result, options):  # as when it is not even decoded
            return replace(result, status="kept")
        above = any(p >= (options.min_confidence or 0.0) for _, p in prediction.ranked()[: options.top_k])
        return replace(result, status="excluded" if above else "low-confidence")
    return decide_genres(result, genres, options)


def decide_genres(result: ScanResult, genres: tuple[str, ...], options: ScanOptions) -> ScanResult:
    """What a file gets when ``genres`` are the ones to write (chosen from a prediction, or reviewed):
    ``would-tag``, or ``kept`` (the field holds a genre genretag did not write and neither ``overwrite``
    nor ``merge`` is on; or ``merge`` has nothing to add), or
    ``failed`` when the file's tags could not be read."""
    existing = _existing(result, options.write_to)
    if _reviewed_kept(result, options):
        return replace(result, status="kept", genres=())
    if options.merge:
        known = {g.casefold() for g in existing}
        genres = existing + tuple(g for g in genres if g.casefold() not in known)
    if options.merge and genres == existing:
        return replace(result, status="kept", genres=())  # nothing to add
    if not options.merge and keeps_existing(result, options):
        return replace(result, status="kept", genres=())
    if result.error is not None:  # tags could not be read: don't try to write them
        return replace(result, status="failed", genres=genres)
    return replace(result, status="would-tag", genres=genres, notes=result.notes + _ape_note(result, genres, options))


def keeps_existing(result: ScanResult, options: ScanOptions) -> bool:
    """Whether a file keeps the genre field it has whatever the model says (``merge`` aside): the field
    holds a genre genretag did not write (it has no provenance, or the provenance says genretag wrote
    other values, or the other field: see :func:`genretag.tags.provenance.owns`), or a person's reviewed
    genres, and ``options`` neither overwrite it nor write to genretag's own field."""
    from genretag.tags.provenance import owns

    if options.write_to != "genre" or options.overwrite or not _existing(result, "genre"):
        return _reviewed_kept(result, options)
    if result.tags is None:
        return result.provenance is None
    return not owns(result.tags, "genre") or _reviewed_kept(result, options)


def _reviewed_kept(result: ScanResult, options: ScanOptions) -> bool:
    """The field being written holds a person's reviewed genres and ``overwrite`` does not name the file."""
    from genretag.tags.provenance import reviewed

    return (result.tags is not None and reviewed(result.tags, options.write_to)
            and not (options.overwrite and result.named))


def _existing(result: ScanResult, field: str) -> tuple[str, ...]:
    """The values the genre field being written has now."""
    if result.tags is not None:
        return result.tags.field(field)
    return result.previous if field == "genre" else ()


def _ape_note(result: ScanResult, genres: tuple[str, ...], options: ScanOptions) -> tuple[str, ...]:
    """Say so when an mp3's APEv2 genre (which some players show instead of ID3's) will contradict the new genre."""
    ape = result.tags.ape_genres if result.tags is not None else ()
    if not ape or options.write_to != "genre" or {g.casefold() for g in ape} == {g.casefold() for g in genres}:
        return ()
    return (f"its APEv2 tag says genre {'; '.join(ape)!r}, left as it was (foobar2000 and MusicBee may show that)",)


def write(result: ScanResult, *, model_id: str, options: ScanOptions = ScanOptions(),
          reviewed: bool = False) -> ScanResult:
    """Write a ``would-tag`` result's genres into its file (atomically); other results come back as they are.

    ``model_id`` goes into the provenance field, with which field was written and its values, what the
    genre field held before genretag first wrote it (for ``genretag undo``) and, when ``reviewed`` (the
    genres are a person's review), that it was reviewed (:mod:`genretag.tags.provenance`). Whether the file keeps its genre is decided again on
    its tags as they are at write time (read under the write's lock, see :func:`at_write_time`), never on
    what was read earlier or stored: a file that gained a genre since comes back ``kept``, and one that
    is no longer the file predicted (``result.identity``: replaced, or edited) ``failed``. Returns the
    result as ``tagged``, ``kept``, or ``failed`` with the reason (the file is then as it was).
    """
    from genretag.tags import Plan, write_genre
    from genretag.tags.provenance import after_write

    if result.status != "would-tag":
        return result
    verdict: list[ScanResult] = []

    def choose(state: TagState) -> Plan | None:
        verdict.append(at_write_time(result, state, options))
        if verdict[-1].status != "would-tag":
            return None
        genres = verdict[-1].genres
        return Plan(genres, after_write(state, model=model_id, name=options.write_to, genres=genres,
                                        reviewed=reviewed))

    try:
        after = write_genre(result.path, result.genres, provenance=model_id, field=options.write_to,
                            id3v23=options.id3v23, id3v23_sep=options.id3v23_sep, keep_mtime=options.keep_mtime,
                            choose=choose)
    except GenretagError as exc:
        return replace(result, status="failed", error=exc.reason)
    except (ValueError, TypeError) as exc:  # a genre no tag can hold (a control character in a reviewed report...)
        return replace(result, status="failed", error=f"cannot write tags: {exc}")
    if verdict and verdict[-1].status != "would-tag":
        return verdict[-1]
    return replace(result, status="tagged", genres=verdict[-1].genres if verdict else result.genres, tags=after,
                   identity=Identity.of(result.path))


def at_write_time(result: ScanResult, state: TagState, options: ScanOptions) -> ScanResult:
    """What a ``would-tag`` ``result`` gets when its file's tags are ``state`` (read under the write's
    lock): ``kept`` when the keep rule says so on these tags (a genre the user set after the file was
    read is kept, with a note), else ``would-tag`` with the genres (merged anew with ``merge``). Raises
    :class:`TagError` ``changed since it was predicted (scan it again)`` when the file is no longer the
    one predicted (its identity is not ``result.identity``): its prediction is not its music's."""
    from genretag.errors import TagError

    now = replace(result, tags=state, previous=state.genres, provenance=state.provenance, notes=())
    decided = decide_genres(now, result.genres, options)
    if decided.status == "kept":
        earlier = _existing(result, options.write_to)
        note = () if state.field(options.write_to) == earlier else (
            f"its genre became {'; '.join(state.field(options.write_to))!r} after it was read: kept",)
        return replace(decided, notes=result.notes + note, identity=Identity.of(result.path))
    if result.identity is not None and not result.identity.holds_for(Identity.of(result.path)):
        raise TagError("changed since it was predicted (scan it again)", result.path)
    if decided.status != "would-tag":
        raise TagError(decided.error or "unreadable tags", result.path)
    return replace(decided, notes=result.notes)


def settle(result: ScanResult, *, model_id: str, options: ScanOptions, styles: Sequence[Style] = (),
           unless_unchanged: bool = False) -> ScanResult:
    """:func:`decide`, then :func:`write`; with ``options.dry_run`` only :func:`writable` (a file that
    can't be written is ``failed`` with the reason the write would give, not ``would-tag``).
    ``unless_unchanged``: see :func:`unchanged`."""
    decided = decide(result, options, styles=styles)
    if unless_unchanged:
        decided = unchanged(decided, model_id=model_id, options=options)
    return writable(decided) if options.dry_run else write(decided, model_id=model_id, options=options)


def unchanged(result: ScanResult, *, model_id: str, options: ScanOptions) -> ScanResult:
    """A ``would-tag`` result becomes ``skipped`` when a write would change nothing but the file's inode and
    modification time: its file, read now, is still the one predicted (``result.identity``) and already holds
    exactly its genres in the field to write, with the provenance the write would record (written by
    ``model_id``, genretag's own values, not a review: see
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
    if (rewrite_changes_nothing(now, model=model_id, name=options.write_to, genres=result.genres)
            and not (options.id3v23 and now.id3_version == 4)):  # --id3v23 would still convert a v2.4 tag
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


_NUMERIC = re.compile(r"\(?\d+\)?|RX|CR")
"""Values that ID3 readers take for a reference to an ID3v1 genre number ("17" is "Rock")."""


def read_genre_map(path: str | Path) -> dict[str, str]:
    """A CSV/TSV of ``model label,tag value`` rows (a header row ``label,genre`` is optional).

    An empty (or blank) tag value means "never write this label". Raises
    :class:`UsageError` naming the file for anything else that can't be used:
    not UTF-8, a row without exactly two columns, a control character, a
    value players would read as an ID3v1 genre number.
    """
    from genretag.files import read_limited

    path = Path(path)
    try:
        text = read_limited(path, limit=MAX_GENRE_MAP_BYTES).decode("utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read genre map: {os_reason(exc)}", path) from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"genre map is not UTF-8 text (byte {exc.start})", path) from exc
    lines = text.splitlines()
    dialect = "excel-tab" if lines and "\t" in lines[0] else "excel"
    mapping: dict[str, str] = {}
    for number, row in enumerate(csv.reader(lines, dialect=dialect), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2:
            raise UsageError(f"genre map line {number}: needs two columns (label,new name), got {len(row)}", path)
        label, value = row[0].strip(), row[1].strip()
        problem = _bad_value(label) or (_bad_value(value) if value else None)
        if problem:
            raise UsageError(f"genre map line {number}: {problem}", path)
        if _NUMERIC.fullmatch(value):
            raise UsageError(f"genre map line {number}: {value!r} would be read by players as an ID3v1 genre "
                             "number; use a name", path)
        mapping[label] = value
    mapping.pop("label", None)  # header row
    return mapping


def genre_problem(value: str) -> str | None:
    """Why ``value`` may not be written as a genre by the genre map's rules that a tag write would let
    through (a number players read as an ID3v1 genre, only separators), or None. For genres that come
    from elsewhere (a reviewed report's rows); control characters are the write's to refuse."""
    if _NUMERIC.fullmatch(value):
        return f"{value!r} would be read by players as an ID3v1 genre number; use a name"
    if not value.replace(";", "").replace("/", "").strip():
        return f"{value!r} holds only the separators genres are joined with (players would read no genre)"
    return None


def _bad_value(value: str) -> str | None:
    if not value:
        return "empty label"
    bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        return f"{value!r} contains a control character ({ord(bad):#04x})"
    if not value.replace(";", "").replace("/", "").strip():
        return f"{value!r} holds only the separators genres are joined with (players would read no genre)"
    return None

