"""``genretag apply``: write tags from stored or reviewed predictions, decoding nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from genretag.cli.common import (
    CONFIG_OPTION,
    NO_STORE_OPTION,
    STORE_OPTION,
    close_store,
    err,
    error_line,
    handles_errors,
    open_store,
    out,
    scan_options,
    settings_for,
)
from genretag.cli.scan import D, _consume, _summary, finish
from genretag.errors import GenretagError, UsageError
from genretag.models.registry import resolve_model

REPORT_SUFFIXES = (".jsonl", ".json", ".ndjson")


@handles_errors
def apply(
    ctx: typer.Context,
    sources: list[Path] = typer.Argument(..., metavar="REPORT.jsonl | PATH...",
                                         help="A JSON Lines report of 'scan --json' (reviewed), or audio files and "
                                              "folders whose stored predictions to apply."),
    model: str = typer.Option(D.model, "--model", "-m", help="Model whose stored predictions to apply."),
    dry_run: bool = typer.Option(D.dry_run, "--dry-run", "-n", help="Write nothing; show old -> new genre per file."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one row per file to this CSV.", dir_okay=False),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write one JSON object per file (JSON Lines).",
                                             dir_okay=False),
    top_k: int = typer.Option(D.top_k, "--top-k", min=1, help="Write up to this many genres per file (stored predictions)."),
    min_confidence: float = typer.Option(D.min_confidence, "--min-confidence", min=0.0, max=1.0,
                                         help="Write only genres at least this probable (stored predictions)."),
    genre_map: Optional[Path] = typer.Option(None, "--genre-map", exists=True, dir_okay=False,
                                             help="CSV of 'label,new name' rows to rename genres."),
    overwrite: bool = typer.Option(D.overwrite, "--overwrite", help="Replace genre tags the files already have."),
    id3v23: bool = typer.Option(D.id3v23, "--id3v23", help="Write ID3v2.3 instead of v2.4 (for old players)."),
    keep_mtime: bool = typer.Option(D.keep_mtime, "--keep-mtime", help="Keep each file's modification time."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no per-file lines."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="A line per file even when writing tags."),
    store: Optional[Path] = STORE_OPTION,
    no_store: bool = NO_STORE_OPTION,
    config: Optional[Path] = CONFIG_OPTION,
) -> None:
    """Write genres from predictions already made, without decoding again.

    Review first, then write: [bold]genretag scan ~/Music --dry-run --json review.jsonl[/bold], edit the
    rows' "genres" (empty a list, or delete a row, to leave that file alone), then
    [bold]genretag apply review.jsonl[/bold]. Or [bold]genretag apply ~/Music --top-k 2[/bold] decides again
    from the prediction store with other options. A file that changed since it was predicted is never
    tagged from the old prediction. Exit status as for scan.
    """
    from genretag.api import apply as apply_stored
    from genretag.api import apply_report
    from genretag.discover import discover
    from genretag.scan import ReportWriter, check_report_paths, read_report

    o = settings_for(ctx, config)
    options = scan_options(o)
    console, stderr = out(), err()
    reports = [s for s in sources if s.suffix.lower() in REPORT_SUFFIXES]
    if reports and len(sources) > 1:
        raise UsageError("give one report, or audio paths, not both")
    store_problem = None
    store = None
    if reports:
        rows = read_report(reports[0])
        files, total, model_id = [Path(r["path"]) for r in rows] + [reports[0]], len(rows), ""
        results = apply_report(rows, options=options)
    else:
        bundle = resolve_model(o.model)
        found = discover(sources)
        if not found.files:
            for path, reason in found.problems:
                stderr.print(error_line(reason, path))
            raise GenretagError("no audio files found in " + ", ".join(str(p) for p in sources))
        store, store_problem = open_store(o)
        if store is None:
            raise store_problem or UsageError("apply needs the prediction store (drop --no-store), or a report")
        files, total, model_id = found.files, len(found.files) + len(found.problems), bundle.card.model_id
        results = apply_stored(found, store=store, model=bundle.path, options=options)
    check_report_paths([o.csv_path, o.json_path], files)
    writer = ReportWriter(csv_path=o.csv_path, json_path=o.json_path, top_k=o.top_k, model_id=model_id)
    started = time.perf_counter()
    try:
        tally = _consume(results, total, writer=writer, console=console, stderr=stderr, quiet=o.quiet,
                         show_lines=(o.dry_run or o.verbose) and not o.quiet)
    finally:
        writer.close()
        store_problem = close_store(store, store_problem)
    _summary(console, tally, total, time.perf_counter() - started, dry_run=o.dry_run)
    finish(tally, stderr, store_problem)
