"""``genretag scan`` (and the small commands) end to end through the CLI.

A session-scoped library holds one pre-tagged synthetic file per container
under awkward names (brackets, quotes, spaces, non-ASCII); each test scans a
copy with the ``tiny_bundle`` model. Most scans decode inline (``--jobs 0``);
two go through the spawn process pool.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mutagen
import numpy as np
import pytest
from mutagen.asf import ASF
from mutagen.id3 import TCON, TIT2, TPE1
from mutagen.mp4 import MP4
from typer.testing import CliRunner

import synth
from genretag import __version__
from genretag.cli import app
from genretag.config import PROVENANCE_KEY
from genretag.models.registry import BUNDLED_DIR
from genretag.scan import REPORT_COLUMNS
from genretag.tags import TMP_SUFFIX, read_tags

REPO = Path(__file__).resolve().parents[1]
LABELS = {"Low", "Mid", "High"}
MODEL_ID = "tiny 0.1"
NAMES = {
    "mp3": "Artist [2001]/CD 1/01 - sóng.mp3",
    "flac": "Artist [2001]/CD 1/02 - \"Quoted\" 'Title'.flac",
    "ogg": "Ελληνικά/03 - Ünïcödé 日本語.ogg",
    "opus": "with  two  spaces/04 [bold]not markup[/bold].opus",
    "m4a": "05 - what? & why!.m4a",
    "wav": "06 - rock'n'roll (live) 100%.wav",
    "aiff": "07 - $HOME `tick`; semi.aiff",
    "wma": "08 - [red]Live[/red] #1.wma",
}
OWN_KEYS = {"TCON", f"TXXX:{PROVENANCE_KEY}", "GENRE", PROVENANCE_KEY, "\xa9gen",
            f"----:com.apple.iTunes:{PROVENANCE_KEY}", "WM/Genre"}
"""Tag keys a scan may change (genre and provenance of every container)."""
JSON_KEYS = {*REPORT_COLUMNS, "probabilities", "size", "mtime_ns", "model", "group_confidence"}


# --- fixtures and helpers -------------------------------------------------------------------


def _pretag(path: Path, *, title: str, artist: str, genre: str | None = None) -> None:
    """Title and artist (and optionally a genre) with mutagen, as another tagger would."""
    audio = mutagen.File(path)
    if isinstance(audio, MP4):
        audio["\xa9nam"], audio["\xa9ART"] = [title], [artist]
        if genre:
            audio["\xa9gen"] = [genre]
    elif isinstance(audio, ASF):
        audio["Title"], audio["Author"] = [title], [artist]
        if genre:
            audio["WM/Genre"] = [genre]
    elif path.suffix in (".mp3", ".wav", ".aiff"):
        if audio.tags is None:
            audio.add_tags()
        audio.tags.add(TIT2(encoding=3, text=title))
        audio.tags.add(TPE1(encoding=3, text=artist))
        if genre:
            audio.tags.add(TCON(encoding=3, text=genre))
    else:
        audio["TITLE"], audio["ARTIST"] = [title], [artist]
        if genre:
            audio["GENRE"] = [genre]
    audio.save()


@pytest.fixture(scope="session")
def library(tmp_path_factory) -> Path:
    """One 5-s file per container (classes in turn), tagged with title and artist only."""
    if not synth.have_ffmpeg():
        pytest.skip("ffmpeg is needed to synthesise m4a and wma")
    root = tmp_path_factory.mktemp("library") / "Music"
    labels = sorted(LABELS)
    for i, container in enumerate(synth.CONTAINERS):
        path = synth.write_audio(root / NAMES[container],
                                 synth.tone_mix(labels[i % 3], seconds=5.0, seed=500 + i))
        _pretag(path, title=f"Title {i} ✓", artist="Artist “quoted”")
    return root


@pytest.fixture
def lib(library, tmp_path) -> Path:
    """This test's own copy of the library."""
    return Path(shutil.copytree(library, tmp_path / "Music"))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _hashes(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in _files(root)}


def _other_tags(path: Path) -> dict[str, str]:
    """Every tag except genre and provenance, comparable."""
    tags = mutagen.File(path).tags
    own = {k.upper() for k in OWN_KEYS}  # Vorbis comment names are case-insensitive
    return {key: repr(tags[key]) for key in tags.keys() if key.upper() not in own}


def _scan(runner: CliRunner, *args: object):
    return runner.invoke(app, ["scan", *map(str, args)])


def _json_rows(path: Path) -> dict[Path, dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {Path(r["path"]): r for r in rows}


def _fail_message(result) -> str:
    return f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{result.exception!r}"


# --- dry run and reports ----------------------------------------------------------------------


def test_dry_run_reports_every_file_and_changes_nothing(runner, lib, tiny_bundle, tmp_path):
    before = _hashes(lib)
    out_csv, out_json = tmp_path / "out.csv", tmp_path / "out.jsonl"
    result = _scan(runner, lib, "--model", tiny_bundle, "--dry-run", "--csv", out_csv, "--json", out_json,
                   "--jobs", "0")
    assert result.exit_code == 0, _fail_message(result)
    assert _hashes(lib) == before  # not a byte changed, no temporary files left

    with open(out_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [tuple(rows[0])] == [REPORT_COLUMNS]
    assert sorted(Path(r["path"]) for r in rows) == _files(lib)
    for row in rows:
        assert row["status"] == "would-tag", row
        assert row["genre"] in LABELS and row["genres"] == row["genre"]
        assert 1 / 3 <= float(row["confidence"]) <= 1.0
        assert row["previous"] == "" and row["error"] == ""
        assert row["top"].startswith(f"{row['genre']}=")

    records = _json_rows(out_json)
    assert sorted(records) == _files(lib)
    for path, rec in records.items():
        assert set(rec) == JSON_KEYS
        assert rec["status"] == "would-tag" and rec["genre"] in LABELS
        assert rec["genres"] == [rec["genre"]] and rec["previous"] == [] and rec["error"] == ""
        assert set(rec["probabilities"]) == LABELS
        assert sum(rec["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert rec["confidence"] == max(rec["probabilities"].values())
        assert [t["genre"] for t in rec["top"]][0] == rec["genre"]
        assert [t["p"] for t in rec["top"]] == sorted((t["p"] for t in rec["top"]), reverse=True)
        csv_row = next(r for r in rows if Path(r["path"]) == path)
        assert csv_row["genre"] == rec["genre"]

    # results go to stdout, one "old -> new" line per file, names printed literally (not as markup)
    for path in _files(lib):
        assert f"{path}: - -> {records[path]['genre']}" in result.stdout
    assert "8/8 files" in result.stdout and "8 would be tagged" in result.stdout
    assert "error" not in result.stderr


def test_scan_writes_tags_then_skips_then_force_retags(runner, lib, tiny_bundle, tmp_path):
    files = _files(lib)
    others = {p: _other_tags(p) for p in files}
    assert all(any("Title" in v for v in o.values()) for o in others.values())
    report = tmp_path / "first.jsonl"
    result = _scan(runner, lib, "--model", tiny_bundle, "--json", report, "--jobs", "0")
    assert result.exit_code == 0, _fail_message(result)
    records = _json_rows(report)
    for path in files:
        rec = records[path]
        assert rec["status"] == "tagged"
        state = read_tags(path)
        assert state.genres == (rec["genre"],)
        assert state.provenance == MODEL_ID
        assert _other_tags(path) == others[path], path  # title, artist... unchanged
    assert "8 tagged" in result.stdout
    assert not [p for p in lib.rglob("*") if p.name.endswith(TMP_SUFFIX)]
    tagged = _hashes(lib)

    again = tmp_path / "again.jsonl"
    result = _scan(runner, lib, "--model", tiny_bundle, "--json", again, "--jobs", "0")
    assert result.exit_code == 0, _fail_message(result)
    assert {r["status"] for r in _json_rows(again).values()} == {"skipped"}
    assert "8 skipped" in result.stdout
    assert _hashes(lib) == tagged

    forced = tmp_path / "forced.jsonl"
    result = _scan(runner, lib, "--model", tiny_bundle, "--json", forced, "--force", "--jobs", "0")
    assert result.exit_code == 0, _fail_message(result)
    rows = _json_rows(forced)
    assert {r["status"] for r in rows.values()} == {"tagged"}
    for path in files:
        assert rows[path]["previous"] == [records[path]["genre"]]
        assert read_tags(path).genres == (rows[path]["genre"],)
        assert _other_tags(path) == others[path]


def test_existing_genre_kept_unless_overwrite(runner, library, tiny_bundle, tmp_path):
    folder = tmp_path / "has-genre"
    for container in ("mp3", "flac", "m4a"):
        dst = folder / f"song.{container}"
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(library / NAMES[container], dst)
        _pretag(dst, title="T", artist="A", genre="Ambient")
    before = _hashes(folder)

    report = tmp_path / "kept.jsonl"
    result = _scan(runner, folder, "--model", tiny_bundle, "--json", report, "--jobs", "0")
    assert result.exit_code == 0, _fail_message(result)
    for path, rec in _json_rows(report).items():
        assert rec["status"] == "kept"
        assert rec["previous"] == ["Ambient"] and rec["genres"] == [] and rec["genre"]  # nothing written: no genres
        assert read_tags(path).genres == ("Ambient",)
    assert _hashes(folder) == before
    assert "3 kept existing genre" in result.stdout

    report = tmp_path / "overwritten.jsonl"
    result = _scan(runner, folder, "--model", tiny_bundle, "--json", report, "--overwrite", "--jobs", "0")
    assert result.exit_code == 0, _fail_message(result)
    for path, rec in _json_rows(report).items():
        assert rec["status"] == "tagged" and rec["previous"] == ["Ambient"]
        state = read_tags(path)
        assert state.genres == (rec["genre"],) and state.provenance == MODEL_ID


def test_a_file_that_keeps_its_genre_is_decoded_only_when_a_report_asks(runner, library, tiny_bundle, tmp_path,
                                                                        monkeypatch):
    import genretag.audio

    folder = tmp_path / "mixed"
    folder.mkdir()
    for container in ("mp3", "flac", "ogg"):
        shutil.copyfile(library / NAMES[container], folder / f"song.{container}")
    _pretag(folder / "song.mp3", title="T", artist="A", genre="Ambient")  # keeps its genre
    decoded: list[Path] = []
    real = genretag.audio.load_segments
    monkeypatch.setattr(genretag.audio, "load_segments", lambda path, *a, **k: decoded.append(Path(path)) or real(path, *a, **k))
    store = tmp_path / "store.sqlite"
    before = _hashes(folder)

    result = _scan(runner, folder, "--model", tiny_bundle, "--jobs", "0", "--store", store)
    assert result.exit_code == 0, _fail_message(result)
    assert sorted(p.name for p in decoded) == ["song.flac", "song.ogg"]  # the mp3's audio was never read
    assert "1 kept existing genre" in result.stdout and "2 tagged" in result.stdout
    assert read_tags(folder / "song.mp3").genres == ("Ambient",)
    assert _hashes(folder)[folder / "song.mp3"] == before[folder / "song.mp3"]
    from genretag.store import Store

    with Store(store) as opened:  # stored as kept, with no prediction
        (entry,) = opened.entries(folder / "song.mp3")
        assert entry.status == "kept" and entry.probabilities is None and entry.previous == ("Ambient",)

    decoded.clear()  # a rerun takes it from the store: nothing is read
    result = _scan(runner, folder, "--model", tiny_bundle, "--jobs", "0", "--store", store)
    assert result.exit_code == 0 and decoded == [] and "1 kept existing genre" in result.stdout, _fail_message(result)

    # apply keeps it from the store as the scan did; with --overwrite it needs a prediction the store lacks
    result = runner.invoke(app, ["apply", str(folder / "song.mp3"), "--model", str(tiny_bundle), "--store", str(store)])
    assert result.exit_code == 0 and "1 kept existing genre" in result.stdout, _fail_message(result)
    result = runner.invoke(app, ["apply", str(folder / "song.mp3"), "--model", str(tiny_bundle), "--store", str(store),
                                 "--overwrite"])
    assert result.exit_code == 1 and "kept its genre" in result.stderr, _fail_message(result)
    assert _hashes(folder)[folder / "song.mp3"] == before[folder / "song.mp3"]

    # --overwrite needs the prediction the store does not have: decoded (a dry run: the genre stays)
    result = _scan(runner, folder, "--model", tiny_bundle, "--jobs", "0", "--store", store, "--overwrite", "--dry-run")
    assert result.exit_code == 0 and [p.name for p in decoded] == ["song.mp3"], _fail_message(result)
    assert read_tags(folder / "song.mp3").genres == ("Ambient",)

    decoded.clear()  # a report asks for every file's prediction, the kept one's too
    report = tmp_path / "all.jsonl"
    result = _scan(runner, folder, "--model", tiny_bundle, "--jobs", "0", "--no-store", "--dry-run", "--json", report)
    assert result.exit_code == 0, _fail_message(result)
    assert [p.name for p in decoded] == ["song.mp3"]  # the other two are tagged by this model now: skipped
    kept = _json_rows(report)[folder / "song.mp3"]
    assert kept["status"] == "kept" and kept["genre"] in LABELS and kept["confidence"] > 0


def test_a_scan_of_files_that_all_keep_their_genre_loads_no_model(runner, library, tiny_bundle, tmp_path, monkeypatch):
    import genretag.models.runtime as runtime

    folder = tmp_path / "tagged"
    folder.mkdir()
    for container in ("mp3", "flac"):
        shutil.copyfile(library / NAMES[container], folder / f"song.{container}")
        _pretag(folder / f"song.{container}", title="T", artist="A", genre="Ambient")
    loads: list[str] = []
    real = runtime._load_verified
    monkeypatch.setattr(runtime, "_load_verified", lambda bundle, *a, **k: loads.append(bundle.card.model_id)
                        or real(bundle, *a, **k))

    result = _scan(runner, folder, "--model", tiny_bundle, "--jobs", "0", "--no-store")
    assert result.exit_code == 0 and "2 kept existing genre" in result.stdout, _fail_message(result)
    assert loads == []

    shutil.copyfile(library / NAMES["ogg"], folder / "untagged.ogg")  # one file needs the model: loaded once
    result = _scan(runner, folder, "--model", tiny_bundle, "--jobs", "0", "--no-store")
    assert result.exit_code == 0 and "1 tagged" in result.stdout, _fail_message(result)
    assert loads == [MODEL_ID]


def _two_files(library: Path, folder: Path) -> Path:
    folder.mkdir()
    for container in ("flac", "mp3"):
        shutil.copyfile(library / NAMES[container], folder / f"x.{container}")
    return folder


def test_top_k_writes_several_genres(runner, library, tiny_bundle, tmp_path):
    folder = _two_files(library, tmp_path / "topk")
    report = tmp_path / "topk.jsonl"
    result = _scan(runner, folder, "--model", tiny_bundle, "--top-k", "2", "--json", report, "--jobs", "0")
    assert result.exit_code == 0, _fail_message(result)
    for path, rec in _json_rows(report).items():
        best_two = tuple(t["genre"] for t in rec["top"][:2])
        assert tuple(rec["genres"]) == best_two
        assert read_tags(path).genres == best_two


def test_min_confidence_one_writes_nothing(runner, library, tiny_bundle, tmp_path):
    folder = _two_files(library, tmp_path / "unsure")
    before = _hashes(folder)
    report = tmp_path / "unsure.jsonl"
    result = _scan(runner, folder, "--model", tiny_bundle, "--min-confidence", "1.0", "--json", report, "--jobs", "0")
    assert result.exit_code == 0, _fail_message(result)
    records = _json_rows(report)
    if any(r["confidence"] >= 1.0 for r in records.values()):
        pytest.skip("the model is certain (a float32 softmax can round to exactly 1)")
    for path, rec in records.items():
        assert rec["status"] == "low-confidence" and rec["genres"] == []
        assert read_tags(path).genres == ()
    assert _hashes(folder) == before
    assert "2 low confidence" in result.stdout


def test_genre_map_renames(runner, library, tiny_bundle, tmp_path):
    folder = _two_files(library, tmp_path / "mapped")
    mapping = tmp_path / "map.csv"
    mapping.write_text("label,name\nLow,Bass Music\nMid,Middle of the Road\nHigh,Hi-NRG\n", encoding="utf-8")
    renamed = {"Low": "Bass Music", "Mid": "Middle of the Road", "High": "Hi-NRG", "label": "name"}
    report = tmp_path / "mapped.jsonl"
    result = _scan(runner, folder, "--model", tiny_bundle, "--genre-map", mapping, "--json", report, "--jobs", "0")
    assert result.exit_code == 0, _fail_message(result)
    for path, rec in _json_rows(report).items():
        assert rec["genre"] in LABELS  # the report keeps the model's label...
        assert read_tags(path).genres == (renamed[rec["genre"]],)  # ...the tag gets the mapped name


def test_malformed_genre_map_is_an_error(runner, lib, tiny_bundle, tmp_path):
    mapping = tmp_path / "map.csv"
    mapping.write_text("Low,Bass,extra\n", encoding="utf-8")
    result = _scan(runner, lib, "--model", tiny_bundle, "--genre-map", mapping, "--jobs", "0")
    assert result.exit_code == 2  # a usage error: nothing was scanned
    assert "error: genre map line 1: needs two columns (label,new name), got 3" in result.stderr
    assert "Traceback" not in result.output


# --- failures -----------------------------------------------------------------------------------


def test_corrupt_file_reported_and_the_rest_tagged(runner, lib, tiny_bundle, tmp_path):
    """Through the spawn process pool (--jobs 2): a bad file costs only itself."""
    rng = np.random.default_rng(0)
    broken = lib / "Artist [2001]" / "broken [1].mp3"
    broken.write_bytes(rng.integers(0, 255, 50_000, dtype=np.uint8).tobytes())  # no 0xFF: no MPEG sync
    content = broken.read_bytes()
    report = tmp_path / "report.jsonl"
    result = _scan(runner, lib, "--model", tiny_bundle, "--json", report, "--jobs", "2")
    assert result.exit_code == 1, _fail_message(result)
    error_lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(error_lines) == 1 and error_lines[0].endswith(f"({broken})"), result.stderr
    assert "Traceback" not in result.output
    assert "error:" not in result.stdout
    assert broken.read_bytes() == content
    records = _json_rows(report)
    assert records[broken]["status"] == "failed" and records[broken]["error"]
    assert records[broken]["genre"] == "" and records[broken]["confidence"] is None
    for path in _files(lib):
        if path != broken:
            assert records[path]["status"] == "tagged"
            assert read_tags(path).provenance == MODEL_ID
    assert "8 tagged" in result.stdout and "1 failed" in result.stdout


@pytest.mark.parametrize("bundled", ["shipped", "none"])
def test_no_model_is_a_one_line_error(runner, lib, tmp_path, monkeypatch, bundled):
    if bundled == "none":  # a package without its default model
        monkeypatch.setattr("genretag.models.registry.BUNDLED_DIR", tmp_path / "empty")
        result = _scan(runner, lib, "--jobs", "0")
        expected = "error: no default model is installed; train one with 'genretag train"
    else:
        result = _scan(runner, lib, "--model", "/nonexistent", "--jobs", "0")
        expected = "error: no model named '/nonexistent'"
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_missing_model_folder(runner, lib, tmp_path):
    result = _scan(runner, lib, "--model", tmp_path / "no-such-bundle", "--jobs", "0")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no model named")
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback(runner, lib):
    result = runner.invoke(app, ["--debug", "scan", str(lib), "--model", "/nonexistent", "--jobs", "0"])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ModelError" in result.stderr


def test_nonexistent_path_is_an_error(runner, tiny_bundle, tmp_path):
    missing = tmp_path / "nowhere"
    result = _scan(runner, missing, "--model", tiny_bundle, "--jobs", "0")
    assert result.exit_code == 2  # a path the user typed that is not there: a usage error, in one line
    assert result.stderr.splitlines() == [f"error: no such file or folder ({missing})"]


def test_nonexistent_path_beside_good_ones_stops_before_the_run(runner, library, tiny_bundle, tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copyfile(library / NAMES["flac"], folder / "one.flac")
    missing = tmp_path / "nowhere.mp3"
    report = tmp_path / "r.jsonl"
    result = _scan(runner, missing, folder, "--model", tiny_bundle, "--dry-run", "--json", report, "--jobs", "0")
    assert result.exit_code == 2  # a mistyped path is a usage error: nothing runs, nothing is written
    assert result.stderr.splitlines() == [f"error: no such file or folder ({missing})"]
    assert result.stdout == "" and not report.exists()


def test_folder_without_audio_is_an_error(runner, tiny_bundle, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "readme.txt").write_text("no music here")
    (folder / ".hidden.mp3").write_bytes(b"x")
    result = _scan(runner, folder, "--model", tiny_bundle)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: no audio files found in {folder}"


@pytest.mark.parametrize("args, message", [
    (["--frobnicate"], "No such option"),
    (["--top-k", "0"], "--top-k"),
    (["--min-confidence", "1.5"], "--min-confidence"),
    (["--jobs", "-1"], "--jobs"),
    (["--jobs", "many"], "--jobs"),
    ([], "Missing argument"),
])
def test_usage_errors_exit_2(runner, tmp_path, args, message):
    result = runner.invoke(app, ["scan", *([str(tmp_path)] if args else []), *args])
    assert result.exit_code == 2, _fail_message(result)
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_unknown_command_exits_2(runner):
    result = runner.invoke(app, ["tag-everything"])
    assert result.exit_code == 2 and "No such command" in result.stderr


# --- the small commands -----------------------------------------------------------------------------


def _python(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               COLUMNS="120")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def _imported_modules(importtime_stderr: str) -> set[str]:
    """Module names from ``python -X importtime`` output."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names


@pytest.mark.parametrize("args", [["--help"], ["scan", "--help"]])
def test_help_loads_no_tensorflow(args):
    proc = _python("-X", "importtime", "-m", "genretag", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "scan" in proc.stdout
    modules = _imported_modules(proc.stderr)
    assert "genretag.cli" in modules  # the parse worked
    heavy = sorted(m for m in modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "jax", "torch"))
    assert heavy == []


def test_version():
    proc = _python("-m", "genretag", "--version")
    assert proc.returncode == 0
    from genretag.api import find_model

    card = find_model("default").card
    assert proc.stdout.strip() == f"genretag {__version__} (default model: {card.name} {card.version})"


def test_models_lists_bundled(runner):
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, _fail_message(result)
    cards = sorted(BUNDLED_DIR.glob("*/card.json"))
    assert [c.parent.name for c in cards] == ["default"]  # the package ships its default model
    for card in cards:
        data = json.loads(card.read_text())
        assert card.parent.name in result.stdout
        assert f"{data['name']} {data['version']}" in result.stdout
        assert ", ".join(data["labels"]) in result.stdout


def test_models_without_bundled_models_says_so(runner, tmp_path, monkeypatch):
    monkeypatch.setattr("genretag.models.registry.BUNDLED_DIR", tmp_path / "empty")
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "No models are bundled" in result.stdout


def test_models_describes_a_bundle(runner, tiny_bundle):
    result = runner.invoke(app, ["models", str(tiny_bundle), "--json"])
    assert result.exit_code == 0, _fail_message(result)
    (card,) = json.loads(result.stdout)
    assert card["name"] == "tiny" and card["version"] == "0.1"
    assert set(card["labels"]) == LABELS and card["format"] == "genretag-bundle"
    table = runner.invoke(app, ["models", str(tiny_bundle)])
    assert table.exit_code == 0 and MODEL_ID in table.stdout and "cnn1d" in table.stdout


def test_models_unknown_bundle(runner, tmp_path):
    result = runner.invoke(app, ["models", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: not a model bundle: no card.json")


# --- real clips -----------------------------------------------------------------------------------


def test_real_corpus_clips_get_a_prediction(runner, corpus, tiny_bundle, tmp_path):
    """Three real mp3 clips (copied, never changed) through the spawn pool."""
    with open(corpus / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["path"].endswith(".mp3")]
    picked, seen = [], set()
    for row in rows:  # one clip from each of three genres
        if row["genre"] not in seen:
            seen.add(row["genre"])
            picked.append(row["path"])
        if len(picked) == 3:
            break
    assert len(picked) == 3
    folder = tmp_path / "clips"
    folder.mkdir()
    for i, rel in enumerate(picked):
        shutil.copyfile(corpus / rel, folder / f"{i}-{Path(rel).name}")
    before = _hashes(folder)
    report = tmp_path / "clips.jsonl"
    result = _scan(runner, folder, "--model", tiny_bundle, "--dry-run", "--overwrite", "--json", report,
                   "--jobs", "2")
    assert result.exit_code == 0, _fail_message(result)
    records = _json_rows(report)
    assert sorted(records) == _files(folder)
    for path, rec in records.items():
        assert rec["status"] == "would-tag" and rec["genre"] in LABELS
        assert tuple(rec["previous"]) == read_tags(path).genres  # the clips' own genres, shown as old
        assert sum(rec["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert _hashes(folder) == before


def test_error_lines_reach_a_real_stderr_while_keras_loads(tmp_path, tiny_bundle):
    """A real process: the model loads in a background thread (which hides fd 2 from
    TensorFlow's start-up chatter) while files fail; their error lines must still show."""
    import subprocess
    import sys

    for i in range(2):
        synth.write_audio(tmp_path / f"good{i}.wav", synth.tone_mix("Mid", seconds=4.0, seed=i))
    (tmp_path / "broken.mp3").write_bytes(b"\x00garbage" * 200)
    proc = subprocess.run([sys.executable, "-m", "genretag", "scan", str(tmp_path), "--model", str(tiny_bundle),
                           "--dry-run", "--jobs", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "broken.mp3" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
