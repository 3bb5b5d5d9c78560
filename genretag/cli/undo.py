"""``genretag undo``: put back the genre a file had before genretag wrote it."""

from __future__ import annotations

from pathlib import Path

import typer

from genretag.cli.common import err, error_line, for_terminal, out, require_paths
from genretag.cli.options import DRY_RUN


def undo(
    paths: list[Path] = typer.Argument(..., help="Audio files and folders."),
    dry_run: bool = DRY_RUN,
) -> None:
    """Put back the genre each file had before genretag first wrote it (none, if it had none), for files
    whose genre field genretag wrote and nobody changed since; others are refused, one line each. Only
    the genre and genretag's provenance field change; each write is atomic. Exit 1 when a file was
    refused or failed."""
    from genretag.discover import discover
    from genretag.errors import GenretagError
    from genretag.tags.write import undo_genre

    console, stderr = out(), err()
    require_paths(paths)
    found = discover(paths)
    failed = len(found.problems)
    for path, reason in found.problems:
        stderr.print(error_line(reason, path))
    done = 0
    for path in found.files:
        try:
            before, back = undo_genre(path, dry_run=dry_run)
        except GenretagError as exc:
            stderr.print(error_line(exc.reason, path))
            failed += 1
            continue
        done += 1
        old, new = for_terminal("; ".join(before.genres) or "-"), for_terminal("; ".join(back) or "-")
        console.print(f"{for_terminal(path)}: {old} -> {new}")
    verb = "would be undone" if dry_run else "undone"
    console.print(f"{done} {verb}, {failed} refused or failed")
    if failed:
        raise typer.Exit(1)
