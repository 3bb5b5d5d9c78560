"""``genretag show``: what is known about files: their genre tags now, and what the store holds."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Optional

import typer

from genretag.cli import options as O
from genretag.cli.common import err, error_line, handles_errors, out, shown


@handles_errors
def show(
    paths: list[Path] = typer.Argument(..., help="Audio files and folders."),
    store: Optional[Path] = O.STORE,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file on stdout."),
) -> None:
    """Show each file's genre tags and every stored prediction of it (by any model), and whether the
    file changed since. Reads only: decodes nothing, writes nothing."""
    from genretag.discover import discover
    from genretag.errors import GenretagError
    from genretag.store import Identity, Store, default_store_path
    from genretag.tags import read_tags

    console, stderr = out(), err()
    found = discover(paths)
    for path, reason in found.problems:
        stderr.print(error_line(reason, path))
    failed = bool(found.problems)
    with Store(Path(store).expanduser() if store else default_store_path()) as db:
        for path in found.files:
            try:
                state = read_tags(path)
                tags = {"genres": list(state.genres), "model": state.provenance}
            except GenretagError as exc:
                tags, failed = {"error": exc.reason}, True
            now = Identity.of(path)
            stored = [{"model": e.model, "status": e.status, "outcome": e.outcome, "current": e.identity == now,
                       "top": [[g, round(float(p), 4)] for g, p in _ranked(e)[:3]], "error": e.error,
                       "windows": e.windows, "updated": datetime.datetime.fromtimestamp(e.updated).isoformat(
                           timespec="seconds")} for e in db.entries(path)]
            if as_json:
                typer.echo(json.dumps({"path": str(path), "tags": tags, "stored": stored}, ensure_ascii=False))
            else:
                _render(console, path, tags, stored)
    if failed:
        raise typer.Exit(1)


def _ranked(entry) -> list[tuple[str, float]]:
    if entry.probabilities is None:
        return []
    return sorted(zip(entry.labels, entry.probabilities.tolist()), key=lambda lp: -lp[1])


def _render(console, path: Path, tags: dict, stored: list[dict]) -> None:
    console.print(f"[bold]{shown(path)}[/bold]")
    if "error" in tags:
        console.print(f"  tags: [red]{shown(tags['error'])}[/red]")
    else:
        genre = "; ".join(tags["genres"]) or "-"
        by = f" (written by {shown(tags['model'])})" if tags["model"] else ""
        console.print(f"  genre: {shown(genre)}{by}")
    if not stored:
        console.print("  no stored prediction")
    for entry in stored:
        top = ", ".join(f"{shown(g)} {p:.0%}" for g, p in entry["top"]) or shown(entry["error"] or entry["status"])
        state = "" if entry["current"] else " [yellow](file changed since: stale)[/yellow]"
        console.print(f"  {shown(entry['model'])}: {top}; last: {entry['outcome'] or '-'}, {entry['updated']}{state}")
