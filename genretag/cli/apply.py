"""``genretag apply``: write tags from stored or reviewed predictions, decoding nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import genretag
from genretag.cli import options as flags
from genretag.cli.common import audio_files, err, out, store_path, warn_without_styles
from genretag.cli.settings import run_inputs
from genretag.cli.tally import Reports, tag_and_report
from genretag.config import DEFAULT_MODEL, ScanOptions
from genretag.errors import UsageError

REPORT_SUFFIXES = (".jsonl", ".json", ".ndjson")


def apply(
    sources: list[Path] = typer.Argument(..., metavar="REPORT.jsonl | PATH...",
                                         help="A JSON Lines report of 'scan --json' (reviewed), or audio files and "
                                              "folders whose stored predictions to apply."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model whose stored predictions to apply."),
    dry_run: bool = flags.DRY_RUN,
    csv_path: Optional[Path] = flags.CSV,
    json_path: Optional[Path] = flags.JSON,
    top_k: int = flags.TOP_K,
    min_confidence: Optional[float] = flags.MIN_CONFIDENCE,
    next_min_confidence: Optional[float] = flags.NEXT_MIN_CONFIDENCE,
    genre_map: Optional[Path] = flags.GENRE_MAP,
    overwrite: bool = flags.OVERWRITE,
    id3v23: bool = flags.ID3V23,
    id3v23_sep: str = flags.ID3V23_SEP,
    styles: bool = flags.STYLES,
    group: flags.Group = flags.GROUP,
    write_to: flags.WriteTo = flags.WRITE_TO_FIELD,
    merge: bool = flags.MERGE,
    keep_mtime: bool = flags.KEEP_MTIME,
    quiet: bool = flags.QUIET,
    verbose: bool = flags.VERBOSE,
    store: Optional[Path] = flags.STORE,
    no_store: bool = flags.NO_STORE,
    config: Optional[Path] = flags.CONFIG,
) -> None:
    """Write genres from predictions already made, without decoding again.

    Review first, then write: [bold]genretag scan ~/Music --dry-run --json review.jsonl[/bold], edit the
    rows' "genres" (empty a list, or delete a row, to leave that file alone), then
    [bold]genretag apply review.jsonl[/bold]. Or [bold]genretag apply ~/Music --top-k 2 --styles[/bold] decides
    again from the prediction store with other options (a report's rows are written as they are). A file that
    changed since it was predicted is never tagged from the old prediction. Exit status as for scan.
    """
    from genretag.scan import check_report_paths, read_report

    options = ScanOptions(
        top_k=top_k, min_confidence=min_confidence, next_min_confidence=next_min_confidence,
        genre_map=genretag.read_genre_map(genre_map) if genre_map else {}, overwrite=overwrite, dry_run=dry_run,
        id3v23=id3v23, id3v23_sep=id3v23_sep, styles=styles, group=flags.choice(group), write_to=flags.choice(write_to),
        merge=merge, keep_mtime=keep_mtime)
    console, stderr = out(), err()
    reports = [s for s in sources if s.suffix.lower() in REPORT_SUFFIXES]
    if len(reports) > 1:
        raise UsageError(f"give one report at a time ({len(reports)} given: apply them one after the other)")
    if reports and len(sources) > 1:
        raise UsageError("give a report or audio paths, not both")
    the_store = store_path(store, no_store=no_store)
    needs_store = None
    if reports:
        rows = read_report(reports[0])
        loaded = genretag.load_model(model, lazy=True)  # its card only: apply decodes nothing
        # provenance: each row's model; rows without one (an older report), the --model given
        model_id = next((r["model"] for r in rows if isinstance(r.get("model"), str) and r["model"]), None) \
            or loaded.model_id
        files, total, card_styles = [Path(r["path"]) for r in rows] + [reports[0]], len(rows), ()

        def run(opened, on_progress):  # files written from the report keep their store entries current
            return genretag.apply_report(rows, model_id=model_id, options=options, on_progress=on_progress,
                                         store=opened, model=loaded)
    else:
        loaded = genretag.load_model(model, lazy=True)
        warn_without_styles(stderr, styles=styles, model=loaded)
        # the model's styles: their scores go into the reports of decisions made from the store
        card_styles = loaded.bundle.card.styles
        found = audio_files(sources, stderr)
        files, total, model_id = found.files, len(found.files) + len(found.problems), loaded.model_id
        needs_store = "apply needs the prediction store (drop --no-store), or a report"

        def run(opened, on_progress):
            return loaded.apply(found, store=opened, options=options, on_progress=on_progress,
                                named=[p for p in sources if not p.is_dir()])
    check_report_paths([csv_path, json_path], files,
                       inputs=run_inputs(config=config, genre_map=genre_map, store=the_store, model=loaded))
    tag_and_report(run, total, store=the_store, reports=Reports(csv_path, json_path, top_k, model_id, card_styles),
                   console=console, stderr=stderr, quiet=quiet, verbose=verbose, dry_run=dry_run,
                   needs_store=needs_store)
