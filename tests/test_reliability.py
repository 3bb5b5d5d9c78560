"""Reliability: what genretag does with bad input, crashing and hanging decoders,
``kill -9`` and Ctrl-C mid-write, files that vanish or can't be written, full
disks, untrusted model files and fuzzed bytes.

The invariant throughout: every file either gets its prediction or exactly one
``error: <reason> (<path>)`` line, and a file is either byte-identical to what
it was or fully tagged with its audio unchanged. Real subprocess scans use a
k-NN bundle: a classic bundle loads without TensorFlow, so each scan process
starts in a couple of seconds.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TIT2
from typer.testing import CliRunner

import faults
import synth
from genretag.cli import app
from genretag.config import FeatureConfig, WindowPolicy
from genretag.errors import ModelError, TagError
from genretag.scan.extract import TrackFeatures, extract_track
from genretag.models.bundle import read_bundle, sha256_file
from genretag.models.runtime import load_classifier
from genretag.scan.pool import run_pool
from genretag.scan import REPORT_COLUMNS, STATUSES
from genretag.tags import TMP_SUFFIX, read_tags, remove_stale_copies, write_genre

REPO = Path(__file__).resolve().parents[1]
MODEL_ID = "rel 1"
ERROR_LINE = re.compile(r"^error: (?P<reason>.+?) \((?P<path>/.*)\)$")
"""``error: <reason> (<absolute path>)``; a reason may hold parentheses, and so may a path."""

pytestmark = pytest.mark.slow


# --- fixtures and helpers ----------------------------------------------------------------------


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, NO_COLOR="1", COLUMNS="200", TF_CPP_MIN_LOG_LEVEL="3")


def _genretag(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genretag", *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=timeout, stdin=subprocess.DEVNULL)


def _start(*args: object, log: Path, setup: str = "") -> subprocess.Popen:
    """``python -m genretag ARGS`` in its own process group (it and its decode workers get
    the signal, as from a terminal). ``setup``: Python run first, with :mod:`faults` imported
    (e.g. ``faults.hold(...)``: stop at a known point)."""
    if setup:
        code = f"import sys, faults; {setup}; from genretag.cli import main; sys.argv[0] = 'genretag'; main()"
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, "-m", "genretag"]
    env = _env()
    env["PYTHONPATH"] += os.pathsep + str(Path(__file__).parent)
    with open(log, "w") as fh:
        return subprocess.Popen([*command, *map(str, args)], stdout=fh, stderr=fh, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True, preexec_fn=faults.default_sigint)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:  # already finished
        pass


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(TMP_SUFFIX))


def _temp_copies(root: Path) -> list[Path]:
    return sorted(root.rglob(f"*{TMP_SUFFIX}"))


def _decoded(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32", always_2d=True)[0]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a scan CSV; every row must be complete (no missing or extra fields)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == REPORT_COLUMNS
        rows = list(reader)
    for row in rows:
        assert None not in row and None not in row.values(), f"incomplete row {row}"
        assert row["status"] in STATUSES
    return rows


def _assert_tagged(path: Path, original_audio: np.ndarray | None = None) -> None:
    state = read_tags(path)
    assert state.provenance == MODEL_ID and state.genres, (path, state)
    if original_audio is not None:
        assert np.array_equal(_decoded(path), original_audio), f"audio changed: {path}"


def _error_lines(stderr: str) -> dict[Path, list[str]]:
    """``error:`` lines by the path they name; any other non-blank stderr line fails the test."""
    by_path: dict[Path, list[str]] = {}
    for line in stderr.splitlines():
        if not line.strip():
            continue
        match = ERROR_LINE.match(line)
        assert match, f"stray stderr line: {line!r}\n{stderr}"
        by_path.setdefault(Path(match["path"]), []).append(match["reason"])
    return by_path


# --- 1. bad input ------------------------------------------------------------------------------------

ALLOWED_REASONS = ("decode failed", "not an audio file", "too short", "unreadable tags", "empty file",
                   "permission denied", "cannot write tags")


def _bad_library(root: Path) -> dict[Path, str]:
    """Every awkward input, named awkwardly; maps each file to what must happen to it:
    ``tagged``, ``silent``, or ``error:<reason prefix>``."""
    src = root.parent / "sources"
    src.mkdir()
    good_mp3 = synth.write_audio(src / "good.mp3", synth.tone_mix("Low", seconds=6.0, seed=1))
    good_flac = synth.write_audio(src / "good.flac", synth.tone_mix("High", seconds=6.0, seed=2))
    good_wav = synth.write_audio(src / "good.wav", synth.tone_mix("Mid", seconds=6.0, seed=3))
    good_aiff = synth.write_audio(src / "good.aiff", synth.tone_mix("Low", seconds=6.0, seed=4))
    unreadable_back = "error:cannot write tags: they do not read back"  # the audio chunk runs past the end
    d = root / "Bad [disc 1]" / "«Ünïcödé» 'quoted' \"double\""
    d.mkdir(parents=True)
    plan = {
        faults.zero_bytes(d / "00 empty [0 bytes].mp3"): "error:empty file (0 bytes)",
        faults.truncated(good_mp3, d / "01 truncated 30%.mp3"): "tagged",  # mpg123 decodes what is there
        faults.truncated(good_flac, d / "02 truncated 30%.flac"): "error:decode failed",
        faults.truncated(good_wav, d / "02 truncated 30%.wav"): unreadable_back,
        faults.truncated(good_aiff, d / "02 truncated 30%.aiff"): unreadable_back,
        faults.random_bytes(d / "03 random [bold]bytes[dim].flac"): "error:not an audio file",
        faults.text_file(d / "04 liner notes.mp3"): "error:not an audio file",
        faults.text_file(d / "05 liner notes.m4a"): "error:not an audio file",
        faults.riff_header_only(d / "06 header only.wav"): "error:not an audio file",
        faults.clip(d / "07 0.3 s.wav", seconds=0.3): "error:too short (0.30 s; needs at least 0.5 s)",
        faults.clip(d / "08 0.6 s.wav", seconds=0.6, seed=8): "tagged",
        faults.clip(d / "09 0.9 s.mp3", seconds=0.9, seed=9): "tagged",
        faults.silence(d / "10 silence.flac"): "silent",
        faults.wav(d / "11 8 kHz.wav", rate=8_000): "tagged",
        faults.wav(d / "12 192 kHz.wav", rate=192_000): "tagged",
        faults.wav(d / "13 stereo.wav", channels=2): "tagged",
        faults.wav(d / "14 5.1 (six channels).wav", channels=6): "tagged",
        faults.wav(d / "15 24-bit.wav", subtype="PCM_24"): "tagged",
        faults.wav(d / "16 float32.wav", subtype="FLOAT"): "tagged",
        faults.mp3_with_broken_id3(d / "17 broken ID3 frame.mp3"): "error:unreadable tags: damaged ID3v2 tag",
        faults.flac_with_huge_picture(d / "18 8 MB cover.flac"): "tagged",
        synth.write_audio(root / "Good & [Live] 'one' ☃.ogg", synth.tone_mix("Mid", seconds=5.0, seed=3)): "tagged",
        synth.write_audio(root / "Good \"two\"  日本語.mp3", synth.tone_mix("Low", seconds=5.0, seed=4)): "tagged",
    }
    return plan


def test_bad_inputs_each_get_a_prediction_or_one_error_line(knn_bundle, tmp_path):
    """One real scan writing tags over every kind of bad input, through the process pool."""
    root = tmp_path / "Music"
    plan = _bad_library(root)
    before = {p: p.read_bytes() for p in plan}
    audio = {p: _decoded(p) for p, want in plan.items() if want == "tagged"}
    pictures = {p: [pic.data for pic in FLAC(p).pictures] for p in plan if p.suffix == ".flac" and plan[p] == "tagged"}
    report = tmp_path / "report.csv"

    result = _genretag("scan", root, "--model", knn_bundle, "--jobs", "2", "--csv", report, "-q")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    errors = _error_lines(result.stderr)
    statuses = {Path(r["path"]): r for r in _csv_rows(report)}
    assert set(statuses) == set(plan)
    for path, want in plan.items():
        row = statuses[path]
        if want.startswith("error:"):
            assert row["status"] == "failed", (path, row)
            assert len(errors.get(path, [])) == 1, (path, errors.get(path))
            reason = errors[path][0]
            assert reason.startswith(want.removeprefix("error:")), (path, reason)
            assert reason.startswith(ALLOWED_REASONS) and row["error"] == reason
            assert path.read_bytes() == before[path], f"a file that could not be read was modified: {path}"
        else:
            assert row["status"] == want and path not in errors, (path, row, errors.get(path))
        if want == "tagged":
            _assert_tagged(path, audio[path])
            assert row["genre"] in ("Low", "Mid", "High")
        else:
            assert path.read_bytes() == before[path], path
    assert not set(errors) - set(plan)
    for path, datas in pictures.items():  # the 8 MB cover survived the rewrite
        assert [pic.data for pic in FLAC(path).pictures] == datas
    assert not _temp_copies(root)
    summary = result.stdout.strip().splitlines()[0]
    n_tagged = sum(w == "tagged" for w in plan.values())
    n_failed = sum(w.startswith("error:") for w in plan.values())
    assert f"{n_tagged} tagged" in summary and f"{n_failed} failed" in summary and "1 silent" in summary


def test_silent_file_gets_no_genre(runner, knn_bundle, tmp_path):
    path = faults.silence(tmp_path / "quiet.flac")
    content = path.read_bytes()
    report = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["scan", str(path), "--model", str(knn_bundle), "--jobs", "0", "--json", str(report)])
    assert result.exit_code == 0, result.output
    row = json.loads(report.read_text())
    assert row["status"] == "silent" and row["genres"] == [] and row["genre"] == "" and row["error"] == ""
    assert path.read_bytes() == content


def test_unreadable_file_is_permission_denied(runner, knn_bundle, tmp_path, monkeypatch):
    """Root reads any file whatever its mode, so an EACCES from open() stands in for one it may not read."""
    import builtins

    good = synth.write_audio(tmp_path / "good.wav", synth.tone_mix("Mid", seconds=4.0, seed=5))
    locked = synth.write_audio(tmp_path / "locked [mine].flac", synth.tone_mix("Low", seconds=4.0, seed=6))
    content = locked.read_bytes()
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, Path)) and Path(file) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    result = runner.invoke(app, ["scan", str(tmp_path), "--model", str(knn_bundle), "--jobs", "0"])
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    assert _error_lines(result.stderr) == {locked: ["permission denied"]}
    assert locked.read_bytes() == content
    _assert_tagged(good)


# --- 2. crash-tolerant pool --------------------------------------------------------------------------


def test_pool_survives_a_segfault_and_a_hang():
    """One worker: it segfaults on one item and hangs on another; each costs only its item."""
    items = ["a", "crash", "b", "c", "hang", "d", "raise", "e"]
    started = time.monotonic()
    outcomes = list(run_pool(faults.misbehaving_worker, items, jobs=1, timeout=3, max_pending=3,
                             kwargs={"factor": 3}))
    elapsed = time.monotonic() - started
    by_item = {o.item: o for o in outcomes}
    assert len(outcomes) == len(items) and set(by_item) == set(items)
    for item in "abcde":
        assert by_item[item].value == item * 3
    assert by_item["crash"].error.startswith("decoder crashed"), by_item["crash"]
    assert "-11" in by_item["crash"].error  # SIGSEGV
    assert by_item["hang"].error == "timed out after 3 s (worker stopped)"
    assert by_item["raise"].error == "ValueError: bad item"
    assert elapsed < 60


def test_pool_workers_import_test_modules():
    """Spawned workers see the parent's sys.path, so a worker function in tests/ imports."""
    pids = {o.value for o in run_pool(faults.worker_pid, ["x", "y"], jobs=1)}
    assert len(pids) == 1 and os.getpid() not in pids


# --- 3. kill -9 mid-write ----------------------------------------------------------------------------

KILL_CONTAINERS = ("mp3", "flac", "ogg", "wav", "aiff", "opus")


@pytest.fixture(scope="module")
def twelve_files(tmp_path_factory) -> Path:
    """Two 5-s clips per container genretag decodes with libsndfile (so the audio compares exactly)."""
    root = tmp_path_factory.mktemp("twelve") / "Twelve"
    for i in range(12):
        ext = KILL_CONTAINERS[i % len(KILL_CONTAINERS)]
        synth.write_audio(root / f"{i:02d} [take {i}] «x».{ext}", synth.tone_mix("Mid", seconds=5.0, seed=700 + i))
    return root


# Where a write can be cut short, in the order write_genre passes them: after the hidden copy is made, after
# its tags are written, after its audio is checked against the original, after it is synced, after it has
# replaced the file (before the folder is synced and the store records it). At each, on the third file.
KILL_POINTS = ("copy_file", "_write_tags", "check_audio", "_sync", "_replace")


def _start_held(*args: object, log: Path, point: str, call: int, flag: Path) -> subprocess.Popen:
    """``genretag ARGS`` that stops for good after the ``call``-th ``genretag.tags.write.<point>``."""
    setup = f"faults.hold('genretag.tags.write:{point}', call={call}, flag={str(flag)!r})"
    return _start(*args, log=log, setup=setup)


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_leaves_each_file_old_or_fully_tagged(knn_bundle, twelve_files, tmp_path, point):
    """SIGKILL ``genretag scan`` at each step of a write; every file must stay whole, and the next scan
    removes the hidden copy a kill before the replace leaves, and tags what is left."""
    lib = Path(shutil.copytree(twelve_files, tmp_path / "lib"))
    files = _files(lib)
    original = {p: p.read_bytes() for p in files}
    audio = {p: _decoded(p) for p in files}
    log, flag = tmp_path / "kill.log", tmp_path / "held"
    proc = _start_held("scan", lib, "--model", knn_bundle, "--jobs", "1", "-q", log=log, point=point, call=3,
                       flag=flag)
    assert faults.wait_for(flag, proc), log.read_text()
    _signal_group(proc, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, log.read_text()
    changed = [p for p in files if p.read_bytes() != original[p]]
    for path in changed:
        _assert_tagged(path, audio[path])
    # two files were written whole before the third stopped; the third is replaced only at the last point
    assert len(changed) == (3 if point == "_replace" else 2), changed
    # one hidden copy: the tagged copy, or after the replace the old file's hard link kept aside under a lease
    # (none where no lease could be taken)
    assert len(_temp_copies(lib)) == 1 or (point == "_replace" and not _temp_copies(lib))

    result = _genretag("scan", lib, "--model", knn_bundle, "--jobs", "1", "-q")
    assert result.returncode == 0, result.stderr
    for path in files:
        _assert_tagged(path, audio[path])
    assert not _temp_copies(lib)


def test_next_scan_removes_stale_copies_of_its_files(runner, knn_bundle, tmp_path):
    """What ``kill -9`` mid-write leaves (a hidden copy beside the file) goes with the next real scan."""
    a = synth.write_audio(tmp_path / "a [1].wav", synth.tone_mix("Low", seconds=4.0, seed=1))
    other = tmp_path / "not scanned.wav"
    stale = tmp_path / f".{a.name}.k3x_9qzp{TMP_SUFFIX}"
    shutil.copyfile(a, stale)
    kept = [tmp_path / f".{other.name}.abcdefgh{TMP_SUFFIX}",  # a copy of a file this scan doesn't visit
            tmp_path / f".{a.name}.notrandom-at-all{TMP_SUFFIX}"]  # not a name mkstemp makes
    for path in kept:
        path.write_bytes(b"x")

    result = runner.invoke(app, ["scan", str(a), "--model", str(knn_bundle), "--jobs", "0", "--dry-run"])
    assert result.exit_code == 0 and stale.exists()  # a dry run writes and deletes nothing
    result = runner.invoke(app, ["scan", str(a), "--model", str(knn_bundle), "--jobs", "0"])
    assert result.exit_code == 0, result.output
    assert not stale.exists() and all(p.exists() for p in kept)
    _assert_tagged(a)
    shutil.copyfile(a, stale)  # a skipped (already tagged) file is cleaned up too
    result = runner.invoke(app, ["scan", str(a), "--model", str(knn_bundle), "--jobs", "0"])
    assert result.exit_code == 0 and "1 skipped" in result.stdout and not stale.exists()
    assert remove_stale_copies([other]) == [kept[0]]


# --- 4. Ctrl-C and resume ----------------------------------------------------------------------------


def test_ctrl_c_exits_130_with_a_valid_report_and_a_rerun_finishes(knn_bundle, twelve_files, tmp_path):
    lib = tmp_path / "lib"
    for n in range(2):  # 24 files: a few seconds with one worker
        shutil.copytree(twelve_files, lib / f"copy {n}")
    files = _files(lib)
    original = {p: p.read_bytes() for p in files}
    report = tmp_path / "report.csv"
    args = ("scan", lib, "--model", knn_bundle, "--jobs", "1", "-q", "--csv", report)

    # Ctrl-C while the fourth file's hidden copy has its new tags but has not replaced the file
    flag = tmp_path / "held"
    proc = _start_held(*args, log=tmp_path / "first.log", point="_write_tags", call=4, flag=flag)
    assert faults.wait_for(flag, proc), (tmp_path / "first.log").read_text()
    assert len(_temp_copies(lib)) == 1
    _signal_group(proc, signal.SIGINT)  # Ctrl-C in a terminal: the whole process group
    assert proc.wait(timeout=60) == 130
    log = (tmp_path / "first.log").read_text()
    assert "interrupted" in log and "Traceback" not in log, log

    rows = _csv_rows(report)
    done = {Path(r["path"]) for r in rows if r["status"] == "tagged"}
    assert len(done) == 3 and {r["status"] for r in rows} == {"tagged"}, rows
    for path in files:
        if path in done:
            _assert_tagged(path)
        else:
            assert path.read_bytes() == original[path], path
    assert not _temp_copies(lib)  # the interrupted write removed its copy

    result = _genretag(*args)
    assert result.returncode == 0, result.stderr
    again = {Path(r["path"]): r["status"] for r in _csv_rows(report)}
    assert set(again) == set(files)
    assert all(again[p] == "skipped" for p in done)
    assert set(again.values()) <= {"skipped", "tagged"} and "tagged" in again.values()
    for path in files:
        _assert_tagged(path)
    assert not _temp_copies(lib)


def test_ctrl_c_while_the_model_still_loads_exits_at_once(knn_bundle, twelve_files, tmp_path):
    """The model loads in a background thread; Ctrl-C while that load is stuck (a Ctrl-C in the middle of an
    import once left it waiting for a module lock for ever) ends the run with 130, not a hang at exit."""
    lib = Path(shutil.copytree(twelve_files, tmp_path / "lib"))
    flag, log = tmp_path / "loading", tmp_path / "scan.log"
    proc = _start("scan", lib, "--model", knn_bundle, "--jobs", "1", "-q", log=log,
                  setup=f"faults.stall('genretag.models.runtime:_load_verified', flag={str(flag)!r})")
    assert faults.wait_for(flag, proc), log.read_text()
    _signal_group(proc, signal.SIGINT)
    assert proc.wait(timeout=30) == 130, log.read_text()
    assert "interrupted" in log.read_text() and not _temp_copies(lib)


# --- 5. read-only, vanishing, changing files and full disks -----------------------------------------


@pytest.fixture(scope="module")
def three_files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("three") / "Three"
    for i, ext in enumerate(("mp3", "flac", "wav")):
        synth.write_audio(root / f"{i} song [{ext}].{ext}", synth.tone_mix("High", seconds=4.0, seed=900 + i))
    return root


@pytest.fixture
def three(three_files, tmp_path) -> list[Path]:
    return _files(Path(shutil.copytree(three_files, tmp_path / "lib")))


def _scan_inline(runner: CliRunner, bundle: Path, *paths: Path):
    return runner.invoke(app, ["scan", *map(str, paths), "--model", str(bundle), "--jobs", "0"])


def test_read_only_file_is_refused_and_the_rest_tagged(runner, knn_bundle, three):
    locked = three[1]
    locked.chmod(0o444)
    content = locked.read_bytes()
    result = _scan_inline(runner, knn_bundle, locked.parent)
    assert result.exit_code == 1, result.output
    assert _error_lines(result.stderr) == {locked: ["file is read-only"]}
    assert locked.read_bytes() == content and (locked.stat().st_mode & 0o777) == 0o444
    for path in three:
        if path != locked:
            _assert_tagged(path)
    assert not _temp_copies(locked.parent)


def test_file_deleted_between_decode_and_write(runner, knn_bundle, three, monkeypatch):
    import genretag.scan.pipeline

    victim = three[0]
    real_extract = genretag.scan.pipeline.extract_track

    def extract_then_delete(path, **kwargs):
        features = real_extract(path, **kwargs)
        if Path(path) == victim:
            victim.unlink()
        return features

    monkeypatch.setattr(genretag.scan.pipeline, "extract_track", extract_then_delete)
    result = _scan_inline(runner, knn_bundle, victim.parent)
    assert result.exit_code == 1, result.output
    assert _error_lines(result.stderr) == {victim: ["file not found"]}
    assert not victim.exists() and not _temp_copies(victim.parent)
    for path in three[1:]:
        _assert_tagged(path)


def test_file_changed_while_tagging_is_left_to_the_other_writer(runner, knn_bundle, three, monkeypatch):
    import genretag.tags.write

    victim = three[2]
    real_write = genretag.tags.write._write_tags

    def write_while_someone_appends(tmp, shown, *args, **kwargs):
        if shown == victim:
            with open(victim, "ab") as fh:
                fh.write(b"\0" * 16)
        return real_write(tmp, shown, *args, **kwargs)

    monkeypatch.setattr(genretag.tags.write, "_write_tags", write_while_someone_appends)
    content = victim.read_bytes()
    result = _scan_inline(runner, knn_bundle, victim.parent)
    assert result.exit_code == 1, result.output
    assert _error_lines(result.stderr) == {victim: ["file changed while tagging"]}
    assert victim.read_bytes() == content + b"\0" * 16  # the other writer's bytes, untouched
    assert not _temp_copies(victim.parent)


@pytest.mark.parametrize("step", ["copy", "tags", "fsync"])
def test_disk_full_is_reported_per_file_and_originals_survive(runner, knn_bundle, three, monkeypatch, step):
    import genretag.tags.write

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def copy_half_then_full(src, dst, before):
        data = Path(src).read_bytes()
        Path(dst).write_bytes(data[: len(data) // 2])
        full()

    target = {"copy": ("copy_file", copy_half_then_full), "tags": ("_write_tags", full),
              "fsync": ("_sync", full)}[step]
    monkeypatch.setattr(genretag.tags.write, *target)
    before = {p: p.read_bytes() for p in three}
    result = _scan_inline(runner, knn_bundle, three[0].parent)
    assert result.exit_code == 1, result.output
    assert _error_lines(result.stderr) == {p: ["No space left on device"] for p in three}
    assert "Traceback" not in result.output and "3 failed" in result.stdout
    assert {p: p.read_bytes() for p in three} == before
    assert not _temp_copies(three[0].parent)


# --- 6. untrusted model files ---------------------------------------------------------------------


@pytest.fixture
def bundle_copy(knn_bundle, tmp_path) -> Path:
    return Path(shutil.copytree(knn_bundle, tmp_path / "bundle"))


@pytest.fixture
def decode_spy(monkeypatch) -> list[Path]:
    """Paths the scan decodes (the scan must run with ``--jobs 0``)."""
    import genretag.scan.pipeline

    seen: list[Path] = []
    real = genretag.scan.pipeline.extract_track

    def spy(path, **kwargs):
        seen.append(Path(path))
        return real(path, **kwargs)

    monkeypatch.setattr(genretag.scan.pipeline, "extract_track", spy)
    return seen


def _rewrite_card(bundle: Path, **changes) -> None:
    card = json.loads((bundle / "card.json").read_text())
    card.update(changes)
    (bundle / "card.json").write_text(json.dumps(card))


def _model_error(runner: CliRunner, bundle: Path, files: list[Path]) -> str:
    """Scan with a bad bundle: exit 1, one error line, no traceback, no file touched; the line."""
    before = {p: p.read_bytes() for p in files}
    result = _scan_inline(runner, bundle, files[0].parent)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, (SystemExit, type(None)))
    assert {p: p.read_bytes() for p in files} == before
    return lines[0]


def test_tampered_weights_refused_before_decoding(runner, bundle_copy, three, decode_spy):
    with open(bundle_copy / "model.npz", "ab") as fh:
        fh.write(b"\0")
    line = _model_error(runner, bundle_copy, three)
    assert "sha256" in line and "corrupt or was modified" in line and line.endswith(f"({bundle_copy / 'model.npz'})")
    assert decode_spy == []


@pytest.mark.parametrize("card, message", [
    (None, "not a model bundle: no card.json"),
    ("{ not json", "not a model bundle: unreadable card.json"),
    ('{"name": "x"}', "not a genretag model bundle"),
    ('["a list"]', "malformed card.json: not a JSON object"),
])
def test_folder_that_is_not_a_bundle(runner, tmp_path, three, decode_spy, card, message):
    folder = tmp_path / "not-a-bundle"
    folder.mkdir()
    (folder / "model.npz").write_bytes(b"PK\x03\x04junk")
    if card is not None:
        (folder / "card.json").write_text(card)
    assert _model_error(runner, folder, three).startswith(f"error: {message}")
    assert decode_spy == []


@pytest.mark.parametrize("weights", ["../model.npz", "/etc/passwd", "sub/model.npz"])
def test_weights_outside_the_bundle_refused(runner, bundle_copy, three, decode_spy, weights):
    shutil.copyfile(bundle_copy / "model.npz", bundle_copy.parent / "model.npz")  # a valid file out there
    _rewrite_card(bundle_copy, weights=weights)
    line = _model_error(runner, bundle_copy, three)
    assert "card.json names a weights file outside the bundle" in line
    assert decode_spy == []


class _Payload:
    """Unpickling this would create ``marker``: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _resign(bundle: Path) -> None:
    """Give the card the weights' real sha256, as whoever made a malicious bundle would."""
    _rewrite_card(bundle, sha256=sha256_file(bundle / "model.npz"))


def test_pickled_object_array_in_npz_refused(runner, bundle_copy, three, tmp_path):
    marker = tmp_path / "unpickled"
    with np.load(bundle_copy / "model.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["points"] = np.array([_Payload(marker)], dtype=object)
    np.savez(bundle_copy / "model.npz", **arrays)  # allow_pickle is on for saving
    _resign(bundle_copy)
    with pytest.raises(ModelError, match="allow_pickle=False"):
        load_classifier(read_bundle(bundle_copy))
    line = _model_error(runner, bundle_copy, three)
    assert line.startswith("error: cannot read classic model:") and "allow_pickle=False" in line
    assert not marker.exists()
    assert pickle.loads(pickle.dumps(_Payload(marker))) is None and marker.exists()  # the payload is live


@pytest.mark.parametrize("damage", ["truncated", "flipped", "missing array", "wrong classes", "not npz"])
def test_damaged_npz_with_a_matching_checksum_is_a_model_error(runner, bundle_copy, three, damage):
    weights = bundle_copy / "model.npz"
    data = weights.read_bytes()
    if damage == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        weights.write_bytes(data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:])
    elif damage in ("missing array", "wrong classes"):
        with np.load(weights) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if damage == "missing array":
            del arrays["points"]
        else:
            arrays["n_classes"] = np.array(7)
        np.savez(weights, **arrays)
    else:
        weights.write_bytes(pickle.dumps({"kind": "knn"}))
    _resign(bundle_copy)
    with pytest.raises(ModelError):
        load_classifier(read_bundle(bundle_copy))
    assert _model_error(runner, bundle_copy, three).startswith("error: cannot read classic model:")


# --- 7. fuzzing ----------------------------------------------------------------------------------------


FUZZ_CONTAINERS = ("wav", "aiff", "flac", "mp3", "ogg")


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    for i, ext in enumerate(FUZZ_CONTAINERS):
        path = synth.write_audio(root / f"seed.{ext}", synth.tone_mix("Mid", seconds=1.0, seed=40 + i))
        if ext == "mp3":  # give the ID3 parser something to chew on
            tags = ID3()
            tags.add(TIT2(encoding=3, text="fuzz"))
            tags.save(path)
    return root


_OPS = st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]),
                          st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=6)
_FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow])
"""Seconds of work: decoding dominates. Derandomized, so CI sees the same mutants every run."""
_FUZZ_TAGS = settings(_FUZZ, max_examples=300)
"""Tag reads and writes are cheap: more mutants."""


def _mutant(fuzz_dir: Path, ext: str, ops) -> tuple[Path, bytes]:
    data = faults.mutate((fuzz_dir / f"seed.{ext}").read_bytes(), ops)
    path = fuzz_dir / f"mutant.{ext}"
    path.write_bytes(data)
    return path, data


@_FUZZ
@given(ext=st.sampled_from(FUZZ_CONTAINERS), ops=_OPS)
def test_fuzzed_files_never_raise_from_extract(fuzz_dir, ext, ops):
    path, data = _mutant(fuzz_dir, ext, ops)
    features = extract_track(path, config=FeatureConfig(), policy=WindowPolicy(windows=2))
    assert isinstance(features, TrackFeatures)
    assert features.status in ("ok", "error", "silent")
    if features.status == "ok":
        assert features.windows.dtype == np.float32 and np.isfinite(features.windows).all()
    else:
        assert features.status == "silent" or features.error
    assert path.read_bytes() == data


@_FUZZ_TAGS
@given(ext=st.sampled_from(FUZZ_CONTAINERS), ops=_OPS)
def test_fuzzed_files_raise_only_tag_errors_from_read_tags(fuzz_dir, ext, ops):
    path, data = _mutant(fuzz_dir, ext, ops)
    try:
        read_tags(path)
    except TagError as exc:
        assert exc.path == path and exc.reason
    assert path.read_bytes() == data


def _audio_of(path: Path, data: bytes) -> bytes | np.ndarray | None:
    """What must survive a tag write: an mp3's bytes between its ID3v2 and ID3v1 tags
    (decoders resync differently around junk, so decoding would not compare), else the
    decoded samples; None when the file does not decode."""
    if path.suffix == ".mp3":
        start = 0
        if data[:3] == b"ID3" and len(data) >= 10:
            start = 10 + ((data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | data[9] & 0x7F)
            start += 10 * bool(data[5] & 0x10)  # footer
        end = len(data) - 128 if data[-128:-125] == b"TAG" else len(data)
        return data[start:end]
    try:
        return _decoded(path)
    except (RuntimeError, ValueError, OSError):
        return None


@_FUZZ_TAGS
@given(ext=st.sampled_from(FUZZ_CONTAINERS), ops=_OPS)
def test_fuzzed_files_are_tagged_whole_or_left_alone(fuzz_dir, ext, ops):
    path, data = _mutant(fuzz_dir, ext, ops)
    before = _audio_of(path, data)
    try:
        state = write_genre(path, ["Fuzz"], provenance="fuzz 1")
    except TagError as exc:
        assert exc.path == path and exc.reason
        assert path.read_bytes() == data
    else:
        assert state.provenance == "fuzz 1" and read_tags(path).genres == ("Fuzz",)
        after = _audio_of(path, path.read_bytes())
        if isinstance(before, bytes):
            assert after == before
        elif before is not None:
            assert after is not None and np.array_equal(after, before)
    assert not _temp_copies(fuzz_dir)
