#!/usr/bin/env python3
"""Benchmark genretag's scan pipeline on any folder, stage by stage, in one run.

    python benchmarks/bench_scan.py FOLDER [--model NAME|DIR] [--windows 8] [--batch-size 64]
        [--jobs N] [--limit N] [--json out.json] [--copy-tags | --no-copy-tags]

Stages: listing; Keras import; model load; three floors (decode only and
decode+features through the same process pool as the scan, the model alone on
random input); the full dry-run scan end to end; tag writing on temporary
copies. Each stage records its wall seconds and the peak RSS of this process
and of this process plus all its workers. Nothing in FOLDER is ever written.
Results: a table on stdout and, with --json, the whole report; progress on stderr.
See benchmarks/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if (REPO / "genretag" / "__init__.py").is_file() and str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # measure the checkout this script lives in (spawned workers inherit sys.path)

from genretag.config import DEFAULT_MODEL, FeatureConfig, ScanOptions, WindowPolicy, default_jobs  # noqa: E402
from genretag.discover import discover  # noqa: E402
from genretag.errors import GenretagError, ModelError  # noqa: E402
from genretag.scan.pool import run_pool  # noqa: E402
import genretag  # noqa: E402
from genretag.scan import decode_stage  # noqa: E402

T = TypeVar("T")
MIB = 1024 * 1024
TAG_SAMPLE = 50
"""Files copied for the tag-writing stage, spread evenly over the benchmarked files."""
AUTO_TAG_BYTES = 512 * MIB
"""Without --copy-tags/--no-copy-tags, tags are written only when those copies total at most this."""
SAMPLE_SECONDS = 0.05
"""Interval of the memory sampler."""
SCHEMA = 1
"""Version of the JSON report's layout."""


# --- memory: RSS of this process and all its descendants, from /proc ------------------------------------------


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (``VmRSS``); 0 when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children_files(pid: int) -> list[int]:
    """Direct children from ``/proc/<pid>/task/*/children`` (kernels with CONFIG_PROC_CHILDREN)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids += [int(k) for k in task.read_text().split()]
        except (OSError, ValueError):
            pass
    return kids


def _children_by_ppid() -> dict[int, list[int]]:
    """ppid -> children, from every ``/proc/<pid>/stat`` (when the children files are missing)."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name in (...) may hold spaces
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (root first)."""
    if Path(f"/proc/{root}/task/{root}/children").exists():
        children: Callable[[int], list[int]] = _children_files
    else:
        by_ppid = _children_by_ppid()
        children = lambda pid: by_ppid.get(pid, [])  # noqa: E731
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children(pid))
    return found


class TreeMemory:
    """Samples, every ``interval`` s in a background thread, the RSS of this
    process and the summed RSS of this process and all its descendants; keeps the peaks.

    The sum counts pages shared between processes once per process, so it is an
    upper bound on what the tree really holds.
    """

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self.interval = interval
        self.main_peak = self.tree_peak = self.processes = 0  # KiB, KiB, count
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> "TreeMemory":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        pids = process_tree(os.getpid())
        sizes = [rss_kib(pid) for pid in pids]
        self.main_peak = max(self.main_peak, sizes[0])
        self.tree_peak = max(self.tree_peak, sum(sizes))
        self.processes = max(self.processes, sum(1 for s in sizes if s))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def summary(self) -> dict[str, float]:
        return {"main_peak_rss_mib": self.main_peak / 1024, "tree_peak_rss_mib": self.tree_peak / 1024,
                "processes": self.processes}


def ru_maxrss_mib() -> float:
    """This process's lifetime peak RSS from getrusage (Linux reports KiB).

    (RUSAGE_CHILDREN is no use for the workers: a spawned child inherits its
    parent's high-water mark from before its exec.)
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the machine --------------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _meminfo_gib(key: str) -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_cpus() -> float | None:
    """CPUs the cgroup (v2) quota allows; None without a quota."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _version(*distributions: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    for name in distributions:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def _gpus(backend: str) -> list[str]:
    """Accelerators the Keras backend sees (names), or []."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return [tf.config.experimental.get_device_details(d).get("device_name", d.name)
                    for d in tf.config.list_physical_devices("GPU")]
        if backend == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform != "cpu"]
        if backend == "torch":
            import torch

            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - a description must not stop the benchmark
        pass
    return []


def describe_machine(keras: Any) -> dict[str, Any]:
    backend = keras.backend.backend()
    return {
        "cpu": _cpu_model(), "cores_available": default_jobs(), "cores_online": os.cpu_count(),
        "cgroup_cpu_quota": _cgroup_cpus(), "ram_gib": _meminfo_gib("MemTotal"),
        "ram_available_gib": _meminfo_gib("MemAvailable"), "gpus": _gpus(backend), "backend": backend,
        "python": platform.python_version(), "keras": keras.__version__,
        "tensorflow": _version("tensorflow", "tensorflow-cpu"), "numpy": np.__version__,
        "librosa": _version("librosa"), "os": platform.platform(),
    }


# --- stages ---------------------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def per_second(count: float, seconds: float) -> float | None:
    return count / seconds if seconds > 0 else None


def spread(items: Sequence[T], n: int) -> list[T]:
    """Up to ``n`` items evenly spaced over ``items`` (deterministic; all when fewer)."""
    if len(items) <= n:
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def drain(results: Iterable[T], keep: Callable[[T], Any]) -> tuple[list[Any], float]:
    """Consume ``results``; return ``keep(r)`` for each and the seconds to the first one."""
    start, first, kept = time.perf_counter(), None, []
    for result in results:
        if first is None:
            first = time.perf_counter() - start
        kept.append(keep(result))
    return kept, first or 0.0


def run_stage(stages: dict[str, dict], name: str, fn: Callable[..., tuple[Any, dict]], *args: Any, **kwargs: Any) -> Any:
    """Run one stage under the memory sampler; store ``stages[name]``; return the stage's value.

    ``fn`` returns ``(value, metrics)``. ``wall_s`` is the whole call unless the
    metrics set their own; ``tracks``/``windows`` counts get a per-second rate.
    """
    log(name)
    with TreeMemory() as memory:
        start = time.perf_counter()
        value, metrics = fn(*args, **kwargs)
        wall = time.perf_counter() - start
    stage = {"wall_s": wall, **metrics, **memory.summary()}
    for unit in ("tracks", "windows"):
        if unit in stage:
            stage[f"{unit}_per_s"] = per_second(stage[unit], stage["wall_s"])
    stages[name] = stage
    return value


def list_files(folder: Path, *, limit: int | None) -> tuple[list[Path], dict]:
    found = discover([folder])
    for path, reason in found.problems:
        print(f"error: {reason} ({path})", file=sys.stderr)
    if not found.files:
        raise GenretagError("no audio files found", folder)
    files = spread(found.files, limit) if limit else list(found.files)
    return files, {"files": len(found.files), "problems": len(found.problems)}


def decode_only(path: Path, *, config: FeatureConfig, policy: WindowPolicy) -> int:
    """What a scan worker decodes for ``path`` (same windows, same resampling), without tags or features.

    Returns the number of samples decoded: a small result, so sending it back costs nothing.
    """
    from genretag.audio import load_segments, probe
    from genretag.features import window_starts

    info = probe(path)
    starts = window_starts(info.duration, config=config, policy=policy)
    segments = load_segments(path, starts, seconds=config.window_seconds, sample_rate=config.sample_rate, info=info)
    return int(segments.size)


def decode_whole(path: Path, *, sample_rate: int) -> int:
    """The issue's decode floor for ``path``: the whole file decoded to mono at ``sample_rate`` (soundfile +
    soxr, or ffmpeg for what soundfile can't read), as a tagger that reads every sample would."""
    from genretag.audio import load_audio

    return int(load_audio(path, sample_rate=sample_rate).size)


def whole_decode_floor(files: Sequence[Path], *, sample_rate: int, options: ScanOptions) -> tuple[None, dict]:
    """Floor (a'): every file decoded whole through the scan's pool (more than a scan decodes: it seeks to its windows)."""
    outcomes = run_pool(decode_whole, files, jobs=options.jobs, timeout=options.timeout,
                        max_pending=4 * max(options.jobs, 1) + 8, kwargs={"sample_rate": sample_rate})
    ok, first = drain(outcomes, lambda outcome: outcome.ok)
    return None, {"tracks": len(ok), "failed": ok.count(False), "first_result_s": first}


def decode_floor(files: Sequence[Path], *, config: FeatureConfig, options: ScanOptions) -> tuple[None, dict]:
    """Floor (a): decode+resample every file's windows through the scan's pool, no features."""
    kwargs = {"config": config, "policy": WindowPolicy(windows=options.windows)}
    outcomes = run_pool(decode_only, files, jobs=options.jobs, timeout=options.timeout,
                        max_pending=4 * max(options.jobs, 1) + 8, kwargs=kwargs)  # decode_stage's queue
    ok, first = drain(outcomes, lambda outcome: outcome.ok)
    return None, {"tracks": len(ok), "failed": ok.count(False), "first_result_s": first}


def features_floor(files: Sequence[Path], *, bundle: Any, options: ScanOptions) -> tuple[None, dict]:
    """Floor (b): extract_track through the pool (exactly what scan's workers do), no model."""
    rows, first = drain(decode_stage(files, bundle=bundle, options=options),
                        lambda t: (t.status, 0 if t.windows is None else len(t.windows), t.duration))
    return None, {"tracks": len(rows), "windows": sum(n for _, n, _ in rows), "audio_s": sum(d for *_, d in rows),
                  "failed": sum(s == "error" for s, _, _ in rows), "statuses": dict(Counter(s for s, _, _ in rows)),
                  "first_result_s": first}


def model_alone(classifier: Any, *, windows: int, shape: tuple[int, int], batch_size: int) -> tuple[None, dict]:
    """Floor (c): ``classifier.predict`` on random windows, ``batch_size`` at a time, after one warm-up batch.

    ``wall_s`` covers the timed batches only; the warm-up (the first call
    traces the model) is ``warmup_s``.
    """
    if windows == 0:
        return None, {"wall_s": 0.0, "windows": 0, "warmup_s": 0.0, "note": "no windows to predict"}
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((batch_size, *shape), dtype=np.float32)
               for _ in range(min(4, -(-windows // batch_size)))]  # features are normalised to ~N(0, 1)
    start = time.perf_counter()
    classifier.predict(batches[0])
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    for i, first in enumerate(range(0, windows, batch_size)):
        classifier.predict(batches[i % len(batches)][: windows - first])
    return None, {"wall_s": time.perf_counter() - start, "warmup_s": warmup, "windows": windows,
                  "batch_size": batch_size}


def full_scan(files: Sequence[Path], *, model: Any, options: ScanOptions) -> tuple[None, dict]:
    """The library's ``genretag.tag`` (what ``genretag scan`` runs) in dry-run mode: pool start-up, decode,
    features, inference, decisions."""
    results = genretag.tag(files, model=model, options=options)
    rows, first = drain(results, lambda r: (r.status, r.prediction.windows if r.prediction else 0))
    return None, {"tracks": len(rows), "windows": sum(n for _, n in rows), "first_result_s": first,
                  "failed": sum(s == "failed" for s, _ in rows), "statuses": dict(Counter(s for s, _ in rows))}


def tag_write(files: Sequence[Path], *, bundle: Any) -> tuple[None, dict]:
    """write_genre on temporary copies of up to TAG_SAMPLE files; ``wall_s`` sums the writes (not the copying)."""
    from genretag.tags import write_genre

    times, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="genretag-bench-") as tmp:
        copies = [Path(shutil.copyfile(src, Path(tmp) / f"{i:03d}{src.suffix}")) for i, src in enumerate(spread(files, TAG_SAMPLE))]
        for copy in copies:
            start = time.perf_counter()
            try:
                write_genre(copy, [bundle.card.labels[0]], provenance=bundle.card.model_id)
            except GenretagError:
                failed += 1
                continue
            times.append(time.perf_counter() - start)
    return None, {"wall_s": sum(times), "tracks": len(times), "failed": failed, "temp_dir": tempfile.gettempdir(),
                  "per_file_ms": 1000 * statistics.fmean(times) if times else None,
                  "per_file_ms_median": 1000 * statistics.median(times) if times else None}


def tag_stage_choice(choice: bool | None, files: Sequence[Path]) -> tuple[bool, str]:
    """Whether to run the tag stage: as asked, else only when the copies are small and fit."""
    if choice is not None:
        return choice, "--copy-tags" if choice else "--no-copy-tags"
    size = sum(p.stat().st_size for p in spread(files, TAG_SAMPLE))
    fits = size <= AUTO_TAG_BYTES and 2 * size <= shutil.disk_usage(tempfile.gettempdir()).free
    reason = f"auto: the copies total {size / MIB:.0f} MiB"
    return fits, reason if fits else f"{reason} (over {AUTO_TAG_BYTES // MIB} MiB or short of space); pass --copy-tags"


def scan_ratios(stages: dict[str, dict]) -> dict[str, float | None]:
    """Scan time over (floor b + floor c) and over max(floor b, floor c)."""
    scan, b, c = stages["scan"]["wall_s"], stages["features_floor"]["wall_s"], stages["model_alone"]["wall_s"]
    return {"ratio_to_sum": scan / (b + c) if b + c > 0 else None, "ratio_to_max": scan / max(b, c) if max(b, c) > 0 else None}


# --- the run --------------------------------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from genretag.models.registry import resolve_model
    from genretag.models.runtime import import_keras

    started, load_start = time.time(), os.getloadavg()[0]
    bundle = resolve_model(args.model)
    options = ScanOptions(windows=args.windows, batch_size=args.batch_size, jobs=args.jobs,
                          dry_run=True, force=True)  # force: files this model already tagged are not skipped
    stages: dict[str, dict] = {}
    files = run_stage(stages, "listing", list_files, args.folder, limit=args.limit)
    keras = run_stage(stages, "keras_import", lambda: (import_keras(), {}))
    model = run_stage(stages, "model_load", lambda: (genretag.load_model(bundle.path, batch_size=args.batch_size), {}))
    classifier = model.classifier
    config = bundle.card.features
    run_stage(stages, "decode_floor", decode_floor, files, config=config, options=options)
    run_stage(stages, "features_floor", features_floor, files, bundle=bundle, options=options)
    run_stage(stages, "model_alone", model_alone, classifier, windows=stages["features_floor"]["windows"],
              shape=(config.n_mels, config.n_frames), batch_size=args.batch_size)
    run_stage(stages, "scan", full_scan, files, model=model, options=options)
    stages["scan"].update(scan_ratios(stages))
    memory = memory_summary(stages["scan"])
    enabled, why = tag_stage_choice(args.copy_tags, files)
    if enabled:
        run_stage(stages, "tag_write", tag_write, files, bundle=bundle)
        stages["tag_write"]["why"] = why
    else:
        stages["tag_write"] = {"skipped": why}
    machine = describe_machine(keras) | {"load_avg_1m_start": load_start, "load_avg_1m_end": os.getloadavg()[0]}
    return {"benchmark": "bench_scan", "schema": SCHEMA, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()} | {"jobs": options.jobs},
            "machine": machine, "model": describe_model(bundle, args.batch_size), "files": describe_files(files, stages),
            "stages": stages, "memory": memory, "total_wall_s": time.time() - started}


def describe_files(files: Sequence[Path], stages: dict[str, dict]) -> dict[str, Any]:
    return {"listed": stages["listing"]["files"], "benchmarked": len(files),
            "bytes": sum(p.stat().st_size for p in files), "audio_s": stages["features_floor"]["audio_s"],
            "formats": dict(Counter(p.suffix.lower() for p in files))}


def memory_summary(scan: dict[str, Any]) -> dict[str, float]:
    """Peak memory of the scan (sampled) and of the process so far (getrusage)."""
    return {"main_peak_rss_mib": ru_maxrss_mib(), "scan_main_peak_rss_mib": scan["main_peak_rss_mib"],
            "scan_tree_peak_rss_mib": scan["tree_peak_rss_mib"], "scan_processes": scan["processes"]}


def describe_model(bundle: Any, batch_size: int) -> dict[str, Any]:
    card = bundle.card
    return {"id": card.model_id, "kind": card.kind, "architecture": card.architecture, "params": card.params,
            "classes": len(card.labels), "input": [card.features.n_mels, card.features.n_frames],
            "batch_size": batch_size, "path": str(bundle.path)}


# --- output ---------------------------------------------------------------------------------------------------------

STAGE_LABELS = {
    "listing": "listing (discover)",
    "keras_import": "Keras import",
    "model_load": "model load (genretag.load_model)",
    "decode_floor": "floor a: decode+resample, pool",
    "features_floor": "floor b: decode+features, pool",
    "model_alone": "floor c: model alone, random input",
    "scan": "full scan, dry run, end to end",
    "tag_write": "tag writing, temp copies",
}


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def _note(name: str, stage: dict[str, Any]) -> str:
    if "skipped" in stage:
        return f"skipped ({stage['skipped']})"
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(stage.get("statuses", {}).items()))
    notes = {
        "listing": f"{stage.get('files')} files listed",
        "decode_floor": f"first result {_num(stage.get('first_result_s'))} s; {stage.get('failed')} failed",
        "features_floor": f"first result {_num(stage.get('first_result_s'))} s; {statuses}",
        "model_alone": f"warm-up batch {_num(stage.get('warmup_s'))} s; batches of {stage.get('batch_size')}",
        "scan": f"first result {_num(stage.get('first_result_s'))} s; {statuses}",
        "tag_write": f"{_num(stage.get('per_file_ms'), '.1f')} ms/file (median {_num(stage.get('per_file_ms_median'), '.1f')}); "
                     f"{stage.get('failed')} failed",
    }
    return notes.get(name, "")


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)  # a pipe gets the full table
    machine = Table("machine", "", title="genretag scan benchmark", title_justify="left", show_header=False)
    for key, value in report["machine"].items():
        machine.add_row(key, escape(_num(value) if isinstance(value, float) else str(value)))
    model = report["model"]
    machine.add_row("model", escape(f"{model['id']} ({model['architecture']}, {model['params']:,} params)"))
    files = report["files"]
    machine.add_row("files", f"{files['benchmarked']} of {files['listed']} ({files['bytes'] / MIB:.0f} MiB, "
                             f"{files['audio_s'] / 60:.1f} min of audio; jobs {report['args']['jobs']}, "
                             f"windows {report['args']['windows']}, batch {report['args']['batch_size']})")
    console.print(machine)
    console.print(stage_table(report["stages"]))
    for line in summary_lines(report):
        console.print(line)


def stage_table(stages: dict[str, dict]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table("stage", "wall s", "tracks/s", "windows/s", "RSS MiB main", "RSS MiB tree", "notes")
    for name, label in STAGE_LABELS.items():
        stage = stages.get(name, {})
        table.add_row(label, _num(stage.get("wall_s")), _num(stage.get("tracks_per_s"), ".1f"),
                      _num(stage.get("windows_per_s"), ".1f"), _num(stage.get("main_peak_rss_mib"), ".0f"),
                      _num(stage.get("tree_peak_rss_mib"), ".0f"), escape(_note(name, stage)))
    return table


def summary_lines(report: dict[str, Any]) -> list[str]:
    scan, memory = report["stages"]["scan"], report["memory"]
    return [
        f"scan / (floor b + floor c) = {_num(scan['ratio_to_sum'])}    "
        f"scan / max(floor b, floor c) = {_num(scan['ratio_to_max'])}",
        f"peak RSS: main process {memory['main_peak_rss_mib']:.0f} MiB (getrusage, up to the end of the scan); "
        f"during the scan: main {memory['scan_main_peak_rss_mib']:.0f} MiB, main + workers "
        f"{memory['scan_tree_peak_rss_mib']:.0f} MiB ({memory['scan_processes']} processes)",
        f"load average (1 min) {report['machine']['load_avg_1m_start']:.2f} at start, "
        f"{report['machine']['load_avg_1m_end']:.2f} at end; total {report['total_wall_s']:.1f} s",
    ]


# --- command line ---------------------------------------------------------------------------------------------------


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    d = ScanOptions()
    parser = argparse.ArgumentParser(prog="bench_scan.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="Folder (or audio file) to benchmark; nothing in it is written.")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Bundled model name or bundle folder (default: %(default)s).")
    parser.add_argument("--windows", type=_count(1), default=d.windows, help="3-s windows per track (default: %(default)s).")
    parser.add_argument("--batch-size", type=_count(1), default=d.batch_size, help="Windows per model batch (default: %(default)s).")
    parser.add_argument("--jobs", type=_count(0), default=d.jobs,
                        help="Decode worker processes (default: cores available, %(default)s; 0 decodes inline).")
    parser.add_argument("--limit", type=_count(1), default=None, help="Benchmark N files spread evenly over the listing.")
    parser.add_argument("--json", type=Path, default=None, help="Write the whole report to this JSON file.")
    parser.add_argument("--copy-tags", action=argparse.BooleanOptionalAction, default=None,
                        help=f"Time write_genre on temporary copies of up to {TAG_SAMPLE} files (default: only when "
                             f"the copies total at most {AUTO_TAG_BYTES // MIB} MiB).")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = benchmark(args)
    except GenretagError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        if isinstance(exc, ModelError):
            print("hint: pass --model DIR (a bundle folder that 'genretag train' wrote)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    render(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
