"""Write a file so that readers see the old one or the new one, never half of one; read one that
is not audio without hanging on a named pipe or filling memory from ``/dev/zero``.

Reports, plots, model cards and the feature cache are written through
:func:`replace_atomically`. Audio files have their own, stricter path
(:mod:`genretag.tags.write`: copy, tag, read back, check, rename). Genre maps, config files,
reports and model cards are read through :func:`read_limited` / :func:`open_limited`.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


class RefusedFile(OSError):
    """A file genretag will not read: not a regular file, or larger than its limit.

    ``str(exc)`` and ``exc.strerror`` are the reason in a user's words (``a named pipe (FIFO), not a
    regular file``), so callers that show ``os_reason(exc)`` or ``exc.strerror`` need no special case.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.strerror = reason


_KINDS = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def kind_of(mode: int) -> str:
    """What a non-regular file is, in a user's words (``a named pipe (FIFO)``)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def size_text(limit: int) -> str:
    """``1 MiB``, ``512 KiB``, ``1 GiB``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if limit >= 1 << shift:
            return f"{limit / (1 << shift):g} {unit}"
    return f"{limit} bytes"


def open_limited(path: str | Path, *, limit: int | None, follow_symlinks: bool = True) -> BinaryIO:
    """Open ``path`` for reading, refusing (:class:`RefusedFile`) anything but a regular file of at most
    ``limit`` bytes (a reader must still stop at ``limit``: the file may grow; None: any size).

    The type is checked with ``stat`` before opening, and again with ``fstat`` on what was opened:
    the open itself uses ``O_NONBLOCK``, so a file swapped for a named pipe in between does not
    block it (a FIFO opens at once without a writer, then fails the second check). With
    ``follow_symlinks=False`` a symbolic link is refused too (opened with ``O_NOFOLLOW``, so one swapped
    in meanwhile is not followed either). Other OS errors (not found, permission denied) pass through.
    """
    mode = (os.stat if follow_symlinks else os.lstat)(path).st_mode
    if not stat.S_ISREG(mode):
        raise RefusedFile(f"{kind_of(mode)}, not a regular file")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | (0 if follow_symlinks else os.O_NOFOLLOW))
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise RefusedFile(f"{kind_of(stat.S_IFLNK)}, not a regular file") from exc
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RefusedFile(f"{kind_of(mode)}, not a regular file")
        if limit is not None and os.fstat(fd).st_size > limit:
            raise RefusedFile(f"larger than {size_text(limit)}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(path: str | Path, *, limit: int, follow_symlinks: bool = True) -> bytes:
    """All of a regular file's bytes, at most ``limit`` of them (:class:`RefusedFile` past that, or
    for a named pipe, a device, a folder; see :func:`open_limited`)."""
    with open_limited(path, limit=limit, follow_symlinks=follow_symlinks) as fh:
        data = fh.read(limit + 1)  # one more than allowed tells a file that grew past the limit
    if len(data) > limit:
        raise RefusedFile(f"larger than {size_text(limit)}")
    return data


def lines_limited(fh: BinaryIO, *, limit: int) -> Iterator[bytes]:
    """The lines of an open file (from :func:`open_limited`), refusing (:class:`RefusedFile`) once
    more than ``limit`` bytes were read in all, or one line is longer than that."""
    read = 0
    while line := fh.readline(limit - read + 1):
        read += len(line)
        if read > limit:
            raise RefusedFile(f"larger than {size_text(limit)}")
        yield line


def replace_atomically(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Create or replace ``path`` with what ``write(fh)`` puts into a binary file handle.

    The bytes go to a hidden temporary file in the same folder (created if
    missing), which is renamed over ``path`` once ``write`` returns; if ``write``
    raises, the temporary file is removed and ``path`` is untouched. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(name, 0o666 & ~_umask())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process umask (mkstemp makes files 0600; a report should get the usual mode)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass(frozen=True)
class Identity:
    """What says a file is still the one that was predicted: its size, modification time, status-change
    time and inode. A tag editor that keeps the size (padding) and puts the mtime back still changes the
    ctime, which no program can set; a file replaced by another (a rename over it) has another inode."""

    size: int
    mtime_ns: int
    ctime_ns: int | None = None
    """None where it is not known (a row of a store before schema 4, a file in an object store)."""
    inode: int | None = None

    @classmethod
    def of(cls, path: str | Path) -> Identity | None:
        """The file's identity now; None if it can't be stat'ed."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def holds_for(self, now: Identity | None) -> bool:
        """Whether a file whose identity is ``now`` is still the one this identity was taken of. A part not
        recorded (``None``: a row from before schema 4, a file read through an object store) is not compared."""
        return now is not None and self.stamp == now.stamp and all(
            mine is None or mine == theirs
            for mine, theirs in ((self.ctime_ns, now.ctime_ns), (self.inode, now.inode)))

    @property
    def stamp(self) -> tuple[int, int]:
        """``(size, mtime_ns)``: what a report row records."""
        return self.size, self.mtime_ns
