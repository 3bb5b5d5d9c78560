"""``genretag scan``: predict a genre for every file and write it into its tags."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from genretag.cli import options as O
from genretag.cli.common import (
    require_paths,
    close_store,
    err,
    error_line,
    handles_errors,
    open_store,
    out,
    run_inputs,
    scan_options,
    settings_for,
    warn_without_styles,
)
from genretag.cli.tally import consume, finish, summary
from genretag.config import ENGINES, MAX_BATCH_SIZE, ScanOptions
from genretag.errors import GenretagError
from genretag.models.registry import resolve_model

if TYPE_CHECKING:
    pass

D = ScanOptions()


def _known_engine(value: str) -> str:
    """Refuse an engine that does not exist, on the command line and in the config file alike (exit 2)."""
    if value not in ENGINES:
        raise typer.BadParameter(f"unknown engine '{value}' (expected {', '.join(ENGINES)})")
    return value


@handles_errors
def scan(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(..., help="Audio files and folders (walked recursively)."),
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
    engine: str = typer.Option(ENGINES[0], "--engine", callback=_known_engine,
                               help="local: this machine's pool. ray: the same stages on Ray "
                               "Data (pip install 'genretag\\[ray]'); writes no tags (implies --dry-run): "
                               "'genretag apply' writes them from --json; --json OUT.parquet writes a Parquet "
                               "dataset; resumes from the outputs a previous run left."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="With --engine ray: the cluster "
                                              "('auto', 'HEAD_IP:6379'); default: a local Ray."),
) -> None:
    """Predict each track's genre and write it into the file's own genre tag.

    Only the genre field (ID3 TCON, Vorbis GENRE, MP4 ©gen, WM/Genre) and one
    provenance field (GENRETAG_MODEL) change; everything else stays byte-identical.
    Files that already have a genre keep it unless [bold]--overwrite[/bold] (and are not
    decoded unless --csv/--json asks for their prediction).
    Exit status: 0 all files fine, 1 some file failed, 2 usage error, 130 interrupted, 70 internal error.
    """
    from genretag.api import tag
    from genretag.discover import discover
    from genretag.scan import ReportWriter, check_report_paths

    o = settings_for(ctx, config)  # engine and ray_address too: `engine = "ray"` in the config file runs on Ray
    if o.engine != "local" or o.ray_address is not None:  # genretag/cli/scan_ray.py: the Ray engine's front end
        from genretag.cli.scan_ray import scan_ray

        return scan_ray(o, paths, engine=o.engine, address=o.ray_address)  # as typed: Path() would make s3:/
    paths = [Path(p) for p in paths]
    # a file that keeps its genre is decoded only when a report asks for its prediction
    options = replace(scan_options(o), predict_kept=bool(o.csv_path or o.json_path))
    console, stderr = out(), err()
    bundle = resolve_model(o.model)
    warn_without_styles(stderr, options, bundle)
    require_paths(paths)
    found = discover(paths)
    if not found.files:
        for path, reason in found.problems:
            stderr.print(error_line(reason, path))
        raise GenretagError("no audio files found in " + ", ".join(str(p) for p in paths))
    check_report_paths([o.csv_path, o.json_path], found.files, inputs=run_inputs(o, bundle))
    store, store_problem = open_store(o)
    writer = ReportWriter(csv_path=o.csv_path, json_path=o.json_path, top_k=o.top_k, model_id=bundle.card.model_id,
                          styles=bundle.card.styles)
    started = time.perf_counter()
    total = len(found.files) + len(found.problems)
    try:
        tally = consume(lambda on_progress: tag(found, model=bundle.path, options=options, store=store,
                                                 on_progress=on_progress,  # the model loads only if needed
                                                 named=[p for p in paths if not p.is_dir()]),
                         total, writer=writer, console=console, stderr=stderr, quiet=o.quiet,
                         show_lines=(o.dry_run or o.verbose) and not o.quiet)
    finally:
        writer.close()
        store_problem = close_store(store, store_problem)
    summary(console, tally, total, time.perf_counter() - started, dry_run=o.dry_run)
    finish(tally, stderr, store_problem)
