"""File-safety helpers for atomic tag writes: what may be replaced, copies, locks, syncs.

Every failure is a :class:`~genretag.errors.TagError` naming the user's file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

_F_SETSIG = 10  # Linux: which signal a lease break sends (SIGIO, whose default kills, unless set)
LOCK_WAIT_S = 5.0
"""Seconds to wait for another program's advisory lock on the file before giving up."""
_CHUNK = 1 << 20  # bytes read at a time when hashing

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
    if not _can_write(real):
        raise TagError("read-only file system" if _on_read_only_mount(real) else "permission denied", shown)
    return before


def check_writable(path: Path) -> None:
    """What a write checks before it copies anything, without writing: the file may be replaced
    (:func:`stat_for_write`) and its folder can take the temporary copy. For dry runs; raises
    :class:`TagError` with the reason the write would give."""
    shown = Path(path)
    real = Path(os.path.realpath(shown))
    stat_for_write(real, shown)
    if not os.access(real.parent, os.W_OK | os.X_OK):
        raise TagError("read-only file system" if _on_read_only_mount(real.parent) else folder_denied(real.parent),
                       shown)


def folder_denied(folder: Path) -> str:
    """Why a writable file in a folder that may not be written can't be tagged: the tagged copy is made
    beside it (the error line names the file; this names the folder)."""
    return f"permission denied: cannot create a file in its folder {folder}"


def _can_write(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _on_read_only_mount(path: Path) -> bool:
    """Whether ``path`` lies on a file system mounted read-only (``os.access`` says only "no")."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs (Windows)
        return False


def copy_file(src: Path, dst: Path, before: os.stat_result) -> None:
    """Copy bytes, owner (where allowed) and permission bits of ``src`` onto ``dst``."""
    shutil.copyfile(src, dst)
    mine = os.stat(dst)
    if (mine.st_uid, mine.st_gid) != (before.st_uid, before.st_gid):
        with contextlib.suppress(OSError):  # not allowed: it becomes ours, as with any editor
            os.chown(dst, before.st_uid, before.st_gid)
    shutil.copystat(src, dst)


def identity(st: os.stat_result) -> tuple[int, ...]:
    """What a write, a rename or a replacement of the file changes: device, inode, size, mtime, ctime (ns)."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def check_unchanged(real: Path, before: os.stat_result, shown: Path, copied: bytes) -> None:
    """Refuse to replace a file someone else changed (or moved away) while it was being tagged.

    Identity (:func:`identity`) is compared before and after hashing the
    contents, and the contents must hash to ``copied`` (the digest of the copy
    before it was tagged): a file system with coarse timestamps (a tick of a
    few ms) can give an edit of the same size the same mtime and ctime, so the
    bytes themselves are compared too.
    """
    changed = TagError("file changed while tagging", shown)
    try:
        if identity(os.stat(real)) != identity(before) or digest(real) != copied:
            raise changed
        if identity(os.stat(real)) != identity(before):  # written to while being hashed
            raise changed
    except FileNotFoundError:
        raise changed from None


def digest(path: Path) -> bytes:
    """blake2b digest of a file's bytes."""
    with open(path, "rb") as f:
        return digest_of(f)


def digest_of(f: BinaryIO) -> bytes:
    """blake2b digest of an open file's bytes, read from its start."""
    f.seek(0)
    h = hashlib.blake2b(digest_size=32)
    while block := f.read(_CHUNK):
        h.update(block)
    return h.digest()


@contextlib.contextmanager
def locked(real: Path, shown: Path) -> Iterator[BinaryIO | None]:
    """Hold an exclusive advisory lock (``flock``) on ``real`` for the whole write.

    Yields the open file (the original inode, also after the rename), or None
    where the platform or file system has no such locks. Programs that take
    ``flock`` or ``lockf`` locks (another genretag) wait for each other; the
    lock binds only programs that ask for it (mutagen, for one, does not).
    Raises TagError ``file is locked by another program`` after
    :data:`LOCK_WAIT_S` seconds.
    """
    try:
        f = open(real, "rb")
    except OSError as exc:
        raise TagError(os_reason(exc), shown) from exc
    with f:
        if fcntl is None:
            yield None
            return
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TagError("file is locked by another program", shown) from None
                time.sleep(0.05)
            except OSError as exc:
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    break  # a file system without locks (some network mounts): go on without
                raise TagError(os_reason(exc), shown) from exc
        yield f


def discard(tmp: Path, folder: int | None = None) -> None:
    """Remove a temporary copy; a failure here must not hide the error being raised. ``folder``: an open
    descriptor of the folder holding it (the copy is found there even if the folder was renamed)."""
    with contextlib.suppress(OSError):
        if folder is None:
            tmp.unlink(missing_ok=True)
        else:
            os.unlink(tmp.name, dir_fd=folder)


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




@contextlib.contextmanager
def leased(held: BinaryIO | None, shown: Path) -> Iterator[Callable[[], bool] | None]:
    """Hold a read lease (Linux ``F_SETLEASE``) on the original while it is checked and replaced.

    The lease is granted only while no other program has the file open for
    writing (else this waits up to :data:`LOCK_WAIT_S` s, then raises TagError
    ``file is open for writing by another program``), and any program that
    opens it for writing meanwhile is held in ``open()`` until the lease is
    released. Yields a function telling whether that happened (then the
    caller must leave, or put back, the original), or None where leases are
    not available (not Linux, a file system or owner that refuses them).
    """
    if held is None or fcntl is None or not hasattr(fcntl, "F_SETLEASE"):
        yield None
        return
    fd = held.fileno()
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.fcntl(fd, _F_SETSIG, signal.SIGURG)  # a break must not kill us (SIGURG: ignored)
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
            break
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                yield None  # EACCES (not the owner), EINVAL (no leases here)...
                return
            if time.monotonic() > deadline:
                raise TagError("file is open for writing by another program", shown) from None
            time.sleep(0.002)
    try:
        yield lambda: fcntl.fcntl(fd, fcntl.F_GETLEASE) != fcntl.F_RDLCK
    finally:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
