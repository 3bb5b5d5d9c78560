"""ID3 details the tag writer needs: refuse damaged ID3v2 tags, keep ID3v1 as it was.

mutagen reads an ID3v2 tag with a frame that runs past the tag's end without
complaint, but drops that frame and every later one; writing such a tag back
would lose the user's other tags. :func:`checked_id3` wraps mutagen's ID3
classes so such a tag raises :class:`DamagedID3` instead.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

import mutagen

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
