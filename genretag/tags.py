"""Read and write the genre of one audio file, whatever its container, atomically.

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
``riff-id3``  wav              ID3 chunk, same frames as mp3
``aiff-id3``  aiff             ID3 chunk, same frames as mp3
============  ===============  ==================================================

Writes are atomic (see :func:`write_genre`). Nothing here prints; every
failure with a file is a :class:`~genretag.errors.TagError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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
from genretag.errors import TagError
from genretag.id3check import checked_id3, id3v1_block, restore_id3v1
from genretag.safefile import (
    check_unchanged,
    copy_file,
    discard,
    fsync_dir,
    fsync_file,
    os_reason,
    stat_for_write,
)

TMP_SUFFIX = ".genretag-tmp"
"""Temporary copies are named ``.<name>.<random>.genretag-tmp`` next to the file."""
_TMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}" + re.escape(TMP_SUFFIX), re.DOTALL)
"""A temporary copy's name: ``tempfile.mkstemp`` puts 8 of ``[a-z0-9_]`` between prefix and suffix."""

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
    """The genre-related tags of one file."""

    container: str
    """``id3``, ``vorbis``, ``mp4``, ``asf``, ``riff-id3`` or ``aiff-id3``."""
    genres: tuple[str, ...]
    """Existing genre values in stored order; ``()`` if none."""
    provenance: str | None
    """Value of the ``GENRETAG_MODEL`` field; ``None`` if absent."""
    id3_version: int | None
    """ID3v2 minor version (2, 3 or 4) for ID3-based containers with an ID3v2 tag, else ``None``."""


@dataclass(frozen=True)
class _Fields:
    """How one tag family stores the genre and the provenance (tags are mutagen's object)."""

    read: Callable[[Any], tuple[list[str], list[str]]]
    """tags -> (genre values, provenance values)."""
    write: Callable[[Any, tuple[str, ...], str], None]
    """Replace the genre and provenance fields of tags in place."""


def _id3_read(tags: Any) -> tuple[list[str], list[str]]:
    genres = tags["TCON"].genres if "TCON" in tags else []
    provenance = tags[_ID3_PROVENANCE].text if _ID3_PROVENANCE in tags else []
    return genres, provenance


def _id3_write(tags: Any, genres: tuple[str, ...], provenance: str) -> None:
    # A name starting with "(" is escaped as "((" so it is not read as a numeric
    # ID3v1 reference. (A name that is all digits, "CR" or "RX" still reads as one.)
    text = [f"({g}" if g.startswith("(") else g for g in genres]
    tags.setall("TCON", [TCON(encoding=_UTF8, text=text)])
    tags.setall(_ID3_PROVENANCE, [TXXX(encoding=_UTF8, desc=PROVENANCE_KEY, text=[provenance])])


def _vorbis_read(tags: Any) -> tuple[list[str], list[str]]:
    return tags.get("GENRE", []), tags.get(PROVENANCE_KEY, [])


def _vorbis_write(tags: Any, genres: tuple[str, ...], provenance: str) -> None:
    tags["GENRE"] = list(genres)  # replaces every case variant, appends at the end
    tags[PROVENANCE_KEY] = [provenance]


def _mp4_read(tags: Any) -> tuple[list[str], list[str]]:
    raw = tags.get(_MP4_PROVENANCE, [])
    return tags.get(_MP4_GENRE, []), [bytes(v).decode("utf-8", "replace") for v in raw]


def _mp4_write(tags: Any, genres: tuple[str, ...], provenance: str) -> None:
    tags[_MP4_GENRE] = list(genres)
    tags[_MP4_PROVENANCE] = [MP4FreeForm(provenance.encode("utf-8"), dataformat=AtomDataType.UTF8)]
    # mutagen reads a valid numeric ``gnre`` atom as ©gen, so it is not written back;
    # one with an unknown number sits in a private table and would be copied back
    # verbatim. It is the genre field too: drop it so players don't show two genres.
    getattr(tags, "_failed_atoms", {}).pop("gnre", None)


def _asf_read(tags: Any) -> tuple[list[str], list[str]]:
    return [str(v) for v in tags.get("WM/Genre", [])], [str(v) for v in tags.get(PROVENANCE_KEY, [])]


def _asf_write(tags: Any, genres: tuple[str, ...], provenance: str) -> None:
    tags["WM/Genre"] = list(genres)
    tags[PROVENANCE_KEY] = [provenance]
    if "WM/GenreID" in tags:  # legacy second genre field
        del tags["WM/GenreID"]


_ID3_FIELDS = _Fields(_id3_read, _id3_write)
_FIELDS: dict[str, _Fields] = {
    "id3": _ID3_FIELDS,
    "riff-id3": _ID3_FIELDS,
    "aiff-id3": _ID3_FIELDS,
    "vorbis": _Fields(_vorbis_read, _vorbis_write),
    "mp4": _Fields(_mp4_read, _mp4_write),
    "asf": _Fields(_asf_read, _asf_write),
}


def read_tags(path: str | Path) -> TagState:
    """Read the genre, provenance and ID3 version of one file.

    A file without tags gives ``genres=()`` and ``provenance=None``. For mp3,
    a genre only present in an ID3v1 tag is reported (as players show it).

    Raises:
        TagError: the file is missing, unreadable, or not a supported container.
    """
    return _read_state(Path(path), Path(path))


def _read_state(path: Path, shown: Path) -> TagState:
    """:func:`read_tags` of ``path``; errors name ``shown`` (the user's file when ``path`` is its copy)."""
    audio, container = _load(path, shown)
    if audio.tags is None:
        return TagState(container, (), None, None)
    try:
        tags = _raw_id3(audio, path, with_v1=True) if container in _ID3_CONTAINERS else audio.tags
        genres, provenance = _FIELDS[container].read(tags)
    except (*_PARSER_ERRORS, OSError) as exc:
        raise _tag_error(exc, shown, "unsupported or unreadable tags") from exc
    version = None
    if container in _ID3_CONTAINERS and tags.size:  # size 0: no ID3v2 header (v1 only)
        version = tags.version[1]
    return TagState(
        container=container,
        genres=tuple(g for g in genres if g.strip()),
        provenance=next((p for p in provenance if p), None),
        id3_version=version,
    )


def write_genre(
    path: str | Path,
    genres: Sequence[str],
    *,
    provenance: str,
    id3v23: bool = False,
    keep_mtime: bool = False,
) -> TagState:
    """Replace the genre of one file and record ``provenance``; return the state after.

    Only the genre field (see the module table) and the provenance field change.
    The write is atomic: a copy in the same folder is tagged, read back (a
    damaged file whose new tag can't be found is refused), synced and renamed
    over the original; on any failure the copy is removed and the original is
    untouched. A symlink is followed (its target is replaced). The new file keeps
    the original's permission bits and, where allowed, its owner; a file with
    several hard links becomes a separate file (the other links keep the old bytes).

    ID3 (mp3, wav, aiff):
        * ID3v2.4 is written by default; ``id3v23=True`` writes v2.3, converting
          a v2.4 tag as mutagen's ``update_to_v23`` does (TDRC becomes TYER/TDAT/
          TIME; frames v2.3 lacks, such as TDRL or TMOO, are dropped).
        * A file whose tag already is v2.3 stays v2.3 even without ``id3v23``,
          so the user's other frames are not silently converted. An ID3v2.2 tag
          (which cannot be written) is upgraded to v2.4 (or v2.3).
        * In v2.3, several genres are separated by NUL as in v2.4 (old players
          show the first one; a name such as ``Hip-Hop/Rap`` stays intact).
        * An existing ID3v1 tag (mp3) is kept byte for byte except its genre
          byte, which becomes the first genre's ID3v1 number (255 if none).
          No ID3v1 tag is created. APEv2 tags are not touched.

    Args:
        path: The audio file.
        genres: Genre names, best first; blanks are dropped, duplicates removed.
        provenance: Value of the ``GENRETAG_MODEL`` field, e.g. ``"cnn1d 1.2"``.
        id3v23: Write ID3v2.3 instead of v2.4 (ID3-based containers only).
        keep_mtime: Give the result the original's access and modification times.

    Raises:
        TagError: unsupported or unreadable file, ``file is read-only``,
            ``permission denied``, ``file changed while tagging``, a tag that does
            not read back, or a failed write.
        ValueError, TypeError: ``genres`` or ``provenance`` is empty or malformed.
    """
    shown = Path(path)
    values = _clean_genres(genres)
    provenance = _clean_text(provenance, what="provenance")
    real = Path(os.path.realpath(shown))
    before = stat_for_write(real, shown)
    try:
        fd, name = tempfile.mkstemp(dir=real.parent, prefix=f".{_short(real.name)}.", suffix=TMP_SUFFIX)
        os.close(fd)
    except OSError as exc:
        raise TagError(os_reason(exc), shown) from exc
    tmp = Path(name)
    try:
        copy_file(real, tmp, before)
        _write_tags(tmp, shown, values, provenance, id3v23=id3v23)
        after = _read_back(tmp, shown, provenance)
        if keep_mtime:
            os.utime(tmp, ns=(before.st_atime_ns, before.st_mtime_ns))
        fsync_file(tmp)
        check_unchanged(real, before, shown)
        os.replace(tmp, real)
    except OSError as exc:
        discard(tmp)
        raise TagError(os_reason(exc), shown) from exc
    except BaseException:
        discard(tmp)
        raise
    fsync_dir(real.parent)
    return after


def remove_stale_copies(files: Iterable[str | Path]) -> list[Path]:
    """Delete the temporary copies that interrupted writes of ``files`` left behind.

    :func:`write_genre` removes its copy on every error, but a process killed
    outright (``kill -9``, a power cut) can leave one: ``.<name>.<random>.genretag-tmp``
    beside the file (the original is intact). Only copies of the given files are
    removed, whatever their age: a file is written by one genretag at a time, and
    a copy deleted under a concurrent writer only makes its rename fail. One
    folder listing per folder. Returns the copies removed.
    """
    wanted: dict[Path, set[str]] = {}
    for f in files:
        real = Path(os.path.realpath(f))
        wanted.setdefault(real.parent, set()).add(_short(real.name))
    removed = []
    for folder, names in wanted.items():
        stale: list[str] = []
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            stale = [e.path for e in entries if (m := _TMP_NAME.fullmatch(e.name)) and m["name"] in names
                     and e.is_file(follow_symlinks=False)]
        for path in stale:
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed.append(Path(path))
    return removed


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


def _write_tags(tmp: Path, shown: Path, genres: tuple[str, ...], provenance: str, *, id3v23: bool) -> None:
    """Set genre and provenance in the file ``tmp`` (a private copy of ``shown``)."""
    audio, container = _load(tmp, shown)
    try:
        if container in _ID3_CONTAINERS:
            _write_id3(audio, tmp, genres, provenance, id3v23=id3v23, with_v1=container == "id3")
            return
        if audio.tags is None:
            audio.add_tags()
        _FIELDS[container].write(audio.tags, genres, provenance)
        audio.save(tmp)
    except _PARSER_ERRORS as exc:
        raise _tag_error(exc, shown, "cannot write tags") from exc


def _read_back(tmp: Path, shown: Path, provenance: str) -> TagState:
    """The copy's tags as any reader will now see them; TagError unless they hold the new genre.

    A damaged file can take a tag where no reader finds it: in a WAV or AIFF whose
    audio chunk claims more bytes than the file has (a truncated download), the
    new chunk lands inside the audio, which would then play the tag's bytes.
    """
    try:
        state = _read_state(tmp, shown)
    except TagError as exc:
        raise TagError(f"cannot write tags: they do not read back ({exc.reason})", shown) from exc
    if state.provenance != provenance or not state.genres:
        raise TagError("cannot write tags: they do not read back (is the file truncated or damaged?)", shown)
    return state


def _tag_error(exc: Exception, shown: Path, what: str) -> TagError:
    """The TagError for a failure of mutagen or the OS; an OSError inside gives the plain reason.

    mutagen raises a bare ``IOError`` (no errno, no message) when the data ends
    before a size field says it should: that is a damaged file, not an OS error.
    """
    cause = exc if isinstance(exc, OSError) else (exc.__cause__ or exc.__context__)
    if isinstance(cause, OSError) and cause.errno is not None:
        return TagError(os_reason(cause), shown)
    detail = " ".join(str(exc).split())
    if not detail:
        detail = "the file ends inside its tags" if isinstance(cause, OSError) else type(exc).__name__
    return TagError(f"{what}: {detail}", shown)


def _write_id3(
    audio: Any, path: Path, genres: tuple[str, ...], provenance: str, *, id3v23: bool, with_v1: bool
) -> None:
    """Write the ID3v2 tag of ``path`` keeping its version (see :func:`write_genre`)."""
    tags = _raw_id3(audio, path, with_v1=False)
    existing = tags.version[1] if tags.size else None
    target = 3 if id3v23 or existing == 3 else 4
    if existing not in (None, target) and target == 3:
        tags.update_to_v23()  # v2.4 -> v2.3 on request
    elif existing not in (None, target):
        tags.update_to_v24()  # v2.2, which mutagen cannot write
    _id3_write(tags, genres, provenance)
    if not with_v1:  # ID3 chunk of wav/aiff: no ID3v1 there
        tags.save(path, v2_version=target, v23_sep=None)
        return
    old_v1 = id3v1_block(path)
    tags.save(path, v1=ID3v1SaveOptions.UPDATE, v2_version=target, v23_sep=None)
    if old_v1 is not None:
        restore_id3v1(path, old_v1)


def _raw_id3(audio: Any, path: Path, *, with_v1: bool) -> Any:
    """The ID3v2 tag as stored, ID3v1 frames merged in only ``with_v1``.

    mutagen's default load translates frames to v2.4 (TYER -> TDRC...) and
    normalises TCON, losing the ``((`` escape; saving that would change them.
    """
    if audio.tags is None:
        audio.add_tags()
        return audio.tags
    kind = checked_id3(type(audio.tags))  # ID3, or the wav/aiff chunk variant
    try:
        return kind(path, translate=False, load_v1=with_v1)
    except ID3NoHeaderError:  # only an ID3v1 tag, not wanted
        return kind()


def _short(name: str, limit: int = 100) -> str:
    """At most ``limit`` UTF-8 bytes of ``name``, so the temporary name fits in 255 bytes."""
    return name.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")


def _clean_text(value: str, *, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    value = value.strip()
    if not value:
        raise ValueError(f"{what} is empty")
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character: {value!r}")
    return value


def _clean_genres(genres: Sequence[str]) -> tuple[str, ...]:
    """Strip, drop blanks and duplicates (first kept); at least one must remain."""
    if isinstance(genres, str) or not all(isinstance(g, str) for g in genres):
        raise TypeError(f"genres must be a sequence of strings, not {genres!r}")
    values = tuple(dict.fromkeys(_clean_text(g, what="genre") for g in genres if g.strip()))
    if not values:
        raise ValueError("no genre to write")
    return values
