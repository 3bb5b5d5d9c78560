"""Every tag value a genre write must leave alone, to compare a file before and after.

:func:`changed_tags` is the write's last word on the user's other tags: it reads
the original and the tagged copy with their own readers and names every tag,
other than the genre field written and the provenance field, whose value differs.
Values are compared as text where they are text, as bytes otherwise (pictures).
Nothing is parsed into a date: ID3 date frames are read as the text they hold,
so a date a parser would normalise (``c. 1970``) still counts as changed.

What is compared per container:

=========  =====================================================================
ID3        every ID3v2 frame by its key (TXXX and COMM by description too), plus
           the frames an mp3's ID3v1 tag stands for where ID3v2 lacks them (as
           mutagen and players merge them), the ID3v1 bytes but its genre byte,
           an mp3's APEv2 items, and every frame of ID3v2 tags that follow the
           first back to back (their genre too: a write never changes them). When the write changes the ID3v2 version
           (v2.2 upgraded, ``--id3v23``), both sides are compared as v2.4.
Vorbis     every comment, in order per name, the vendor string and FLAC pictures
MP4        every item (``gnre``, an old genre atom, excepted), and the atoms
           mutagen could not parse
ASF        every attribute (``WM/GenreID``, an old genre attribute, excepted)
RIFF INFO  every item of a WAV's ``LIST``/``INFO`` chunk (``IGNR`` excepted)
=========  =====================================================================
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mutagen.id3 import ID3NoHeaderError, ID3TimeStamp

from genretag.tags.id3check import AS_TEXT
from genretag.tags.riffinfo import GENRE_ID, read_info

_ID3_CONTAINERS = ("id3", "riff-id3", "aiff-id3")
Values = dict[str, Any]
"""Tag key -> its value(s) in a comparable form."""


@dataclass(frozen=True)
class Snapshot:
    """The tag values of one file, taken before a write (:func:`snapshot`)."""

    container: str
    values: Values
    id3_version: int | None = None
    """ID3v2 version, for ID3 containers (``None`` without an ID3v2 tag)."""
    as_v24: Values | None = None
    """ID3 containers: the values with every frame translated to v2.4."""


def snapshot(path: Path, shown: Path) -> Snapshot:
    """Every tag value of ``path`` (the untouched copy of ``shown``) in a comparable form."""
    from genretag.tags.containers import _load

    audio, container = _load(path, shown)
    if container in _ID3_CONTAINERS:
        values, version = _id3_values(audio, path)
        return Snapshot(container, values, version, _id3_values(audio, path, translate=True)[0])
    return Snapshot(container, _values(audio, container))


def changed_tags(before: Snapshot, copy: Path, shown: Path, *, field: str) -> list[str]:
    """The keys of the tags whose values differ between ``before`` and the file ``copy``, sorted.

    The keys of genre field ``field`` (``genre`` or ``genretag``) and of the provenance
    field are left out: those are the write's. A key present on one side only counts
    as changed. When the write changed the ID3v2 version, both sides are compared as v2.4.
    """
    from genretag.tags.containers import _FIELDS, _load

    audio, container = _load(copy, shown)
    keys = _FIELDS[container].keys
    skipped = {keys[field], keys["provenance"]}
    old = before.values
    if container in _ID3_CONTAINERS:
        new, version = _id3_values(audio, copy)
        if version != before.id3_version:
            old, new = before.as_v24 or {}, _id3_values(audio, copy, translate=True)[0]
    else:
        new = _values(audio, container)
    if container != before.container:
        return ["(container)"]
    return sorted(k for k in old.keys() | new.keys() if k not in skipped and old.get(k) != new.get(k))


def _values(audio: Any, container: str) -> Values:
    tags = audio.tags
    if tags is None:
        return {}
    if container == "vorbis":
        found: Values = {"(vendor)": tags.vendor}
        for key, value in tags:
            found.setdefault(key.upper(), []).append(value)
        for n, pic in enumerate(getattr(audio, "pictures", [])):
            found[f"(picture {n})"] = (pic.type, pic.mime, pic.desc, pic.width, pic.height, pic.data)
        return found
    if container == "mp4":
        found = {key: _plain(value) for key, value in tags.items()}
        found.update({f"(unparsed {k})": v for k, v in getattr(tags, "_failed_atoms", {}).items() if k != "gnre"})
        return found
    if container == "asf":
        found = {}
        for key, value in tags:
            if key != "WM/GenreID":
                found.setdefault(key, []).append((type(value).__name__, _plain(value.value), value.language,
                                                  value.stream))
        return found
    raise ValueError(f"unknown container {container!r}")


def _id3_values(audio: Any, path: Path, *, translate: bool = False) -> tuple[Values, int | None]:
    """ID3 values of ``path`` and its ID3v2 version (``None`` without an ID3v2 tag)."""
    from mutagen.apev2 import APEv2

    from genretag.tags.containers import _PARSER_ERRORS
    from genretag.tags.id3check import checked_id3, id3v1_block, id3v1_frames, later_id3v2_tags

    found: Values = {}
    version = None
    tags = None
    if audio.tags is not None:
        with contextlib.suppress(ID3NoHeaderError):  # an mp3 with only ID3v1
            tags = checked_id3(type(audio.tags))(path, known_frames=AS_TEXT, translate=False, load_v1=False)
    if tags is not None:
        version = tags.version[1]
        if translate:
            tags.update_to_v24()
        found.update({key: _frame_value(frame) for key, frame in tags.items()})
        found.update({f"(unparsed {raw[:4]!r} {n})": raw[10:] for n, raw in enumerate(tags.unknown_frames)})
    if type(audio).__name__ == "WAVE":
        for key, text in read_info(path) or []:
            if key != GENRE_ID:
                found.setdefault(f"INFO:{key}", []).append(text)
    if type(audio).__name__ == "MP3":
        for n, later in enumerate(later_id3v2_tags(path, known_frames=AS_TEXT), start=2):
            found.update({f"(ID3v2 tag {n}) {key}": _frame_value(frame) for key, frame in later.items()})
        for frame in id3v1_frames(path, version=4):  # where ID3v2 lacks them, as players merge them
            found.setdefault(frame.HashKey, _frame_value(frame))
        block = id3v1_block(path)
        if block is not None:
            found["(ID3v1)"] = block[:-1]  # its last byte is the genre
        try:
            ape = APEv2(path)
        except (*_PARSER_ERRORS, OSError):
            ape = {}
        found.update({f"APEv2:{key}": _plain(value.value) for key, value in ape.items()})
    return found, version


def _frame_value(frame: Any) -> tuple[Any, ...]:
    specs = [*frame._framespec, *frame._optionalspec]  # the text encoding is not a value
    return tuple((spec.name, _plain(getattr(frame, spec.name, None))) for spec in specs if spec.name != "encoding")


def _plain(value: Any) -> Any:
    """``value`` as text, bytes, numbers and tuples of them."""
    if isinstance(value, (str, bytes, int, float, type(None))):
        return value if type(value) in (str, bytes, int, float, bool, type(None)) else _subclass(value)
    if isinstance(value, ID3TimeStamp):
        return value.text
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if hasattr(value, "items"):  # e.g. sub-frames of a CHAP frame
        return tuple(sorted((str(k), _plain(v)) for k, v in value.items()))
    return repr(value)


def _subclass(value: Any) -> Any:
    """A str/bytes/int subclass (MP4Cover, MP4FreeForm, an ID3 enum) with what sets it apart."""
    base = next(t for t in (bytes, str, bool, int, float) if isinstance(value, t))
    try:
        extra = tuple(sorted((k, repr(v)) for k, v in vars(value).items()))
    except TypeError:  # no instance attributes (an ID3 enum)
        extra = ()
    return type(value).__name__, base(value), extra
