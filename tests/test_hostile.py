"""Hostile inputs (issue 24): named pipes, ``/dev/zero`` and huge files where genretag reads a
genre map, a config file, a report or a model card; hostile card values; damaged store rows;
report rows whose path is no file name; escape sequences in names and tags.

Every case runs the real CLI in a subprocess with a timeout, so a hang fails the test instead
of hanging the suite; each asserts the exact error line and exit status.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import synth

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 60
"""Seconds a CLI run may take; the hangs these tests catch never end."""

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, NO_COLOR="1", COLUMNS="200", TF_CPP_MIN_LOG_LEVEL="3", **extra)


def _genretag(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genretag", *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=TIMEOUT, stdin=subprocess.DEVNULL, cwd=cwd)


def _errors(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    """One short synthetic WAV (read-only source: tests copy it)."""
    return synth.write_audio(tmp_path_factory.mktemp("song") / "a.wav", synth.tone_mix("Low", seconds=4.0))


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space (all zeros)."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


# --- files that are not regular, or too large --------------------------------------------------


@pytest.mark.parametrize("option, what", [("--genre-map", "genre map"), ("--config", "config file")])
@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_a_named_pipe_or_dev_zero_as_genre_map_or_config_is_a_usage_error(option, what, target, fifo, song,
                                                                          knn_bundle, tmp_path):
    path = fifo if target == "fifo" else Path(target)
    kind = "a named pipe (FIFO)" if target == "fifo" else "a character device"
    result = _genretag("scan", "--dry-run", "--no-store", "--model", knn_bundle, option, path, song)
    assert result.returncode == 2, result.stderr
    assert _errors(result) == [f"error: cannot read {what}: {kind}, not a regular file ({path})"]


def test_a_named_pipe_as_genre_map_in_the_config_file(fifo, song, knn_bundle, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[scan]\ngenre_map = "{fifo}"\n')
    result = _genretag("scan", "--dry-run", "--no-store", "--model", knn_bundle, "--config", config, song)
    assert result.returncode == 2, result.stderr
    assert _errors(result) == [f"error: cannot read genre map: a named pipe (FIFO), not a regular file ({fifo})"]


@pytest.mark.parametrize("option, what, size", [("--genre-map", "genre map", "10 MiB"),
                                                ("--config", "config file", "1 MiB")])
def test_a_genre_map_or_config_past_its_size_limit_is_refused(option, what, size, song, knn_bundle, tmp_path):
    limit = {"10 MiB": 10 << 20, "1 MiB": 1 << 20}[size]
    path = _sparse(tmp_path / "big.txt", limit + 1)
    result = _genretag("scan", "--dry-run", "--no-store", "--model", knn_bundle, option, path, song)
    assert result.returncode == 2, result.stderr
    assert _errors(result) == [f"error: cannot read {what}: larger than {size} ({path})"]


@pytest.mark.parametrize("make, reason", [
    (lambda p: os.mkfifo(p), "a named pipe (FIFO), not a regular file"),
    (lambda p: os.symlink("/dev/zero", p), "a character device, not a regular file"),
    (lambda p: _sparse(p, (1 << 30) + 1), "larger than 1 GiB"),
])
def test_a_report_that_is_a_pipe_a_device_or_too_large_is_a_usage_error(make, reason, knn_bundle, tmp_path):
    report = tmp_path / "review.jsonl"
    make(report)
    result = _genretag("apply", "--no-store", "--model", knn_bundle, report)
    assert result.returncode == 2, result.stderr
    assert _errors(result) == [f"error: cannot read report: {reason} ({report})"]


@pytest.mark.parametrize("make, reason", [
    (lambda p: os.mkfifo(p), "a named pipe (FIFO), not a regular file"),
    (lambda p: os.symlink("/dev/zero", p), "a symbolic link, not a regular file"),  # a bundle's files are its own
    (lambda p: _sparse(p, (1 << 20) + 1), "larger than 1 MiB"),
])
def test_a_card_that_is_a_pipe_a_device_or_too_large_is_a_model_error(make, reason, knn_bundle, song, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(knn_bundle, bundle)
    (bundle / "card.json").unlink()
    make(bundle / "card.json")
    result = _genretag("scan", "--dry-run", "--no-store", "--model", bundle, song)
    assert result.returncode == 1, result.stderr
    assert _errors(result) == [f"error: not a model bundle: unreadable card.json ({reason}) ({bundle / 'card.json'})"]


@pytest.mark.parametrize("key, value, message", [
    ("n_fft", 2 ** 31, "n_fft 2147483648 is out of range (16 to 65536)"),
    ("window_seconds", 1e7, "window_seconds 10000000.0 is out of range (0.0 to 60.0)"),
    ("sample_rate", 10 ** 9, "sample_rate 1000000000 is out of range (1000 to 192000)"),
    ("n_mels", "many", "n_mels must be an integer, got 'many'"),
    ("n_frames", 10_000, "window_seconds 0.1 is too short for 10000 frames"),
])
def test_a_card_with_hostile_feature_values_is_refused_when_read(key, value, message, knn_bundle, song, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(knn_bundle, bundle)
    card = json.loads((bundle / "card.json").read_text())
    card["features"][key] = value
    if key == "n_frames":
        card["features"]["window_seconds"] = 0.1
    (bundle / "card.json").write_text(json.dumps(card))
    result = _genretag("scan", "--dry-run", "--no-store", "--model", bundle, song)
    assert result.returncode == 1, result.stderr
    assert _errors(result) == [f"error: malformed card.json: {message} ({bundle / 'card.json'})"]
    assert "decode failed" not in result.stderr


# --- report rows --------------------------------------------------------------------------------


def _row(path: str, song: Path, **extra) -> str:
    st = song.stat()
    return json.dumps({"path": path, "status": "would-tag", "genres": ["Rock"], "size": st.st_size,
                       "mtime_ns": st.st_mtime_ns, "model": "rel 1", **extra})


@pytest.mark.parametrize("bad, reason", [
    ("pipe", "not an audio file: a named pipe (FIFO)"),
    ("a\x00b.wav", "not a file name: the report's path holds a NUL character"),
    ("a\ud800b.wav", "not a file name: the report's path holds '\\ud800', which no file name can"),
])
def test_a_report_row_whose_path_is_a_pipe_or_no_file_name_fails_that_row_only(bad, reason, song, knn_bundle,
                                                                              tmp_path, fifo):
    good = shutil.copy2(song, tmp_path / "good.wav")
    path = str(tmp_path / bad)
    report = tmp_path / "review.jsonl"
    report.write_text(_row(path, song) + "\n" + _row(str(good), Path(good)) + "\n", encoding="utf-8",
                      errors="surrogatepass")
    result = _genretag("apply", "--no-store", "--model", knn_bundle, "--json", tmp_path / "out.jsonl", report)
    assert result.returncode == 1, result.stderr
    shown = path.replace("\x00", "\\x00").replace("\ud800", "\\ud800")
    assert _errors(result) == [f"error: {reason} ({shown})"]
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["status"], r["error"]) for r in rows] == [("failed", reason), ("tagged", "")]


def test_a_non_text_model_in_a_report_row_fails_that_row_only(song, knn_bundle, tmp_path):
    first, second = (shutil.copy2(song, tmp_path / name) for name in ("first.wav", "second.wav"))
    report = tmp_path / "review.jsonl"
    report.write_text(_row(str(first), Path(first), model=5) + "\n"
                      + _row(str(second), Path(second), model=None) + "\n")
    result = _genretag("apply", "--no-store", "--model", knn_bundle, report)
    assert result.returncode == 1, result.stderr
    assert _errors(result) == [f"error: the report's 'model' in this row is not a text ({first})"]
    from genretag.tags import read_tags

    assert read_tags(first).genres == () and read_tags(first).provenance is None
    assert read_tags(second).genres == ("Rock",)
    assert read_tags(second).provenance == "rel 1"  # --model's, not the first row's 5


# --- damaged store rows ------------------------------------------------------------------------


DAMAGE = {
    "labels": "UPDATE predictions SET labels = '{not json'",
    "tags": "UPDATE predictions SET tags = '[1'",
    "previous": "UPDATE predictions SET previous = 'nope'",
    "short probabilities": "UPDATE predictions SET probabilities = x'0000'",
    "label count": "UPDATE predictions SET labels = '[\"Low\"]'",
    "labels not texts": "UPDATE predictions SET labels = '[1, 2, 3]'",
    "status": "UPDATE predictions SET status = 'bogus'",
}
NOTE = "note: a damaged row of the prediction store ignored, as if missing ({store})"


def _damaged_store(song: Path, knn_bundle: Path, tmp_path: Path, damage: str) -> tuple[Path, Path]:
    """A copy of ``song`` scanned (dry run) into a fresh store whose one row then gets ``damage``."""
    import sqlite3

    audio = Path(shutil.copy2(song, tmp_path / "song.wav"))
    store = tmp_path / "store.sqlite"
    first = _genretag("scan", "--dry-run", "--store", store, "--model", knn_bundle, audio)
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(store) as db:
        db.execute(DAMAGE[damage])
    return audio, store


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_store_row_is_taken_for_no_row_and_the_file_predicted_again(damage, song, knn_bundle, tmp_path):
    import sqlite3

    audio, store = _damaged_store(song, knn_bundle, tmp_path, damage)
    result = _genretag("scan", "--dry-run", "--store", store, "--model", knn_bundle, audio)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [NOTE.format(store=store)], result.stderr
    assert "1 would be tagged" in result.stdout
    with sqlite3.connect(store) as db:  # predicted again: the row is whole again
        labels, blob, previous, status = db.execute(
            "SELECT labels, probabilities, previous, status FROM predictions").fetchone()
    assert json.loads(labels) == ["High", "Low", "Mid"] and len(blob) == 12 and previous == "[]"
    assert status == "predicted"


@pytest.mark.parametrize("damage", ["labels", "short probabilities", "label count"])
def test_apply_and_show_take_a_damaged_row_for_no_row(damage, song, knn_bundle, tmp_path):
    audio, store = _damaged_store(song, knn_bundle, tmp_path, damage)
    applied = _genretag("apply", "--store", store, "--model", knn_bundle, audio)
    assert applied.returncode == 1, applied.stderr
    assert applied.stderr.splitlines()[0] == f"error: no stored prediction by this model (scan it first) ({audio})"
    assert NOTE.format(store=store) in applied.stderr.splitlines()
    shown = _genretag("show", "--store", store, audio)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [str(audio), "  genre: -", "  no stored prediction"]  # never Low's 100% on High
    assert shown.stderr.splitlines() == [NOTE.format(store=store)]


# --- Ray: URIs as typed, a foreign JSON output -------------------------------------------------


@pytest.mark.parametrize("uri", ["s3://bucket/music", "gs://bucket/music", "file:///srv/music"])
def test_the_cli_hands_uris_to_the_ray_engine_as_typed(uri, monkeypatch, knn_bundle):
    """Click turns arguments into Paths, and ``Path("s3://b")`` is ``s3:/b``: the CLI passes what was typed.
    (Which URI schemes the engine reads is :func:`test_a_file_uri_is_scanned_on_ray_through_the_cli`'s.)"""
    from typer.testing import CliRunner

    import genretag.engines.ray_scan as ray_scan
    from genretag.cli import app

    seen = []

    def fake(paths, **kwargs):
        seen.extend(paths)
        raise KeyboardInterrupt  # stop here: the engine itself is not under test

    monkeypatch.setattr(ray_scan, "scan_on_ray", fake)
    result = CliRunner().invoke(app, ["scan", "--engine", "ray", "--no-store", "-q", "--model", str(knn_bundle), uri])
    assert result.exit_code == 130, result.output
    assert seen == [uri]


def test_a_file_uri_is_scanned_on_ray_through_the_cli(song, knn_bundle, tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    shutil.copy2(song, folder / "a.wav")
    out = tmp_path / "out.jsonl"
    result = subprocess.run([sys.executable, "-m", "genretag", "scan", "--engine", "ray", "--no-store", "-q",
                             "--model", str(knn_bundle), "--json", str(out), folder.as_uri()],
                            capture_output=True, text=True, env=_env(), timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["path"], r["status"]) for r in rows] == [((folder / "a.wav").as_uri(), "would-tag")]


@pytest.mark.parametrize("line", ["[1]", "17", '{"no path": 1}'])
def test_a_ray_json_output_with_a_line_that_is_no_row_is_a_clear_error(line, song, knn_bundle, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text(line + "\n")
    result = _genretag("scan", "--engine", "ray", "--no-store", "-q", "--model", knn_bundle, "--json", out, song)
    assert result.returncode == 1, result.stderr
    assert _errors(result) == [f"error: cannot resume from this output: line 1 is not a row of 'genretag scan "
                               f"--json' (no 'path') ({out})"]


# --- terminal safety ---------------------------------------------------------------------------


def test_control_characters_in_names_and_tags_are_shown_escaped_and_reports_keep_them(song, knn_bundle, tmp_path):
    from mutagen.flac import FLAC

    name = "e\x1b[2K\x1b[1Ab\u202e.flac"
    audio = synth.write_audio(tmp_path / name, synth.tone_mix("Low", seconds=4.0))
    tags = FLAC(audio)
    tags["GENRE"] = "\x1b[8mHidden"
    tags.save()
    store, out = tmp_path / "store.sqlite", tmp_path / "out.jsonl"
    scanned = _genretag("scan", "--dry-run", "--store", store, "--model", knn_bundle, "--json", out, tmp_path)
    shown = _genretag("show", "--store", store, audio)
    for result in (scanned, shown):
        assert result.returncode == 0, result.stderr
        assert not any(c in result.stdout + result.stderr for c in "\x1b\u202e"), repr(result.stdout)
    escaped = str(tmp_path / "e\\x1b[2K\\x1b[1Ab\\u202e.flac")
    assert scanned.stdout.splitlines()[0] == f"{escaped}: \\x1b[8mHidden (kept: has a genre; heard Low 100%)"
    assert shown.stdout.splitlines()[:2] == [escaped, "  genre: \\x1b[8mHidden (yours: genretag did not write it)"]
    row = json.loads(out.read_text())
    assert row["path"] == str(audio) and row["previous"] == ["\x1b[8mHidden"]


# --- a private store ---------------------------------------------------------------------------


def test_a_new_store_and_its_folder_are_private(song, knn_bundle, tmp_path):
    store = tmp_path / "new" / "store.sqlite"
    old = os.umask(0o022)
    try:
        result = _genretag("scan", "--dry-run", "-q", "--store", store, "--model", knn_bundle, song)
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    assert oct(store.parent.stat().st_mode & 0o777) == "0o700"
    for side in store.parent.glob("store.sqlite-*"):  # -wal, -shm while they exist
        assert side.stat().st_mode & 0o077 == 0, side


@pytest.mark.parametrize("target", ["fifo", "/dev/null"])
def test_a_store_that_is_not_a_regular_file_is_refused(target, fifo, song, knn_bundle):
    path = fifo if target == "fifo" else Path(target)
    journal = Path(f"{path}-journal")
    existed = journal.exists()
    result = _genretag("scan", "--dry-run", "-q", "--store", path, "--model", knn_bundle, song)
    assert result.returncode == 1, result.stderr
    kind = "a named pipe (FIFO)" if target == "fifo" else "a character device"
    assert _errors(result) == [f"error: cannot use the prediction store: {kind}, not a regular file ({path})"]
    assert journal.exists() == existed


# --- fuzz: no internal error, bounded time per case --------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=40, deadline=5_000, suppress_health_check=[HealthCheck.function_scoped_fixture])
"""At most 5 s a case: a case that hangs or reads without end fails instead."""
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8)


PATH_TEXT = st.text(st.sampled_from(["a", "/", ".", "\x00", "\ud800", "\udcff", "\x1b", "é"]), max_size=8)
"""Report paths, hostile characters included (NUL, lone surrogates: ``st.text`` leaves surrogates out)."""


@FUZZ
@given(rows=st.lists(st.fixed_dictionaries({"path": PATH_TEXT | JSON}, optional={
    "genres": st.lists(st.text(max_size=8), max_size=3) | JSON, "status": st.text(max_size=10) | JSON,
    "size": st.integers() | JSON, "mtime_ns": st.integers() | JSON, "model": st.text(max_size=8) | JSON,
    "error": JSON}), max_size=4))
def test_fuzz_report_rows(rows, tmp_path, song):
    from genretag.config import DecisionOptions
    from genretag.errors import UsageError
    from genretag.scan import decide_row, read_report

    shutil.copy2(song, tmp_path / "a.wav")
    report = tmp_path / "fuzz.jsonl"
    report.write_text("".join(json.dumps({**r, "path": str(tmp_path / r["path"]) if isinstance(r["path"], str)
                                          else r["path"]}) + "\n" for r in rows))
    try:
        read = read_report(report)
    except UsageError:
        return
    for row in read:
        result = decide_row(row, options=DecisionOptions())
        assert result.status in ("failed", "would-tag", "kept", "skipped", "excluded", "low-confidence", "silent")


@FUZZ
@given(values=st.fixed_dictionaries({}, optional={
    "status": st.sampled_from(["predicted", "silent", "failed", "kept"]) | st.text(max_size=5),
    "labels": st.none() | st.text(max_size=30) | JSON.map(json.dumps),
    "probabilities": st.none() | st.binary(max_size=20),
    "previous": st.text(max_size=20) | JSON.map(json.dumps),
    "tags": st.none() | st.text(max_size=20) | JSON.map(json.dumps),
    "styles": st.none() | st.text(max_size=20) | JSON.map(json.dumps),
    "style_scores": st.none() | st.binary(max_size=12),
    "windows": st.none() | st.integers(-2 ** 63, 2 ** 63 - 1) | st.text(max_size=3),
    "size": st.integers(-2 ** 63, 2 ** 63 - 1) | st.text(max_size=3) | st.floats(allow_nan=False),
    "ctime_ns": st.none() | st.integers(-2 ** 63, 2 ** 63 - 1) | st.text(max_size=3),
}))
def test_fuzz_store_rows(values, tmp_path_factory):
    import sqlite3

    from genretag.store import Store

    path = tmp_path_factory.mktemp("fuzz_store") / "s.sqlite"
    Store(path).close()
    row = {"path": os.fsencode("/x/a.wav"), "model": "m", "size": 1, "mtime_ns": 1, "status": "predicted",
           "labels": '["A", "B"]', "probabilities": b"\0" * 8, "windows": 1, "previous": "[]", "updated": 1.0,
           **values}
    with sqlite3.connect(path) as db:
        db.execute(f"INSERT INTO predictions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                   tuple(row.values()))
    with Store(path, readonly=True) as store:
        entry = store.get("/x/a.wav", "m")
        assert len(store.entries("/x/a.wav")) == (entry is not None)
        assert (entry is None) == bool(store.damaged)
        if entry is not None and entry.probabilities is not None:
            assert len(entry.probabilities) == len(entry.labels)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value > 0 else "-inf") if abs(value) == float("inf") else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return json.dumps(value)


TOML_VALUE = st.recursive(st.booleans() | st.integers(-2 ** 63, 2 ** 63 - 1) | st.floats()
                          | st.text(st.characters(blacklist_categories=("Cs",)), max_size=10),
                          lambda inner: st.lists(inner, max_size=3), max_leaves=4)


@FUZZ
@given(settings_=st.dictionaries(st.sampled_from(["top_k", "min_confidence", "batch_size", "windows", "genre_map",
                                                  "store", "timeout", "group", "write_to", "id3v23_sep", "jobs",
                                                  "styles", "model"]), TOML_VALUE, max_size=3))
def test_fuzz_config_values(settings_, tmp_path_factory, knn_bundle):
    from typer.testing import CliRunner

    from genretag.cli import app

    folder = tmp_path_factory.mktemp("fuzz_config")
    config = folder / "config.toml"
    config.write_text("[scan]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in settings_.items()))
    args = ["scan", "--dry-run", "-q", "--no-store", "--config", str(config), str(folder / "missing.wav")]
    if "model" not in settings_:
        args[1:1] = ["--model", str(knn_bundle)]
    result = CliRunner().invoke(app, args)
    assert "internal error" not in result.output, result.output
    assert result.exit_code in (1, 2), result.output
