"""What a tagging run prints and how it ends: a line per file, the progress bar, the summary, the exit status.

Shared by ``genretag scan``, ``genretag apply`` and the Ray front end (:mod:`genretag.cli.scan_ray`): each hands
its run to :func:`tag_and_report` (or, on Ray, :func:`run_with_store`), which opens the prediction store, writes
the reports, closes the store, prints the summary and exits with the run's status.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from genretag.cli.common import (
    EXIT_FAILURES,
    close_store,
    error_line,
    exit_status,
    open_store,
    progress_bar,
    for_terminal,
)
from genretag.errors import GenretagError, UsageError

if TYPE_CHECKING:
    from genretag.scan import ScanResult
    from genretag.store import Store


def finish(tally: "Tally", stderr, store_problem) -> None:
    """The end of a run that tags: say what stopped it, and exit with the status the README promises."""
    if tally.stopped_by is not None:
        stderr.print(error_line(tally.stopped_by.reason, tally.stopped_by.path))
        stderr.print("[yellow]scan stopped:[/yellow] the report could not be written; files already tagged keep "
                     "their tags, and the same command again does the rest")
        raise typer.Exit(EXIT_FAILURES)
    if tally.interrupted is not None:
        stderr.print("[yellow]interrupted:[/yellow] finished files keep their tags; run the same command again to do the rest")
        raise typer.Exit(exit_status(tally.interrupted))
    if store_problem is not None:
        stderr.print(error_line(store_problem.reason, store_problem.path))
        stderr.print("[yellow]note:[/yellow] the run went on without the prediction store")
    if tally.statuses["failed"] or store_problem is not None:
        raise typer.Exit(EXIT_FAILURES)


@dataclass(frozen=True)
class Reports:
    """The ``--csv`` / ``--json`` reports of a run, as :class:`~genretag.scan.ReportWriter` writes them."""

    csv_path: Path | None
    json_path: Path | None
    top_k: int
    model_id: str
    styles: tuple = ()
    """The model card's styles (their scores go into the rows)."""


@dataclass(frozen=True)
class Ran:
    """What :func:`run_with_store`'s ``drive`` hands back for the summary."""

    tally: Tally
    total: int
    """Files the summary counts (``N/total files``)."""
    resumed: int = 0
    output: object = None


def tag_and_report(run: Callable[[Store | None, Callable[[int, int], None]], Iterator[ScanResult]], total: int, *,
                   store: Path | None, reports: Reports, console, stderr, quiet: bool, verbose: bool, dry_run: bool,
                   needs_store: str | None = None) -> None:
    """The tail of ``scan`` and ``apply``: ``run(store, on_progress)`` (the library call, with the opened
    prediction store) driven by :func:`consume`, each result written to the reports; then the store closed,
    the summary printed and the exit status raised. See :func:`run_with_store`."""
    from genretag.scan import ReportWriter

    def drive(opened: Store | None) -> Ran:
        with ReportWriter(csv_path=reports.csv_path, json_path=reports.json_path, top_k=reports.top_k,
                          model_id=reports.model_id, styles=reports.styles) as writer:
            tally = consume(lambda on_progress: run(opened, on_progress), total, writer=writer, console=console,
                            stderr=stderr, quiet=quiet, show_lines=(dry_run or verbose) and not quiet)
        return Ran(tally, total)

    run_with_store(drive, store=store, console=console, stderr=stderr, dry_run=dry_run, needs_store=needs_store)


def run_with_store(drive: Callable[[Store | None], Ran], *, store: Path | None, console, stderr, dry_run: bool,
                   needs_store: str | None = None) -> None:
    """Open the prediction store at ``store`` (None: none; one that can't be opened: the run goes on without
    it, and says so at the end), ``drive(opened)`` the run, close the store, print the summary and end as
    :func:`finish` says. ``needs_store``: the usage error when the run can't go on without the store (the
    store's own error when it can't be opened)."""
    opened, store_problem = open_store(store)
    if needs_store is not None and opened is None:
        raise store_problem or UsageError(needs_store)
    started = time.perf_counter()
    try:
        ran = drive(opened)
    finally:
        store_problem = close_store(opened, store_problem)
    summary(console, ran.tally, ran.total, time.perf_counter() - started, dry_run=dry_run, resumed=ran.resumed,
            output=ran.output)
    finish(ran.tally, stderr, store_problem)


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    genres: Counter = field(default_factory=Counter)
    unheard: int = 0
    """Files that kept their genre without being decoded (nothing was predicted for them)."""
    interrupted: KeyboardInterrupt | None = None
    """Ctrl-C (or SIGTERM: :class:`~genretag.cli.common.Terminated`) stopped the run."""
    stopped_by: GenretagError | None = None
    """The report error that stopped the scan."""


def consume(run, total: int, *, writer, console, stderr, quiet: bool, show_lines: bool) -> Tally:
    """Drive the pipeline: report each result as it comes, with a progress bar; Ctrl-C stops it cleanly.

    ``run(on_progress)`` starts the library call; the bar follows its ``on_progress(done, total)``
    (with ``--group`` every file is predicted before the first decision comes back).
    """
    tally = Tally()
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
                    if not take(result, tally, writer=writer):
                        break
                    render(result, lines, errors, show_lines)
    except KeyboardInterrupt as exc:
        tally.interrupted = exc
    return tally


def take(result: "ScanResult", tally: Tally, *, writer) -> bool:
    """Count a result and write its report row; False when the report can't be written (stop)."""
    try:
        writer.write(result)
    except GenretagError as exc:  # a full disk under the report: stop cleanly, say so
        tally.stopped_by = exc
        return False
    count(result, tally)
    return True


def count(result: "ScanResult", tally: Tally) -> None:
    """Count a result: its status, a file kept without being heard, the first genre written (or that a dry
    run would write)."""
    tally.statuses[result.status] += 1
    tally.unheard += result.status == "kept" and result.prediction is None
    if result.genres and result.status in ("tagged", "would-tag"):
        tally.genres[result.genres[0]] += 1


def render(result: "ScanResult", console, stderr, show_lines: bool) -> None:
    """One line per file, saying what the file has now and what the model heard: ``OLD -> NEW (67%)`` only
    for a genre written (or that a dry run would write); otherwise the genre that stays and why
    (``Soundtrack (kept; heard Electronic 43%)``, ``- (unsure: heard Electronic 45%, below --min-confidence)``).
    The figure is the one that decided: the group's with ``--group``."""
    if result.status == "failed":
        stderr.print(error_line(result.error or "failed", result.path))
        return
    for note in result.notes:
        stderr.print(f"[yellow]note:[/yellow] {for_terminal(note)} ({for_terminal(result.path)})")
    if not show_lines:
        return
    old = for_terminal("; ".join(result.previous) or "-")
    decider = result.group_prediction or result.prediction
    heard = f"{for_terminal(decider.genre)} {decider.confidence:.0%}" if decider is not None else ""
    group = f" [dim]({for_terminal(result.group)})[/dim]" if result.group else ""
    if result.status in ("tagged", "would-tag"):
        conf = f" ({decider.confidence:.0%})" if decider is not None else ""
        written = for_terminal("; ".join(result.genres))
        console.print(f"{for_terminal(result.path)}: {old} -> [bold]{written}[/bold]{conf}{group}")
        return
    why = {"kept": "kept: has a genre", "skipped": "already tagged by this model", "silent": "silent: no genre",
           "low-confidence": "unsure", "excluded": "excluded: the genre map or a review left no genre to write",
           }.get(result.status, result.status)
    if result.status == "not-music":  # the music score decided: the genre it would have had says nothing
        score = result.prediction.music if result.prediction is not None else None
        why, heard = "not music" + (f": music score {score:.0%}" if score is not None else "") + "; no genre", ""
    if heard:
        why += f": heard {heard}" if result.status == "low-confidence" else f"; heard {heard}"
    if result.status == "low-confidence":
        why += ", below --min-confidence"
    console.print(f"{for_terminal(result.path)}: {old} [dim]({why})[/dim]{group}")


def summary(console, tally: Tally, total: int, elapsed: float, *, dry_run: bool, resumed: int = 0,
            output: object = None) -> None:
    """The counts line, the genres line, and a hint for each count that needs one (said once here, not on
    every file's line). ``resumed``: files a Ray run found already in its ``output`` and did not scan again."""
    counts, genres = tally.statuses, tally.genres
    done = sum(counts.values())
    parts = [f"{counts[s]} {label}" for s, label in (
        ("would-tag" if dry_run else "tagged", "would be tagged" if dry_run else "tagged"),
        ("kept", "kept existing genre"), ("skipped", "skipped (already tagged)"),
        ("low-confidence", "low confidence"), ("excluded", "excluded by the genre map"), ("not-music", "not music"),
        ("silent", "silent"), ("failed", "failed"))]
    line = f"{done}/{total} files in {elapsed:.1f} s ({done / max(elapsed, 1e-9):.1f} tracks/s): " + ", ".join(parts)
    if resumed:
        line += f"; {resumed} already in {for_terminal(output)} from an earlier run, not scanned again"
    console.print(line)
    if genres:
        console.print("genres: " + ", ".join(f"{for_terminal(g)} {n}" for g, n in genres.most_common()))
    if tally.unheard:
        console.print(f"[dim]hint: {_files(tally.unheard)} kept {_their(tally.unheard)} genre without being listened "
                      "to: --csv/--json predicts them, --overwrite replaces their genre[/dim]")
    if counts["skipped"]:
        console.print(f"[dim]hint: {_files(counts['skipped'])} already tagged by this model "
                      f"{'was' if counts['skipped'] == 1 else 'were'} left unchanged: use genretag apply "
                      "(or --force) to decide again with these options[/dim]")


def _files(n: int) -> str:
    return "1 file" if n == 1 else f"{n} files"


def _their(n: int) -> str:
    return "its" if n == 1 else "their"
