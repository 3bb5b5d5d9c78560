"""Read and write the genre fields of one audio file, whatever its container.

Only the genre field and one provenance field (``GENRETAG_MODEL``, which model
chose the genre) change; every other tag and every audio byte stays as it was.
The container is chosen by content, by file name only when the content is
ambiguous (mutagen alone would try a FLAC file named ``.mp3`` as MP3):

============  ===============  ==================================================
container     files            genre field / provenance field
============  ===============  ==================================================
``id3``       mp3              ``TCON`` / ``TXXX:GENRETAG_MODEL``
``vorbis``    flac, ogg, opus  ``GENRE`` (repeated) / ``GENRETAG_MODEL``
``mp4``       m4a, mp4         ``©gen`` (``gnre`` removed) /
                               ``----:com.apple.iTunes:GENRETAG_MODEL``
``asf``       wma              ``WM/Genre`` (``WM/GenreID`` removed) /
                               ``GENRETAG_MODEL``
``riff-id3``  wav              ID3 chunk, same frames as mp3; and ``IGNR`` of a
                               RIFF INFO chunk, where there is one
``aiff-id3``  aiff             ID3 chunk, same frames as mp3
============  ===============  ==================================================

This module knows the containers; :mod:`genretag.tags.write` makes the change
atomic. Nothing here prints; every failure with a file is a
:class:`~genretag.errors.TagError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mutagen
from mutagen.aiff import AIFF
from mutagen.asf import ASF
from mutagen.flac import FLAC
from mutagen.id3 import TCON, TXXX, ID3NoHeaderError, ID3v1SaveOptions
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from genretag.config import PROVENANCE_KEY
from genretag.errors import TagError, describe, os_reason
from genretag.tags.id3check import (
    UNPARSED,
    checked_id3,
    drop_raw_frames,
    id3v1_block,
    id3v1_frames,
    later_id3v2_tags,
    restore_id3v1,
    syncsafe_raw_frames,
)
from genretag.tags.riffinfo import ALBUM_ID, ARTIST_ID, GENRE_ID, read_info, set_info_genre
from genretag.tags.players import asf_shows_last, is_placeholder

_ID3_CONTAINERS = frozenset({"id3", "riff-id3", "aiff-id3"})
_KINDS: tuple[tuple[type, str], ...] = (
    (MP3, "id3"), (FLAC, "vorbis"), (OggVorbis, "vorbis"), (OggOpus, "vorbis"), (OggFLAC, "vorbis"),
    (MP4, "mp4"), (ASF, "asf"), (WAVE, "riff-id3"), (AIFF, "aiff-id3"),
)
"""mutagen file types genretag tags, and their container names."""
_MP4_GENRE = "\xa9gen"
_MP4_PROVENANCE = f"----:com.apple.iTunes:{PROVENANCE_KEY}"
_ID3_PROVENANCE = f"TXXX:{PROVENANCE_KEY}"
_UTF8 = 3  # ID3 text encoding number of UTF-8 (saved as UTF-16 in v2.3)
# mutagen's parsers sometimes let these through on damaged files instead of MutagenError.
_PARSER_ERRORS = (mutagen.MutagenError, ValueError, IndexError, KeyError, EOFError, OverflowError, struct.error)


@dataclass(frozen=True)
class TagState:
    """The tags of one file that genretag reads: its genres, its own fields, and what groups it."""

    container: str
    """``id3``, ``vorbis``, ``mp4``, ``asf``, ``riff-id3`` or ``aiff-id3``."""
    genres: tuple[str, ...]
    """Existing genre values in stored order, split the way other taggers join them
    (``Rock; Pop``, and ``Rock/Pop`` in ID3v2.3), numeric ID3v1 references named; ``()`` if none."""
    provenance: str | None
    """Value of the ``GENRETAG_MODEL`` field; ``None`` if absent."""
    id3_version: int | None
    """ID3v2 minor version (2, 3 or 4) for ID3-based containers with an ID3v2 tag, else ``None``."""
    own_genres: tuple[str, ...] = ()
    """genretag's own genre field (``GENRETAG_GENRE``), for users who keep the genre field to themselves."""
    album: str | None = None
    artist: str | None = None
    album_artist: str | None = None
    compilation: bool = False
    """The file says it is part of a compilation (ID3 ``TCMP``, ``COMPILATION``, MP4 ``cpil``)."""
    ape_genres: tuple[str, ...] = ()
    """An APEv2 tag's ``Genre`` on an mp3 (foobar2000, MusicBee and Mp3tag write them; some players prefer them)."""
    placeholders: tuple[str, ...] = ()
    """Values of the genre field that say "no genre" (:data:`PLACEHOLDER_GENRES`), left out of ``genres``."""
    provenance_values: tuple[str, ...] = ()
    """Every value of the ``GENRETAG_MODEL`` field: the model first (``provenance``), then what genretag
    recorded of its write (see :mod:`genretag.tags.provenance`)."""

    def field(self, name: str) -> tuple[str, ...]:
        """The values of genre field ``name``: ``genre`` or ``genretag`` (see :data:`GENRE_FIELDS`)."""
        return self.genres if name == "genre" else self.own_genres


GENRE_FIELDS = ("genre", "genretag")
"""Where genres are written: the container's genre field, or genretag's own ``GENRETAG_GENRE``."""
OWN_KEY = "GENRETAG_GENRE"
ID3V23_SEPARATOR = "/"
"""How several genres are joined in ID3v2.3, whose text frames hold one string: ``/``, as
the ID3v2.3 specification, mutagen and MusicBrainz Picard do."""


@dataclass(frozen=True)
class _Family:
    """How one tag family stores genretag's fields: a key per role, and how to read and set a key."""

    keys: dict[str, str]
    """Role (``genre``, ``genretag``, ``provenance``, ``album``, ``artist``, ``album_artist``,
    ``compilation``) -> the family's key."""
    get: Callable[[Any, str], list[str]]
    set: Callable[[Any, str, list[str]], None]


def _id3_get(tags: Any, key: str) -> list[str]:
    if key not in tags:
        return []
    return list(tags[key].genres) if key == "TCON" else [str(t) for t in tags[key].text]


def _id3_set(tags: Any, key: str, values: list[str]) -> None:
    if not values:  # no value: no frame (genretag undo putting back "no genre")
        tags.delall(key)
    elif key == "TCON":
        # A name starting with "(" is escaped as "((" so it is not read as a numeric
        # ID3v1 reference. (A name that is all digits, "CR" or "RX" still reads as one.)
        tags.setall("TCON", [TCON(encoding=_UTF8, text=[f"({g}" if g.startswith("(") else g for g in values])])
    else:
        tags.setall(key, [TXXX(encoding=_UTF8, desc=key.removeprefix("TXXX:"), text=values)])


def _vorbis_get(tags: Any, key: str) -> list[str]:
    return list(tags.get(key, []))


def _vorbis_set(tags: Any, key: str, values: list[str]) -> None:
    tags[key] = values  # replaces every case variant, appends at the end


def _mp4_get(tags: Any, key: str) -> list[str]:
    values = tags.get(key, [])
    if key == "cpil":
        return ["1"] if values else []
    if key.startswith("----:"):
        return [bytes(v).decode("utf-8", "replace") for v in values]
    return [str(v) for v in values]


def _mp4_set(tags: Any, key: str, values: list[str]) -> None:
    if not values:
        tags.pop(key, None)
    elif key.startswith("----:"):
        tags[key] = [MP4FreeForm(v.encode("utf-8"), dataformat=AtomDataType.UTF8) for v in values]
        return
    else:
        tags[key] = values
    if key == _MP4_GENRE:
        # mutagen reads a valid numeric ``gnre`` atom as ©gen, so it is not written back;
        # one with an unknown number sits in a private table and would be copied back
        # verbatim. It is the genre field too: drop it so players don't show two genres.
        getattr(tags, "_failed_atoms", {}).pop("gnre", None)


def _asf_get(tags: Any, key: str) -> list[str]:
    return [str(v) for v in tags.get(key, [])]


def _asf_set(tags: Any, key: str, values: list[str]) -> None:
    if values:
        tags[key] = values
    elif key in tags:
        del tags[key]
    if key == "WM/Genre" and "WM/GenreID" in tags:  # legacy second genre field
        del tags["WM/GenreID"]


_ID3 = _Family({"genre": "TCON", "genretag": f"TXXX:{OWN_KEY}", "provenance": _ID3_PROVENANCE, "album": "TALB",
                "artist": "TPE1", "album_artist": "TPE2", "compilation": "TCMP"}, _id3_get, _id3_set)
_FIELDS: dict[str, _Family] = {
    "id3": _ID3,
    "riff-id3": _ID3,
    "aiff-id3": _ID3,
    "vorbis": _Family({"genre": "GENRE", "genretag": OWN_KEY, "provenance": PROVENANCE_KEY, "album": "ALBUM",
                       "artist": "ARTIST", "album_artist": "ALBUMARTIST", "compilation": "COMPILATION"},
                      _vorbis_get, _vorbis_set),
    "mp4": _Family({"genre": _MP4_GENRE, "genretag": f"----:com.apple.iTunes:{OWN_KEY}", "provenance": _MP4_PROVENANCE,
                    "album": "\xa9alb", "artist": "\xa9ART", "album_artist": "aART", "compilation": "cpil"},
                   _mp4_get, _mp4_set),
    "asf": _Family({"genre": "WM/Genre", "genretag": OWN_KEY, "provenance": PROVENANCE_KEY, "album": "WM/AlbumTitle",
                    "artist": "Author", "album_artist": "WM/AlbumArtist", "compilation": "WM/IsCompilation"},
                   _asf_get, _asf_set),
}


def split_genres(values: list[str], *, slash: bool = False) -> tuple[str, ...]:
    """Genre values as separate names: ``Rock; Pop`` (and ``Rock/Pop`` when ``slash``, as ID3v2.3
    joins them) give two; blanks and repeats are dropped."""
    names: list[str] = []
    for value in values:
        for part in value.split(";"):
            for name in part.split("/") if slash else (part,):
                if name.strip() and name.strip() not in names:
                    names.append(name.strip())
    return tuple(names)


def read_tags(path: str | Path) -> TagState:
    """Read the genre fields, provenance, grouping tags and ID3 version of one file.

    A file without tags gives ``genres=()`` and ``provenance=None``. For mp3,
    a genre only present in an ID3v1 tag is reported (as players show it), and an
    APEv2 tag's genre too (``ape_genres``).

    Raises:
        TagError: the file is missing, unreadable, or not a supported container.
    """
    return _read_state(Path(path), Path(path))


def _read_state(path: Path, shown: Path) -> TagState:
    """:func:`read_tags` of ``path``; errors name ``shown`` (the user's file when ``path`` is its copy)."""
    audio, container = _load(path, shown)
    ape = _ape_genres(path) if container == "id3" else ()
    if audio.tags is None:
        return _with_info(TagState(container, (), None, None, ape_genres=ape), path)
    family = _FIELDS[container]
    try:
        tags = _raw_id3(audio, path, with_v1=True) if container in _ID3_CONTAINERS else audio.tags
        values = {role: family.get(tags, key) for role, key in family.keys.items()}
        if container == "id3":
            _add_later_tags(path, values)
        if container == "asf" and asf_shows_last(audio):  # the value players show first
            for role in ("genre", "genretag"):
                values[role] = values[role][-1:] + values[role][:-1]
    except (*_PARSER_ERRORS, OSError) as exc:
        raise _tag_error(exc, shown, "unsupported or unreadable tags") from exc
    version = None
    if container in _ID3_CONTAINERS and tags.size:  # size 0: no ID3v2 header (v1 only)
        version = tags.version[1]
    slash = version == 3

    def first(role: str) -> str | None:
        return next((v.strip() for v in values[role] if v.strip()), None)

    genres = split_genres(values["genre"], slash=slash)
    return _with_info(TagState(
        container=container,
        genres=tuple(g for g in genres if not is_placeholder(g)),
        provenance=first("provenance"),
        provenance_values=tuple(v.strip() for v in values["provenance"] if v.strip()),
        id3_version=version,
        own_genres=split_genres(values["genretag"], slash=slash),
        album=first("album"), artist=first("artist"), album_artist=first("album_artist"),
        compilation=(first("compilation") or "0").lower() in ("1", "true", "yes"),
        ape_genres=ape,
        placeholders=tuple(g for g in genres if is_placeholder(g)),
    ), path)


def _with_info(state: TagState, path: Path) -> TagState:
    """``state`` of a WAV with what its RIFF INFO chunk adds: its genre first (FFmpeg shows INFO's),
    album (``IPRD``) and artist (``IART``) where the ID3 chunk lacks them."""
    if state.container != "riff-id3":
        return state
    info = read_info(path)
    if not info:
        return state
    found = dict(reversed(info))  # the first item of an ID wins
    genres = split_genres([text for key, text in info if key == GENRE_ID])
    return replace(
        state,
        genres=tuple(dict.fromkeys([*(g for g in genres if not is_placeholder(g)), *state.genres])),
        placeholders=tuple(dict.fromkeys([*(g for g in genres if is_placeholder(g)), *state.placeholders])),
        album=state.album or found.get(ALBUM_ID) or None,
        artist=state.artist or found.get(ARTIST_ID) or None,
    )


def _add_later_tags(path: Path, values: dict[str, list[str]]) -> None:
    """Fill the roles the first ID3v2 tag lacks from the tags right after it, as FFmpeg shows them."""
    for later in later_id3v2_tags(path):
        slash = later.version[1] == 3
        for role, key in _ID3.keys.items():
            if not values[role]:
                found = _id3_get(later, key)
                values[role] = [p for v in found for p in v.split("/")] if slash and key == "TCON" else found


def _ape_genres(path: Path) -> tuple[str, ...]:
    """The ``Genre`` of an APEv2 tag on an mp3 (empty when there is none, or it can't be read)."""
    from mutagen.apev2 import APEv2

    try:
        ape = APEv2(path)
    except (*_PARSER_ERRORS, OSError):
        return ()
    item = next((ape[k] for k in ape.keys() if k.lower() == "genre"), None)
    names = split_genres(str(item).split("\0")) if item is not None else ()
    return tuple(g for g in names if not is_placeholder(g))


def _load(path: Path, shown: Path) -> tuple[Any, str]:
    """mutagen's object for ``path`` and its container name; errors name ``shown``."""
    try:
        kind = _kind_of(path, shown.name)
        audio = kind[0](path) if kind else None
    except (*_PARSER_ERRORS, OSError) as exc:
        raise _tag_error(exc, shown, "unsupported or unreadable tags") from exc
    if kind is None:
        raise TagError("unsupported or unreadable tags: not a supported audio format", shown)
    return audio, kind[1]


def _kind_of(path: Path, name: str) -> tuple[type, str] | None:
    """The supported type the first bytes of ``path`` name; the (user's) file ``name`` breaks ties."""
    with open(path, "rb") as f:
        header = f.read(128)
        for hint in ("", name):  # content alone first
            score, n = max((kind.score(hint, f, header), n) for n, (kind, _) in enumerate(_KINDS))
            if score > 0:
                return _KINDS[n]
    return None


IFF_SIZE_LIMIT = 0xFFFF_FFFF + 8
"""Largest WAV (RIFF) or AIFF (FORM) file in bytes: a 32-bit size field plus the 8-byte header it excludes."""
ID3_CHUNK_ALLOWANCE = 1 << 16
"""Bytes set aside for the ID3 chunk a write adds (64 KiB; mutagen pads a new tag to about 1 KiB)."""


def size_limit_problem(path: Path, size: int) -> str | None:
    """Why a file of ``size`` bytes can't take a new ID3 chunk, before anything is copied; None when it can.

    A WAV or AIFF can't grow past :data:`IFF_SIZE_LIMIT` (4 GiB + 7 bytes): its
    size field would wrap. Only the first 12 bytes of ``path`` are read.
    """
    with open(path, "rb") as f:
        head = f.read(12)
    kind = "WAV (RIFF)" if head[:4] == b"RIFF" else "AIFF (FORM)" if head[:4] == b"FORM" else None
    if kind and size + ID3_CHUNK_ALLOWANCE > IFF_SIZE_LIMIT:
        return (f"cannot write tags: a {kind} file can't grow past 4 GiB "
                f"(this one is {size / 2**30:.2f} GiB; the tag needs up to {ID3_CHUNK_ALLOWANCE // 1024} KiB)")
    return None


def _write_tags(tmp: Path, shown: Path, genres: tuple[str, ...], provenance: str | tuple[str, ...], *, id3v23: bool,
                field: str = "genre", id3v23_sep: str = ID3V23_SEPARATOR) -> None:
    """Set genre field ``field`` and the provenance in the file ``tmp`` (a private copy of ``shown``).
    ``provenance``: its value, or values (none: the field is removed, as is a genre field given no genre)."""
    audio, container = _load(tmp, shown)
    try:
        if container in _ID3_CONTAINERS:
            _write_id3(audio, tmp, genres, provenance, id3v23=id3v23, with_v1=container == "id3", field=field,
                       sep=id3v23_sep)
            if container == "riff-id3" and field == "genre":  # FFmpeg shows INFO's genre where there is one
                set_info_genre(tmp, genres)
            return
        if audio.tags is None:
            audio.add_tags()
        family = _FIELDS[container]
        values = list(genres)
        if container == "asf" and asf_shows_last(audio):  # the first genre is the one players show
            values = values[1:] + values[:1]
        family.set(audio.tags, family.keys[field], values)
        family.set(audio.tags, family.keys["provenance"], _listed(provenance))
        audio.save(tmp)
    except _PARSER_ERRORS as exc:
        raise _tag_error(exc, shown, "cannot write tags") from exc


def _listed(provenance: str | tuple[str, ...]) -> list[str]:
    return [provenance] if isinstance(provenance, str) else list(provenance)


def _tag_error(exc: Exception, shown: Path, what: str) -> TagError:
    """The TagError for a failure of mutagen or the OS; an OSError inside gives the plain reason.

    mutagen raises a bare ``IOError`` (no errno, no message) when the data ends
    before a size field says it should: that is a damaged file, not an OS error.
    """
    cause = exc if isinstance(exc, OSError) else (exc.__cause__ or exc.__context__)
    if isinstance(cause, OSError) and cause.errno is not None:
        return TagError(os_reason(cause), shown)
    if isinstance(cause, OSError) and not str(exc).strip():
        return TagError(f"{what}: the file ends inside its tags", shown)
    return TagError(f"{what}: {_plain(exc, shown)}", shown)


_DAMAGED = {"id3": "damaged ID3v2 tag", "wave": "damaged WAV file: its RIFF chunks are broken",
            "aiff": "damaged AIFF file: its chunks are broken",
            "mp3": "no MPEG audio frame found (not an mp3, or damaged)", "mp4": "damaged MP4 file: its atoms are broken",
            "flac": "damaged FLAC file: its metadata blocks are broken", "ogg": "damaged Ogg file: its pages are broken",
            "asf": "damaged ASF (WMA) file: its objects are broken"}
"""The mutagen module of a file's format -> what a failure there means, in a user's words (mutagen's messages are a
parser's: ``error``, ``InvalidChunk``, ``'ascii' codec can't decode byte 0xec``, ``'/x.mp3' ID3v2.205 not supported``)."""


def _plain(exc: BaseException, shown: Path) -> str:
    """What a mutagen failure means for the file: where it arose (the innermost format's parser: an ID3 tag in
    an mp3 or WAV, the WAV's chunks...), with
    mutagen's message in parentheses only where it is a short sentence (not empty, not a class name, a codec's
    complaint, bytes or a path)."""
    modules = _mutagen_modules(exc)
    plain = next((_DAMAGED[key] for m in reversed(modules) for key in _DAMAGED
                  if m.split(".")[1].startswith(key)), None)  # the innermost format's
    message = describe(exc, path=shown).strip(" '\"") if str(exc).strip() else ""
    readable = (" " in message and len(message) <= 80 and not isinstance(exc, UnicodeError)
                and not any(bad in message for bad in ("codec", "b'", 'b"', "\\x", "'/")))
    if plain is None:
        return message if readable or (message and not modules) else \
            "damaged file (its structure is not what its format says)"
    if message.startswith(plain):  # genretag's own (a damaged ID3v2 tag's frame claiming too much)
        return message
    return f"{plain} ({message})" if readable else plain


def _mutagen_modules(exc: BaseException) -> list[str]:
    """The mutagen modules the exception passed through, outermost first."""
    tb, found = exc.__traceback__, []
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__", "")
        if name.startswith("mutagen.") and name not in found:
            found.append(name)
        tb = tb.tb_next
    return found


def _write_id3(
    audio: Any, path: Path, genres: tuple[str, ...], provenance: str | tuple[str, ...], *, id3v23: bool, with_v1: bool,
    field: str = "genre", sep: str = ID3V23_SEPARATOR,
) -> None:
    """Write the ID3v2 tag of ``path`` keeping its version (see :func:`write_genre`)."""
    tags = _raw_id3(audio, path, with_v1=False, parse=False)
    existing = tags.version[1] if tags.size else None
    target = 3 if id3v23 or existing == 3 else 4
    if existing is None and with_v1:  # the new ID3v2 tag holds what the ID3v1 tag says: FFmpeg reads only one
        for frame in id3v1_frames(path, version=target):
            tags.add(frame)
    if existing in (None, target):  # every other frame is saved back as the bytes it was
        drop_raw_frames(tags, _ID3.keys[field])
        drop_raw_frames(tags, "TXXX", desc=_ID3.keys["provenance"].removeprefix("TXXX:"))
        if target == 4:
            syncsafe_raw_frames(tags)
    else:
        tags = _raw_id3(audio, path, with_v1=False)  # converted frame by frame
        if target == 3:
            tags.update_to_v23()  # v2.4 -> v2.3 on request
        else:
            tags.update_to_v24()  # v2.2, which mutagen cannot write
    # ID3v2.3 text frames hold one string: several genres are joined with ``sep`` there (and
    # v23_sep=None below keeps every other frame's values exactly as they were stored).
    values = [sep.join(genres)] if target == 3 and genres else list(genres)
    _id3_set(tags, _ID3.keys[field], values)
    _id3_set(tags, _ID3.keys["provenance"], _listed(provenance))
    if not with_v1:  # ID3 chunk of wav/aiff: no ID3v1 there
        tags.save(path, v2_version=target, v23_sep=None)
        return
    old_v1 = id3v1_block(path)
    tags.save(path, v1=ID3v1SaveOptions.UPDATE, v2_version=target, v23_sep=None)
    if old_v1 is not None:
        restore_id3v1(path, old_v1)


def _raw_id3(audio: Any, path: Path, *, with_v1: bool, parse: bool = True) -> Any:
    """The ID3v2 tag as stored, ID3v1 frames merged in only ``with_v1``.

    mutagen's default load translates frames to v2.4 (TYER -> TDRC...) and
    normalises TCON, losing the ``((`` escape; saving that would change them.
    Without ``parse``, no frame is parsed at all (see :data:`~genretag.tags.id3check.UNPARSED`).
    """
    if audio.tags is None:
        audio.add_tags()
        return audio.tags
    kind = checked_id3(type(audio.tags))  # ID3, or the wav/aiff chunk variant
    known = None if parse else UNPARSED
    try:
        return kind(path, translate=False, load_v1=with_v1, known_frames=known)
    except ID3NoHeaderError:  # only an ID3v1 tag, not wanted
        return kind()


