"""Ctrl-C and SIGTERM for front ends (the CLI, the beets plugin): both stop a run with the same cleanup.

Library code never installs signal handlers; a front end wraps its run in :func:`sigterm_as_interrupt`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

EXIT_INTERRUPTED = 130
"""128 + SIGINT."""
EXIT_TERMINATED = 143
"""128 + SIGTERM: a run stopped by ``kill`` (or a service manager) cleans up as after Ctrl-C, and says so."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so that the same cleanup runs: the temporary
    copy of a file being written is removed, finished rows stay in the report, the store is closed."""


def exit_status(interrupt: BaseException) -> int:
    """The exit status after an interrupt: 130 for Ctrl-C, 143 for SIGTERM."""
    return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Terminated` (by default it ends the process at once,
    leaving a hidden temporary copy beside a file being written). Only in the main thread, and only where
    SIGTERM still has its default action (a program embedding genretag keeps its own handler)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
