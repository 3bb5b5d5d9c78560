"""The prediction store (a real SQLite file), ``genretag apply``, ``genretag show`` and the config file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import faults
import synth
from genretag.cli import app
from genretag.store import Store
from genretag.tags import read_tags

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def knn(knn_bundle) -> Path:
    return knn_bundle


@pytest.fixture
def lib(tmp_path) -> Path:
    root = tmp_path / "lib"
    for i, label in enumerate(("Low", "Mid", "High", "Mid")):
        synth.write_audio(root / f"{i}-{label}.flac", synth.tone_mix(label, seconds=4.0, seed=300 + i))
    synth.write_audio(root / "silence.wav", synth.tone_mix("Low", seconds=4.0) * 0)
    return root


def _run(runner, *args):
    return runner.invoke(app, [*map(str, args)])


def _rows(report: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in map(json.loads, report.read_text(encoding="utf-8").splitlines())}


def _no_model(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("genretag.models.runtime.DeferredClassifier", refuse)
    monkeypatch.setattr("genretag.models.runtime.load_classifier", refuse)


def test_a_rerun_decodes_nothing_and_loads_no_model(runner, lib, knn, tmp_path, decoded, monkeypatch):
    store = tmp_path / "p.sqlite"
    (lib / "0-Low.flac").rename(lib / "0-Low.keep.flac")
    first = _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0")
    assert first.exit_code == 0, first.output
    assert len(decoded) == 5
    decoded.clear()
    _no_model(monkeypatch)
    report = tmp_path / "again.jsonl"
    again = _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0", "--json", report)
    assert again.exit_code == 0, again.output
    assert decoded == []
    statuses = {n: r["status"] for n, r in _rows(report).items()}
    assert statuses == {"0-Low.keep.flac": "skipped", "1-Mid.flac": "skipped", "2-High.flac": "skipped",
                        "3-Mid.flac": "skipped", "silence.wav": "silent"}
    with Store(store) as db:
        (entry,) = db.entries(lib / "1-Mid.flac")
        assert entry is not None and entry.outcome == "tagged" and entry.provenance == "rel 1"


def test_a_changed_file_is_predicted_again_and_never_tagged_from_the_old_prediction(runner, lib, knn, tmp_path,
                                                                                     decoded):
    store = tmp_path / "p.sqlite"
    assert _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0", "--dry-run").exit_code == 0
    changed = lib / "2-High.flac"
    synth.write_audio(changed, synth.tone_mix("Low", seconds=5.0, seed=9))  # new audio, new size and mtime
    decoded.clear()
    applied = _run(runner, "apply", lib, "--model", knn, "--store", store, "--json", tmp_path / "a.jsonl")
    assert applied.exit_code == 1
    assert f"error: changed since it was predicted (scan it again) ({changed})" in applied.stderr
    rows = _rows(tmp_path / "a.jsonl")
    assert rows["2-High.flac"]["status"] == "failed" and read_tags(changed).genres == ()
    assert {rows[n]["status"] for n in ("0-Low.flac", "1-Mid.flac", "3-Mid.flac")} == {"tagged"}
    assert decoded == []  # apply decodes nothing
    rescan = _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0")
    assert rescan.exit_code == 0, rescan.output
    assert decoded == [changed]


def test_apply_from_the_store_decides_again_with_its_own_options(runner, lib, knn, tmp_path, decoded, monkeypatch):
    store = tmp_path / "p.sqlite"
    assert _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0", "--dry-run").exit_code == 0
    before = {p: p.read_bytes() for p in lib.iterdir()}
    decoded.clear()
    _no_model(monkeypatch)
    result = _run(runner, "apply", lib, "--model", knn, "--store", store, "--top-k", "2")
    assert result.exit_code == 0, result.output
    assert decoded == []
    for path in lib.glob("*.flac"):
        state = read_tags(path)
        assert len(state.genres) == 2 and state.provenance == "rel 1"
    assert (lib / "silence.wav").read_bytes() == before[lib / "silence.wav"]


def test_apply_from_a_reviewed_report(runner, lib, knn, tmp_path, decoded):
    report = tmp_path / "review.jsonl"
    scan = _run(runner, "scan", lib, "--model", knn, "--no-store", "--jobs", "0", "--dry-run", "--json", report)
    assert scan.exit_code == 0, scan.output
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    for row in rows:  # the review: one genre renamed by hand, one file left alone
        if row["path"].endswith("0-Low.flac"):
            row["genres"] = ["Deep Bass"]
        if row["path"].endswith("1-Mid.flac"):
            row["genres"] = []
    report.write_text("".join(json.dumps(r) + "\n" for r in rows))
    untouched = (lib / "1-Mid.flac").read_bytes()
    decoded.clear()
    result = _run(runner, "apply", report, "-v")
    assert result.exit_code == 0, result.output
    assert decoded == []
    assert read_tags(lib / "0-Low.flac").genres == ("Deep Bass",)
    assert read_tags(lib / "0-Low.flac").provenance == "rel 1"
    assert (lib / "1-Mid.flac").read_bytes() == untouched
    by_name = {Path(r["path"]).name: r for r in rows}
    assert read_tags(lib / "2-High.flac").genres == tuple(by_name["2-High.flac"]["genres"])
    again = _run(runner, "apply", report)  # applying the same review twice changes nothing
    assert again.exit_code == 0, again.output
    assert "3 skipped" in again.stdout


def test_a_report_that_is_not_one_is_a_usage_error(runner, tmp_path):
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"path": "a.mp3"}\nnot json\n')
    result = _run(runner, "apply", bad)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: report line 2 is not JSON (Expecting value) ({bad})"


def _scan_process(*args, log: Path, setup: str = "") -> subprocess.Popen:
    """``genretag scan ARGS`` in its own process group; ``setup``: Python run first with :mod:`faults` imported."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(REPO), str(Path(__file__).parent))), NO_COLOR="1",
               COLUMNS="200")
    code = f"import sys, faults; {setup or 'pass'}; from genretag.cli import main; sys.argv[0] = 'genretag'; main()"
    with open(log, "w") as fh:
        return subprocess.Popen([sys.executable, "-c", code, "scan", *map(str, args)], stdout=fh,
                                stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)


def _check_store(path: Path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return db.execute("SELECT path, status FROM predictions").fetchall()
    finally:
        db.close()


def test_two_scans_share_a_store_at_once(knn, tmp_path):
    store = tmp_path / "shared.sqlite"
    folders = []
    for n in range(2):
        folder = tmp_path / f"lib{n}"
        for i in range(12):
            synth.write_audio(folder / f"{i:02d}.wav", synth.tone_mix(("Low", "Mid", "High")[i % 3], seconds=3.0,
                                                                      seed=1000 * n + i))
        folders.append(folder)
    procs = [_scan_process(f, "--model", knn, "--store", store, "--jobs", "1", "--dry-run", log=tmp_path / f"{i}.log")
             for i, f in enumerate(folders)]
    for i, proc in enumerate(procs):
        assert proc.wait(timeout=240) == 0, (tmp_path / f"{i}.log").read_text()
    rows = _check_store(store)
    assert len(rows) == 24 and {status for _, status in rows} == {"predicted"}


def test_a_killed_scan_keeps_what_it_finished_and_the_store_stays_usable(knn, tmp_path):
    store, folder = tmp_path / "k.sqlite", tmp_path / "lib"
    clip = synth.tone_mix("Mid", seconds=4.0, seed=1)
    for i in range(12):
        synth.write_audio(folder / f"{i:02d}.wav", clip[i * 100:])  # 12 different files
    flag = tmp_path / "held"  # the scan stops for good once it has stored its third prediction
    proc = _scan_process(folder, "--model", knn, "--store", store, "--jobs", "1", "--dry-run", log=tmp_path / "k.log",
                         setup=f"faults.hold('genretag.store:Store.put', call=3, flag={str(flag)!r})")
    assert faults.wait_for(flag, proc), (tmp_path / "k.log").read_text()
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL  # killed mid-run, not finished
    assert len(_check_store(store)) == 3
    report = tmp_path / "rest.jsonl"
    rest = subprocess.run([sys.executable, "-m", "genretag", "scan", str(folder), "--model", str(knn), "--store",
                           str(store), "--jobs", "0", "--dry-run", "--json", str(report)], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=240)
    assert rest.returncode == 0, rest.stderr
    assert len(_rows(report)) == 12 and len(_check_store(store)) == 12


@pytest.mark.parametrize("content, reason", [
    (b"this is not a database at all" * 100, "cannot use the prediction store: damaged or not an SQLite database"),
    ("foreign", "not a genretag prediction store (other tables in it)"),
    ("newer", "prediction store has schema 99, newer than this genretag's 6"),
])
def test_a_damaged_or_foreign_store_is_one_line_and_the_scan_goes_on(runner, lib, knn, tmp_path, content, reason):
    store = tmp_path / "s.sqlite"
    if content == "foreign":
        db = sqlite3.connect(store)
        db.execute("CREATE TABLE songs (id INTEGER)")
        db.commit()
        db.close()
    elif content == "newer":
        Store(store).close()
        db = sqlite3.connect(store)
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
        db.commit()
        db.close()
    else:
        store.write_bytes(content)
    before = store.read_bytes()
    result = _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {reason}") and errors[0].endswith(f"({store})")
    assert "Traceback" not in result.output
    assert read_tags(lib / "1-Mid.flac").provenance == "rel 1"  # the files were tagged all the same
    assert store.read_bytes() == before


def test_show_says_what_is_known(runner, lib, knn, tmp_path):
    store = tmp_path / "p.sqlite"
    assert _run(runner, "scan", lib / "1-Mid.flac", "--model", knn, "--store", store, "--jobs", "0").exit_code == 0
    result = _run(runner, "show", lib / "1-Mid.flac", lib / "2-High.flac", "--store", store, "--json")
    assert result.exit_code == 0, result.output
    one, two = (json.loads(line) for line in result.stdout.splitlines())
    assert one["tags"]["model"] == "rel 1" and one["stored"][0]["outcome"] == "tagged" and one["stored"][0]["current"]
    assert one["stored"][0]["top"][0][0] == "Mid"
    assert two["stored"] == []


# --- the config file -------------------------------------------------------------------------------


def test_config_values_apply_and_flags_win(runner, lib, knn, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[scan]\ntop_k = 2\nstore = false\njobs = 0\n")
    report = tmp_path / "r.jsonl"
    result = _run(runner, "scan", lib, "--model", knn, "--config", config, "--dry-run", "--json", report)
    assert result.exit_code == 0, result.output
    assert {len(r["genres"]) for r in _rows(report).values() if r["status"] == "would-tag"} == {2}
    flagged = _run(runner, "scan", lib, "--model", knn, "--config", config, "--dry-run", "--json", report,
                   "--top-k", "1")
    assert flagged.exit_code == 0
    assert {len(r["genres"]) for r in _rows(report).values() if r["status"] == "would-tag"} == {1}
    shown = _run(runner, "config", "--config", config)
    assert shown.exit_code == 0
    lines = {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if "[scan]" in line}
    assert str(config) in lines["[scan] top_k"] and "2" in lines["[scan] top_k"]
    assert "default" in lines["[scan] windows"] and "True" in lines["[scan] no_store"]


def test_the_default_config_file_is_read(runner, lib, knn, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "genretag").mkdir(parents=True)
    (tmp_path / "xdg" / "genretag" / "config.toml").write_text("[scan]\ntop_k = 3\nno_store = true\n")
    report = tmp_path / "r.jsonl"
    result = _run(runner, "scan", lib, "--model", knn, "--jobs", "0", "--dry-run", "--json", report)
    assert result.exit_code == 0
    assert {len(r["genres"]) for r in _rows(report).values() if r["status"] == "would-tag"} == {3}
    assert not (tmp_path / "xdg" / "genretag" / "predictions.sqlite").exists()


@pytest.mark.parametrize("content, reason", [
    ("[scan]\ntop_kk = 2\n", "unknown setting 'top_kk' in [scan] of config file"),
    ("[scan]\ntop_k = 0\n", "bad value for 'top_k' in [scan] of config file"),
    ("[scan]\nwindows = \"many\"\n", "bad value for 'windows' in [scan] of config file"),
    ("[train]\nepochs = 3\n", "unknown table [train] in config file"),
    ("top_k = 2\n", "'top_k' in config file is outside any table: settings go under [scan]"),
    ("[scan\n", "config file is not valid TOML"),
])
def test_a_bad_config_is_one_usage_error(runner, lib, knn, tmp_path, content, reason):
    config = tmp_path / "config.toml"
    config.write_text(content)
    for command in (["scan", lib, "--model", knn, "--no-store", "--jobs", "0"], ["config"]):
        result = _run(runner, *command, "--config", config)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: {reason}") and result.stderr.strip().endswith(f"({config})")
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


# --- found in review ----------------------------------------------------------------------------------


def test_a_reviewed_genre_no_tag_can_hold_fails_that_file_only(runner, lib, knn, tmp_path):
    report = tmp_path / "review.jsonl"
    assert _run(runner, "scan", lib, "--model", knn, "--no-store", "--jobs", "0", "--dry-run",
                "--json", report).exit_code == 0
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    bad = next(r for r in rows if r["path"].endswith("1-Mid.flac"))
    bad["genres"] = ["Bad\u0000Genre"]
    report.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = _run(runner, "apply", report)
    assert result.exit_code == 1 and "Traceback" not in result.output and "internal error" not in result.stderr
    assert f"error: cannot write tags: genre contains a NUL character: 'Bad\\x00Genre' ({lib / '1-Mid.flac'})" \
        in result.stderr
    assert "3 tagged" in result.stdout and "1 failed" in result.stdout
    assert read_tags(lib / "1-Mid.flac").genres == ()


def test_a_report_without_its_model_takes_the_model_given(runner, lib, knn, tmp_path):
    report = tmp_path / "old.jsonl"
    assert _run(runner, "scan", lib / "2-High.flac", "--model", knn, "--no-store", "--jobs", "0", "--dry-run",
                "--json", report).exit_code == 0
    row = json.loads(report.read_text())
    del row["model"]
    report.write_text(json.dumps(row) + "\n")
    result = _run(runner, "apply", report, "--model", knn)
    assert result.exit_code == 0, result.output
    assert read_tags(lib / "2-High.flac").provenance == "rel 1"


def test_other_windows_are_another_prediction(runner, lib, knn, tmp_path, decoded):
    store = tmp_path / "p.sqlite"
    assert _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0", "--dry-run").exit_code == 0
    decoded.clear()
    assert _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0", "--dry-run",
                "--windows", "3").exit_code == 0
    assert len(decoded) == 5  # not the 8-window predictions


def test_apply_decides_again_for_files_this_model_tagged(runner, lib, knn, tmp_path):
    store = tmp_path / "p.sqlite"
    assert _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0").exit_code == 0
    assert len(read_tags(lib / "0-Low.flac").genres) == 1
    result = _run(runner, "apply", lib, "--model", knn, "--store", store, "--top-k", "2", "--next-min-confidence", "0")
    assert result.exit_code == 0, result.output
    assert len(read_tags(lib / "0-Low.flac").genres) == 2
    import genretag

    with Store(store) as db:  # the library's apply reads the store whatever force says
        options = genretag.ScanOptions(top_k=3, next_min_confidence=0, force=True)
        results = list(genretag.apply([lib / "0-Low.flac"], store=db, model=knn, options=options))
    assert [r.status for r in results] == ["tagged"] and len(read_tags(lib / "0-Low.flac").genres) == 3


def test_show_reads_without_creating_a_store(runner, lib, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = _run(runner, "show", lib / "0-Low.flac")
    assert result.exit_code == 1
    assert "error: no prediction store here" in result.stderr and "0-Low.flac" in result.stdout
    assert not (tmp_path / "cache").exists()


def test_a_report_row_that_failed_stays_failed_without_touching_the_file(runner, lib, knn, tmp_path):
    broken = lib / "broken.mp3"
    broken.write_bytes(b"not audio" * 100)
    report = tmp_path / "review.jsonl"
    assert _run(runner, "scan", lib, "--model", knn, "--no-store", "--jobs", "0", "--dry-run",
                "--json", report).exit_code == 1
    result = _run(runner, "apply", report)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: not an audio file, or corrupt") and "broken.mp3" in errors[0]
    assert "4 tagged" in result.stdout and "1 failed" in result.stdout


def test_files_tagged_from_a_report_stay_known_to_the_store(runner, lib, knn, tmp_path, decoded, monkeypatch):
    store, report = tmp_path / "p.sqlite", tmp_path / "review.jsonl"
    assert _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0", "--dry-run",
                "--json", report).exit_code == 0
    applied = _run(runner, "apply", report, "--model", knn, "--store", store)
    assert applied.exit_code == 0, applied.output
    decoded.clear()
    _no_model(monkeypatch)
    again = _run(runner, "scan", lib, "--model", knn, "--store", store, "--jobs", "0")
    assert again.exit_code == 0, again.output
    assert decoded == [] and "4 skipped" in again.stdout
    from_store = _run(runner, "apply", lib, "--model", knn, "--store", store, "--dry-run")
    assert from_store.exit_code == 0 and "changed since" not in from_store.stderr
