"""File-safety helpers for atomic tag writes: what may be replaced, copies, syncs.

Every failure is a :class:`~genretag.errors.TagError` naming the user's file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from genretag.errors import TagError, os_reason


def stat_for_write(real: Path, shown: Path) -> os.stat_result:
    """Stat the file to replace; refuse what must not be replaced."""
    try:
        before = os.stat(real)
    except OSError as exc:
        raise TagError(os_reason(exc), shown) from exc
    if not stat.S_ISREG(before.st_mode):
        raise TagError("not a regular file", shown)
    if not before.st_mode & stat.S_IWUSR:
        raise TagError("file is read-only", shown)
    if not os.access(real, os.W_OK):
        raise TagError("permission denied", shown)
    return before


def copy_file(src: Path, dst: Path, before: os.stat_result) -> None:
    """Copy bytes, owner (where allowed) and permission bits of ``src`` onto ``dst``."""
    shutil.copyfile(src, dst)
    mine = os.stat(dst)
    if (mine.st_uid, mine.st_gid) != (before.st_uid, before.st_gid):
        with contextlib.suppress(OSError):  # not allowed: it becomes ours, as with any editor
            os.chown(dst, before.st_uid, before.st_gid)
    shutil.copystat(src, dst)


def check_unchanged(real: Path, before: os.stat_result, shown: Path) -> None:
    """Refuse to replace a file someone else changed (or moved away) while it was being tagged."""
    try:
        now = os.stat(real)
    except FileNotFoundError:
        now = None
    if now is None or (now.st_ino, now.st_size, now.st_mtime_ns) != (
        before.st_ino, before.st_size, before.st_mtime_ns
    ):
        raise TagError("file changed while tagging", shown)


def discard(tmp: Path) -> None:
    """Remove a temporary copy; a failure here must not hide the error being raised."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(folder: Path) -> None:
    """Make the rename durable; some file systems can't sync a folder, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


