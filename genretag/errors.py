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
