"""Status ``not-music``: the default model's music score keeps genres off speech, noise and tones.

Generated noise, tones, beeps and speech (espeak-ng, skipped when absent) go through ``genretag scan`` with
the shipped bundle: each comes back ``not-music``, on screen and in the reports, the file byte for byte as it
was, exit status 0. Real corpus clips (the two lowest-scoring music clips among them: chant and mantra) are
not ``not-music``. The status survives the prediction store, ``apply`` and ``show``; a model without a music
score never says it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from synth import write_audio

from genretag.cli import app

RATE = 22_050


def _signals(folder: Path) -> dict[str, Path]:
    """Non-music: white noise, a 440 Hz tone, 1 kHz beeps, chirps (500 Hz - 4 kHz every 0.25 s), 8 s each."""
    rng = np.random.default_rng(7)
    t = np.arange(8 * RATE) / RATE
    period = t % 0.25
    signals = {
        "noise.wav": 0.1 * rng.standard_normal(len(t)),
        "tone-440.flac": 0.25 * np.sin(2 * np.pi * 440 * t),
        "beeps.wav": 0.2 * np.sin(2 * np.pi * 1000 * t) * ((t % 1.0) < 0.2),
        "chirps.flac": 0.2 * np.sin(2 * np.pi * (500 * period + 3500 * period**2 / (2 * 0.25))),
    }
    return {name: write_audio(folder / name, x.astype(np.float32), sr=RATE) for name, x in signals.items()}


@pytest.fixture(scope="module")
def non_music(tmp_path_factory) -> dict[str, Path]:
    return _signals(tmp_path_factory.mktemp("non_music"))


def _scan(runner, *args: str):
    return runner.invoke(app, ["scan", *args], catch_exceptions=False)


def _rows(report: Path) -> dict[str, dict]:
    return {Path(row["path"]).name: row for row in map(json.loads, report.read_text().splitlines())}


def test_generated_noise_tones_beeps_chirps_are_not_music_and_left_untouched(runner, non_music, tmp_path):
    before = {name: path.read_bytes() for name, path in non_music.items()}
    folder = next(iter(non_music.values())).parent
    report, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
    result = _scan(runner, str(folder), "-v", "--json", str(report), "--csv", str(table),
                   "--store", str(tmp_path / "store.sqlite"))
    assert result.exit_code == 0, result.output
    rows = _rows(report)
    assert {name: row["status"] for name, row in rows.items()} == {name: "not-music" for name in non_music}
    for name, row in rows.items():
        assert row["genres"] == [] and 0.0 <= row["music"] < 0.2, row
        assert f"{name}: - (not music: music score" in result.output, result.output
    assert {name: path.read_bytes() for name, path in non_music.items()} == before  # nothing written
    assert "4 not music" in result.output and "0 tagged" in result.output, result.output
    with open(table, newline="") as fh:
        import csv

        assert {row["status"] for row in csv.DictReader(fh)} == {"not-music"}


def test_not_music_comes_back_from_the_store_and_apply_writes_nothing(runner, non_music, tmp_path):
    folder = tmp_path / "files"
    shutil.copytree(next(iter(non_music.values())).parent, folder)
    store = str(tmp_path / "store.sqlite")
    assert _scan(runner, str(folder), "--dry-run", "--store", store).exit_code == 0
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    again = _scan(runner, str(folder), "-v", "--store", store, "--json", str(tmp_path / "again.jsonl"))
    assert again.exit_code == 0, again.output
    assert {row["status"] for row in _rows(tmp_path / "again.jsonl").values()} == {"not-music"}
    applied = runner.invoke(app, ["apply", str(folder), "-v", "--store", store], catch_exceptions=False)
    assert applied.exit_code == 0, applied.output
    assert "4 not music" in applied.output and "not music: music score" in applied.output, applied.output
    shown = runner.invoke(app, ["show", str(folder / "noise.wav"), "--store", store], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "not music (music score" in shown.output and "no genre written" in shown.output, shown.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_reviewed_report_row_left_not_music_is_not_written(runner, non_music, tmp_path):
    folder = tmp_path / "files"
    shutil.copytree(next(iter(non_music.values())).parent, folder)
    report = tmp_path / "r.jsonl"
    assert _scan(runner, str(folder), "--dry-run", "--no-store", "--json", str(report)).exit_code == 0
    before = (folder / "tone-440.flac").read_bytes()
    applied = runner.invoke(app, ["apply", str(report), "-v", "--no-store"], catch_exceptions=False)
    assert applied.exit_code == 0, applied.output
    assert "4 not music" in applied.output, applied.output
    assert (folder / "tone-440.flac").read_bytes() == before


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_espeak_speech_is_not_music(runner, tmp_path):
    folder = tmp_path / "speech"
    folder.mkdir()
    text = ("The committee met on Tuesday to discuss the budget for the coming year. After a long debate, the "
            "members agreed to postpone the decision until the next meeting.")
    for voice in ("en", "de"):
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(folder / f"{voice}.wav"), text], check=True)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    report = tmp_path / "r.jsonl"
    result = _scan(runner, str(folder), "--no-store", "--json", str(report))
    assert result.exit_code == 0, result.output
    assert {name: row["status"] for name, row in _rows(report).items()} == {"en.wav": "not-music",
                                                                           "de.wav": "not-music"}
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_real_music_is_not_not_music(runner, corpus, tmp_path):
    """Real clips, among them the two that scored lowest on AudioSet's Music alone (mantra 0.12, chant 0.17:
    0.53 and 0.45 with the singing classes) and the lowest music clip of the corpus with them (0.34)."""
    clips = ("4q/Q3/MT0011612883.mp3", "4q-multi/MT0004082588.mp3", "4q-multi/MT0011950450.mp3", "emotify/rock/1.mp3",
             "emotify/classical/1.mp3")
    folder = tmp_path / "music"
    folder.mkdir()
    for clip in clips:
        shutil.copyfile(corpus / clip, folder / clip.replace("/", "-"))
    report = tmp_path / "r.jsonl"
    result = _scan(runner, str(folder), "--dry-run", "--no-store", "--json", str(report), "--min-confidence", "0",
                   "--overwrite")
    assert result.exit_code == 0, result.output
    rows = _rows(report)
    assert len(rows) == len(clips)
    for name, row in rows.items():
        assert row["status"] == "would-tag" and row["genres"] and row["music"] >= 0.3, (name, row)  # floor 0.2


def test_the_shipped_card_has_a_music_score_and_a_model_without_one_never_says_not_music():
    import genretag
    from genretag.scan import Prediction, TrackFeatures, as_result

    card = genretag.load_model("default").bundle.card
    assert card.music is not None and card.music.floor == 0.2 and "Music" in card.music.raw["classes"]
    assert card.n_outputs == len(card.labels) + len(card.styles) + 1
    track = TrackFeatures(Path("x.wav"), "ok")
    quiet = Prediction(Path("x.wav"), ("A", "B"), np.array([0.9, 0.1], np.float32), 8, music=0.01)
    assert as_result(track, quiet, music_floor=0.2).status == "not-music"
    assert as_result(track, quiet, music_floor=None).status == "predicted"  # the model has no music score
    no_score = Prediction(Path("x.wav"), ("A", "B"), np.array([0.9, 0.1], np.float32), 8)
    assert as_result(track, no_score, music_floor=0.2).status == "predicted"


@pytest.mark.parametrize("floor", [-0.1, 1.5, "0.2", True, None])
def test_a_card_with_a_bad_music_floor_is_refused(tmp_path, floor):
    import genretag
    from genretag.errors import ModelError
    from genretag.models.bundle import read_bundle

    bundle = tmp_path / "b"
    bundle.mkdir()
    card = json.loads((genretag.load_model("default").bundle.path / "card.json").read_text())
    card["music"] = {"floor": floor}
    (bundle / "card.json").write_text(json.dumps(card))  # the card is read before any weights
    with pytest.raises(ModelError, match=r"malformed card.json: music floor .* is not a number from 0 to 1"):
        read_bundle(bundle)


def test_store_round_trip_of_not_music_and_a_schema_5_store_is_brought_to_6(tmp_path):
    import sqlite3

    from genretag.scan.recorder import _from_entry
    from genretag.scan import Prediction, ScanResult
    from genretag.store import SCHEMA_VERSION, Identity, Store

    audio = write_audio(tmp_path / "talk.wav", np.zeros(RATE, np.float32) + 0.01)
    probs = np.array([0.7, 0.2, 0.1], np.float32)
    prediction = Prediction(audio, ("A", "B", "C"), probs, 8, music=0.0625)
    old = tmp_path / "old.sqlite"
    Store(old).close()
    db = sqlite3.connect(old)  # a schema 5 store (before not-music): no music column
    db.execute("ALTER TABLE predictions DROP COLUMN music")
    db.execute("UPDATE meta SET value = '5' WHERE key = 'schema'")
    db.commit()
    db.close()
    assert SCHEMA_VERSION == 6
    with Store(old) as store:
        assert store.schema == 6
        store.put(ScanResult(audio, "not-music", prediction=prediction), model="m", identity=Identity.of(audio))
        store.put(ScanResult(audio, "predicted", prediction=prediction), model="n", identity=Identity.of(audio))
        entry, other = store.get(audio, "m"), store.get(audio, "n")
    assert (entry.status, entry.music, entry.labels, entry.outcome) == ("not-music", 0.0625, ("A", "B", "C"),
                                                                         "not-music")
    assert np.array_equal(entry.probabilities, probs)
    assert (other.status, other.music) == ("predicted", 0.0625)
    again = _from_entry(entry, None, path=audio)
    assert again.status == "not-music" and again.prediction.music == 0.0625 and again.genres == ()
    with sqlite3.connect(old) as db:
        db.execute("UPDATE predictions SET music = 7.0 WHERE model = 'm'")  # a damaged row: taken for no row
    with Store(old, readonly=True) as store:
        assert store.get(audio, "m") is None and store.damaged == {audio}
