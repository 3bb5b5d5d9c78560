"""``genretag scan``: predict a genre for every file and write it into its tags."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from genretag.cli import options as O
from genretag.cli.common import (
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    close_store,
    err,
    error_line,
    handles_errors,
    open_store,
    out,
    progress_bar,
    scan_options,
    settings_for,
    shown,
    warn_without_styles,
)
from genretag.config import MAX_BATCH_SIZE, ScanOptions
from genretag.errors import GenretagError
from genretag.models.registry import resolve_model

if TYPE_CHECKING:
    from genretag.scan import ScanResult

D = ScanOptions()


@handles_errors
def scan(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Audio files and folders (walked recursively)."),
    model: str = O.MODEL,
    dry_run: bool = O.DRY_RUN,
    csv_path: Optional[Path] = O.CSV,
    json_path: Optional[Path] = O.JSON,
    top_k: int = O.TOP_K,
    min_confidence: Optional[float] = O.MIN_CONFIDENCE,
    next_min_confidence: Optional[float] = O.NEXT_MIN_CONFIDENCE,
    genre_map: Optional[Path] = O.GENRE_MAP,
    overwrite: bool = O.OVERWRITE,
    force: bool = typer.Option(D.force, "--force", help="Re-tag files this model already tagged."),
    id3v23: bool = O.ID3V23,
    id3v23_sep: str = O.ID3V23_SEP,
    styles: bool = O.STYLES,
    group: O.Group = O.GROUP,
    write_to: O.WriteTo = O.WRITE_TO_FIELD,
    merge: bool = O.MERGE,
    keep_mtime: bool = O.KEEP_MTIME,
    windows: int = typer.Option(D.windows, "--windows", "-w", min=1, help="3-s windows listened to per track."),
    batch_size: int = typer.Option(D.batch_size, "--batch-size", min=1, max=MAX_BATCH_SIZE,
                                   help=f"Windows per model batch (at most {MAX_BATCH_SIZE}: memory grows with it)."),
    jobs: int = typer.Option(D.jobs, "--jobs", "-j", min=0, help="Decode worker processes (0: decode inline, for debugging)."),
    timeout: float = typer.Option(D.timeout, "--timeout", min=1.0, help="Seconds one file may take to decode."),
    quiet: bool = O.QUIET,
    verbose: bool = O.VERBOSE,
    store: Optional[Path] = O.STORE,
    no_store: bool = O.NO_STORE,
    config: Optional[Path] = O.CONFIG,
    engine: str = typer.Option("local", "--engine", help="local: this machine's pool. ray: the same stages on Ray "
                               "Data (pip install 'genretag[ray]'); writes no tags (implies --dry-run): "
                               "'genretag apply' writes them from --json; --json OUT.parquet writes a Parquet "
                               "dataset; resumes from the outputs a previous run left."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --engine ray: the cluster "
                                              "('auto', 'HEAD_IP:6379'); default: a local Ray."),
) -> None:
    """Predict each track's genre and write it into the file's own genre tag.

    Only the genre field (ID3 TCON, Vorbis GENRE, MP4 ©gen, WM/Genre) and one
    provenance field (GENRETAG_MODEL) change; everything else stays byte-identical.
    Files that already have a genre keep it unless [bold]--overwrite[/bold].
    Exit status: 0 all files fine, 1 some file failed, 2 usage error, 130 interrupted.
    """
    from genretag.api import tag
    from genretag.discover import discover
    from genretag.scan import ReportWriter, check_report_paths

    o = settings_for(ctx, config)
    if engine != "local" or ray_address is not None:  # genretag/cli/scan_ray.py: the Ray engine's own front end
        from genretag.cli.scan_ray import scan_ray

        return scan_ray(o, paths, engine=engine, address=ray_address)
    options = scan_options(o)
    console, stderr = out(), err()
    bundle = resolve_model(o.model)
    warn_without_styles(stderr, options, bundle)
    found = discover(paths)
    if not found.files:
        for path, reason in found.problems:
            stderr.print(error_line(reason, path))
        raise GenretagError("no audio files found in " + ", ".join(str(p) for p in paths))
    check_report_paths([o.csv_path, o.json_path], found.files)
    store, store_problem = open_store(o)
    writer = ReportWriter(csv_path=o.csv_path, json_path=o.json_path, top_k=o.top_k, model_id=bundle.card.model_id,
                          styles=bundle.card.styles)
    started = time.perf_counter()
    total = len(found.files) + len(found.problems)
    try:
        tally = _consume(lambda on_progress: tag(found, model=bundle.path, options=options, store=store,
                                                 on_progress=on_progress),  # the model loads only if needed
                         total, writer=writer, console=console, stderr=stderr, quiet=o.quiet,
                         show_lines=(o.dry_run or o.verbose) and not o.quiet)
    finally:
        writer.close()
        store_problem = close_store(store, store_problem)
    _summary(console, tally, total, time.perf_counter() - started, dry_run=o.dry_run)
    finish(tally, stderr, store_problem)


def finish(tally: "_Tally", stderr, store_problem) -> None:
    """The end of a run that tags: say what stopped it, and exit with the status the README promises."""
    if tally.stopped_by is not None:
        stderr.print(error_line(tally.stopped_by.reason, tally.stopped_by.path))
        stderr.print("[yellow]scan stopped:[/yellow] the report could not be written; files already tagged keep "
                     "their tags, and the same command again does the rest")
        raise typer.Exit(EXIT_FAILURES)
    if tally.interrupted:
        stderr.print("[yellow]interrupted:[/yellow] finished files keep their tags; run the same command again to do the rest")
        raise typer.Exit(EXIT_INTERRUPTED)
    if store_problem is not None:
        stderr.print(error_line(store_problem.reason, store_problem.path))
        stderr.print("[yellow]note:[/yellow] the run went on without the prediction store")
    if tally.statuses["failed"] or store_problem is not None:
        raise typer.Exit(EXIT_FAILURES)


@dataclass
class _Tally:
    statuses: Counter = field(default_factory=Counter)
    genres: Counter = field(default_factory=Counter)
    interrupted: bool = False
    stopped_by: GenretagError | None = None
    """The report error that stopped the scan."""


def _consume(run, total: int, *, writer, console, stderr, quiet: bool, show_lines: bool) -> _Tally:
    """Drive the pipeline: report each result as it comes, with a progress bar; Ctrl-C stops it cleanly.

    ``run(on_progress)`` starts the library call; the bar follows its ``on_progress(done, total)``
    (with ``--group`` every file is predicted before the first decision comes back).
    """
    tally = _Tally()
    started = time.perf_counter()
    try:
        with progress_bar(stderr, quiet=quiet, unit="tracks") as progress:
            task = progress.add_task("scanning", total=total, rate="-")

            def advance(done: int, _total: int) -> None:
                progress.update(task, completed=done, rate=f"{done / max(time.perf_counter() - started, 1e-9):.1f}")

            # A terminal shows the per-file lines above the bar; a redirected stdout gets them as they are.
            lines = progress.console if progress.live.is_started and console.is_terminal else console
            errors = progress.console if progress.live.is_started else stderr
            with closing(run(advance)) as results:
                for result in results:
                    if not _take(result, tally, writer=writer):
                        break
                    _render(result, lines, errors, show_lines)
    except KeyboardInterrupt:
        tally.interrupted = True
    return tally


def _take(result: "ScanResult", tally: _Tally, *, writer) -> bool:
    """Count a result and write its report row; False when the report can't be written (stop)."""
    try:
        writer.write(result)
    except GenretagError as exc:  # a full disk under the report: stop cleanly, say so
        tally.stopped_by = exc
        return False
    tally.statuses[result.status] += 1
    if result.genres and result.status in ("tagged", "would-tag"):
        tally.genres[result.genres[0]] += 1
    return True


def _render(result: "ScanResult", console, stderr, show_lines: bool) -> None:
    if result.status == "failed":
        stderr.print(error_line(result.error or "failed", result.path))
        return
    for note in result.notes:
        stderr.print(f"[yellow]note:[/yellow] {shown(note)} ({shown(result.path)})")
    if not show_lines:
        return
    old = "; ".join(result.previous) or "-"
    new = "; ".join(result.genres) or "-"
    conf = f" ({result.prediction.confidence:.0%})" if result.prediction is not None else ""
    note = {"kept": " [dim](kept: has a genre; --overwrite replaces it)[/dim]",
            "skipped": " [dim](already tagged by this model)[/dim]",
            "silent": " [dim](silent: no genre)[/dim]",
            "low-confidence": " [dim](below --min-confidence)[/dim]",
            "excluded": " [dim](excluded: the genre map or a review left no genre to write)[/dim]"}.get(result.status, "")
    group = f" [dim]({shown(result.group)})[/dim]" if result.group else ""
    console.print(f"{shown(result.path)}: {shown(old)} -> [bold]{shown(new)}[/bold]{conf}{note}{group}")


def _summary(console, tally: _Tally, total: int, elapsed: float, *, dry_run: bool) -> None:
    counts, genres = tally.statuses, tally.genres
    done = sum(counts.values())
    parts = [f"{counts[s]} {label}" for s, label in (
        ("would-tag" if dry_run else "tagged", "would be tagged" if dry_run else "tagged"),
        ("kept", "kept existing genre"), ("skipped", "skipped (already tagged)"),
        ("low-confidence", "low confidence"), ("excluded", "excluded by the genre map"), ("silent", "silent"),
        ("failed", "failed"))]
    console.print(f"{done}/{total} files in {elapsed:.1f} s ({done / max(elapsed, 1e-9):.1f} tracks/s): " + ", ".join(parts))
    if genres:
        console.print("genres: " + ", ".join(f"{shown(g)} {n}" for g, n in genres.most_common()))
