"""ID3 details the tag writer needs: refuse damaged ID3v2 tags, keep ID3v1 as it was.

mutagen reads an ID3v2 tag with a frame that runs past the tag's end without
complaint, but drops that frame and every later one; writing such a tag back
would lose the user's other tags. :func:`checked_id3` wraps mutagen's ID3
classes so such a tag raises :class:`DamagedID3` instead.
"""

from __future__ import annotations

import functools
import io
import os
import re
from pathlib import Path
from typing import Any

import mutagen
from mutagen.id3 import ID3, Frames, Frames_2_2, ParseID3v1, TextFrame

ID3V1_SIZE = 128


class DamagedID3(mutagen.MutagenError):
    """An ID3v2 tag whose frames mutagen would read only in part."""


class CheckedID3:
    """Mixin for mutagen's ID3 classes: refuse a tag with a frame that runs past the tag's end.

    mutagen reads such a tag without complaint but drops that frame and every
    frame after it, so writing the tag back would silently lose the user's
    other tags (title, artist...). The frames are walked as mutagen walks them.
    """

    def _read(self, header: Any, data: bytes) -> bytes:
        problem = frame_overrun(data, version=header.version[1], unsynch=bool(header.f_unsynch))
        if problem is not None:
            raise DamagedID3(f"damaged ID3v2 tag: {problem}")
        return super()._read(header, data)  # type: ignore[misc]


@functools.lru_cache(maxsize=8)
def checked_id3(kind: type) -> type:
    return type(f"Checked{kind.__name__}", (CheckedID3, kind), {})


_FRAME_ID = re.compile(rb"[A-Z0-9]{3,4}")


def frame_overrun(data: bytes, *, version: int, unsynch: bool) -> str | None:
    """Which frame of an ID3v2.``version`` tag body claims more bytes than the tag has left.

    v2.4 frame sizes are syncsafe, but old iTunes wrote plain integers; the tag
    is damaged only when neither reading fits. Bytes that don't start with a
    valid frame ID end the walk (padding, or junk mutagen skips anyway).
    """
    if version < 4 and unsynch:
        data = data.replace(b"\xff\x00", b"\xff")
    id_len, head = (3, 6) if version == 2 else (4, 10)
    problem = None
    for size_of in (_int_size,) if version < 4 else (_syncsafe_size, _int_size):
        pos = 0
        while pos + head <= len(data) and _FRAME_ID.fullmatch(data, pos, pos + id_len):
            size, left = size_of(data[pos : pos + head], version), len(data) - pos - head
            if size > left:
                name = data[pos : pos + id_len].decode()
                problem = problem or f"frame {name} claims {size:,} bytes, {left:,} left"
                break
            pos += head + size
        else:
            return None
    return problem


def _int_size(header: bytes, version: int) -> int:
    return int.from_bytes(header[3:6] if version == 2 else header[4:8], "big")


def _syncsafe_size(header: bytes, version: int) -> int:
    b = header[4:8]
    return (b[0] & 0x7F) << 21 | (b[1] & 0x7F) << 14 | (b[2] & 0x7F) << 7 | (b[3] & 0x7F)


def id3v1_block(path: Path) -> bytes | None:
    """The 128-byte ID3v1 tag at the end of ``path``, or None (an APEv2 footer is not one)."""
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - ID3V1_SIZE - 3))
        data = f.read()
    block = data[-ID3V1_SIZE:]
    is_v1 = len(block) == ID3V1_SIZE and block.startswith(b"TAG") and not data.startswith(b"APETAGEX")
    return block if is_v1 else None


def restore_id3v1(path: Path, old: bytes) -> None:
    """mutagen rebuilds ID3v1 from the v2 frames; put the old one back with only its new genre byte."""
    with open(path, "r+b") as f:
        f.seek(-ID3V1_SIZE, os.SEEK_END)
        new = f.read(ID3V1_SIZE)
        if new.startswith(b"TAG"):
            f.seek(-ID3V1_SIZE, os.SEEK_END)
            f.write(old[:-1] + new[-1:])


class _Unparsed(dict):  # type: ignore[type-arg]
    """Every frame ID mutagen knows, none of which it may parse.

    Loaded with these as ``known_frames``, an ID3v2.3/2.4 tag keeps each frame as
    the bytes it was stored as (mutagen's ``unknown_frames``), and saving it in
    the same version writes them back unchanged. Parsed, mutagen would rewrite
    them: its date frames (TDRC, TDOR, TDRL...) drop or garble any text that is
    not an ISO timestamp (``c. 1970`` is deleted, ``05.10.1995`` becomes
    ``0005-10-1995``). The IDs stay listed so mutagen can still tell syncsafe
    frame sizes from the plain ones old iTunes wrote.
    """

    def __getitem__(self, key: str) -> type:
        raise KeyError(key)


UNPARSED = _Unparsed(Frames)
TIMESTAMP_FRAMES = ("TDEN", "TDOR", "TDRC", "TDRL", "TDTG")
"""ID3v2.4 frames mutagen parses as timestamps (and rewrites)."""
AS_TEXT: dict[str, type] = {**Frames_2_2, **Frames, **{k: type(k, (TextFrame,), {}) for k in TIMESTAMP_FRAMES}}
"""mutagen's frames, its timestamp frames read and written as the plain text they hold."""


def id3v1_frames(path: Path, *, version: int) -> list[Any]:
    """The ID3v2.``version`` frames an mp3's ID3v1 tag stands for, as players show them.

    Title, artist, album, year (TDRC, or TYER in v2.3, as its text), comment (with
    no description: the comment players show) and track; the genre is left out.
    ``[]`` without an ID3v1 tag.
    """
    block = id3v1_block(path)
    frames = ParseID3v1(block, version, AS_TEXT) if block is not None else None
    if not frames:
        return []
    if "COMM" in frames:
        frames["COMM"].desc = ""  # mutagen calls it "ID3v1 Comment", which FFmpeg shows as a tag of that name
    return [frame for key, frame in frames.items() if key != "TCON"]


def drop_raw_frames(tags: Any, frame_id: str, *, desc: str | None = None) -> None:
    """Remove the unparsed frames ``frame_id`` (only those whose description is ``desc``, for TXXX)."""
    kept = []
    for raw in tags.unknown_frames:
        if raw[:4] == frame_id.encode() and (desc is None or _description(tags, raw) == desc):
            continue
        kept.append(raw)
    tags.unknown_frames = kept


def _description(tags: Any, raw: bytes) -> str | None:
    """The description of one unparsed TXXX frame (``None`` when it can't be parsed)."""
    flags = int.from_bytes(raw[8:10], "big")
    try:
        return Frames["TXXX"]._fromData(tags._header, flags, raw[10:]).desc
    except (mutagen.MutagenError, ValueError, IndexError, KeyError, EOFError):
        return None


def syncsafe_raw_frames(tags: Any) -> None:
    """Give every unparsed ID3v2.4 frame a syncsafe size, as the v2.4 spec (and mutagen's own frames) have.

    Old iTunes wrote plain integers; mixed with mutagen's syncsafe frames, a reader
    would misread the sizes of one kind or the other.
    """
    fixed = []
    for raw in tags.unknown_frames:
        size = len(raw) - 10
        safe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
        fixed.append(raw[:4] + safe + raw[8:])
    tags.unknown_frames = fixed


MAX_LATER_TAGS = 8
"""Back-to-back ID3v2 tags read after the first (more is junk, not a tagger's doing)."""


def later_id3v2_tags(path: Path, *, known_frames: dict[str, type] | None = None) -> list[Any]:
    """The ID3v2 tags that follow the first one back to back at the start of an mp3.

    Some taggers prepend a new tag instead of rewriting the old one. FFmpeg reads
    them all, the first tag's value winning for a field several hold; mutagen
    reads only the first. Damaged ones are left out.
    """
    found = []
    with open(path, "rb") as f:
        pos = 0
        for _ in range(MAX_LATER_TAGS + 1):
            f.seek(pos)
            header = f.read(10)
            if len(header) < 10 or header[:3] != b"ID3":
                break
            size = 10 + _syncsafe_size(b"\0\0\0\0" + header[6:10], 4) + 10 * bool(header[5] & 0x10)
            if pos:
                f.seek(pos)
                try:
                    found.append(checked_id3(ID3)(io.BytesIO(f.read(size)), known_frames=known_frames,
                                                  translate=False, load_v1=False))
                except (mutagen.MutagenError, ValueError, IndexError, KeyError, EOFError, OSError):
                    pass
            pos += size
    return found
