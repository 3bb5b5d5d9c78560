"""``genretag scan``: predict a genre for every file and write it into its tags.

The options go to :class:`~genretag.config.ScanOptions` by name (the config file's ``[scan]`` values
arrive as Click's defaults, see :mod:`genretag.cli.settings`), the model is resolved once
(:func:`genretag.load_model`) and :meth:`genretag.Model.tag` does the rest.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

import genretag
from genretag.cli import options as flags
from genretag.cli.common import audio_files, err, out, store_path, warn_without_styles
from genretag.cli.settings import run_inputs
from genretag.cli.tally import Reports, tag_and_report
from genretag.config import ENGINES, MAX_BATCH_SIZE, ScanOptions

DEFAULTS = ScanOptions()


def _known_engine(value: str) -> str:
    """Refuse an engine that does not exist, on the command line and in the config file alike (exit 2)."""
    if value not in ENGINES:
        raise typer.BadParameter(f"unknown engine '{value}' (expected {', '.join(ENGINES)})")
    return value


def scan(
    paths: list[str] = typer.Argument(..., help="Audio files and folders (walked recursively)."),
    model: str = flags.MODEL,
    dry_run: bool = flags.DRY_RUN,
    csv_path: Optional[Path] = flags.CSV,
    json_path: Optional[Path] = flags.JSON,
    top_k: int = flags.TOP_K,
    min_confidence: Optional[float] = flags.MIN_CONFIDENCE,
    next_min_confidence: Optional[float] = flags.NEXT_MIN_CONFIDENCE,
    genre_map: Optional[Path] = flags.GENRE_MAP,
    overwrite: bool = flags.OVERWRITE,
    force: bool = typer.Option(DEFAULTS.force, "--force", help="Re-tag files this model already tagged."),
    id3v23: bool = flags.ID3V23,
    id3v23_sep: str = flags.ID3V23_SEP,
    styles: bool = flags.STYLES,
    group: flags.Group = flags.GROUP,
    write_to: flags.WriteTo = flags.WRITE_TO_FIELD,
    merge: bool = flags.MERGE,
    keep_mtime: bool = flags.KEEP_MTIME,
    windows: int = typer.Option(DEFAULTS.windows, "--windows", "-w", min=1, help="3-s windows listened to per track."),
    batch_size: int = typer.Option(DEFAULTS.batch_size, "--batch-size", min=1, max=MAX_BATCH_SIZE,
                                   help=f"Windows per model batch (at most {MAX_BATCH_SIZE}: memory grows with it)."),
    jobs: int = typer.Option(DEFAULTS.jobs, "--jobs", "-j", min=0, help="Decode worker processes (0: decode inline, for debugging)."),
    timeout: float = typer.Option(DEFAULTS.timeout, "--timeout", min=1.0, help="Seconds one file may take to decode."),
    quiet: bool = flags.QUIET,
    verbose: bool = flags.VERBOSE,
    store: Optional[Path] = flags.STORE,
    no_store: bool = flags.NO_STORE,
    config: Optional[Path] = flags.CONFIG,
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
    Exit status: 0 all files fine, 1 some file failed, 2 usage error, 130 interrupted (143 by SIGTERM), 70
    internal error.
    """
    from genretag.scan import check_report_paths

    options = ScanOptions(
        top_k=top_k, min_confidence=min_confidence, next_min_confidence=next_min_confidence,
        genre_map=genretag.read_genre_map(genre_map) if genre_map else {}, overwrite=overwrite, force=force,
        dry_run=dry_run, id3v23=id3v23, id3v23_sep=id3v23_sep, styles=styles, group=flags.choice(group),
        write_to=flags.choice(write_to), merge=merge, keep_mtime=keep_mtime, windows=windows, batch_size=batch_size,
        jobs=jobs, timeout=timeout,
        predict_kept_files=bool(csv_path or json_path))  # a file that keeps its genre is decoded only for a report
    if engine != "local" or ray_address is not None:  # genretag/cli/scan_ray.py: the Ray engine's front end
        from genretag.cli.scan_ray import scan_ray

        return scan_ray(paths, model=model, options=replace(options, predict_kept_files=True), csv_path=csv_path,
                        json_path=json_path, quiet=quiet, config=config, genre_map=genre_map,
                        store=store_path(store, no_store=no_store), engine=engine, address=ray_address)
    console, stderr = out(), err()
    loaded = genretag.load_model(model, batch_size=batch_size, lazy=True)  # loads only if a file needs it
    warn_without_styles(stderr, styles=styles, model=loaded)
    paths = [Path(p) for p in paths]
    found = audio_files(paths, stderr)
    the_store = store_path(store, no_store=no_store)
    check_report_paths([csv_path, json_path], found.files,
                       inputs=run_inputs(config=config, genre_map=genre_map, store=the_store, model=loaded))
    named = [p for p in paths if not p.is_dir()]
    tag_and_report(lambda opened, on_progress: loaded.tag(found, options=options, store=opened,
                                                          on_progress=on_progress, named=named),
                   len(found.files) + len(found.problems), store=the_store,
                   reports=Reports(csv_path, json_path, top_k, loaded.model_id, loaded.bundle.card.styles),
                   console=console, stderr=stderr, quiet=quiet, verbose=verbose, dry_run=dry_run)
