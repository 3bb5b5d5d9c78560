"""Paths in, sorted audio files out.

Walks folders recursively, follows symlinks to folders but never twice into the
same real folder (so symlink loops end), skips hidden files and folders, and
keeps only the containers genretag reads. Order is deterministic.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from genretag.config import AUDIO_EXTENSIONS
from genretag.errors import os_reason


@dataclass(frozen=True)
class Discovery:
    """What a walk found."""

    files: tuple[Path, ...]
    """Audio files, in walk order (sorted per folder, folders depth-first)."""
    problems: tuple[tuple[Path, str], ...]
    """Inputs that could not be walked: (path, reason)."""


def is_audio(path: Path) -> bool:
    """True when the file name has an audio suffix genretag reads."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def discover(inputs: Iterable[str | Path]) -> Discovery:
    """List the audio files under ``inputs`` (files and folders).

    A file given explicitly is kept even if hidden, as long as its suffix is
    audio. Each real file appears once even when reachable by several paths.
    """
    files: list[Path] = []
    problems: list[tuple[Path, str]] = []
    seen_files: set[tuple[int, int]] = set()
    seen_dirs: set[tuple[int, int]] = set()

    def keep(path: Path) -> None:
        if _first_visit(path, seen_files, problems):
            files.append(path)

    for raw in inputs:
        path = Path(raw).expanduser()
        if path.is_dir():
            for found in _walk(path, seen_dirs, problems):
                keep(found)
        elif path.is_file():
            if is_audio(path):
                keep(path)
            else:
                problems.append((path, f"not an audio file (suffix must be one of {', '.join(AUDIO_EXTENSIONS)})"))
        else:
            problems.append((path, _not_a_file(path)))
    return Discovery(files=tuple(files), problems=tuple(problems))


def _first_visit(path: Path, seen: set[tuple[int, int]], problems: list[tuple[Path, str]]) -> bool:
    """True the first time the real file or folder behind ``path`` is met; a stat failure is a problem."""
    try:
        st = path.stat()
    except OSError as exc:
        problems.append((path, os_reason(exc)))
        return False
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return False
    seen.add(key)
    return True


def _walk(root: Path, seen_dirs: set[tuple[int, int]], problems: list[tuple[Path, str]]) -> Iterator[Path]:
    if not _first_visit(root, seen_dirs, problems):
        return  # unreadable, or a symlink loop / a second link to a folder already walked
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        problems.append((root, os_reason(exc)))
        return
    subdirs = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir(follow_symlinks=True):
                subdirs.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=True) and is_audio(Path(entry.name)):
                yield Path(entry.path)
        except OSError as exc:
            problems.append((Path(entry.path), os_reason(exc)))
    for sub in subdirs:
        yield from _walk(sub, seen_dirs, problems)


_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_a_file(path: Path) -> str:
    """Why ``path`` (neither a regular file nor a folder) can't be scanned, in a user's words."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            return "broken symbolic link (its target does not exist)"
        return "no such file or folder"
    except OSError as exc:
        return os_reason(exc)
    what = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    via = f"a symbolic link to {what}" if path.is_symlink() else what
    return f"not an audio file: {via}"
