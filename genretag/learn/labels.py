"""The owner's genres, read from the files they tagged: labels, album groups, and what can't be learned.

Reads tags only (no audio, no Keras). A file's values of the genre field (or genretag's own field)
are its labels (not genres genretag wrote there, unless a person reviewed them); several values make a partial label (the track is one of them). ``genre_map`` merges
spellings the owner asks to merge (``Alt. Rock,Alternative Rock``) and drops a genre mapped to nothing.
Genres on fewer than ``min_tracks`` files are left out and listed.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from genretag.errors import GenretagError
from genretag.tags import TagState
from genretag.tags.provenance import owns, reviewed

MAX_LABEL_CHARS = 200
"""A genre longer than this is not a genre (a pasted review, a lyrics field)."""


@dataclass(frozen=True)
class LabelledFile:
    """A file of the library and what its tags say."""

    path: Path
    genres: tuple[str, ...]
    """Its genre values after the genre map (empty: untagged)."""
    group: str
    """The album it belongs to (album artist or artist, and album), else its artist, else its folder:
    cross-validation keeps a group on one side."""


@dataclass(frozen=True)
class LeftOut:
    """A genre the model does not learn, and why."""

    genre: str
    tracks: int
    reason: str


@dataclass(frozen=True)
class Labels:
    """What the library's tags give to learn from."""

    files: tuple[LabelledFile, ...]
    """Every file whose tags could be read, tagged or not."""
    genres: tuple[str, ...]
    """The genres kept (at least ``min_tracks`` files each), most files first."""
    counts: dict[str, int]
    """Files per genre (every genre seen, after the map)."""
    left_out: tuple[LeftOut, ...]
    problems: tuple[tuple[Path, str], ...]
    """Files whose tags can't be read, or whose genre values can't be labels: ``(path, reason)``."""

    @property
    def tagged(self) -> tuple[LabelledFile, ...]:
        """The files with at least one kept genre."""
        kept = set(self.genres)
        return tuple(f for f in self.files if any(g in kept for g in f.genres))


def label_problem(value: str) -> str | None:
    """Why a genre value can't be a label (a control character; bytes that were not valid text, decoded
    as a lone surrogate or U+FFFD; an absurd length), or None."""
    if any(0xD800 <= ord(c) <= 0xDFFF or c == "\ufffd" for c in value):
        return f"genre {value.encode('utf-8', 'backslashreplace').decode()!r} is not valid text (undecodable bytes)"
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf")), None)
    if bad is not None:
        return f"genre {value!r} contains a control character ({ord(bad):#06x})"
    if len(value) > MAX_LABEL_CHARS:
        return f"a genre of {len(value)} characters (more than {MAX_LABEL_CHARS}) is not a genre"
    return None


def group_of(path: Path, tags: TagState) -> str:
    """``album:<artist>/<album>``, else ``artist:<artist>``, else ``folder:<folder>``."""
    artist = (tags.album_artist or tags.artist or "").strip()
    album = (tags.album or "").strip()
    if album:
        return f"album:{artist.casefold()}/{album.casefold()}"
    if artist:
        return f"artist:{artist.casefold()}"
    return f"folder:{path.parent}"


def read_labels(paths: Sequence[Path], *, field: str, min_tracks: int, genre_map: Mapping[str, str] | None = None,
                read=None) -> Labels:
    """Read every file's tags and count the genres. ``read``: the tag reader (default
    :func:`genretag.tags.read_tags`). Never raises for a file: a bad one is a problem."""
    if read is None:
        from genretag.tags import read_tags as read
    mapping = {k.casefold(): v for k, v in (genre_map or {}).items()}
    files, problems = [], []
    for path in paths:
        try:
            tags = read(path)
        except GenretagError as exc:
            problems.append((path, exc.reason))
            continue
        genres: list[str] = []
        for value in () if owns(tags, field) and not reviewed(tags, field) else tags.field(field):
            value = value.strip()
            problem = label_problem(value)
            if problem:
                problems.append((path, f"{problem}; this value is not learned"))
                continue
            value = mapping.get(value.casefold(), value)
            if value and value not in genres:
                genres.append(value)
        files.append(LabelledFile(path, tuple(genres), group_of(path, tags)))
    counts = Counter(g for f in files for g in f.genres)
    kept = tuple(g for g, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_tracks)
    left = tuple(LeftOut(g, n, f"only {n} file{'s' if n != 1 else ''} (--min-tracks {min_tracks})")
                 for g, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n < min_tracks)
    return Labels(tuple(files), kept, dict(counts), left, tuple(problems))
