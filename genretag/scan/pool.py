"""A crash-tolerant process pool: item in, Outcome out, never raises through.

Workers are started with the ``spawn`` method (forking after TensorFlow has
started threads can hang). A worker that crashes (segfault in a decoder) or
runs past the per-item time limit costs only its item: pebble kills and
replaces that worker and the run goes on. At most ``max_pending`` items are in
flight, so memory stays bounded however many items there are. ``jobs=0`` runs
everything inline in this process (for debugging).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from genretag.errors import describe

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """The result of one item, or why there is none."""

    item: T
    value: R | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_pool(
    fn: Callable[..., R],
    items: Iterable[T],
    *,
    jobs: int,
    timeout: float | None = None,
    max_pending: int | None = None,
    kwargs: dict[str, Any] | None = None,
) -> Iterator[Outcome[T, R]]:
    """Apply ``fn(item, **kwargs)`` to every item; yield outcomes as they finish.

    Order of outcomes is completion order, not input order. ``fn`` and its
    arguments must be picklable (a module-level function).
    """
    kwargs = kwargs or {}
    if jobs <= 0:
        for item in items:
            yield _inline(fn, item, kwargs)
        return
    from pebble import ProcessPool

    if isinstance(items, Sized):
        jobs = max(1, min(jobs, len(items)))  # no idle worker still starting up when the work is done
    max_pending = max_pending or 4 * jobs
    pending: dict[Future, T] = {}
    iterator = iter(items)
    pool = ProcessPool(max_workers=jobs, context=multiprocessing.get_context("spawn"), initializer=_quiet_worker)
    finished = False
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < max_pending:
                try:
                    item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                pending[pool.schedule(fn, args=(item,), kwargs=kwargs, timeout=timeout)] = item
            if not pending:
                break
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                yield _collect(future, pending.pop(future), timeout)
        finished = True
    finally:
        for future in pending:
            future.cancel()
        ended = False
        if finished:  # let a worker still starting up finish: stopped then, it printed a FileNotFoundError
            pool.close()  # traceback from unpickling the pool's lock (seen in 3 of 3 full test runs)
            try:
                pool.join(timeout=10)
                ended = True
            except TimeoutError:
                pass
        if not ended:
            pool.stop()
            pool.join(timeout=10)


def _quiet_worker() -> None:
    """Set up a worker: Ctrl-C is the parent's to handle (it stops the pool),
    and since decoders (mpg123 inside libsndfile, ffmpeg) chat on fd 2 while a
    worker's errors come back as results, its stderr goes to /dev/null."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One math thread per worker: the pool already uses every core, and
    # OpenBLAS/OpenMP threads in each worker would only fight over them.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _inline(fn: Callable[..., R], item: T, kwargs: dict[str, Any]) -> Outcome[T, R]:
    try:
        return Outcome(item, fn(item, **kwargs))
    except Exception as exc:  # noqa: BLE001 - never raise through the pool
        return Outcome(item, error=describe(exc, with_type=True))


def _collect(future: Future, item: T, timeout: float | None) -> Outcome[T, R]:
    from concurrent.futures import TimeoutError as FutureTimeout

    from pebble import ProcessExpired

    try:
        return Outcome(item, future.result())
    except FutureTimeout:
        return Outcome(item, error=f"timed out after {timeout:g} s (worker stopped)")
    except ProcessExpired as exc:
        return Outcome(item, error=f"decoder crashed (worker exit code {exc.exitcode})")
    except Exception as exc:  # noqa: BLE001 - never raise through the pool
        return Outcome(item, error=describe(exc, with_type=True))


