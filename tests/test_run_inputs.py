"""Issue 22, cases 13-15: reports onto a run's own inputs, ``engine`` in the config file,
stored failures retried, reviewed genres the genre map would refuse, writes that change
nothing, and dry runs of files that can't be written. Real files, a real SQLite store."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import synth
from genretag.cli import app
from genretag.tags import read_tags

MODEL_ID = "rel 1"  # conftest's knn_bundle

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses Linux file-system behaviour")


@pytest.fixture
def lib(tmp_path) -> Path:
    """Three short synthetic files, one per class."""
    root = tmp_path / "lib"
    for i, (label, ext) in enumerate((("Low", "flac"), ("Mid", "mp3"), ("High", "ogg"))):
        synth.write_audio(root / f"{i}-{label}.{ext}", synth.tone_mix(label, seconds=4.0, seed=70 + i))
    return root


def _run(runner: CliRunner, *args: object):
    return runner.invoke(app, [*map(str, args)])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _rows(report: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in map(json.loads, report.read_text(encoding="utf-8").splitlines())}


# --- 13. a report path that is an input of the run ------------------------------------------------


@pytest.mark.parametrize("option", ["--csv", "--json"])
@pytest.mark.parametrize("what", ["the genre map", "the config file", "the prediction store",
                                  "the prediction store's WAL", "the model bundle"])
def test_a_report_over_an_input_of_the_scan_is_refused_before_anything_is_opened(runner, lib, knn_bundle, tmp_path,
                                                                                 option, what):
    bundle = Path(shutil.copytree(knn_bundle, tmp_path / "bundle"))  # never the session's own bundle
    store, mapping, config = tmp_path / "p.sqlite", tmp_path / "map.csv", tmp_path / "config.toml"
    mapping.write_text("Low,Bass\n", encoding="utf-8")
    config.write_text("[scan]\njobs = 0\n", encoding="utf-8")
    assert _run(runner, "scan", lib, "--model", bundle, "--store", store, "--dry-run",
                "--config", config).exit_code == 0
    wal = Path(f"{store}-wal")
    wal.write_bytes(b"")  # as a scan killed mid-write leaves it
    target = {"the genre map": mapping, "the config file": config, "the prediction store": store,
              "the prediction store's WAL": wal, "the model bundle": bundle / "card.json"}[what]
    inputs = [mapping, config, store, wal, *sorted(p for p in bundle.rglob("*") if p.is_file()), *sorted(lib.iterdir())]
    before = {p: _sha(p) for p in inputs}
    result = _run(runner, "scan", lib, "--model", bundle, "--store", store, "--genre-map", mapping,
                  "--config", config, option, target)
    assert result.exit_code == 2, result.output
    reason = "the prediction store" if what.startswith("the prediction store") else what
    assert _errors(result.stderr) == [f"error: report would overwrite {reason} ({target})"]
    assert {p: _sha(p) for p in inputs} == before  # nothing written, no file tagged
    assert all(read_tags(p).genres == () for p in lib.iterdir())


def test_a_report_over_the_default_config_file_or_store_is_refused(runner, lib, knn_bundle, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = tmp_path / "config" / "genretag" / "config.toml"  # not there yet: a report would become it
    store = tmp_path / "cache" / "genretag" / "predictions.sqlite"
    for target, reason in ((config, "the config file"), (store, "the prediction store")):
        result = _run(runner, "scan", lib, "--model", knn_bundle, "--jobs", "0", "--json", target)
        assert result.exit_code == 2, result.output
        assert _errors(result.stderr) == [f"error: report would overwrite {reason} ({target})"]
    assert not config.exists() and not store.exists()


def test_apply_refuses_a_report_over_its_store_or_genre_map(runner, lib, knn_bundle, tmp_path):
    store, mapping, review = tmp_path / "p.sqlite", tmp_path / "map.csv", tmp_path / "review.jsonl"
    mapping.write_text("Low,Bass\n", encoding="utf-8")
    assert _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0", "--dry-run",
                "--json", review).exit_code == 0
    for source in (review, lib):
        for target, reason in ((store, "the prediction store"), (mapping, "the genre map")):
            sha = _sha(target)
            result = _run(runner, "apply", source, "--model", knn_bundle, "--store", store, "--genre-map", mapping,
                          "--csv", target)
            assert result.exit_code == 2, result.output
            assert _errors(result.stderr) == [f"error: report would overwrite {reason} ({target})"]
            assert _sha(target) == sha
    assert all(read_tags(p).genres == () for p in lib.iterdir())


# --- 14. engine = "ray" in the config file -----------------------------------------------------------


def test_config_shows_that_engine_ray_writes_no_tags(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[scan]\nengine = "ray"\n', encoding="utf-8")
    result = CliRunner(env={"COLUMNS": "250", "NO_COLOR": "1"}).invoke(app, ["config", "--config", str(config)])
    assert result.exit_code == 0, result.output
    rows = {cells[0]: cells[1:] for line in result.stdout.splitlines()
            if len(cells := [c.strip() for c in line.strip("│┃ ").split("│")]) == 3}
    assert rows["[scan] engine"] == ["ray", str(config)]
    assert rows["[scan] dry_run"] == ["True", "engine = ray: scan writes no tags"]


def test_an_unknown_engine_in_the_config_file_is_refused(runner, lib, knn_bundle, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[scan]\nengine = "spark"\n', encoding="utf-8")
    for command in (["config"], ["scan", str(lib), "--model", str(knn_bundle), "--jobs", "0"]):
        result = _run(runner, *command, "--config", config)
        assert result.exit_code == 2, result.output
        assert _errors(result.stderr) == ["error: bad value for 'engine' in [scan] of config file: unknown engine "
                                          f"'spark' (expected local, ray) ({config})"]
    assert all(read_tags(p).genres == () for p in lib.iterdir())


# --- 15. failures retried, reviewed genres checked, writes that change nothing, dry-run writability ---------


def test_a_file_that_was_read_only_is_tagged_once_it_can_be_written(runner, lib, knn_bundle, tmp_path, decoded):
    locked, store = lib / "1-Mid.mp3", tmp_path / "p.sqlite"
    locked.chmod(0o444)
    first = _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0")
    assert first.exit_code == 1, first.output
    assert _errors(first.stderr) == [f"error: file is read-only ({locked})"]
    locked.chmod(0o644)  # changes its ctime, which is part of the store's identity (schema 4): predicted again
    decoded.clear()
    report = tmp_path / "again.jsonl"
    again = _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0", "--json", report)
    assert again.exit_code == 0, again.output  # no --force needed
    assert _errors(again.stderr) == [] and decoded == [locked]  # the others from the store
    assert _rows(report)[locked.name]["status"] == "tagged"
    assert read_tags(locked).provenance == MODEL_ID and len(read_tags(locked).genres) == 1


def _failing_writes(monkeypatch, victim: Path) -> None:
    """Writes of ``victim`` fail as a read-only file's would, without a chmod (which would change the file's
    ctime, and so its store identity): only what the store records of a failed write is then tested."""
    import genretag.tags as tags
    from genretag.errors import TagError

    real = tags.write_genre

    def write_genre(path, *args, **kwargs):
        if Path(path) == victim:
            raise TagError("file is read-only", Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(tags, "write_genre", write_genre)


def test_a_failed_write_is_not_stored_as_the_files_error(runner, lib, knn_bundle, tmp_path, decoded, monkeypatch):
    victim, store = lib / "1-Mid.mp3", tmp_path / "p.sqlite"
    with monkeypatch.context() as patch:
        _failing_writes(patch, victim)
        first = _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0")
    assert first.exit_code == 1 and _errors(first.stderr) == [f"error: file is read-only ({victim})"]
    decoded.clear()
    report = tmp_path / "again.jsonl"
    again = _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0", "--json", report)
    assert again.exit_code == 0, again.output  # no --force needed
    assert _errors(again.stderr) == [] and decoded == []  # from the store, not decoded again
    assert _rows(report)[victim.name]["status"] == "tagged"
    assert read_tags(victim).provenance == MODEL_ID and len(read_tags(victim).genres) == 1


def test_apply_of_a_read_only_file_from_the_store_is_retried_too(runner, lib, knn_bundle, tmp_path, monkeypatch):
    victim, store = lib / "0-Low.flac", tmp_path / "p.sqlite"
    assert _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0", "--dry-run").exit_code == 0
    with monkeypatch.context() as patch:
        _failing_writes(patch, victim)
        failed = _run(runner, "apply", lib, "--model", knn_bundle, "--store", store)
    assert failed.exit_code == 1 and _errors(failed.stderr) == [f"error: file is read-only ({victim})"]
    applied = _run(runner, "apply", lib, "--model", knn_bundle, "--store", store)
    assert applied.exit_code == 0, applied.output
    assert read_tags(victim).provenance == MODEL_ID


def test_a_chmod_after_the_scan_makes_apply_ask_for_a_new_scan(runner, lib, knn_bundle, tmp_path):
    """A chmod changes the file's ctime: the stored prediction no longer holds for it (schema 4's identity),
    so apply refuses it, and a plain scan (no --force) tags it."""
    locked, store = lib / "0-Low.flac", tmp_path / "p.sqlite"
    assert _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0", "--dry-run").exit_code == 0
    locked.chmod(0o444)
    locked.chmod(0o644)
    refused = _run(runner, "apply", lib, "--model", knn_bundle, "--store", store)
    assert refused.exit_code == 1
    assert _errors(refused.stderr) == [f"error: changed since it was predicted (scan it again) ({locked})"]
    assert read_tags(locked).genres == ()
    assert _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0").exit_code == 0
    assert read_tags(locked).provenance == MODEL_ID


@pytest.mark.parametrize("genre, shown", [("17", "17"), ("(17)", "(17)"), ("; /", "; /")])
def test_apply_refuses_a_reviewed_genre_the_genre_map_would_refuse(runner, lib, knn_bundle, tmp_path, genre, shown):
    review = tmp_path / "review.jsonl"
    assert _run(runner, "scan", lib, "--model", knn_bundle, "--no-store", "--jobs", "0", "--dry-run",
                "--json", review).exit_code == 0
    rows = [json.loads(line) for line in review.read_text(encoding="utf-8").splitlines()]
    victim = Path(rows[0]["path"])
    rows[0]["genres"] = [genre]
    review.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    before = _sha(victim)
    result = _run(runner, "apply", review)
    assert result.exit_code == 1, result.output
    errors = _errors(result.stderr)
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot write genre: '{shown}' ")
    assert errors[0].endswith(f" ({victim})")
    assert _sha(victim) == before and read_tags(victim).genres == ()
    assert "2 tagged" in result.stdout and "1 failed" in result.stdout  # only that row refused


def test_apply_from_the_store_skips_files_a_write_would_not_change(runner, lib, knn_bundle, tmp_path):
    store = tmp_path / "p.sqlite"
    assert _run(runner, "apply", lib, "--model", knn_bundle, "--store", store).exit_code == 1  # nothing stored yet
    assert _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0").exit_code == 0
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns, _sha(p)) for p in lib.iterdir()}
    report = tmp_path / "apply.jsonl"
    result = _run(runner, "apply", lib, "--model", knn_bundle, "--store", store, "--json", report)
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in _rows(report).values()} == {"skipped"} and "3 skipped" in result.stdout
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns, _sha(p)) for p in lib.iterdir()} == before
    # A decision that does change the file is still written.
    two = _run(runner, "apply", lib, "--model", knn_bundle, "--store", store, "--top-k", "2",
               "--next-min-confidence", "0")
    assert two.exit_code == 0, two.output
    assert all(len(read_tags(p).genres) == 2 for p in lib.iterdir())


def test_a_dry_run_says_a_file_cannot_be_written(runner, lib, knn_bundle, tmp_path):
    locked = lib / "2-High.ogg"
    locked.chmod(0o444)
    report = tmp_path / "dry.jsonl"
    result = _run(runner, "scan", lib, "--model", knn_bundle, "--no-store", "--jobs", "0", "--dry-run",
                  "--json", report)
    assert result.exit_code == 1, result.output  # what the real run would end with
    assert _errors(result.stderr) == [f"error: file is read-only ({locked})"]
    assert f"{locked}:" not in result.stdout  # no "old -> new" line: it would not be tagged
    rows = _rows(report)
    assert rows[locked.name]["status"] == "failed" and rows[locked.name]["error"] == "file is read-only"
    assert rows[locked.name]["genres"]  # the decision stays in the report: apply writes it once it can
    assert {rows[n]["status"] for n in rows if n != locked.name} == {"would-tag"}
    # apply REPORT --dry-run checks it the same way
    applied = _run(runner, "apply", report, "--dry-run")
    assert applied.exit_code == 1 and _errors(applied.stderr) == [f"error: file is read-only ({locked})"]
    locked.chmod(0o644)
    assert _run(runner, "apply", report).exit_code == 0 and read_tags(locked).provenance == MODEL_ID


def test_a_write_that_only_ends_a_review_is_not_skipped(runner, lib, knn_bundle, tmp_path):
    """The skip of a write that changes nothing (case 15) and reviews (case 12): --overwrite naming a reviewed
    file whose decision is the genre it holds still writes it, so that the review ends, in the provenance
    ("reviewed genre") and in the store (a row emptied: left alone)."""
    from genretag.store import Store

    store = tmp_path / "p.sqlite"
    reviewed, alone = lib / "0-Low.flac", lib / "1-Mid.mp3"
    report = tmp_path / "review.jsonl"
    assert _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0", "--dry-run",
                "--json", report).exit_code == 0
    rows = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    report.write_text("".join(json.dumps(r) + "\n" for r in rows if Path(r["path"]) == reviewed), encoding="utf-8")
    assert _run(runner, "apply", report, "--model", knn_bundle, "--store", store).exit_code == 0
    assert "reviewed genre" in read_tags(reviewed).provenance_values
    # alone: tagged by genretag, then a review empties its row (leave it alone), recorded in the store
    assert _run(runner, "scan", alone, "--model", knn_bundle, "--store", store, "--jobs", "0").exit_code == 0
    genre = read_tags(alone).genres
    assert genre
    row = {**next(r for r in rows if Path(r["path"]) == alone), "genres": []}
    report.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert _run(runner, "apply", report, "--model", knn_bundle, "--store", store).exit_code == 0
    with Store(store) as opened:
        assert opened.reviewed(alone).genres == ()
    # Plain applies leave both alone (kept, no write)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (reviewed, alone)}
    assert _run(runner, "apply", lib, "--model", knn_bundle, "--store", store).exit_code == 0
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (reviewed, alone)} == before
    # --overwrite naming them: each decision is the genre it holds, yet the write ends the review
    out = tmp_path / "named.jsonl"
    named = _run(runner, "apply", reviewed, alone, "--overwrite", "--model", knn_bundle, "--store", store,
                 "--json", out)
    assert named.exit_code == 0, named.output
    assert {n: r["status"] for n, r in _rows(out).items()} == {reviewed.name: "tagged", alone.name: "tagged"}
    assert "reviewed genre" not in read_tags(reviewed).provenance_values and read_tags(alone).genres == genre
    with Store(store) as opened:
        assert opened.reviewed(alone) is None
    # and now nothing is left to change: skipped, not rewritten
    again = _run(runner, "apply", reviewed, alone, "--overwrite", "--model", knn_bundle, "--store", store,
                 "--json", out)
    assert again.exit_code == 0, again.output
    assert {r["status"] for r in _rows(out).values()} == {"skipped"}
