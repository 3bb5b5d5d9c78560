"""``genretag show``: what is known about files: their genre tags now, and what the store holds."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Optional

import typer

from genretag.cli.common import err, error_line, for_terminal, note_damaged, out, require_paths
from genretag.cli.options import CONFIG, STORE


def show(
    paths: list[Path] = typer.Argument(..., help="Audio files and folders."),
    store: Optional[Path] = STORE,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file on stdout."),
    config: Optional[Path] = CONFIG,
) -> None:
    """Show each file's genre tags (styles written with --styles among them) and every stored prediction
    of it (by any model; a model with styles: its best style scores too), and whether the file changed
    since. Reads only: decodes nothing, writes nothing."""
    from genretag.cli.settings import read_config
    from genretag.discover import discover
    from genretag.errors import GenretagError, StoreError
    from genretag.files import Identity
    from genretag.store import Store, default_store_path
    from genretag.tags import read_tags

    console, stderr = out(), err()
    require_paths(paths)
    found = discover(paths)
    for path, reason in found.problems:
        stderr.print(error_line(reason, path))
    failed = bool(found.problems)
    configured = read_config(config)[1].get("scan", {}).get("store")  # the store scan and apply use
    where = Path(store or (configured if isinstance(configured, str) else default_store_path())).expanduser()
    try:
        db = Store(where, readonly=True)
    except StoreError as exc:
        stderr.print(error_line(exc.reason, exc.path))
        db, failed = None, True
    with db if db is not None else _NoStore():
        for path in found.files:
            try:
                state = read_tags(path)
                tags = _tags(state)
            except GenretagError as exc:
                tags, failed = {"error": exc.reason}, True
            now = Identity.of(path)
            stored = [{"model": e.model, "status": e.status, "outcome": e.outcome, "current": e.identity.holds_for(now),
                       **({"music": round(e.music, 4)} if e.music is not None else {}),
                       "top": [[g, round(float(p), 4)] for g, p in _ranked(e)[:3]],
                       **({"styles": [[n, round(float(p), 4)] for n, p in _styles(e)[:3]]} if e.styles else {}),
                       "error": e.error,
                       "windows": e.windows, "updated": datetime.datetime.fromtimestamp(e.updated).isoformat(
                           timespec="seconds")} for e in (db.entries(path) if db is not None else [])]
            if as_json:
                # ASCII: a path that is not UTF-8 keeps its bytes as \udcXX escapes, as in scan --json
                typer.echo(json.dumps({"path": str(path), "tags": tags, "stored": stored}))
            else:
                _render(console, path, tags, stored)
    if db is not None:
        note_damaged(stderr, db)
    if failed:
        raise typer.Exit(1)


class _NoStore:
    """Stands in for a store that could not be opened: ``show`` still shows the tags."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _tags(state) -> dict:
    """What ``show`` says of a file's tags: its genre field and whose it is (``genre_by``: ``genretag``,
    ``reviewed`` (a person's review genretag wrote), ``user``, or None when empty), genretag's own field,
    the model, and what ``genretag undo`` would put back (``undo``: None when it can't)."""
    from genretag.tags.provenance import Provenance, owns, reviewed

    prov = Provenance.of(state)
    by = None if not state.genres else "reviewed" if reviewed(state) else "genretag" if owns(state) else "user"
    undo = list(prov.before) if prov is not None and prov.before is not None and owns(state) else None
    return {"genres": list(state.genres), "genre_by": by, "genretag": list(state.own_genres),
            "model": state.provenance, "undo": undo}


def _ranked(entry) -> list[tuple[str, float]]:
    if entry.probabilities is None:
        return []
    return sorted(zip(entry.labels, entry.probabilities.tolist()), key=lambda lp: -lp[1])


def _styles(entry) -> list[tuple[str, float]]:
    """The entry's style scores, best first (a model with styles)."""
    if entry.style_scores is None:
        return []
    return sorted(zip(entry.styles, entry.style_scores.tolist()), key=lambda sp: -sp[1])


def _render(console, path: Path, tags: dict, stored: list[dict]) -> None:
    console.print(f"[bold]{for_terminal(path)}[/bold]")
    if "error" in tags:
        console.print(f"  tags: [red]{for_terminal(tags['error'])}[/red]")
    else:
        genre = "; ".join(tags["genres"]) or "-"
        by = {"genretag": f" (written by {for_terminal(tags['model'] or '')})",
              "reviewed": f" (your review, written by {for_terminal(tags['model'] or '')})",
              "user": " (yours: genretag did not write it)"}.get(tags["genre_by"], "")
        console.print(f"  genre: {for_terminal(genre)}{by}")
        if tags["genretag"]:
            console.print(f"  genretag's own field: {for_terminal('; '.join(tags['genretag']))} "
                          f"(written by {for_terminal(tags['model'] or '')})")
        if tags["undo"] is not None:
            console.print(f"  undo would put back: {for_terminal('; '.join(tags['undo']) or 'no genre')}")
    if not stored:
        console.print("  no stored prediction")
    for entry in stored:
        top = (", ".join(f"{for_terminal(g)} {p:.0%}" for g, p in entry["top"])
               or for_terminal(entry["error"] or entry["status"]))
        if entry["status"] == "not-music":
            top = f"not music (music score {entry.get('music', 0.0):.0%}; no genre written), heard as {top}"
        if entry.get("styles"):
            top += "; styles: " + ", ".join(f"{for_terminal(n)} {p:.0%}" for n, p in entry["styles"])
        state = "" if entry["current"] else " [yellow](file changed since: stale)[/yellow]"
        console.print(f"  {for_terminal(entry['model'])}: {top}; last: {entry['outcome'] or '-'}, "
                      f"{entry['updated']}{state}")
