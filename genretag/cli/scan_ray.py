"""``genretag scan --engine ray``: parse -> :func:`genretag.engines.ray_scan.scan_on_ray` -> render.

Kept apart from :mod:`genretag.cli.scan` (which only hands over to :func:`scan_ray`); the
rendering (per-file lines, summary, exit status) is the local scan's own.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

import genretag
from genretag.cli.common import err, exit_status, out, progress_bar, require_paths, warn_without_styles
from genretag.cli.settings import run_inputs
from genretag.config import ENGINES, ScanOptions
from genretag.errors import UsageError


def scan_ray(paths: list[str], *, model: str, options: ScanOptions, csv_path: Path | None, json_path: Path | None,
             quiet: bool, config: Path | None, genre_map: Path | None, store: Path | None, engine: str,
             address: str | None) -> None:
    """Run the scan on Ray with ``scan``'s options; exits as the local scan does. ``paths``: as typed (local
    paths, or URIs such as ``s3://bucket/music``: a :class:`Path` would make that ``s3:/...``); ``store``: the
    prediction store's path (None: no store)."""
    from genretag.cli.tally import Ran, Tally, count, render, run_with_store
    from genretag.engines.outputs import Outputs
    from genretag.engines.ray_scan import scan_on_ray
    from genretag.scan import check_report_paths

    if engine not in ENGINES:
        raise UsageError(f"unknown engine '{engine}' (expected {', '.join(ENGINES)})")
    if address is not None and engine != "ray":
        raise UsageError("--ray-address needs --engine ray")
    require_paths([Path(p) for p in paths if "://" not in str(p)])
    console, stderr = out(), err()
    loaded = genretag.load_model(model, batch_size=options.batch_size, lazy=True)  # the card; actors load it
    warn_without_styles(stderr, styles=options.styles, model=loaded)
    stderr.print("[yellow]note:[/yellow] --engine ray writes no tags (as --dry-run); "
                 "'genretag apply REPORT.jsonl' writes them from --json")
    parquet = json_path is not None and Path(json_path).suffix.lower() == ".parquet"
    outputs = Outputs(json=None if parquet else json_path, csv=csv_path, parquet=json_path if parquet else None)
    check_report_paths([outputs.json, outputs.csv], [p for p in paths if "://" not in str(p)],
                       inputs=run_inputs(config=config, genre_map=genre_map, store=store, model=loaded))

    def drive(opened) -> Ran:
        tally = Tally()
        started = time.perf_counter()
        try:
            with progress_bar(stderr, quiet=quiet, unit="tracks") as progress:
                task = progress.add_task("scanning on Ray", total=None, rate="-")

                def on_result(result) -> None:
                    count(result, tally)
                    render(result, console, progress.console if progress.live.is_started else stderr, not quiet)

                def on_progress(done: int, total: int) -> None:
                    rate = sum(tally.statuses.values()) / max(time.perf_counter() - started, 1e-9)
                    progress.update(task, completed=done, total=total, rate=f"{rate:.1f}")

                ran = scan_on_ray(paths, model=loaded, options=options, address=address, outputs=outputs,
                                  store=opened, on_progress=on_progress, on_result=on_result)
        except KeyboardInterrupt as exc:
            stderr.print("[yellow]interrupted:[/yellow] the rows written so far are kept; run the same command "
                         "again to resume")
            raise typer.Exit(exit_status(exc)) from None
        return Ran(tally, ran.total - ran.resumed, resumed=ran.resumed, output=json_path or csv_path)

    run_with_store(drive, store=store, console=console, stderr=stderr, dry_run=True)
