"""The beets plugin's fields: what genretag records on a beets item or album, and how a decision meets the
genres it already has (lastgenre's ``force`` and ``keep_existing``). Pure functions over beets objects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from beets.library import Album, Item

OWN_FIELDS = ("genretag_genre", "genretag_confidence", "genretag_top", "genretag_model")
"""A track's own prediction (an album's: its decision), as flexible attributes."""
ALBUM_FIELDS = ("genretag_album_genre", "genretag_album_confidence")
"""On a track decided with its album: the album's decision (what its genre field got)."""
GENRE_RECORD = ("genretag_wrote", "genretag_before")
"""What genretag wrote into the genre field, and what the field held before genretag first wrote it
(as the files' provenance field records them)."""
FLEX_FIELDS = (*OWN_FIELDS, *ALBUM_FIELDS, *GENRE_RECORD)

GENRE_FIELDS = tuple(f for f in ("genres", "genre") if f in Item._fields)
"""The genre fields this beets has: ``genres`` (a list; beets 2.14+), ``genre`` (a string; older)."""


@dataclass(frozen=True)
class Rules:
    """How a decision meets the genres an object already has (lastgenre's ``force`` and ``keep_existing``)."""

    force: bool
    keep_existing: bool
    merge: bool

    @property
    def merging(self) -> bool:
        return self.merge or (self.force and self.keep_existing)


def genres_for(obj: Item | Album, decided: list[str] | None, write_to: str, rules: Rules) -> list[str] | None:
    """The genres ``obj`` gets, or ``None``: leave its genre field as it is. As lastgenre: genres genretag
    did not write are kept unless ``force``; ``force`` replaces them, with ``keep_existing`` (or
    ``merge``) the new ones are added after them. Genres genretag wrote are its own to replace."""
    if write_to == "none" or not decided:
        return None
    existing = genres_of(obj)
    wrote = listed(own(obj, "genretag_wrote"))
    ours = bool(existing) and wrote is not None and folded(existing) == folded(wrote)
    users = (listed(own(obj, "genretag_before")) or []) if ours else existing
    if existing and not ours and not (rules.force or rules.merge):
        return None
    if rules.merging:
        known = {g.casefold() for g in users}
        return [*users, *(g for g in decided if g.casefold() not in known)]
    return list(decided)


def assign(obj: Item | Album, prediction: Any, genres: list[str] | None, model_id: str, top: int) -> list[str]:
    """Set ``obj``'s own prediction fields (and its genre field, unless ``genres`` is None); the names of the
    fields that changed."""
    before = {k: own(obj, k) for k in (*FLEX_FIELDS, *GENRE_FIELDS)}
    ranked = prediction.ranked()
    obj["genretag_genre"] = ranked[0][0]
    obj["genretag_confidence"] = round(float(ranked[0][1]), 4)
    obj["genretag_top"] = "; ".join(f"{label} {p:.3f}" for label, p in ranked[:max(top, 1)])
    obj["genretag_model"] = model_id
    if own(obj, "genretag_status") is not None:
        del obj["genretag_status"]
    if genres is not None:
        existing = genres_of(obj)
        wrote = listed(own(obj, "genretag_wrote"))
        if not (existing and wrote is not None and folded(existing) == folded(wrote)):
            obj["genretag_before"] = "; ".join(existing)  # the user's (or none), as the provenance field's
        obj["genretag_wrote"] = "; ".join(genres)
        if "genres" in GENRE_FIELDS:
            obj["genres"] = genres
            if "genre" in GENRE_FIELDS:
                obj["genre"] = genres[0] if genres else ""
        else:
            obj["genre"] = "; ".join(genres)
    return [k for k, v in before.items() if own(obj, k) != v]


def assign_album(item: Item, decision: Any) -> list[str]:
    """Set (or, for a track decided on its own, remove) the album's decision on ``item``."""
    before = {k: own(item, k) for k in ALBUM_FIELDS}
    if decision is None:
        for key in ALBUM_FIELDS:
            if key in item.keys(with_album=False):
                del item[key]
    else:
        label, p = decision.ranked()[0]
        item["genretag_album_genre"] = label
        item["genretag_album_confidence"] = round(float(p), 4)
    return [k for k, v in before.items() if own(item, k) != v]


def mark_unheard(item: Item, status: str, model_id: str) -> list[str]:
    """Record that ``model_id`` found ``item`` silent or not music, or could not decode it: ``genretag_status``
    (``silent``, ``not-music``, ``failed``), and an empty
    ``genretag_genre`` of its own (so the album's does not show through); its genre field is left alone."""
    before = {k: own(item, k) for k in (*FLEX_FIELDS, "genretag_status")}
    for key in ("genretag_confidence", "genretag_top", *ALBUM_FIELDS):
        if key in item.keys(with_album=False):
            del item[key]
    item["genretag_genre"] = ""
    item["genretag_model"] = model_id
    item["genretag_status"] = status
    return [k for k, v in before.items() if own(item, k) != v]


def own(obj: Item | Album, key: str) -> Any:
    """``obj``'s own value of ``key``: an item's ``get`` falls back to its album's fields."""
    return obj.get(key, with_album=False) if isinstance(obj, Item) else obj.get(key)


def genres_of(obj: Item | Album) -> list[str]:
    if "genres" in GENRE_FIELDS:
        return [g for g in (own(obj, "genres") or []) if g]
    value = own(obj, "genre") or ""
    return [value] if value else []


def listed(value: str | None) -> list[str] | None:
    """A ``"; "``-joined field as a list (None: the field is absent)."""
    return None if value is None else [g for g in str(value).split("; ") if g]


def folded(genres: Iterable[str]) -> list[str]:
    return [g.casefold() for g in genres]
