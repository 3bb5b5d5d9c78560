"""One exception tree for genretag.

Every error a user can cause carries the path it concerns, so the CLI can print
``error: <reason> (<path>)`` on one line. Third-party errors are wrapped with
``raise ... from exc``.
"""

from __future__ import annotations

from pathlib import Path


class GenretagError(Exception):
    """Base of every error genretag raises on purpose."""

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else Path(path)
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The error as one line: ``reason (path)``."""
        reason = " ".join(str(self.reason).split())
        return f"{reason} ({self.path})" if self.path is not None else reason


class DecodeError(GenretagError):
    """Audio could not be read or is unusable (corrupt, too short, no ffmpeg...)."""


class TagError(GenretagError):
    """Tags could not be read or written."""


class ModelError(GenretagError):
    """A model bundle is missing, malformed, or fails its checksum."""


class DatasetError(GenretagError):
    """A dataset description (FMA metadata, labels CSV, folder) is unusable."""


class StoreError(GenretagError):
    """The prediction store can't be opened, read or written (a damaged or foreign file)."""


class UsageError(GenretagError):
    """The command line or a settings file asks for something that can't be done (exit 2)."""


def os_reason(exc: OSError) -> str:
    """An OS error as the short lower-case reason error lines use ("permission denied")."""
    import errno

    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or describe(exc)


def describe(exc: BaseException, *, path: str | Path | None = None, with_type: bool = False, limit: int = 200) -> str:
    """Any exception as one line: its message (at most ``limit`` characters), or its type's name.

    ``path``: removed from the message (the error line names the file once, at the end).
    ``with_type``: ``"ValueError: message"``, for errors nobody raised on purpose.
    """
    text = str(exc)
    if path is not None:
        text = text.replace(f"{path}: ", "").replace(str(path), "")
    text = " ".join(text.split())[:limit]
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}" if with_type else text
