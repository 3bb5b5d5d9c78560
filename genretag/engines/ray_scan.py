"""``genretag scan --engine ray``: the scan's own stages on Ray Data, for catalogues that outgrow one machine.

    >>> from genretag.engines.ray_scan import scan_on_ray, Outputs
    >>> summary = scan_on_ray(["/mnt/music"], outputs=Outputs(json=Path("scan.jsonl")), address="auto")

listing (here) -> decode + features (:func:`~genretag.scan.extract.extract_track` in Ray
Data tasks, one CPU each) -> batched inference (an actor pool, the model loaded once per
actor; one GPU per actor when the cluster has GPUs) -> per-track mean
(:func:`~genretag.models.runtime.track_mean`) -> :func:`genretag.decide` with the same
:class:`~genretag.config.ScanOptions` as the local engine -> rows streamed back here and
written to JSON Lines / CSV (the rows of ``scan --json``, so ``genretag apply`` reads them),
a Parquet dataset, and the prediction store. Writes no tags: ``genretag apply REPORT`` does
that where the files are reachable.

Ray Data streams: a bounded number of blocks is in flight (backpressure), so memory does not
grow with the catalogue. A bad file is an error row (``extract_track`` never raises); a
killed worker's task is retried by Ray, and rows are collected here only from finished
tasks, so none is lost or written twice; a block whose task keeps crashing its worker (a
decoder that segfaults) is given up and its files become ``failed`` rows. Run the same
scan again to resume: the paths already in every output are skipped.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from genretag.config import DecisionOptions, ScanOptions
from genretag.engines.outputs import Outputs, done_paths, open_outputs
from genretag.errors import GenretagError, UsageError

if TYPE_CHECKING:
    from genretag.api import Model
    from genretag.scan import ScanResult
    from genretag.store import Store

__all__ = ["Outputs", "RaySummary", "scan_on_ray"]

TRACKS_PER_TASK = 8
"""Tracks one decode task takes (a block: ~4.6 MB of windows at 8 windows a track, default model)."""
TRACKS_PER_CALL = 32
"""Tracks an inference actor takes per call (256 windows at 8 a track)."""
LOST = "lost: the Ray task decoding it failed on every retry (a decoder crash?)"


@dataclass(frozen=True)
class RaySummary:
    """What a Ray scan did."""

    total: int
    """Files found (with inputs that could not be listed)."""
    resumed: int
    """Files already in every output, not scanned again."""
    statuses: Counter = field(default_factory=Counter)
    """Rows written this run by status (``would-tag``, ``kept``, ``failed``...)."""
    genres: Counter = field(default_factory=Counter)
    """First genre of each row that would be tagged."""
    elapsed: float = 0.0
    """Seconds, listing to last row."""
    actors: int = 0
    """Inference actors at most (0: nothing needed the model)."""
    gpus: float = 0.0
    """GPUs in the cluster (0: CPU actors)."""
    address: str | None = None
    """The cluster's address (None: nothing needed a cluster)."""


Progress = Callable[[int, int], None]


def scan_on_ray(
    paths: Iterable[str | Path], *, model: str | Path | Model = "default", options: ScanOptions = ScanOptions(),
    address: str | None = None, outputs: Outputs = Outputs(), resume: bool = True, store: Store | None = None,
    on_progress: Progress | None = None, on_result: Callable[[ScanResult], None] | None = None,
    actors: int | None = None,
) -> RaySummary:
    """Predict every audio file under ``paths`` (folders, files, or ``s3://``/``gs://``/``file://``
    URIs) on a Ray cluster and write the rows to ``outputs``; writes no tags.

    ``address``: an existing cluster (``"auto"``, ``"10.0.0.1:6379"``);
    None starts a local Ray with every core, unless this process is connected to one already.
    ``options``: as the local scan (windows, batch size, top-k, min-confidence, genre map,
    overwrite, force); ``dry_run`` is implied. ``resume``: skip the paths already in every
    existing output and append (otherwise the outputs are replaced). ``store``: new
    predictions are recorded in it (local paths only). ``on_progress(done, total)`` and
    ``on_result(result)`` hear of each file as its row is written (``on_progress`` also once before the first
    row, with the files already in the outputs counted as done). ``actors``: inference
    actors at most (default: one per GPU, or one per 4 CPUs).
    Raises :class:`~genretag.errors.UsageError` without Ray installed, and
    :class:`~genretag.errors.GenretagError` when an output can't be read or written.
    """
    import genretag
    from genretag.api import Model
    from genretag.engines.ray_stages import is_uri, list_uri
    from genretag.models.bundle import verify_bundle
    from genretag.scan.recorder import StoreRecorder, store_key

    try:
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise UsageError("the Ray engine needs Ray Data: pip install 'genretag[ray]'") from exc
    if options.group != "track":  # album/artist groups need every track of a group together
        raise UsageError(f"--group {options.group} is not supported with --engine ray (each track is decided on "
                         "its own there); scan with the local engine, or use --group track")
    started = time.perf_counter()
    options = replace(options, dry_run=True)
    bundle = model.bundle if isinstance(model, Model) else genretag.find_model(model)
    verify_bundle(bundle)  # a bad bundle is refused here, not in every actor
    options = options.for_model(bundle.card.calibration)  # floors left open: the model's own, as locally
    files, problems = _listing(paths, is_uri=is_uri, list_uri=list_uri)
    if not resume:
        _remove(outputs)
    done = done_paths(outputs) if outputs.any() else {}
    finished = set.intersection(*done.values()) if done else set()
    todo = [f for f in files if f not in finished]
    total = len(files) + len(problems)
    count = {"done": total - len(todo) - len(problems)}
    statuses, genres = Counter(), Counter()
    key = store_key(bundle, options)
    recorder = StoreRecorder(store)

    with open_outputs(outputs, done=done, top_k=options.top_k, model_id=bundle.card.model_id,
                      labels=bundle.card.labels, styles=bundle.card.styles) as writer:
        def emit(result: ScanResult, path: str) -> None:
            writer.write(result, path=path)
            statuses[result.status] += 1
            if result.genres and result.status == "would-tag":
                genres[result.genres[0]] += 1
            if not is_uri(path):
                recorder.record(result, key)
            count["done"] += 1
            if on_result is not None:
                on_result(result)
            if on_progress is not None:
                on_progress(count["done"], total)

        if on_progress is not None:  # the total is known before Ray starts (which takes seconds)
            on_progress(count["done"], total)
        for path, reason in problems:
            emit(_failed(path, reason), path)
        run = _Cluster(address) if todo else None
        if run is not None:
            with run:
                used = _run_pipeline(todo, bundle=bundle, options=options, actors=actors,
                                     gpus=run.gpus, cpus=run.cpus, emit=emit)
        else:
            used = 0
    return RaySummary(total=total, resumed=total - len(todo) - len(problems), statuses=statuses, genres=genres,
                      elapsed=time.perf_counter() - started, actors=used, gpus=run.gpus if run else 0.0,
                      address=run.address if run else None)


def _run_pipeline(todo: list[str], *, bundle, options: ScanOptions, actors: int | None, gpus: float,
                  cpus: float, emit) -> int:
    """Build the dataset, stream its rows into ``emit``; the number of inference actors used."""
    import ray.data
    from ray.data import ActorPoolStrategy, DataContext

    from genretag.engines.ray_stages import Infer, decode_batch, model_argument

    n_actors = actors or (int(gpus) if gpus >= 1 else max(1, int(cpus) // 4))
    actor_resources = {"num_gpus": 1} if gpus >= 1 else {"num_cpus": 1}
    context = DataContext.get_current()
    logger = logging.getLogger("ray.data")
    saved = (context.max_errored_blocks, context.enable_progress_bars, logger.level)
    context.max_errored_blocks = -1  # a block that crashes its worker on every retry is given up, not the job
    context.enable_progress_bars = False  # a library draws no bars: progress goes to on_progress
    logger.setLevel(logging.ERROR)  # Ray Data's start/finish lines (and "progress bars disabled")
    seen: set[str] = set()
    try:
        blocks = max(1, -(-len(todo) // TRACKS_PER_TASK))
        ds = ray.data.from_items([{"path": p} for p in todo], override_num_blocks=blocks)
        with warnings.catch_warnings():  # max_retries goes through ray_remote_args, deprecated in 2.60's eyes
            warnings.simplefilter("ignore")
            # max_retries: a killed decode worker's task runs again; and since the two stages' remote
            # arguments differ, Ray does not fuse decoding into the inference actors.
            ds = ds.map_batches(
                decode_batch, batch_size=None, batch_format="numpy", num_cpus=1, max_retries=3,
                fn_kwargs={"features": bundle.card.features.to_dict(), "windows": options.windows,
                           "skip_if_tagged_by": None if options.force else bundle.card.model_id})
        ds = ds.map_batches(
            Infer, batch_size=TRACKS_PER_CALL, batch_format="pyarrow", zero_copy_batch=True,
            compute=ActorPoolStrategy(min_size=1, max_size=n_actors),
            fn_constructor_kwargs={"model": model_argument(bundle.path), "batch_size": options.batch_size},
            **actor_resources)
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for row in batch.to_pylist():
                if row["path"] in seen:
                    continue  # never twice, whatever a retry did
                seen.add(row["path"])
                emit(_decided(row, bundle=bundle, decision=options.decision), row["path"])
    finally:
        context.max_errored_blocks, context.enable_progress_bars, level = saved
        logger.setLevel(level)
    for path in todo:
        if path not in seen:
            emit(_failed(path, LOST), path)
    return n_actors


def _decided(row: dict, *, bundle, decision: DecisionOptions) -> ScanResult:
    """A row of the inference stage as the local scan's decided :class:`ScanResult`."""
    import numpy as np

    from genretag.files import Identity
    from genretag.scan import Prediction, TrackFeatures, as_result, decide

    identity = Identity(row["size"], row["mtime_ns"]) if row["size"] is not None else None
    path = Path(row["path"])
    track = TrackFeatures(path, row["status"], genres=tuple(row["previous"] or ()), provenance=row["provenance"],
                          error=row["error"], identity=identity)
    prediction = None
    if row["probabilities"] is not None:
        scores = row.get("style_scores")
        prediction = Prediction(path, bundle.card.labels, np.asarray(row["probabilities"], np.float32),
                                row["n_windows"], bundle.card.style_names if scores is not None else (),
                                np.asarray(scores, np.float32) if scores is not None else None, row.get("music"))
    floor = bundle.card.music.floor if bundle.card.music is not None else None
    return decide(as_result(track, prediction, music_floor=floor), decision, styles=bundle.card.styles)


def _failed(path: str, reason: str) -> ScanResult:
    from genretag.scan import ScanResult

    return ScanResult(Path(path), "failed", error=reason)


def _listing(paths, *, is_uri, list_uri) -> tuple[list[str], list[tuple[str, str]]]:
    """Local paths through :func:`genretag.discover.discover`, URIs through pyarrow."""
    from genretag.discover import discover

    local = [p for p in paths if not is_uri(p)]
    found = discover(local) if local else None
    files = [str(f) for f in found.files] if found else []
    problems = [(str(p), r) for p, r in found.problems] if found else []
    for uri in (str(p) for p in paths if is_uri(p)):
        more, trouble = list_uri(uri)
        files += more
        problems += trouble
    return list(dict.fromkeys(files)), problems


def _remove(outputs: Outputs) -> None:
    import shutil

    for path in (outputs.json, outputs.csv):
        if path is not None:
            Path(path).unlink(missing_ok=True)
    if outputs.parquet is not None and Path(outputs.parquet).is_dir():
        for part in Path(outputs.parquet).glob("part-*.parquet"):
            part.unlink()
        shutil.rmtree(outputs.parquet, ignore_errors=True) if not any(Path(outputs.parquet).iterdir()) else None


class _Cluster:
    """Ray for one scan: connect to ``address`` (or start a local Ray); shut down only what was started here."""

    def __init__(self, address: str | None) -> None:
        self.requested = address

    def __enter__(self) -> _Cluster:
        import ray

        self.owned = not ray.is_initialized()
        if self.owned:
            try:
                ray.init(address=self.requested, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise GenretagError(f"cannot connect to Ray at {self.requested or 'a new local instance'}: "
                                    f"{exc}") from exc
        resources = ray.cluster_resources()
        self.gpus, self.cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 1))
        self.address = ray.get_runtime_context().gcs_address
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        if self.owned:
            ray.shutdown()
