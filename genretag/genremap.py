"""The genre map: a CSV/TSV of ``model label,tag value`` rows that renames (or leaves out) what is written
(:attr:`~genretag.config.ScanOptions.genre_map`), and the rules a written genre value follows."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from genretag.config import MAX_GENRE_MAP_BYTES
from genretag.errors import UsageError, os_reason

_NUMERIC = re.compile(r"\(?\d+\)?|RX|CR")
"""Values that ID3 readers take for a reference to an ID3v1 genre number ("17" is "Rock")."""


def read_genre_map(path: str | Path) -> dict[str, str]:
    """A CSV/TSV of ``model label,tag value`` rows (a header row ``label,genre`` is optional).

    An empty (or blank) tag value means "never write this label". Raises
    :class:`UsageError` naming the file for anything else that can't be used:
    not UTF-8, a row without exactly two columns, a control character, a
    value players would read as an ID3v1 genre number.
    """
    from genretag.files import read_limited

    path = Path(path)
    try:
        text = read_limited(path, limit=MAX_GENRE_MAP_BYTES).decode("utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read genre map: {os_reason(exc)}", path) from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"genre map is not UTF-8 text (byte {exc.start})", path) from exc
    lines = text.splitlines()
    dialect = "excel-tab" if lines and "\t" in lines[0] else "excel"
    mapping: dict[str, str] = {}
    for number, row in enumerate(csv.reader(lines, dialect=dialect), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2:
            raise UsageError(f"genre map line {number}: needs two columns (label,new name), got {len(row)}", path)
        label, value = row[0].strip(), row[1].strip()
        problem = _bad_value(label) or (_bad_value(value) or genre_problem(value) if value else None)
        if problem:
            raise UsageError(f"genre map line {number}: {problem}", path)
        mapping[label] = value
    mapping.pop("label", None)  # header row
    return mapping


def genre_problem(value: str) -> str | None:
    """Why ``value`` may not be written as a genre by the genre map's rules that a tag write would let
    through (a number players read as an ID3v1 genre, only separators), or None. For genres that come
    from elsewhere (a reviewed report's rows); control characters are the write's to refuse."""
    if _NUMERIC.fullmatch(value):
        return f"{value!r} would be read by players as an ID3v1 genre number; use a name"
    return _only_separators(value)


def _bad_value(value: str) -> str | None:
    """Why a genre map's label or (non-empty) value can't be used, or None: empty, a control character,
    only separators."""
    if not value:
        return "empty label"
    bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
    if bad is not None:
        return f"{value!r} contains a control character ({ord(bad):#04x})"
    return _only_separators(value)


def _only_separators(value: str) -> str | None:
    if not value.replace(";", "").replace("/", "").strip():
        return f"{value!r} holds only the separators genres are joined with (players would read no genre)"
    return None

