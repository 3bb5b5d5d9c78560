"""What a scan must never do to a user's files or reports (issue: nine ways a scan still loses data).

Each test here failed on the scan of commit 68443cd: a report written over an
audio file, a non-UTF-8 file name stopping the batch, a genre map that killed
it, a report on a full disk ending in a traceback, an unbounded batch size,
and misleading messages for pipes, devices and a file given as ``--model``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import synth
from genretag.cli import app
from genretag.config import MAX_BATCH_SIZE
from genretag.models.batches import padded_size
from genretag.models.runtime import KerasClassifier
from genretag.tags import read_tags

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses Linux file-system behaviour")


@pytest.fixture
def lib(tmp_path) -> Path:
    """Four short synthetic files: 01.mp3, 02.flac, 03.wav, 04.ogg (classes in turn)."""
    root = tmp_path / "lib"
    labels = ("Low", "Mid", "High", "Low")
    for i, ext in enumerate(("mp3", "flac", "wav", "ogg")):
        synth.write_audio(root / f"0{i + 1}.{ext}", synth.tone_mix(labels[i], seconds=4.0, seed=40 + i))
    return root


def _scan(runner: CliRunner, *args: object):
    return runner.invoke(app, ["scan", *map(str, args)])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- 2. a report path that is an audio file -----------------------------------------------------


@pytest.mark.parametrize("option", ["--csv", "--json"])
def test_report_over_a_scanned_file_is_refused_before_anything_is_written(runner, lib, tiny_bundle, option):
    target = lib / "01.mp3"
    before = {p: _sha(p) for p in lib.iterdir()}
    result = _scan(runner, lib, option, target, "--model", tiny_bundle, "--jobs", "0")
    assert result.exit_code == 2, result.output
    assert _error_lines(result.stderr) == [f"error: report would overwrite a file being scanned ({target})"]
    assert {p: _sha(p) for p in lib.iterdir()} == before


def test_report_over_another_audio_file_or_the_other_report_is_refused(runner, lib, tiny_bundle, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    song = synth.write_audio(other / "song.flac", synth.tone_mix("Mid", seconds=2.0))
    disguised = other / "notes.txt"  # audio content under a name that is not audio
    disguised.write_bytes(song.read_bytes())
    for target, reason in ((song, "report would overwrite an audio file"),
                           (disguised, "report would overwrite an audio file")):
        sha = _sha(target)
        result = _scan(runner, lib, "--dry-run", "--csv", target, "--model", tiny_bundle, "--jobs", "0")
        assert result.exit_code == 2 and _error_lines(result.stderr) == [f"error: {reason} ({target})"]
        assert _sha(target) == sha
    same = tmp_path / "r.txt"
    result = _scan(runner, lib, "--dry-run", "--csv", same, "--json", same, "--model", tiny_bundle, "--jobs", "0")
    assert result.exit_code == 2 and "--csv and --json name the same file" in result.stderr


# --- 3. file names that are not UTF-8 -----------------------------------------------------------


def test_a_file_name_that_is_not_utf8_reaches_both_reports_and_the_terminal(runner, lib, tiny_bundle, tmp_path):
    odd_bytes = os.fsencode(lib) + b"/a\xff.wav"
    odd = Path(os.fsdecode(odd_bytes))
    os.rename(synth.write_audio(tmp_path / "plain.wav", synth.tone_mix("High", seconds=4.0, seed=7)), odd_bytes)
    report_csv, report_json = tmp_path / "r.csv", tmp_path / "r.jsonl"
    result = _scan(runner, lib, "--overwrite", "--csv", report_csv, "--json", report_json, "--model", tiny_bundle,
                   "--jobs", "0", "--verbose")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "a\\xff.wav" in result.stdout  # shown escaped, not lost
    rows = [json.loads(line) for line in report_json.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5 and all(r["status"] == "tagged" for r in rows)
    assert odd_bytes in {os.fsencode(r["path"]) for r in rows}
    with open(report_csv, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        paths = {os.fsencode(r["path"]) for r in csv.DictReader(fh)}
    assert odd_bytes in paths and len(paths) == 5
    assert read_tags(odd).provenance == "tiny 0.1"


# --- 4. genre maps -------------------------------------------------------------------------------


def test_a_label_mapped_to_nothing_is_never_written(runner, lib, tiny_bundle, tmp_path):
    mapping = tmp_path / "map.csv"
    mapping.write_text("Low,\nMid,   \n", encoding="utf-8")
    report = tmp_path / "r.jsonl"
    result = _scan(runner, lib, "--genre-map", mapping, "--json", report, "--model", tiny_bundle, "--jobs", "0")
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in map(json.loads, report.read_text().splitlines())}
    assert {r["genre"] for r in rows.values()} >= {"Low", "High"}  # both kinds occur (the tiny model is not exact)
    for name, row in rows.items():
        if row["genre"] in ("Low", "Mid"):
            assert row["status"] == "excluded" and row["genres"] == [] and read_tags(lib / name).genres == ()
        else:
            assert row["status"] == "tagged" and read_tags(lib / name).genres == (row["genre"],)


@pytest.mark.parametrize("content, reason", [
    ("Low,Bass\x00Line\n".encode(), "genre map line 1: 'Bass\\x00Line' contains a control character (0x00)"),
    (b"Low,Ba\xdfe\n", "genre map is not UTF-8 text (byte 6)"),
    (b"Low,Bass\nHigh,17\n", "genre map line 2: '17' would be read by players as an ID3v1 genre number; use a name"),
    (b"Low,Bass\nHigh, ; \n", "genre map line 2: ';' holds only the separators genres are joined with (players would "
                               "read no genre)"),
])
def test_a_genre_map_that_cannot_be_used_is_one_usage_error(runner, lib, tiny_bundle, tmp_path, content, reason):
    mapping = tmp_path / "map.csv"
    mapping.write_bytes(content)
    before = {p: _sha(p) for p in lib.iterdir()}
    result = _scan(runner, lib, "--genre-map", mapping, "--model", tiny_bundle, "--jobs", "0")
    assert result.exit_code == 2, result.output
    assert _error_lines(result.stderr) == [f"error: {reason} ({mapping})"]
    assert "Traceback" not in result.output
    assert {p: _sha(p) for p in lib.iterdir()} == before


# --- 5. a report that cannot be written -------------------------------------------------------------


def _limit_file_size(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_report_that_fills_up_stops_the_scan_with_one_line(lib, tiny_bundle, tmp_path):
    """The report hits a file-size limit (EFBIG, like a full disk) after a row or two, while the Keras
    model loads in the background: the error line must reach the terminal every time."""
    report = tmp_path / "r.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1", COLUMNS="200", TF_CPP_MIN_LOG_LEVEL="3")
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-m", "genretag", "scan", str(lib), "--dry-run", "--json", str(report),
                               "--model", str(tiny_bundle), "--jobs", "1"],
                              capture_output=True, text=True, env=env, timeout=180,
                              preexec_fn=_limit_file_size(1200), stdin=subprocess.DEVNULL)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"error: cannot write report: File too large ({report})" in proc.stderr
        assert "scan stopped" in proc.stderr
        lines = report.read_text(encoding="utf-8").splitlines()
        assert all(json.loads(line) for line in lines[:-1])  # whole rows up to the one that did not fit


def test_a_report_on_a_full_device_is_one_line_before_any_work(runner, lib, tiny_bundle):
    result = _scan(runner, lib, "--dry-run", "--csv", "/dev/full", "--model", tiny_bundle, "--jobs", "0")
    assert result.exit_code == 1
    assert _error_lines(result.stderr) == ["error: cannot write report: No space left on device (/dev/full)"]


# --- 6. batch size ---------------------------------------------------------------------------------


def test_batch_size_has_a_ceiling(runner, lib, tiny_bundle):
    result = _scan(runner, lib, "--dry-run", "--batch-size", "100000", "--model", tiny_bundle, "--jobs", "0")
    assert result.exit_code == 2
    assert str(MAX_BATCH_SIZE) in result.stderr and "Traceback" not in result.output


def test_a_partial_batch_is_padded_to_a_power_of_two_not_to_the_batch_size():
    assert [padded_size(n, 256) for n in (1, 3, 8, 9, 100, 129, 256)] == [8, 8, 8, 16, 128, 256, 256]
    assert padded_size(3, 4) == 4

    class Recorder:
        shapes: list[tuple[int, ...]] = []

        def predict_on_batch(self, x):
            self.shapes.append(x.shape)
            return np.full((len(x), 2), 0.5, np.float32)

    model = Recorder()
    out = KerasClassifier(model, ("a", "b"), batch_size=MAX_BATCH_SIZE).predict(np.zeros((3, 4, 5), np.float32))
    assert out.shape == (3, 2) and model.shapes == [(8, 4, 5)]


# --- 9. messages that say what is wrong -------------------------------------------------------------


def test_pipes_devices_and_broken_links_are_named_for_what_they_are(runner, lib, tiny_bundle, tmp_path):
    fifo = tmp_path / "pipe.mp3"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.mp3"
    zero.symlink_to("/dev/zero")
    broken = tmp_path / "gone.mp3"
    broken.symlink_to(tmp_path / "nothing-here.mp3")
    result = _scan(runner, fifo, zero, broken, lib, "--dry-run", "--model", tiny_bundle, "--jobs", "0")
    assert result.exit_code == 1
    assert set(_error_lines(result.stderr)) == {
        f"error: not an audio file: a named pipe (FIFO) ({fifo})",
        f"error: not an audio file: a symbolic link to a character device ({zero})",
        f"error: broken symbolic link (its target does not exist) ({broken})",
    }


def test_a_file_given_as_model_is_not_a_bundle(runner, lib, tiny_bundle):
    weights = Path(tiny_bundle) / "model.keras"
    result = _scan(runner, lib, "--dry-run", "--model", weights, "--jobs", "0")
    assert result.exit_code == 1
    assert _error_lines(result.stderr) == [
        f"error: not a model bundle: a bundle is a folder holding card.json and the weights, and this is a file "
        f"({weights})"]
