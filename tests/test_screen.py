"""What the CLI prints, as a user reads it: lines that say what stays and what was heard, one hint per
summary, help texts that keep their brackets, usage errors in one line with exit 2, internal errors exit 70."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mutagen.flac import FLAC
from synth import tone_mix, write_audio

from genretag.cli import app


def _run(runner, *args: object):
    return runner.invoke(app, [*map(str, args)])


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


@pytest.fixture
def library(tmp_path) -> Path:
    """``tagged.flac`` with the genre Soundtrack (set by a person: no provenance), ``bare.flac`` without one."""
    lib = tmp_path / "lib"
    write_audio(lib / "bare.flac", tone_mix("Mid", seconds=6.0, seed=1))
    tagged = write_audio(lib / "tagged.flac", tone_mix("Low", seconds=6.0, seed=2))
    audio = FLAC(tagged)
    audio["genre"] = "Soundtrack"
    audio.save()
    return lib


def test_an_internal_error_exits_70_with_one_line(runner, library, monkeypatch):
    import genretag.discover

    def broken(paths):
        raise RuntimeError("boom")

    monkeypatch.setattr(genretag.discover, "discover", broken)  # a bug anywhere below the CLI
    result = _run(runner, "scan", library, "--dry-run", "--no-store")
    assert result.exit_code == 70
    assert _lines(result.stderr) == ["error: internal error: RuntimeError: boom; run with --debug for the traceback"]


def test_kept_and_unsure_lines_say_what_stays_and_what_was_heard(runner, library, tmp_path):
    report = tmp_path / "r.jsonl"
    plain = _run(runner, "scan", library, "--dry-run", "--no-store", "--min-confidence", "1", "-j", "0")
    heard = _run(runner, "scan", library, "--dry-run", "--no-store", "--min-confidence", "1", "-j", "0",
                 "--json", report)
    assert plain.exit_code == 0 and heard.exit_code == 0, plain.output + heard.output
    rows = {Path(r["path"]).name: r for r in map(json.loads, report.read_text().splitlines())}
    bare, kept = rows["bare.flac"], rows["tagged.flac"]
    # nothing is written to either: their "genres" say so
    assert (kept["status"], kept["genres"], bare["status"], bare["genres"]) == ("kept", [], "low-confidence", [])
    guess = f"{bare['genre']} {bare['confidence']:.0%}"
    kept_guess = f"{kept['genre']} {kept['confidence']:.0%}"
    assert f"{library / 'bare.flac'}: - (unsure: heard {guess}, below --min-confidence)" in _lines(plain.stdout)
    assert f"{library / 'tagged.flac'}: Soundtrack (kept: has a genre)" in _lines(plain.stdout)
    assert f"{library / 'tagged.flac'}: Soundtrack (kept: has a genre; heard {kept_guess})" in _lines(heard.stdout)
    counts = "0 would be tagged, 1 kept existing genre, 0 skipped (already tagged), 1 low confidence"
    assert counts in plain.stdout and counts in heard.stdout  # the same with and without --json
    hint = ("hint: 1 file kept its genre without being listened to: --csv/--json predicts them, "
            "--overwrite replaces their genre")
    assert _lines(plain.stdout).count(hint) == 1 and hint not in heard.stdout  # once, in the summary
    assert "->" not in plain.stdout + heard.stdout  # no line reads as a change


def test_apply_dry_run_shows_the_genre_a_kept_file_keeps(runner, library, tmp_path):
    report = tmp_path / "r.jsonl"
    assert _run(runner, "scan", library, "--dry-run", "--no-store", "-j", "0", "--min-confidence", "0",
                "--json", report).exit_code == 0
    applied = _run(runner, "apply", report, "--dry-run", "--no-store")
    assert applied.exit_code == 0, applied.output
    kept = next(json.loads(line) for line in report.read_text().splitlines() if "tagged.flac" in line)
    assert (f"{library / 'tagged.flac'}: Soundtrack (kept: has a genre; heard {kept['genre']} "
            f"{kept['confidence']:.0%})") in _lines(applied.stdout) or \
        f"{library / 'tagged.flac'}: Soundtrack (kept: has a genre)" in _lines(applied.stdout)
    assert "- -> -" not in applied.stdout
    assert "1 would be tagged, 1 kept existing genre" in applied.stdout


def test_a_rerun_with_other_options_says_how_to_decide_again(runner, library, tmp_path):
    store = tmp_path / "store.sqlite"
    first = _run(runner, "scan", library, "--store", store, "-j", "0", "--min-confidence", "0")
    assert first.exit_code == 0 and "1 tagged" in first.stdout, first.output
    again = _run(runner, "scan", library, "--store", store, "-j", "0", "--top-k", "2", "-v")
    assert again.exit_code == 0, again.output
    lines = _lines(again.stdout)
    tagged_as = next(line for line in lines if "bare.flac" in line)
    assert tagged_as.startswith(f"{library / 'bare.flac'}: ") and "(already tagged by this model; heard " in tagged_as
    assert "->" not in tagged_as
    assert lines.count("hint: 1 file already tagged by this model was left unchanged: use genretag apply (or "
                       "--force) to decide again with these options") == 1


def test_help_keeps_brackets_and_quotes_no_model_figures(runner):
    config_help = _run(runner, "config", "--help").stdout
    scan_help = _run(runner, "scan", "--help").stdout
    train_help = _run(runner, "train", "--help").stdout
    assert "a [scan] table" in " ".join(config_help.split())
    assert "pip install 'genretag[ray]'" in " ".join(scan_help.split())
    assert "genretag[train]" in "".join(train_help.split())
    for stale in ("84%", "77% tagged", "0.2)"):
        assert stale not in scan_help
    for command, usage in (("scan", "scan [OPTIONS] PATHS..."), ("show", "show [OPTIONS] PATHS..."),
                           ("apply", "apply [OPTIONS] REPORT.jsonl | PATH..."), ("models", "models [OPTIONS] [MODEL]")):
        text = _run(runner, command, "--help").stdout
        assert usage in text and "{" not in text.splitlines()[1] and "<list[" not in text, text


def test_models_default_shows_its_card(runner):
    import genretag

    card = genretag.find_model().card
    result = _run(runner, "models", "default")
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    assert lines[0].startswith(card.model_id)
    assert f"labels: {', '.join(card.labels)}" in lines
    floor = card.calibration["min_confidence"]
    at = next(r for r in card.calibration["val"]["top"] if r["floor"] == floor)
    assert (f"min_confidence: {floor:g} (validation: {at['precision']:.0%} of the tracks it tags are right, "
            f"it tags {at['coverage']:.0%})") in lines
    test = card.metrics["test"]
    assert f"test split: {test['tracks']} tracks: {test['track_accuracy']:.1%} right, " \
           f"macro-F1 {test['track_macro_f1']:.3f}" in lines


def test_config_shows_the_floor_and_store_a_scan_uses(runner, tmp_path, monkeypatch):
    import genretag
    from genretag.store import default_store_path

    result = _run(runner, "config", "--config", _toml(tmp_path, "[scan]\ntop_k = 2\n"))
    assert result.exit_code == 0, result.output
    floor = genretag.find_model().card.calibration["min_confidence"]
    rows = {cells[0]: cells[1:] for cells in (
        [c.strip() for c in line.strip("│ ").split("│")] for line in result.stdout.splitlines() if "│" in line)}
    assert rows["[scan] min_confidence"] == [f"{floor:g}", "default: the model's card"]
    assert rows["[scan] store"] == [str(default_store_path()), "default"]


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_setting_above_any_table_is_told_where_it_goes(runner, tmp_path):
    path = _toml(tmp_path, "top_k = 2\n")
    result = _run(runner, "config", "--config", path)
    assert result.exit_code == 2
    assert _lines(result.stderr) == [f"error: 'top_k' in config file is outside any table: settings go under "
                                     f"[scan] or [learn] ({path})"]


def test_json_dash_is_refused_and_creates_no_file(runner, library, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run(runner, "scan", library, "--dry-run", "--no-store", "--json", "-")
    assert result.exit_code == 2
    assert _lines(result.stderr) == ["error: a report goes to a file, not to stdout: give --csv/--json a file name (-)"]
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("command", ["scan", "apply", "show", "undo"])
def test_a_missing_path_is_one_usage_error(runner, library, tmp_path, command):
    missing = tmp_path / "Music"
    result = _run(runner, command, missing, library, "--dry-run") if command in ("scan", "apply") \
        else _run(runner, command, missing, library)
    assert result.exit_code == 2
    assert _lines(result.stderr) == [f"error: no such file or folder ({missing})"]


def test_macro_f1_averages_the_classes_the_data_has():
    from genretag.evaluate.report import compute_metrics as metrics

    # classes A, B, C; the data holds only A and B, both always right: C must not pull macro-F1 to 2/3
    m = metrics([0, 0, 1, 1], [0, 0, 1, 1], labels=["A", "B", "C"])
    assert m.macro_f1 == 1.0 and [c.support for c in m.per_class] == [2, 2, 0]


def test_eval_usage_errors_exit_2(runner, tmp_path):
    result = _run(runner, "eval", "--compare")
    assert result.exit_code == 2
    assert _lines(result.stderr) == ["error: --compare needs report folders: genretag eval --compare DIR1 DIR2 ..."]
    result = _run(runner, "eval", str(tmp_path))
    assert result.exit_code == 2
    assert _lines(result.stderr) == ["error: report folders as arguments need --compare (to evaluate, give a dataset)"]
