"""Issue 22, section B (cases 8-12): the user's genre and the user's decisions are never overwritten without
``--overwrite``: edits between read and write, tag editors that keep the mtime, files replaced by other
music, re-calibrated cards, ``--write-to genretag``, reviews. Real files, a real SQLite store."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from mutagen.flac import FLAC

import genretag
import synth
from genretag.cli import app
from genretag.store import Store
from genretag.tags import read_tags


@pytest.fixture
def lib(tmp_path) -> Path:
    root = tmp_path / "lib"
    for i, label in enumerate(("Low", "Mid", "High", "Mid")):
        synth.write_audio(root / f"{i}-{label}.flac", synth.tone_mix(label, seconds=4.0, seed=300 + i))
        FLAC(root / f"{i}-{label}.flac").save()  # padding, as taggers leave it: a small edit keeps the size
    return root


def _run(runner, *args):
    return runner.invoke(app, [*map(str, args)])


def _rows(report: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in map(json.loads, report.read_text(encoding="utf-8").splitlines())}


def hand_edit(path: Path, genre: str, *, keep_mtime: bool = False) -> None:
    """What a tag editor does: set the genre in place (FLAC padding keeps the size), optionally putting the
    modification time back (as Mp3tag's "preserve file modification time" does)."""
    st = os.stat(path)
    audio = FLAC(path)
    audio["GENRE"] = [genre]
    audio.save()
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size


def replace_with_other_music(path: Path, label: str, *, seed: int, same_mtime: bool = False) -> None:
    """Another recording under the same name (renamed over it, as a download or a copy does)."""
    st = os.stat(path)
    new = path.with_name(".new" + path.suffix)
    synth.write_audio(new, synth.tone_mix(label, seconds=4.0, seed=seed))
    if same_mtime:
        os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, path)


# --- 8: an edit between read and write --------------------------------------------------------------


def test_a_genre_set_after_the_file_was_read_is_kept(lib, knn_bundle, tmp_path):
    """--group album predicts every file before the first write: the user sets a genre meanwhile."""
    victim = lib / "2-High.flac"
    edited = []

    def meanwhile(done, total):
        if done == total and not edited:  # every file read and predicted, none written yet
            hand_edit(victim, "Punk")
            edited.append(victim)

    options = genretag.ScanOptions(group="album", jobs=0)
    with Store(tmp_path / "p.sqlite") as store:
        results = {r.path.name: r for r in genretag.tag([lib], model=knn_bundle, options=options,
                                                       on_progress=meanwhile, store=store)}
    assert edited
    assert read_tags(victim).genres == ("Punk",) and read_tags(victim).provenance is None
    assert results["2-High.flac"].status == "kept"
    assert results["2-High.flac"].notes[-1] == "its genre became 'Punk' after it was read: kept"
    assert {results[n].status for n in ("0-Low.flac", "1-Mid.flac", "3-Mid.flac")} == {"tagged"}


def test_write_genre_decides_on_the_tags_under_its_lock(lib):
    path = lib / "1-Mid.flac"
    hand_edit(path, "Jazz")
    before = path.read_bytes()
    seen = []

    def keep_a_genre(state):
        seen.append(state.genres)
        return None if state.genres else genretag.tags.Plan(("Rock",), ("rel 1",))

    state = genretag.write_genre(path, ["Rock"], provenance="rel 1", choose=keep_a_genre)
    assert seen == [("Jazz",)] and state.genres == ("Jazz",) and path.read_bytes() == before
    other = lib / "0-Low.flac"
    assert genretag.write_genre(other, ["Rock"], provenance="rel 1", choose=keep_a_genre).genres == ("Rock",)


# --- 9: a tag editor that keeps the mtime ------------------------------------------------------------


@pytest.mark.parametrize("command", ["scan", "apply"])
def test_a_hand_edit_that_keeps_size_and_mtime_is_never_overwritten(runner, lib, knn_bundle, tmp_path, command):
    store = tmp_path / "p.sqlite"
    assert _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0",
                "--dry-run").exit_code == 0
    edited = lib / "1-Mid.flac"
    hand_edit(edited, "Punk", keep_mtime=True)
    report = tmp_path / "r.jsonl"
    jobs = ("--jobs", "0") if command == "scan" else ()
    result = _run(runner, command, lib, "--model", knn_bundle, "--store", store, *jobs, "--json", report)
    assert read_tags(edited).genres == ("Punk",) and read_tags(edited).provenance is None
    row = _rows(report)["1-Mid.flac"]
    if command == "scan":  # read again: it keeps its genre
        assert result.exit_code == 0, result.output
        assert row["status"] == "kept" and row["previous"] == ["Punk"]
    else:  # the store's entry is not this file any more
        assert result.exit_code == 1
        assert f"error: changed since it was predicted (scan it again) ({edited})" in result.stderr
    assert {_rows(report)[n]["status"] for n in ("0-Low.flac", "2-High.flac", "3-Mid.flac")} == {"tagged"}


# --- 10: a file replaced by other music; a re-calibrated card ----------------------------------------


def test_a_file_replaced_after_decoding_does_not_get_the_old_files_genre(lib, knn_bundle, tmp_path):
    victim = lib / "0-Low.flac"
    swapped = []

    def meanwhile(done, total):
        if done == total and not swapped:
            replace_with_other_music(victim, "High", seed=77)
            swapped.append(victim.read_bytes())

    options = genretag.ScanOptions(group="album", jobs=0)
    results = {r.path.name: r for r in genretag.tag([lib], model=knn_bundle, options=options, on_progress=meanwhile)}
    assert results["0-Low.flac"].status == "failed"
    assert results["0-Low.flac"].error == "changed since it was predicted (scan it again)"
    assert victim.read_bytes() == swapped[0] and read_tags(victim).genres == ()


def test_another_file_with_the_same_size_and_mtime_gets_no_stored_prediction(runner, lib, knn_bundle, tmp_path):
    store = tmp_path / "p.sqlite"
    assert _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0",
                "--dry-run").exit_code == 0
    victim = lib / "4-Low.wav"
    synth.write_audio(victim, synth.tone_mix("Low", seconds=4.0, seed=5))
    assert _run(runner, "scan", victim, "--model", knn_bundle, "--store", store, "--jobs", "0",
                "--dry-run").exit_code == 0
    size = victim.stat().st_size
    replace_with_other_music(victim, "High", seed=301, same_mtime=True)  # other music, same size and mtime
    assert victim.stat().st_size == size and victim.stat().st_mtime_ns == os.stat(victim).st_mtime_ns
    result = _run(runner, "apply", lib, "--model", knn_bundle, "--store", store)
    assert result.exit_code == 1
    assert f"error: changed since it was predicted (scan it again) ({victim})" in result.stderr
    assert read_tags(victim).genres == ()


def test_a_recalibrated_card_is_another_model_in_the_store(runner, lib, knn_bundle, tmp_path, decoded):
    bundle = tmp_path / "bundle"
    shutil.copytree(knn_bundle, bundle)
    store = tmp_path / "p.sqlite"
    assert _run(runner, "scan", lib, "--model", bundle, "--store", store, "--jobs", "0", "--dry-run").exit_code == 0
    assert len(decoded) == 4
    card = json.loads((bundle / "card.json").read_text())
    card["calibration"] = {**card.get("calibration", {}), "temperature": 3.0}
    (bundle / "card.json").write_text(json.dumps(card))
    decoded.clear()
    report, fresh = tmp_path / "r.jsonl", tmp_path / "fresh.jsonl"
    assert _run(runner, "scan", lib, "--model", bundle, "--store", store, "--jobs", "0", "--dry-run",
                "--json", report).exit_code == 0
    assert len(decoded) == 4  # predicted again, not taken from the store
    assert _run(runner, "scan", lib, "--model", bundle, "--no-store", "--jobs", "0", "--dry-run",
                "--json", fresh).exit_code == 0
    assert {n: r["probabilities"] for n, r in _rows(report).items()} == \
        {n: r["probabilities"] for n, r in _rows(fresh).items()}


# --- 11: --write-to genretag leaves the genre field the user's ---------------------------------------


def test_a_curated_genre_stays_after_write_to_genretag(runner, lib, knn_bundle, tmp_path):
    store = tmp_path / "p.sqlite"
    curated = lib / "1-Mid.flac"
    hand_edit(curated, "Romantic Classical")
    first = _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0", "--write-to", "genretag")
    assert first.exit_code == 0, first.output
    assert read_tags(curated).genres == ("Romantic Classical",) and read_tags(curated).own_genres == ("Mid",)
    for again in (["apply", lib], ["apply", lib, "--group", "album"],
                  ["apply", lib, "--top-k", "2", "--next-min-confidence", "0"],
                  ["scan", lib, "--force", "--jobs", "0"]):
        result = _run(runner, *again, "--model", knn_bundle, "--store", store)
        assert result.exit_code == 0, (again, result.output)
        assert read_tags(curated).genres == ("Romantic Classical",), again
    assert read_tags(lib / "0-Low.flac").genres == ("Low",)  # an untouched genre field is genretag's to fill
    shown = _run(runner, "show", curated, "--store", store, "--json")
    tags = json.loads(shown.stdout)["tags"]
    assert tags["genres"] == ["Romantic Classical"] and tags["genre_by"] == "user"
    assert tags["genretag"] == ["Mid"]
    text = _run(runner, "show", curated, "--store", store).stdout
    assert "genre: Romantic Classical (yours: genretag did not write it)" in text
    assert "genretag's own field: Mid (written by rel 1)" in text


# --- 12: a review is remembered --------------------------------------------------------------------


def _review(runner, lib, knn_bundle, tmp_path, store, edits: dict[str, list[str]]) -> Path:
    report = tmp_path / "review.jsonl"
    assert _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0", "--dry-run",
                "--json", report).exit_code == 0
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    for row in rows:
        row["genres"] = edits.get(Path(row["path"]).name, row["genres"])
    report.write_text("".join(json.dumps(r) + "\n" for r in rows))
    applied = _run(runner, "apply", report, "--model", knn_bundle, "--store", store)
    assert applied.exit_code == 0, applied.output
    return report


def test_a_reviewed_decision_is_never_changed_without_overwrite_naming_the_file(runner, lib, knn_bundle, tmp_path):
    store = tmp_path / "p.sqlite"
    alone, changed = lib / "1-Mid.flac", lib / "0-Low.flac"
    _review(runner, lib, knn_bundle, tmp_path, store, {"1-Mid.flac": [], "0-Low.flac": ["Deep Bass"]})
    assert read_tags(alone).genres == () and read_tags(changed).genres == ("Deep Bass",)
    for again in (["scan", lib, "--jobs", "0"], ["scan", lib, "--jobs", "0", "--force"],
                  ["apply", lib, "--group", "album"], ["apply", lib, "--top-k", "2", "--next-min-confidence", "0"],
                  ["apply", lib, "--overwrite"]):  # --overwrite on the folder names neither file
        result = _run(runner, *again, "--model", knn_bundle, "--store", store)
        assert result.exit_code == 0, (again, result.output)
        assert read_tags(alone).genres == () and read_tags(changed).genres == ("Deep Bass",), again
    assert "reviewed genre" in read_tags(changed).provenance_values
    report = tmp_path / "r.jsonl"
    _run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0", "--force", "--json", report)
    assert _rows(report)["1-Mid.flac"]["status"] == "kept"
    assert _rows(report)["1-Mid.flac"]["notes"] == [
        "reviewed: left alone (only --overwrite naming the file changes a reviewed file)"]
    named = _run(runner, "apply", changed, alone, "--overwrite", "--model", knn_bundle, "--store", store)
    assert named.exit_code == 0, named.output
    assert read_tags(changed).genres == ("Low",) and read_tags(alone).genres == ("Mid",)


# --- a month in a library ----------------------------------------------------------------------------


def _title(path: Path) -> str:
    return FLAC(path)["TITLE"][0]


def test_a_month_in_a_library(runner, tmp_path, knn_bundle):
    """Scan, review (leave one alone, change one), apply, rescan, --group album, --top-k 2, --force, a new
    file, a hand edit keeping the mtime, a file replaced by other music, undo of one file: every file the
    user decided has exactly the user's genre, the rest genretag's, every title as it was."""
    lib, store = tmp_path / "lib", tmp_path / "p.sqlite"
    names = {"a": "Low", "b": "Mid", "c": "High", "d": "Low", "f": "Mid", "g": "High", "h": "Mid"}
    for i, (name, label) in enumerate(names.items()):
        path = lib / f"{name}.flac"
        synth.write_audio(path, synth.tone_mix(label, seconds=4.0, seed=500 + i))
        audio = FLAC(path)
        audio["TITLE"] = [f"Title {name}"]
        audio["ALBUM"] = ["One Album"]
        if name == "h":
            audio["GENRE"] = ["Jazz"]  # the user's from the start
        audio.save()
    scan = ("--model", knn_bundle, "--store", store)

    def run(*args, code=0):
        result = _run(runner, *args, *scan)
        assert result.exit_code == code, (args, result.output)
        return result

    review = tmp_path / "review.jsonl"
    run("scan", lib, "--jobs", "0", "--dry-run", "--json", review)
    rows = [json.loads(line) for line in review.read_text().splitlines()]
    model_says = {Path(r["path"]).stem: tuple(r["genres"]) for r in rows}
    for row in rows:
        row["genres"] = {"a": [], "b": ["Deep Bass"]}.get(Path(row["path"]).stem, row["genres"])
    review.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run("apply", review)
    run("scan", lib, "--jobs", "0")
    run("apply", lib, "--group", "album")
    run("apply", lib, "--top-k", "2", "--next-min-confidence", "0")
    run("scan", lib, "--jobs", "0", "--force")
    synth.write_audio(lib / "e.flac", synth.tone_mix("High", seconds=4.0, seed=600))  # a new file
    hand_edit(lib / "f.flac", "Blues", keep_mtime=True)
    replace_with_other_music(lib / "g.flac", "Low", seed=601)  # other music, no tags at all
    last = tmp_path / "last.jsonl"
    run("scan", lib, "--jobs", "0", "--json", last)
    now_says = {Path(r["path"]).stem: tuple(r["genres"]) for r in map(json.loads, last.read_text().splitlines())}
    user_decided = {n: read_tags(lib / f"{n}.flac").genres for n in "abfh"}
    assert user_decided == {"a": (), "b": ("Deep Bass",), "f": ("Blues",), "h": ("Jazz",)}
    assert read_tags(lib / "c.flac").genres == model_says["c"]
    undo = _run(runner, "undo", lib / "c.flac")
    assert undo.exit_code == 0, undo.output

    genres = {p.stem: read_tags(p).genres for p in sorted(lib.glob("*.flac"))}
    assert genres == {"a": (), "b": ("Deep Bass",), "c": (), "d": model_says["d"], "e": now_says["e"],
                      "f": ("Blues",), "g": now_says["g"], "h": ("Jazz",)}
    assert genres["e"] and genres["g"] and read_tags(lib / "g.flac").provenance == "rel 1"
    assert {n: _title(lib / f"{n}.flac") for n in names if n != "g"} == {n: f"Title {n}" for n in names if n != "g"}
    assert all(FLAC(lib / f"{n}.flac")["ALBUM"] == ["One Album"] for n in names if n != "g")
