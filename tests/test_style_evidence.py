"""The default model's shipped styles and the check that chose them: ``tools/add_styles.py`` (``SHIPPED``),
``tools/check_styles.py`` (check labels from the corpus and from ``tools/style_artists.csv``), and the
shipped styles attached to the default bundle, written on real metal songs (Debian's
``fretsonfire-songs-muldjord``; skipped where the package is absent)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import synth

from genretag.models.fusion import STYLE_CLASSES

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import add_styles
import check_styles

MULDJORD = Path("/usr/share/games/fretsonfire/data/songs/muldjord")


def test_shipped_styles_are_audioset_candidates_with_a_floor_and_their_evidence():
    assert set(add_styles.SHIPPED) == {"Heavy Metal", "Punk", "Reggae", "Latin"}
    for name, entry in add_styles.SHIPPED.items():
        assert name in STYLE_CLASSES
        assert 0.0 < entry["floor"] < 1.0
        assert "held out" in entry["evidence"]


def test_the_artists_file_names_only_candidate_styles_once_per_artist():
    with (ROOT / "tools" / "style_artists.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    artists = [row["artist"] for row in rows]
    assert len(artists) == len(set(artists)) and all(a.strip() == a and a for a in artists)
    named = {s for row in rows for s in row["styles"].split(";") if s}
    assert named <= set(STYLE_CLASSES), named - set(STYLE_CLASSES)
    assert all(row["known_for"].strip() for row in rows)


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    """labels.csv and labels-multi.csv with 4Q rows only (no audio is read for them)."""
    (tmp_path / "labels.csv").write_text(
        "path,genre,source,source_genre,artist,title\n"
        "4q/a.mp3,International,4q,Latin,Celia Cruz,La Bikina\n"
        "4q/b.mp3,International,4q,Latin,Gloria Estefan,Mi Buen Amor\n"
        "4q/c.mp3,Rock,4q,Pop/Rock,Slayer,Snuff\n"
        "4q/d.mp3,Rock,4q,Pop/Rock,Somebody Unknown,Song\n", encoding="utf-8")
    (tmp_path / "labels-multi.csv").write_text(
        "path,genres,source,source_genre,artist,title\n4q-multi/e.mp3,Pop;Rock,4q,Pop/Rock,Spoon,Mountain\n",
        encoding="utf-8")
    return tmp_path


def test_check_labels_add_the_artists_styles_and_mark_known_artists_without_one(tiny_corpus):
    artists = {"Celia Cruz": {"Salsa", "Latin"}, "Slayer": {"Heavy Metal"}, "Spoon": set()}
    labels = check_styles.check_labels(tiny_corpus, artists)
    at = {path.name: found for path, found in labels.items()}
    assert at["a.mp3"] == {"Latin", "Salsa"}
    assert at["b.mp3"] == {"Latin"}
    assert at["c.mp3"] == {"Pop/Rock", "Heavy Metal"}
    assert at["d.mp3"] == {"Pop/Rock"}  # not judged: only a parent genre
    assert at["e.mp3"] == {"Pop/Rock", check_styles.ARTIST_NONE}
    assert check_styles.check_labels(tiny_corpus)[tiny_corpus.resolve() / "4q/c.mp3"] == {"Pop/Rock"}


def test_a_style_is_right_only_where_a_check_label_names_it(tiny_corpus):
    labels = check_styles.check_labels(tiny_corpus, {"Celia Cruz": {"Salsa", "Latin"}, "Spoon": set(),
                                                     "Slayer": {"Heavy Metal"}})
    rows = [{"path": path, "genre": "International" if path.name in ("a.mp3", "b.mp3") else "Rock",
             "styles": {"Salsa": 0.3, "Heavy Metal": 0.3}} for path in labels]
    salsa = check_styles.tally(rows, "Salsa", "International", 0.2, labels)
    # AllMusic's Latin does not confirm Salsa (Gloria Estefan is checked, and wrong); Celia Cruz's artist label does
    assert (salsa["written"], salsa["checked"], salsa["right"]) == (2, 2, 1)
    metal = check_styles.tally(rows, "Heavy Metal", "Rock", 0.2, labels)
    # Slayer right, Spoon known for no candidate style (wrong), the unknown artist not checked
    assert (metal["written"], metal["checked"], metal["right"]) == (3, 2, 1)
    assert check_styles.tally(rows, "Heavy Metal", "Rock", 0.35, labels)["written"] == 0


@pytest.mark.slow
@pytest.mark.skipif(not (MULDJORD / "chaos_god" / "song.ogg").is_file(),
                    reason="Debian package fretsonfire-songs-muldjord is not installed")
def test_the_default_model_with_its_shipped_styles_writes_heavy_metal_on_death_metal_songs(runner, tmp_path):
    """The default bundle with the shipped styles (attached to a copy by ``tools/add_styles.py`` while the
    bundled default has none), then ``scan --styles`` of the 4 songs of a death-metal band: a style follows
    Rock only, and only Heavy Metal."""
    from genretag.cli import app

    bundle = ROOT / "genretag" / "bundled" / "default"
    card = json.loads((bundle / "card.json").read_text())
    if card.get("styles"):
        assert [s["name"] for s in card["styles"]] == list(add_styles.SHIPPED)
    else:
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        (bundle / "model.keras").write_bytes((ROOT / "genretag" / "bundled" / "default" / "model.keras").read_bytes())
        card.pop("runtime", None)  # the copy runs on Keras; no stale ONNX
        (bundle / "card.json").write_text(json.dumps(card))
        done = subprocess.run([sys.executable, str(ROOT / "tools" / "add_styles.py"), str(bundle)],
                              check=False, capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "4 style(s) attached: Heavy Metal, Punk, Reggae, Latin" in done.stdout
        assert "genre block unchanged: max |diff| 0.0e+00" in done.stdout
    report = tmp_path / "muldjord.jsonl"
    songs = sorted(MULDJORD.glob("*/song.ogg"))
    result = runner.invoke(app, ["scan", *map(str, songs), "--model", str(bundle), "--styles", "--dry-run",
                                 "--no-store", "--overwrite", "--min-confidence", "0", "--jobs", "0",
                                 "--json", str(report)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(rows) == 4 and all(set(r["styles"]) == set(add_styles.SHIPPED) for r in rows)
    written = [r["genres"] for r in rows]
    assert sum(g == ["Rock", "Heavy Metal"] for g in written) >= 2, written
    assert all(g in (["Rock"], ["Rock", "Heavy Metal"]) or "Rock" not in g for g in written), written
    assert not any(s in g for g in written for s in ("Punk", "Reggae", "Latin")), written


def test_a_json_report_of_a_model_with_styles_keeps_going_past_a_silent_file(runner, styles_bundle, tmp_path):
    """A silent file has no prediction: its row has no style scores (the run went down with an AttributeError
    on the first such file, e.g. wesnoth's ``silence.ogg``), and the files after it are still reported."""
    from genretag.cli import app

    synth.write_audio(tmp_path / "a-silence.flac", np.zeros(22_050 * 4, np.float32))
    synth.write_audio(tmp_path / "b-high.flac", synth.tone_mix("High", seconds=4.0, seed=7))
    report = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["scan", str(tmp_path), "--model", str(styles_bundle), "--styles", "--dry-run",
                                 "--no-store", "--jobs", "0", "--json", str(report)])
    assert "internal error" not in result.output, result.output
    rows = {Path(r["path"]).name: r for r in map(json.loads, report.read_text().splitlines())}
    assert rows["a-silence.flac"]["status"] == "silent" and rows["a-silence.flac"]["styles"] == {}
    assert set(rows["b-high.flac"]["styles"]) == {"Shrill", "Piercing", "Rumble"}
    assert result.exit_code == 0, result.output
