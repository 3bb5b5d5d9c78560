"""Reviewed reports: the JSON Lines a dry run wrote, edited by a person, turned back into decisions.

A row is what :func:`genretag.scan.report_row` wrote for one file; ``genretag apply``
writes each row's ``genres`` (see :func:`decide_row`).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

from genretag.config import MAX_REPORT_BYTES, DecisionOptions
from genretag.errors import UsageError, os_reason
from genretag.files import Identity
from genretag.genremap import genre_problem
from genretag.scan.decide import ScanResult, decide_genres


def read_report(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSON Lines report (blank lines skipped). Raises :class:`UsageError` naming the
    report and the line for anything that is not a row of ``scan --json``."""
    from genretag.files import lines_limited, open_limited

    path = Path(path)
    try:
        with open_limited(path, limit=MAX_REPORT_BYTES) as fh:
            lines = [raw.decode("utf-8", errors="surrogateescape") for raw in lines_limited(fh, limit=MAX_REPORT_BYTES)]
    except OSError as exc:
        raise UsageError(f"cannot read report: {os_reason(exc)}", path) from exc
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"report line {number} is not JSON ({exc.msg})", path) from exc
        if not isinstance(row, dict) or not isinstance(row.get("path"), str):
            raise UsageError(f"report line {number} has no 'path' (is this a report of 'genretag scan --json'?)", path)
        genres = row.get("genres", [])
        if not isinstance(genres, list) or not all(isinstance(g, str) for g in genres):
            raise UsageError(f"report line {number}: 'genres' must be a list of strings", path)
        rows.append(row)
    return rows


def row_file(row: dict[str, Any]) -> Path | None:
    """The regular file (or missing one) a row's ``path`` names; None when it can name none (NUL, a lone
    surrogate, not a text) or names a pipe, a device, a folder."""
    if not isinstance(row.get("path"), str):
        return None
    path, problem = _row_path(row["path"])
    return path if problem is None else None


def _row_path(text: str) -> tuple[Path, str | None]:
    """A row's path as the file name it stands for, and why it can't be one (None: it can)."""
    if "\x00" in text:
        return Path(text.replace("\x00", "\\x00")), "not a file name: the report's path holds a NUL character"
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError as exc:
        return Path(text.encode("utf-8", "backslashreplace").decode("utf-8")), (
            f"not a file name: the report's path holds {text[exc.start]!a}, which no file name can")
    path = Path(os.fsdecode(raw))
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return path, None  # missing or unreadable: the checks below say which
    if not stat.S_ISREG(mode):
        from genretag.files import kind_of

        return path, f"not an audio file: {kind_of(mode)}"
    return path, None


def decide_row(row: dict[str, Any], *, options: DecisionOptions = DecisionOptions()) -> ScanResult:
    """What a reviewed row's file gets now: its ``genres`` (renamed by the genre map), unless the row's
    genres are empty (its status as reported, the file untouched and not even read; ``excluded`` if it was
    to be tagged), the file changed since the report (``failed``; ``skipped`` when the change was this row
    being applied), or it keeps its genre (``kept``, see :func:`~genretag.scan.decide.decide_genres`). A genre the
    genre map would refuse (a number such as ``17``, which players read as ID3v1 Rock; only separators)
    makes the row ``failed`` (:func:`~genretag.genremap.genre_problem`)."""
    from genretag.tags import read_tags

    path, problem = _row_path(row["path"])
    if problem is None and row.get("model") is not None and not isinstance(row["model"], str):
        problem = "the report's 'model' in this row is not a text"
    previous = tuple(g for g in row.get("previous", []) if isinstance(g, str)) if isinstance(
        row.get("previous"), list) else ()
    base = ScanResult(path, "failed", error=problem, named=True, previous=previous)  # a row names its file
    if problem is not None:
        return base
    genres = tuple(dict.fromkeys(n for g in row.get("genres", []) if (n := options.genre_map.get(g, g).strip())))
    if not genres:  # nothing to write: the row's own outcome, or left alone by the review
        status = row.get("status")
        kept = status if status in ("kept", "low-confidence", "excluded", "not-music", "silent", "failed", "skipped") \
            else "excluded"
        return replace(base, status=kept, error=(row.get("error") or None) if kept == "failed" else None)
    problem = next((found for g in genres if (found := genre_problem(g))), None)
    if problem is not None:  # what the genre map refuses ("17" is ID3v1 Rock to players) is refused here too
        return replace(base, error=f"cannot write genre: {problem}", identity=Identity.of(path))
    recorded = Identity(row["size"], row["mtime_ns"]) if isinstance(row.get("size"), int) and isinstance(
        row.get("mtime_ns"), int) else None
    now = Identity.of(path)
    if now is None:
        return replace(base, error="file not found")
    try:
        state = read_tags(path)
    except Exception as exc:  # noqa: BLE001 - a TagError; any failure is this file's
        return replace(base, error=getattr(exc, "reason", str(exc)), identity=now)
    result = replace(base, status="predicted", previous=state.genres, provenance=state.provenance, identity=now,
                     tags=state, error=None)
    if recorded is None or now.stamp != recorded.stamp:
        have = {g.casefold() for g in state.field(options.write_to)}
        if {g.casefold() for g in genres} <= have and state.provenance == row.get("model"):
            return replace(result, status="skipped", genres=genres)  # this report was applied already
        return replace(base, error="changed since it was predicted (scan it again)", identity=now)
    if not options.merge and state.field(options.write_to) == genres:
        return replace(result, status="kept")  # the file holds exactly these already
    return decide_genres(result, genres, options)
