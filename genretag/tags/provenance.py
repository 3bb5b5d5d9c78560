"""What genretag's provenance field (``GENRETAG_MODEL``) says, and whose a genre field is.

The field holds several values (repeated Vorbis fields, NUL-separated ID3 text, MP4 and
ASF value lists); the first is the model, as it always was, so a reader that takes one
value still sees ``genretag-default 3.0``. The others record the write:

=========================  =====================================================================
value                      meaning
=========================  =====================================================================
``wrote genre: Rock; Pop`` genretag wrote these values into the genre field (``wrote genretag:``
                           for its own ``GENRETAG_GENRE`` field, ``--write-to genretag``)
``before genre: Punk``     what the genre field held before genretag first wrote it (``before
                           genre:`` with nothing after it: no genre); ``genretag undo`` puts it back
``reviewed genre``         the values written were a person's review (``genretag apply REPORT``)
=========================  =====================================================================

A genre field is genretag's only while it holds exactly what genretag wrote there: a field
genretag did not write (``--write-to genretag`` wrote the other one), or one changed since by
hand, is the user's. A file tagged by a genretag before this record (the model alone) counts
as genretag's in its genre field unless it also has a ``GENRETAG_GENRE`` field (then the
genre field is taken for the user's). Imports mutagen only through :mod:`genretag.tags`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from genretag.errors import TagError
from genretag.tags.containers import TagState, split_genres

_WROTE, _BEFORE, _REVIEWED = "wrote ", "before ", "reviewed "


@dataclass(frozen=True)
class Provenance:
    """A parsed ``GENRETAG_MODEL`` field."""

    model: str
    wrote: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Field (``genre``, ``genretag``) -> the values genretag wrote there."""
    before: tuple[str, ...] | None = None
    """The genre field's values before genretag first wrote it (``()``: none); None: not recorded."""
    reviewed: frozenset[str] = frozenset()
    """The fields whose values a person chose."""

    @classmethod
    def of(cls, state: TagState) -> Provenance | None:
        """The provenance of a file whose tags are ``state``; None when genretag never tagged it."""
        return cls.parse(state.provenance_values or ((state.provenance,) if state.provenance else ()))

    @classmethod
    def parse(cls, values: Sequence[str]) -> Provenance | None:
        """The provenance the field's ``values`` say (as :meth:`values` writes them); None when empty."""
        values = tuple(v.strip() for v in values if v.strip())
        if not values:
            return None
        wrote, before, reviewed = {}, None, set()
        for value in values[1:]:
            if value.startswith(_WROTE) and ":" in value:
                name, _, rest = value[len(_WROTE):].partition(":")
                wrote[name.strip()] = split_genres([rest])
            elif value.startswith(_BEFORE + "genre:"):
                before = split_genres([value[len(_BEFORE + "genre:"):]])
            elif value.startswith(_REVIEWED):
                reviewed.add(value[len(_REVIEWED):].strip())
        return cls(values[0], wrote, before, frozenset(reviewed))

    def values(self) -> tuple[str, ...]:
        """The field's values, to write."""
        out = [self.model]
        out += [f"{_WROTE}{name}: {'; '.join(genres)}" for name, genres in sorted(self.wrote.items())]
        if self.before is not None:
            out.append(f"{_BEFORE}genre: {'; '.join(self.before)}".rstrip())
        out += [f"{_REVIEWED}{name}" for name in sorted(self.reviewed)]
        return tuple(out)


def owns(state: TagState, name: str = "genre") -> bool:
    """Whether genre field ``name`` holds what genretag wrote there (else it is the user's, or empty)."""
    prov = Provenance.of(state)
    if prov is None or not state.field(name):
        return False
    if not prov.wrote:  # a file tagged before genretag recorded its writes
        return name == "genretag" or not state.own_genres
    return name in prov.wrote and _same(prov.wrote[name], state.field(name))


def reviewed(state: TagState, name: str = "genre") -> bool:
    """Whether genre field ``name`` holds a person's reviewed genres, as genretag wrote them."""
    prov = Provenance.of(state)
    return prov is not None and name in prov.reviewed and owns(state, name)


def after_write(state: TagState, *, model: str, name: str, genres: Sequence[str],
                reviewed: bool = False) -> tuple[str, ...]:
    """The provenance values to write with ``genres`` into field ``name`` of a file whose tags are ``state``:
    the other field's record is kept while it still holds, and the genre field's value before genretag
    first wrote it is carried on (so ``undo`` gives the user's genre back, not an earlier genretag one)."""
    old = Provenance.of(state)
    wrote = {n: v for n, v in (old.wrote if old else {}).items() if n != name and owns(state, n)}
    wrote[name] = tuple(genres)
    kept_reviews = {n for n in (old.reviewed if old else ()) if n != name and n in wrote}
    if name == "genre" and not owns(state, "genre"):
        before = state.genres  # the user's (or none): what undo puts back
    else:  # carried on; None for a file tagged before genretag recorded it (undo then refuses)
        before = old.before if old is not None and owns(state, "genre") else None
    return Provenance(model, wrote, before, frozenset(kept_reviews | ({name} if reviewed else set()))).values()


def rewrite_changes_nothing(state: TagState, *, model: str, name: str, genres: Sequence[str],
                            reviewed: bool = False) -> bool:
    """Whether writing ``genres`` into field ``name`` of a file whose tags are ``state`` (as
    :func:`after_write` records it) would leave that field and the provenance as they are: the field holds
    exactly ``genres`` and the record would say the same (same model, what genretag wrote, the genre before,
    the reviews). A field that is the user's (:func:`owns` false), a reviewed one rewritten unreviewed, or an
    older genretag's record (the model alone) is not: the write changes its record."""
    if tuple(state.field(name)) != tuple(genres):
        return False
    now = Provenance.of(state)
    return now is not None and now == Provenance.parse(
        after_write(state, model=model, name=name, genres=genres, reviewed=reviewed))


def undo_plan(state: TagState, shown: object = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What ``genretag undo`` writes into a file whose tags are ``state``: the genre field's values before
    genretag first wrote it (``()``: none, the field is removed) and the provenance left (genretag's own
    field's record, if it still holds; else none, the field is removed).

    Raises :class:`TagError` naming ``shown`` for a file it must not touch: genretag never wrote its genre,
    the genre changed since genretag wrote it (it is the user's now), or genretag did not record what it was
    before (a file tagged by a genretag before that record).
    """
    prov = Provenance.of(state)
    if prov is None or (prov.wrote and "genre" not in prov.wrote):
        raise TagError("not undone: genretag did not write its genre", shown)
    if not owns(state, "genre"):
        raise TagError("not undone: its genre changed since genretag wrote it", shown)
    if prov.before is None:
        raise TagError("not undone: genretag did not record the genre it had before (an older genretag tagged "
                       "it)", shown)
    wrote = {n: v for n, v in prov.wrote.items() if n != "genre"}
    left = Provenance(prov.model, wrote, None, frozenset(prov.reviewed & set(wrote))).values() if wrote else ()
    return prov.before, left


def _same(a: Sequence[str], b: Sequence[str]) -> bool:
    fold = lambda values: {g.casefold() for g in split_genres(list(values), slash=True)}  # noqa: E731
    return fold(a) == fold(b)
