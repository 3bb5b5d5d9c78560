"""What every subcommand shares: consoles, the one error handler, progress bars."""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

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

if TYPE_CHECKING:
    from genretag.discover import Discovery

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


def debug_enabled(ctx: Any) -> bool:
    """Whether ``--debug`` was given (the root command keeps it in ``ctx.obj``)."""
    while ctx is not None:
        if isinstance(ctx.obj, dict) and ctx.obj.get("debug"):
            return True
        ctx = ctx.parent
    return False


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Characters a terminal acts on (ESC starts sequences that erase lines or hide text; bidi overrides
reorder what follows): in a file name or a tag value they are shown escaped (``\\x1b``)."""


def for_terminal(text: object) -> str:
    """Text for the terminal, markup escaped: bytes of a file name that are not UTF-8
    appear as ``\\xff`` (a terminal can't print them, and they must not stop the run), control
    characters as ``\\x1b`` / ``\\u202e`` (reports keep the raw value)."""
    raw = str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    raw = _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", raw)
    return escape(raw)


def error_line(reason: str, path: object | None = None) -> str:
    """``error: reason (path)`` with markup escaped, for a Rich console."""
    where = f" ({path})" if path is not None else ""
    return f"[red]error:[/red] {for_terminal(reason + where)}"


@contextlib.contextmanager
def handled(ctx: Any) -> Iterator[None]:
    """The one top-level handler, around every command (:class:`genretag.cli._Command`): a GenretagError becomes
    ``error: ...`` on stderr and exit 1 (a UsageError exit 2); Ctrl-C exits 130, SIGTERM 143 (after the same
    cleanup); anything unexpected is one ``error: internal error ...`` line and exit 70 (:data:`EXIT_INTERNAL`);
    tracebacks only with ``--debug``."""
    try:
        with sigterm_as_interrupt():
            yield
    except (typer.Exit, typer.Abort):
        raise
    except GenretagError as exc:
        fail(ctx, exc)
    except KeyboardInterrupt as exc:
        err().print("[yellow]interrupted[/yellow]")
        raise typer.Exit(exit_status(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, non-zero exit
        _traceback_if_debug(ctx)
        hint = "" if debug_enabled(ctx) else "; run with --debug for the traceback"
        err().print(error_line(f"internal error: {describe(exc, with_type=True)}{hint}"))
        raise typer.Exit(EXIT_INTERNAL) from None


def fail(ctx: Any, exc: GenretagError) -> NoReturn:
    """``error: reason (path)`` on stderr; exit 2 for a UsageError, else 1."""
    _traceback_if_debug(ctx)
    err().print(error_line(exc.reason, exc.path))
    raise typer.Exit(EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILURES) from None


def _traceback_if_debug(ctx: Any) -> None:
    if debug_enabled(ctx):
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


# --- what the commands that tag (scan, apply) share ---------------------------------------------------------

def audio_files(paths: list[Path], stderr: Console) -> Discovery:
    """The audio files under ``paths`` (a :class:`~genretag.discover.Discovery`): a path that does not exist is
    a usage error; none found is an error, after one line per path that could not be read."""
    from genretag.discover import discover

    require_paths(paths)
    found = discover(paths)
    if not found.files:
        for path, reason in found.problems:
            stderr.print(error_line(reason, path))
        raise GenretagError("no audio files found in " + ", ".join(str(p) for p in paths))
    return found


def warn_without_styles(stderr: Console, *, styles: bool, model: Any) -> None:
    """One warning line when ``--styles`` is on and the model's card lists no styles (genres are still written)."""
    if styles and not model.bundle.card.styles:
        stderr.print(f"[yellow]warning:[/yellow] model {for_terminal(model.model_id)} has no styles: "
                     "--styles writes genres only")


def store_path(store: Path | None, *, no_store: bool) -> Path | None:
    """The prediction store a run uses: ``--store``, else the default one; None with ``--no-store``."""
    from genretag.store import default_store_path

    return None if no_store else Path(store).expanduser() if store else default_store_path()


def open_store(path: Path | None) -> tuple[Any, GenretagError | None]:
    """The prediction store at ``path`` (:func:`store_path`'s): ``(store, None)``, ``(None, None)`` for no
    store, or ``(None, error)`` when it can't be opened (the run goes on without it)."""
    from genretag.errors import StoreError
    from genretag.store import Store

    if path is None:
        return None, None
    try:
        return Store(path), None
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
                     f"({for_terminal(store.path)})")
