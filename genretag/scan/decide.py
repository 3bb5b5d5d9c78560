"""What a file gets: the genres to write from a prediction (:func:`decide`), and the result type every
stage of a scan hands on (:class:`ScanResult`, with its :data:`Status`).

Pure: nothing here reads or writes a file. The options are :class:`~genretag.config.DecisionOptions` (a scan's
:attr:`~genretag.config.ScanOptions.decision`): no decoding, pipeline or tag-format option reaches here. Writing
the decision into the file is :mod:`genretag.scan.writing`'s, a separate call so a caller can decide in one place
and write in another (review a dry run, then write).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from genretag.config import DecisionOptions
from genretag.files import Identity
from genretag.scan.batching import Prediction
from genretag.tags import TagState

if TYPE_CHECKING:
    from genretag.models.bundle import Style

Status = Literal[
    "predicted", "tagged", "would-tag", "kept", "skipped", "low-confidence", "excluded", "not-music", "silent",
    "failed",
]
"""What happened to a file (reports and the prediction store hold it as this text).

``predicted``: the model has a prediction, nothing is decided yet (what :func:`genretag.predict` yields);
``would-tag``: decided, to be written (all a dry run does); ``tagged``: written;
``kept``: it had a genre and ``overwrite`` was off; ``skipped``: already tagged by this model;
``low-confidence``: no genre reached ``min_confidence``; ``excluded``: the genre map says never to
write the predicted genres; ``not-music``: the model's music score (a card with ``music``) says the audio
is not music (speech, noise, tones...), so no genre is written and the file is left as it is; ``silent``: no
audible signal; ``failed``: see ``error``."""

STATUSES: tuple[Status, ...] = get_args(Status)
"""Every :data:`Status`, in the order above."""


@dataclass(frozen=True)
class ScanResult:
    """One file's prediction and what became of it."""

    path: Path
    status: Status
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


def choose_genres(prediction: Prediction, options: DecisionOptions = DecisionOptions(), *,
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


def best_style(prediction: Prediction, parent: str, styles: Sequence[Style], options: DecisionOptions, *,
               taken: Sequence[str] = ()) -> str | None:
    """The style to write after genre label ``parent``: the best-scoring of its styles that reaches its
    floor, renamed by the genre map; one the map sends to ``""`` (or already in ``taken``) gives way to the
    next. None: no style of ``parent`` qualifies."""
    for name, _ in styles_above(prediction, parent, styles):
        written = options.genre_map.get(name, name)
        if written and written not in taken:
            return written
    return None


def decide(result: ScanResult, options: DecisionOptions = DecisionOptions(), *,
           styles: Sequence[Style] = ()) -> ScanResult:
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


def decide_genres(result: ScanResult, genres: tuple[str, ...], options: DecisionOptions) -> ScanResult:
    """What a file gets when ``genres`` are the ones to write (chosen from a prediction, or reviewed):
    ``would-tag``, or ``kept`` (the field holds a genre genretag did not write and neither ``overwrite``
    nor ``merge`` is on; or ``merge`` has nothing to add), or
    ``failed`` when the file's tags could not be read."""
    existing = current_genres(result, options.write_to)
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


def keeps_existing(result: ScanResult, options: DecisionOptions) -> bool:
    """Whether a file keeps the genre field it has whatever the model says (``merge`` aside): the field
    holds a genre genretag did not write (it has no provenance, or the provenance says genretag wrote
    other values, or the other field: see :func:`genretag.tags.provenance.owns`), or a person's reviewed
    genres, and ``options`` neither overwrite it nor write to genretag's own field."""
    from genretag.tags.provenance import owns

    if options.write_to != "genre" or options.overwrite or not current_genres(result, "genre"):
        return _reviewed_kept(result, options)
    if result.tags is None:
        return result.provenance is None
    return not owns(result.tags, "genre") or _reviewed_kept(result, options)


def _reviewed_kept(result: ScanResult, options: DecisionOptions) -> bool:
    """The field being written holds a person's reviewed genres and ``overwrite`` does not name the file."""
    from genretag.tags.provenance import reviewed

    return (result.tags is not None and reviewed(result.tags, options.write_to)
            and not (options.overwrite and result.named))


def current_genres(result: ScanResult, field: str) -> tuple[str, ...]:
    """The values genre field ``field`` (``genre`` or ``genretag``) holds as ``result`` read it."""
    if result.tags is not None:
        return result.tags.field(field)
    return result.previous if field == "genre" else ()


def _ape_note(result: ScanResult, genres: tuple[str, ...], options: DecisionOptions) -> tuple[str, ...]:
    """Say so when an mp3's APEv2 genre (which some players show instead of ID3's) will contradict the new genre."""
    ape = result.tags.ape_genres if result.tags is not None else ()
    if not ape or options.write_to != "genre" or {g.casefold() for g in ape} == {g.casefold() for g in genres}:
        return ()
    return (f"its APEv2 tag says genre {'; '.join(ape)!r}, left as it was (foobar2000 and MusicBee may show that)",)
