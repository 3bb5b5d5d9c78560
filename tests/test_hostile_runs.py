"""Hostile inputs (issue 24), the rest: config values of the wrong type, bundle files that are not the bundle's
own, runs stopped mid-write (Ctrl-C, ``kill``, ``kill -9`` at a known point through :func:`faults.signal_after`),
leftovers of killed runs, a folder renamed mid-write, and messages in a user's words.

Each asserts the exact error line and exit status; subprocess runs have a timeout, so a hang fails.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import faults
import synth
from genretag.cli import app
from genretag.tags import TMP_SUFFIX, read_tags

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def _run(runner, *args: object):
    return runner.invoke(app, [str(a) for a in args])


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, NO_COLOR="1", COLUMNS="200", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=path)


def _genretag(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genretag", *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def _stopped(seam: str, sig: int, *args: object) -> subprocess.CompletedProcess:
    """``genretag ARGS`` in a child that gets ``sig`` as the tag writer's ``seam`` returns (see
    :func:`faults.signal_after`); inline runs only (``--jobs 0``, or ``apply``: no pool to orphan)."""
    code = (f"import sys, faults; faults.signal_after({seam!r}, {int(sig)}); "
            "from genretag.cli import main; sys.argv[0] = 'genretag'; main()")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=_env(),
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL, preexec_fn=faults.default_sigint)


def _temp_copies(root: Path) -> list[Path]:
    return sorted(root.rglob(f"*{TMP_SUFFIX}"))


@pytest.fixture
def two(tmp_path) -> list[Path]:
    lib = tmp_path / "lib"
    return [synth.write_audio(lib / f"{i}.wav", synth.tone_mix("Low", seconds=4.0, seed=i)) for i in range(2)]


# --- config values of the wrong type -----------------------------------------------------------------


@pytest.mark.parametrize("line, message", [
    ("min_confidence = true", "'min_confidence' in [scan] of config file: expected a number, got a boolean (true)"),
    ("top_k = 2.0", "'top_k' in [scan] of config file: expected a whole number, got a decimal number (2.0)"),
    ("batch_size = \"8\"", "'batch_size' in [scan] of config file: expected a whole number, got a text (\"8\")"),
    ("styles = \"yes\"", "'styles' in [scan] of config file: expected true or false, got a text (\"yes\")"),
    ("timeout = false", "'timeout' in [scan] of config file: expected a number, got a boolean (false)"),
    ("genre_map = 5", "'genre_map' in [scan] of config file: expected a text, got a whole number (5)"),
])
def test_a_config_value_of_the_wrong_type_is_a_usage_error(line, message, runner, two, knn_bundle, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f"[scan]\n{line}\n")
    result = _run(runner, "scan", "--dry-run", "--no-store", "--jobs", "0", "--model", knn_bundle, "--config", config,
                  two[0])
    assert result.exit_code == 2, result.output
    assert _errors(result.stderr) == [f"error: bad value for {message} ({config})"]


def test_a_whole_number_is_a_number_in_the_config_file(runner, two, knn_bundle, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[scan]\nmin_confidence = 1\n")  # TOML's 1 for a float option: as on the command line
    result = _run(runner, "scan", "--dry-run", "--no-store", "--jobs", "0", "--model", knn_bundle, "--config", config,
                  two[0])
    assert result.exit_code == 0 and "1 would be tagged" in result.stdout, result.output  # k-NN: 100%


# --- a bundle's files must be its own regular files --------------------------------------------------


@pytest.mark.parametrize("make, reason", [
    (lambda p: os.symlink(p.parent.parent / "elsewhere.npz", p), "a symbolic link, not a regular file"),
    (lambda p: os.mkfifo(p), "a named pipe (FIFO), not a regular file"),
    (lambda p: os.symlink("/dev/zero", p), "a symbolic link, not a regular file"),
])
def test_weights_that_are_a_link_or_a_pipe_are_refused(make, reason, runner, knn_bundle, two, tmp_path):
    bundle = Path(shutil.copytree(knn_bundle, tmp_path / "bundle"))
    weights = bundle / "model.npz"
    shutil.move(weights, tmp_path / "elsewhere.npz")  # the same bytes, outside: a link to them used to pass
    make(weights)
    result = _run(runner, "scan", "--dry-run", "--no-store", "--jobs", "0", "--model", bundle, two[0])
    assert result.exit_code == 1, result.output
    assert _errors(result.stderr) == [f"error: weights file model.npz is {reason}: a bundle's files must be regular "
                                      f"files inside it ({weights})"]


# --- stopped mid-write ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)])
def test_a_file_written_just_before_the_run_stopped_is_known_to_the_store_after_the_next_scan(
        sig, code, two, knn_bundle, tmp_path):
    """Stopped right after a rename, before the store recorded it: the next scan predicts that file again and
    records it (skipped as ever), so ``apply`` finds its prediction (it said "no stored prediction")."""
    store = tmp_path / "store.sqlite"
    args = ("scan", two[0].parent, "--model", knn_bundle, "--store", store, "--jobs", "0", "-q")
    stopped = _stopped("_replace", sig, *args)
    assert stopped.returncode == code, stopped.stderr
    (written,) = [p for p in two if read_tags(p).provenance == "rel 1"]
    again = _genretag(*args, "--json", tmp_path / "again.jsonl")
    assert again.returncode == 0, again.stderr
    rows = {Path(r["path"]): r["status"] for r in map(json.loads, (tmp_path / "again.jsonl").read_text().splitlines())}
    assert rows[written] == "skipped" and set(rows.values()) == {"skipped", "tagged"}
    applied = _genretag("apply", written, "--model", knn_bundle, "--store", store, "--dry-run")
    assert applied.returncode == 0, applied.stderr
    assert "no stored prediction" not in applied.stderr
    assert not _temp_copies(two[0].parent)


@pytest.mark.parametrize("command", ["scan", "apply"])
def test_sigterm_mid_write_cleans_up_like_ctrl_c(command, two, knn_bundle, tmp_path):
    """``kill`` (SIGTERM) while the tagged copy exists: removed, the file as it was, "interrupted", exit 143
    (it was killed outright: a hidden full-size copy stayed beside the file)."""
    before = {p: p.read_bytes() for p in two}
    if command == "scan":
        args = ("scan", two[0].parent, "--model", knn_bundle, "--no-store", "--jobs", "0", "-q")
    else:
        report = tmp_path / "review.jsonl"
        assert _genretag("scan", "--dry-run", "--no-store", "--jobs", "0", "-q", "--model", knn_bundle, "--json",
                         report, two[0].parent).returncode == 0
        args = ("apply", report, "--model", knn_bundle, "--no-store", "-q")
    stopped = _stopped("_sync", signal.SIGTERM, *args)
    assert stopped.returncode == 143, stopped.stderr
    assert "interrupted" in stopped.stderr and "Traceback" not in stopped.stderr, stopped.stderr
    assert _temp_copies(two[0].parent) == []
    assert {p: p.read_bytes() for p in two} == before


def test_apply_of_a_report_removes_what_a_killed_write_left(runner, two, knn_bundle, tmp_path):
    report = tmp_path / "review.jsonl"
    assert _run(runner, "scan", "--dry-run", "--no-store", "--jobs", "0", "--model", knn_bundle, "--json", report,
                two[0]).exit_code == 0
    stale = two[0].parent / f".{two[0].name}.k3x_9qzp{TMP_SUFFIX}"
    shutil.copyfile(two[0], stale)
    assert _run(runner, "apply", report, "--no-store", "--dry-run").exit_code == 0
    assert stale.exists()  # a dry run deletes nothing
    result = _run(runner, "apply", report, "--no-store")
    assert result.exit_code == 0, result.output
    assert not stale.exists() and read_tags(two[0]).genres


def test_a_folder_renamed_mid_write_leaves_no_copy(runner, two, knn_bundle, tmp_path, monkeypatch):
    import genretag.tags.write as tags

    folder, moved = two[0].parent, tmp_path / "renamed"
    before = two[0].read_bytes()
    real_sync = tags._sync

    def rename_then_sync(path):
        folder.rename(moved)  # the user renames the album while its first file is being tagged
        real_sync(moved / Path(path).name)

    monkeypatch.setattr(tags, "_sync", rename_then_sync)
    result = _run(runner, "scan", "--no-store", "--jobs", "0", "--model", knn_bundle, two[0])
    assert result.exit_code == 1, result.output
    assert _errors(result.stderr) == [f"error: its folder was moved or renamed while tagging ({two[0]})"]
    assert _temp_copies(moved) == [] and (moved / two[0].name).read_bytes() == before


# --- messages ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext, ops, reason", [
    ("wav", [("truncate", 29, 12)], "damaged WAV file: its RIFF chunks are broken"),  # was "InvalidChunk"
    ("aiff", [("truncate", 23, 41)], "damaged AIFF file: its chunks are broken"),  # was "error"
])
def test_damaged_tags_are_said_in_a_users_words(ext, ops, reason, tmp_path):
    from genretag.errors import TagError

    good = synth.write_audio(tmp_path / f"good.{ext}", synth.tone_mix("Low", seconds=2.0))
    path = tmp_path / f"bad.{ext}"
    path.write_bytes(faults.mutate(good.read_bytes(), ops))
    with pytest.raises(TagError) as info:
        read_tags(path)
    assert info.value.reason == f"unsupported or unreadable tags: {reason}"


def test_an_mp3_libsndfile_gives_up_on_is_decoded_by_ffmpeg(runner, knn_bundle, tmp_path, monkeypatch):
    """libsndfile's mpg123 stops at a damaged frame ("Unspecified internal error.") where ffmpeg goes on: the
    mp3 is tagged from what ffmpeg decodes; other formats keep libsndfile's verdict."""
    import soundfile

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    mp3 = synth.write_audio(tmp_path / "a.mp3", synth.tone_mix("Low", seconds=4.0))
    flac = synth.write_audio(tmp_path / "b.flac", synth.tone_mix("Low", seconds=4.0))

    def give_up(self, *args, **kwargs):
        raise RuntimeError("Unspecified internal error.")

    monkeypatch.setattr(soundfile.SoundFile, "read", give_up)
    result = _run(runner, "scan", "--dry-run", "--no-store", "--jobs", "0", "--model", knn_bundle, "--json",
                  tmp_path / "r.jsonl", mp3, flac)
    assert result.exit_code == 1, result.output
    assert _errors(result.stderr) == [f"error: decode failed: Unspecified internal error. ({flac})"]
    rows = {Path(r["path"]).name: r["status"] for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())}
    assert rows == {"a.mp3": "would-tag", "b.flac": "failed"}


def test_a_read_only_folder_is_named_in_a_dry_run(runner, two, knn_bundle, monkeypatch):
    """Root may write anywhere: ``os.access`` saying no for the folder stands in for a read-only one."""
    import genretag.tags.safefile as safefile

    real_access = os.access
    monkeypatch.setattr(safefile.os, "access", lambda p, mode: False if Path(p) == two[0].parent else
                        real_access(p, mode))
    result = _run(runner, "scan", "--dry-run", "--no-store", "--jobs", "0", "--model", knn_bundle, two[0])
    assert result.exit_code == 1, result.output
    assert _errors(result.stderr) == [f"error: permission denied: cannot create a file in its folder {two[0].parent} "
                                      f"({two[0]})"]


def test_a_file_another_program_locks_or_holds_open_for_writing(two, monkeypatch):
    """The two wordings the README gives: a lock (flock) held past the wait, and a file kept open for writing."""
    import genretag.tags.safefile as safefile
    from genretag.errors import TagError
    from genretag.tags import write_genre

    monkeypatch.setattr(safefile, "LOCK_WAIT_S", 0.2)
    with open(two[0], "rb") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(TagError) as info:
            write_genre(two[0], ["Rock"], provenance="m 1")
    assert info.value.reason == "file is locked by another program"
    with open(two[1], "r+b"):
        try:
            write_genre(two[1], ["Rock"], provenance="m 1")
        except TagError as exc:
            assert exc.reason == "file is open for writing by another program"
        else:
            pytest.skip("no read leases on this file system (the write went ahead)")


def test_two_reports_are_one_at_a_time_and_an_unknown_model_is_usage(runner, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for report in (a, b):
        report.write_text("")
    result = _run(runner, "apply", a, b)
    assert result.exit_code == 2, result.output
    assert _errors(result.stderr) == ["error: give one report at a time (2 given: apply them one after the other)"]
    result = _run(runner, "models", "extra")
    assert result.exit_code == 2, result.output
    assert _errors(result.stderr) == ["error: no model named 'extra' and no bundle at that path (bundled models: "
                                      "default)"]
