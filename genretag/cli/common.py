"""What every subcommand shares: consoles, the one error handler, progress bars."""

from __future__ import annotations

import functools
import importlib
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from genretag.errors import GenretagError, UsageError, describe
from genretag.interrupts import (  # noqa: F401 (the CLI's modules take them from here)
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    exit_status,
    sigterm_as_interrupt,
)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70
"""A bug in genretag, not a problem with the input (``EX_SOFTWARE`` of BSD's sysexits.h): a test or a script
that expects 1 for a failed file can't mistake a crash for it."""


def out() -> Console:
    """Results: stdout."""
    return Console(soft_wrap=True, highlight=False)


def err() -> Console:
    """Diagnostics and progress: stderr (through a private copy of fd 2, see :func:`_stderr_stream`)."""
    stream = _stderr_stream()
    if stream is None:
        return Console(stderr=True, soft_wrap=True, highlight=False)
    return Console(file=stream, soft_wrap=True, highlight=False)


def keep_stderr() -> None:
    """Point Python's ``sys.stderr`` at the private copy of fd 2 for the rest of the run, so
    that nothing Python writes there (warnings, a traceback with --debug) can vanish while
    a Keras import has fd 2 pointed at /dev/null (see :func:`_stderr_stream`)."""
    stream = _stderr_stream()
    if stream is not None:
        sys.stderr = stream


@functools.lru_cache(maxsize=1)
def _stderr_stream():
    """A duplicate of fd 2, taken the first time the CLI writes to stderr.

    Importing Keras points fd 2 at /dev/null for a moment to hide TensorFlow's
    start-up chatter, and a scan imports it in a background thread while files
    are already being decoded: the CLI's own messages must not vanish with it.
    None when stderr is not a real file (e.g. captured by a test runner).
    """
    import os

    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
    except (AttributeError, OSError, ValueError):
        return None


def _current_context() -> Any:
    """The running command's context. Newer Typer runs on its own copy of Click
    (``typer._click``), whose context stack ``click.get_current_context`` can't see."""
    for module in ("typer._click.globals", "click.globals"):
        try:
            ctx = importlib.import_module(module).get_current_context(silent=True)
        except (ImportError, AttributeError):
            continue
        if ctx is not None:
            return ctx
    return None


def debug_enabled() -> bool:
    ctx = _current_context()
    while ctx is not None:
        if isinstance(ctx.obj, dict) and ctx.obj.get("debug"):
            return True
        ctx = ctx.parent
    return False


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Characters a terminal acts on (ESC starts sequences that erase lines or hide text; bidi overrides
reorder what follows): in a file name or a tag value they are shown escaped (``\\x1b``)."""


def shown(text: object) -> str:
    """Text for the terminal, markup escaped: bytes of a file name that are not UTF-8
    appear as ``\\xff`` (a terminal can't print them, and they must not stop the run), control
    characters as ``\\x1b`` / ``\\u202e`` (reports keep the raw value)."""
    raw = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    raw = _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", raw)
    return escape(raw)


def error_line(reason: str, path: object | None = None) -> str:
    """``error: reason (path)`` with markup escaped, for a Rich console."""
    where = f" ({path})" if path is not None else ""
    return f"[red]error:[/red] {shown(reason + where)}"


def handles_errors(fn: F) -> F:
    """The one top-level handler: a GenretagError becomes ``error: ...`` on stderr
    and exit 1 (a UsageError exit 2); Ctrl-C exits 130, SIGTERM 143 (after the same cleanup); anything unexpected
    is one ``error: internal error ...`` line and exit 70 (:data:`EXIT_INTERNAL`); tracebacks only with ``--debug``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with sigterm_as_interrupt():
                return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except GenretagError as exc:
            _traceback_if_debug()
            err().print(error_line(exc.reason, exc.path))
            raise typer.Exit(EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILURES) from None
        except KeyboardInterrupt as exc:
            err().print("[yellow]interrupted[/yellow]")
            raise typer.Exit(exit_status(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, non-zero exit
            _traceback_if_debug()
            hint = "" if debug_enabled() else "; run with --debug for the traceback"
            err().print(error_line(f"internal error: {describe(exc, with_type=True)}{hint}"))
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def _traceback_if_debug() -> None:
    if debug_enabled():
        traceback.print_exc(file=_stderr_stream() or sys.stderr)


def progress_bar(console: Console, *, quiet: bool, unit: str = "files") -> Progress:
    """A Rich bar (done/total, rate, ETA) on stderr; silent when not a terminal or quiet."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(f"{{task.fields[rate]}} {unit}/s"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=False,
        redirect_stdout=False,  # results stay on stdout, even when only stderr is a terminal
    )


def require_paths(paths: list[Path]) -> None:
    """A path the user typed that does not exist is a usage error (exit 2, one line), before anything runs."""
    import os

    for path in paths:
        if not os.path.lexists(path):
            raise UsageError("no such file or folder", path)


# --- options shared by the commands that tag (scan, apply) -------------------------------------------------

def settings_for(ctx: typer.Context, config: Any) -> SimpleNamespace:
    """The command's options after the config file filled in what the command line left at its default."""
    from genretag.cli.settings import resolve

    params = dict(ctx.params)
    resolve(ctx, params, config=config)
    return SimpleNamespace(**params)


def scan_options(o: SimpleNamespace) -> Any:
    """The library's :class:`~genretag.config.ScanOptions` from resolved command options (reads the genre map)."""
    from dataclasses import fields

    from genretag.config import ScanOptions
    from genretag.scan import read_genre_map

    known = {f.name for f in fields(ScanOptions)} - {"genre_map"}
    values = {name: getattr(getattr(o, name), "value", getattr(o, name)) for name in known if hasattr(o, name)}
    return ScanOptions(**values, genre_map=read_genre_map(o.genre_map) if o.genre_map else {})


def warn_without_styles(stderr: Console, options: Any, bundle: Any) -> None:
    """One warning line when ``--styles`` is on and the model's card lists no styles (genres are still written)."""
    if options.styles and not bundle.card.styles:
        stderr.print(f"[yellow]warning:[/yellow] model {shown(bundle.card.model_id)} has no styles: "
                     "--styles writes genres only")


def run_inputs(o: SimpleNamespace, bundle: Any = None) -> dict[str, Path | None]:
    """What a run reads besides the audio, for :func:`~genretag.scan.check_report_paths`: a report
    may not be written over any of them (the config file even when absent: a report there would
    become the next run's broken config)."""
    from genretag.cli.settings import config_path
    from genretag.scan.report import STORE_INPUT
    from genretag.store import default_store_path

    store = None if o.no_store else Path(o.store).expanduser() if o.store else default_store_path()
    return {"the config file": config_path(o.config), "the genre map": o.genre_map, STORE_INPUT: store,
            "the model bundle": bundle.path if bundle is not None else None}


def open_store(o: SimpleNamespace) -> tuple[Any, GenretagError | None]:
    """The prediction store the options ask for: ``(store, None)``, ``(None, None)`` with
    ``--no-store``, or ``(None, error)`` when it can't be opened (the run goes on without it)."""
    from genretag.errors import StoreError
    from genretag.store import Store, default_store_path

    if o.no_store:
        return None, None
    try:
        return Store(Path(o.store).expanduser() if o.store else default_store_path()), None
    except StoreError as exc:
        return None, exc


def close_store(store: Any, problem: GenretagError | None) -> GenretagError | None:
    """Close the store; the error that kept it from being used, if any."""
    if store is None:
        return problem
    store.close()
    note_damaged(err(), store)
    return store.failed


def note_damaged(stderr: Any, store: Any) -> None:
    """One line when rows of the store could not be read (taken for no row: scan predicts those files again)."""
    if store.damaged:
        count = len(store.damaged)
        rows = "a damaged row" if count == 1 else f"{count} damaged rows"
        stderr.print(f"[yellow]note:[/yellow] {rows} of the prediction store ignored, as if missing "
                     f"({shown(store.path)})")
