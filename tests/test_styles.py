"""Styles beneath genres (``scan --styles``): the card, the model's wider output, the decision, the tags
written, the reports, the store (and its migration from schema 1), ``--group`` and ``show``.

The model is ``styles_bundle`` (conftest): the tiny trained cnn1d with a real sigmoid style head,
``Concatenate([softmax genres, sigmoid styles])``; its styles are Shrill and Piercing beneath High, Rumble
beneath Low (floors 0.5). Nothing here mocks the model runtime.
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import mutagen
import numpy as np
import pytest
import genretag
import synth
from mutagen.id3 import ID3
from typer.testing import CliRunner

from genretag.cli import app
from genretag.config import DecisionOptions, ScanOptions
from genretag.errors import ModelError, UsageError
from genretag.models.bundle import CARD_FILE, Style, read_bundle
from genretag.models.runtime import track_mean
from genretag.scan import Prediction, choose_genres, pooled
from genretag.store import SCHEMA_VERSION, Store
from genretag.tags import read_tags

MODEL_ID = "tiny-styles 0.1"
STYLES = (Style("Shrill", "High", 0.5), Style("Piercing", "High", 0.5), Style("Rumble", "Low", 0.5))


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    """Two 4-s High clips, a Low and a Mid one (FLAC). The tiny model often calls Mid High: tests assert
    what it reliably gets (High, Low), and only the rule for the Mid clip."""
    root = tmp_path_factory.mktemp("styles_songs")
    for i, label in enumerate(("High", "High", "Low", "Mid")):
        synth.write_audio(root / f"{i}-{label}.flac", synth.tone_mix(label, seconds=4.0, seed=700 + i))
    return root


@pytest.fixture
def lib(songs, tmp_path) -> Path:
    return Path(shutil.copytree(songs, tmp_path / "lib"))


def _run(runner: CliRunner, *args: object):
    return runner.invoke(app, [*map(str, args)])


def _ok(result) -> None:
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.stdout}\n{result.stderr}\n{result.exception!r}"


def _rows(report: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in map(json.loads, report.read_text(encoding="utf-8").splitlines())}


def _with_card(bundle: Path, folder: Path, **changes) -> Path:
    """A copy of ``bundle`` whose card.json has ``changes`` (the weights, and so their sha256, unchanged)."""
    copy = Path(shutil.copytree(bundle, folder))
    card = json.loads((copy / CARD_FILE).read_text())
    card.update(changes)
    (copy / CARD_FILE).write_text(json.dumps(card))
    return copy


def _prediction(genres: dict[str, float], styles: dict[str, float], *, windows: int = 1) -> Prediction:
    return Prediction(Path("x.flac"), tuple(genres), np.array(list(genres.values()), np.float32), windows,
                      tuple(styles), np.array(list(styles.values()), np.float32))


ROCKISH = _prediction({"Rock": 0.6, "Pop": 0.3, "Jazz": 0.1}, {"Metal": 0.62, "Punk": 0.7, "Synthpop": 0.2})
ROCK_STYLES = (Style("Metal", "Rock", 0.35), Style("Punk", "Rock", 0.75), Style("Synthpop", "Pop", 0.3))
"""A track the model hears as Rock, and styles with their own floors (Punk scores above Metal, under its floor)."""


# --- the card --------------------------------------------------------------------------------------


def test_a_card_reads_its_styles_and_writes_them_back_with_their_other_keys(styles_bundle):
    card = read_bundle(styles_bundle).card
    assert [(s.name, s.parent, s.floor) for s in card.styles] == [(s.name, s.parent, s.floor) for s in STYLES]
    assert card.n_outputs == 6 and card.style_names == ("Shrill", "Piercing", "Rumble")
    written = card.to_dict()["styles"]
    assert written[0] == {"name": "Shrill", "parent": "High", "floor": 0.5, "precision": 0.9}
    again = type(card).from_dict(card.to_dict(), styles_bundle / CARD_FILE)
    assert again == card and again.to_dict() == card.to_dict()


def test_a_card_without_styles_has_none(tiny_bundle):
    card = read_bundle(tiny_bundle).card
    assert card.styles == () and "styles" not in card.to_dict() and card.n_outputs == len(card.labels)


@pytest.mark.parametrize("styles, reason", [
    ([{"name": "Metal", "parent": "Rock", "floor": 0.3}], "style 'Metal' has parent 'Rock', which is not one of the labels"),
    ([{"name": "Shrill", "parent": "High", "floor": 0.3}] * 2, "style 'Shrill' is listed twice"),
    ([{"name": "Low", "parent": "High", "floor": 0.3}], "style 'Low' has the name of a genre label"),
    ([{"name": "Shrill", "parent": "High", "floor": 1.5}], "style 'Shrill': floor 1.5 is not a number from 0 to 1"),
    ([{"name": "Shrill", "parent": "High", "floor": "high"}], "style 'Shrill': floor 'high' is not a number from 0 to 1"),
    ([{"name": "Shrill", "parent": "High"}], "style 'Shrill' lacks floor"),
    (["Shrill"], "a style must be an object, got 'Shrill'"),
    ({"Shrill": "High"}, "'styles' must be a list, got dict"),
])
def test_a_card_with_bad_styles_is_one_model_error_naming_it(runner, styles_bundle, tmp_path, styles, reason):
    bad = _with_card(styles_bundle, tmp_path / "bad", styles=styles)
    with pytest.raises(ModelError) as info:
        read_bundle(bad)
    assert info.value.reason == f"malformed card.json: {reason}" and info.value.path == bad / CARD_FILE
    clip = synth.write_audio(tmp_path / "a.flac", synth.tone_mix("High", seconds=2.0))
    result = _run(runner, "scan", clip, "--model", bad, "--dry-run", "--jobs", "0")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: malformed card.json: {reason} ({bad / CARD_FILE})"]


def test_a_model_whose_output_is_not_labels_plus_styles_is_refused(styles_bundle, tmp_path):
    from genretag.models.runtime import load_classifier

    fewer = _with_card(styles_bundle, tmp_path / "fewer", styles=[{"name": "Shrill", "parent": "High", "floor": 0.5}])
    with pytest.raises(ModelError, match=r"does not match card.json \(3 labels \+ 1 styles\)"):
        load_classifier(read_bundle(fewer))


# --- the model's output, per window and per track -------------------------------------------------


def test_track_mean_calibrates_the_genre_block_only():
    windows = np.array([[0.7, 0.2, 0.1, 0.9, 0.2], [0.5, 0.3, 0.2, 0.7, 0.4]], np.float32)
    plain = track_mean(windows, n_genres=3)
    assert plain[:3] == pytest.approx([0.6, 0.25, 0.15]) and plain[3:] == pytest.approx([0.8, 0.3])
    hot = track_mean(windows, n_genres=3, temperature=2.0)
    expected = np.sqrt([0.6, 0.25, 0.15])
    assert hot[:3] == pytest.approx(expected / expected.sum()) and hot[:3].sum() == pytest.approx(1.0)
    assert hot[3:] == pytest.approx([0.8, 0.3])  # the style scores are not a distribution: untouched
    assert track_mean(windows[:, :3]) == pytest.approx(plain[:3])  # a model without styles: as before


def test_the_keras_model_emits_genres_then_styles_and_scan_keeps_them_apart(styles_bundle, songs):
    import genretag
    from genretag.config import WindowPolicy
    from genretag.scan import extract_track

    model = genretag.load_model(styles_bundle)
    track = extract_track(songs / "0-High.flac", config=model.bundle.card.features, policy=WindowPolicy())
    out = model.classifier.predict(track.windows)
    assert out.shape == (len(track.windows), 6)
    assert out[:, :3].sum(axis=1) == pytest.approx(np.ones(len(out)), abs=1e-5)  # softmax genres
    p = out[:, model.bundle.card.labels.index("High")]
    assert out[:, 3] == pytest.approx(1 / (1 + np.exp(-(20 * p - 10))), abs=1e-5)  # sigmoid(20 p(High) - 10)

    one = genretag.predict_file(songs / "0-High.flac", model=model)
    assert one.styles == ("Shrill", "Piercing", "Rumble") and one.probabilities.shape == (3,)
    assert one.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert one.style_scores == pytest.approx(out[:, 3:].mean(axis=0), abs=1e-5)
    (many,) = [r.prediction for r in genretag.predict([songs / "0-High.flac"], model=model,
                                                      options=ScanOptions(jobs=0))]
    assert many.styles == one.styles and many.style_scores == pytest.approx(one.style_scores, abs=1e-5)
    assert many.probabilities == pytest.approx(one.probabilities, abs=1e-5)


def test_openvino_runs_a_model_with_styles_at_its_full_width(styles_bundle, songs, tmp_path, monkeypatch):
    """The bundle exported to ONNX (as tools/export_runtime.py does) and run by OpenVINO: labels + styles
    columns, as Keras gives them; a card whose styles don't match the artifact's width is refused."""
    pytest.importorskip("openvino")
    pytest.importorskip("tf2onnx")
    import genretag
    from genretag.config import WindowPolicy
    from genretag.models.bundle import sha256_file
    from genretag.models.runtime import RUNTIME_ENV, OpenVINOClassifier, import_keras, load_classifier
    from genretag.scan import extract_track

    folder = Path(shutil.copytree(styles_bundle, tmp_path / "ov"))
    card = read_bundle(folder).card
    model = import_keras().saving.load_model(folder / card.weights, compile=False, safe_mode=True)
    model.predict_on_batch(np.zeros((1, card.features.n_mels, card.features.n_frames), np.float32))  # traced
    model.export(str(folder / "model.onnx"), format="onnx", verbose=False)
    data = json.loads((folder / CARD_FILE).read_text())
    data["runtime"] = {"format": "onnx", "file": "model.onnx", "sha256": sha256_file(folder / "model.onnx"),
                       "exported_from_sha256": card.sha256}
    (folder / CARD_FILE).write_text(json.dumps(data))
    monkeypatch.setenv(RUNTIME_ENV, "openvino")
    light = load_classifier(read_bundle(folder))
    assert isinstance(light, OpenVINOClassifier) and light.styles == ("Shrill", "Piercing", "Rumble")
    windows = extract_track(songs / "0-High.flac", config=card.features, policy=WindowPolicy()).windows
    monkeypatch.setenv(RUNTIME_ENV, "keras")
    heavy = load_classifier(read_bundle(folder))
    assert light.predict(windows).shape == (len(windows), 6)
    assert light.predict(windows) == pytest.approx(heavy.predict(windows), abs=1e-4)
    monkeypatch.setenv(RUNTIME_ENV, "openvino")
    one = genretag.predict_file(songs / "0-High.flac", model=genretag.load_model(folder))
    assert one.style_scores == pytest.approx(heavy.predict(windows)[:, 3:].mean(axis=0), abs=1e-4)

    data["styles"] = data["styles"][:2]
    (folder / CARD_FILE).write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"model.onnx shape \[\?,128,128\]->\[\?,6\] does not match card.json"):
        load_classifier(read_bundle(folder))


def test_the_ray_stages_carry_style_scores(styles_bundle, songs):
    """The Ray engine's inference stage and its decision, called as Ray calls them (no cluster needed)."""
    pytest.importorskip("pyarrow")
    from genretag.engines.ray_scan import _decided
    from genretag.engines.ray_stages import Infer, decode_batch

    bundle = read_bundle(styles_bundle)
    paths = [str(songs / "0-High.flac"), str(songs / "3-Mid.flac")]
    decoded = decode_batch({"path": np.array(paths)}, features=bundle.card.features.to_dict(), windows=8,
                           skip_if_tagged_by=None)
    rows = Infer(str(styles_bundle), batch_size=16)(decoded).to_pylist()
    assert [len(r["probabilities"]) for r in rows] == [3, 3] and [len(r["style_scores"]) for r in rows] == [3, 3]
    high = _decided(rows[0], bundle=bundle, decision=DecisionOptions(styles=True))
    assert high.genres == ("High", "Shrill") and high.prediction.style_score("Shrill") > 0.5


def test_the_ray_outputs_carry_style_scores(tmp_path):
    """What a Ray scan writes for a model with styles: the JSON and CSV rows of scan --json/--csv, and a
    Parquet ``style_scores`` column (names in the schema metadata)."""
    pq = pytest.importorskip("pyarrow.parquet")
    from genretag.engines.outputs import Outputs, open_outputs
    from genretag.scan import ScanResult

    outputs = Outputs(json=tmp_path / "r.jsonl", csv=tmp_path / "r.csv", parquet=tmp_path / "parts")
    result = ScanResult(Path("/music/a.flac"), "would-tag", genres=("Rock", "Metal"), prediction=ROCKISH)
    with open_outputs(outputs, done={}, top_k=1, model_id="m 1", labels=ROCKISH.labels,
                      styles=ROCK_STYLES) as writer:
        writer.write(result)
    (row,) = _rows(outputs.json).values()
    assert row["styles"] == {"Metal": 0.62, "Punk": 0.7, "Synthpop": 0.2}
    with open(outputs.csv, newline="", encoding="utf-8") as fh:
        assert next(csv.DictReader(fh))["styles"] == "Metal:0.62"
    table = pq.read_table(next(outputs.parquet.glob("part-*.parquet")))
    assert table.column("style_scores").to_pylist()[0] == pytest.approx([0.62, 0.7, 0.2])
    assert json.loads(table.schema.metadata[b"styles"]) == ["Metal", "Punk", "Synthpop"]


# --- the decision ------------------------------------------------------------------------------


def test_a_genre_is_followed_by_its_best_style_above_its_own_floor():
    assert choose_genres(ROCKISH, DecisionOptions(), styles=ROCK_STYLES) == ("Rock",)  # --styles off
    on = DecisionOptions(styles=True)
    # Punk scores higher than Metal but is under its own floor (0.75)
    assert choose_genres(ROCKISH, on, styles=ROCK_STYLES) == ("Rock", "Metal")
    assert choose_genres(ROCKISH, on, styles=(replace(ROCK_STYLES[1], floor=0.65), *ROCK_STYLES[::2])) == ("Rock", "Punk")
    assert choose_genres(ROCKISH, on, styles=(replace(ROCK_STYLES[0], floor=0.63),)) == ("Rock",)
    assert choose_genres(ROCKISH, on) == ("Rock",)  # no styles known: genres only
    assert choose_genres(ROCKISH, replace(on, min_confidence=0.7), styles=ROCK_STYLES) == ()


def test_top_k_counts_genres_and_each_genre_gets_its_own_style():
    options = DecisionOptions(styles=True, top_k=2, next_min_confidence=0.2)
    assert choose_genres(ROCKISH, options, styles=ROCK_STYLES) == ("Rock", "Metal", "Pop")  # Synthpop 0.2 < 0.3
    lower = (*ROCK_STYLES[:2], replace(ROCK_STYLES[2], floor=0.1))
    assert choose_genres(ROCKISH, options, styles=lower) == ("Rock", "Metal", "Pop", "Synthpop")
    assert choose_genres(ROCKISH, replace(options, next_min_confidence=0.5), styles=lower) == ("Rock", "Metal")


def test_the_genre_map_renames_or_leaves_out_styles():
    styles = (*ROCK_STYLES[:1], replace(ROCK_STYLES[1], floor=0.4), ROCK_STYLES[2])  # Punk 0.7, Metal 0.62
    on = DecisionOptions(styles=True)
    assert choose_genres(ROCKISH, on, styles=styles) == ("Rock", "Punk")
    assert choose_genres(ROCKISH, replace(on, genre_map={"Punk": "Punk Rock"}), styles=styles) == ("Rock", "Punk Rock")
    assert choose_genres(ROCKISH, replace(on, genre_map={"Punk": ""}), styles=styles) == ("Rock", "Metal")
    assert choose_genres(ROCKISH, replace(on, genre_map={"Punk": "", "Metal": ""}), styles=styles) == ("Rock",)
    # the parent is matched by its model label, before the map renames it; no name is written twice
    assert choose_genres(ROCKISH, replace(on, genre_map={"Rock": "Rock & Roll"}), styles=styles) == (
        "Rock & Roll", "Punk")
    assert choose_genres(ROCKISH, replace(on, genre_map={"Punk": "Rock"}), styles=styles) == ("Rock", "Metal")


def test_styles_must_be_a_bool():
    with pytest.raises(UsageError, match="styles must be true or false"):
        ScanOptions(styles="yes")
    with pytest.raises(UsageError, match="styles must be true or false"):
        DecisionOptions(styles="yes")


def test_pooling_weights_style_scores_by_windows():
    a = _prediction({"Rock": 0.8, "Pop": 0.2}, {"Metal": 0.9}, windows=3)
    b = _prediction({"Rock": 0.2, "Pop": 0.8}, {"Metal": 0.1}, windows=1)
    group = pooled([a, b])
    assert group.windows == 4 and group.probabilities == pytest.approx([0.65, 0.35])
    assert group.styles == ("Metal",) and group.style_scores == pytest.approx([0.7])
    assert pooled([a, replace(b, styles=(), style_scores=None)]).style_scores is None


# --- scan --styles through the CLI ------------------------------------------------------------------


def test_dry_run_reports_style_scores(runner, lib, styles_bundle, tmp_path):
    report, table = tmp_path / "r.jsonl", tmp_path / "r.csv"
    result = _run(runner, "scan", lib, "--model", styles_bundle, "--styles", "--dry-run", "--jobs", "0",
                  "--json", report, "--csv", table)
    _ok(result)
    rows = _rows(report)
    for name, row in rows.items():
        assert set(row["styles"]) == {"Shrill", "Piercing", "Rumble"}
        assert all(0 <= v <= 1 and round(v, 4) == v for v in row["styles"].values())
    for name in ("0-High.flac", "1-High.flac"):
        assert rows[name]["genre"] == "High" and rows[name]["genres"] == ["High", "Shrill"]
        assert rows[name]["styles"]["Shrill"] > rows[name]["styles"]["Piercing"] > 0.5 > rows[name]["styles"]["Rumble"]
    assert rows["2-Low.flac"]["genres"] == ["Low", "Rumble"]
    mid = rows["3-Mid.flac"]  # whatever the tiny model makes of it: the genre, then its best style above its floor
    best = max((s for s in STYLES if s.parent == mid["genre"] and mid["styles"][s.name] >= s.floor),
               key=lambda s: mid["styles"][s.name], default=None)
    assert mid["genres"] == [mid["genre"], *([best.name] if best else [])]
    assert "0-High.flac: - -> High; Shrill" in result.stdout
    with open(table, newline="", encoding="utf-8") as fh:
        flat = {Path(r["path"]).name: r for r in csv.DictReader(fh)}
    high = rows["0-High.flac"]["styles"]
    cells = [cell.split(":") for cell in flat["0-High.flac"]["styles"].split(";")]
    assert [name for name, _ in cells] == ["Shrill", "Piercing"]  # above their floors, best first; not Rumble
    assert [float(score) for _, score in cells] == pytest.approx([high["Shrill"], high["Piercing"]], abs=0.0051)
    assert all(len(score) == 4 for _, score in cells)  # 0.62
    assert flat["1-High.flac"]["styles"].startswith("Shrill:") and "Rumble" not in flat["1-High.flac"]["styles"]
    assert flat["2-Low.flac"]["styles"].startswith("Rumble:") and "Shrill" not in flat["2-Low.flac"]["styles"]

    plain = tmp_path / "plain.jsonl"
    _ok(_run(runner, "scan", lib, "--model", styles_bundle, "--dry-run", "--jobs", "0", "--json", plain))
    assert _rows(plain)["0-High.flac"]["genres"] == ["High"]  # scores reported, no style written
    assert "styles" in _rows(plain)["0-High.flac"]


def test_floors_and_the_genre_map_apply_end_to_end(runner, lib, styles_bundle, tmp_path):
    strict = [{"name": "Shrill", "parent": "High", "floor": 0.9999}, {"name": "Piercing", "parent": "High", "floor": 0.5},
              {"name": "Rumble", "parent": "Low", "floor": 0.5}]
    bundle = _with_card(styles_bundle, tmp_path / "strict", styles=strict)
    report = tmp_path / "r.jsonl"
    _ok(_run(runner, "scan", lib / "0-High.flac", "--model", bundle, "--styles", "--dry-run", "--json", report,
             "--jobs", "0", "--no-store"))
    assert _rows(report)["0-High.flac"]["genres"] == ["High", "Piercing"]  # Shrill is under its floor

    genre_map = tmp_path / "map.csv"
    genre_map.write_text("Shrill,Very High\nHigh,Treble\n")
    _ok(_run(runner, "scan", lib / "0-High.flac", "--model", styles_bundle, "--styles", "--dry-run", "--json",
             report, "--jobs", "0", "--genre-map", genre_map, "--no-store"))
    assert _rows(report)["0-High.flac"]["genres"] == ["Treble", "Very High"]
    genre_map.write_text("Shrill,\n")
    _ok(_run(runner, "scan", lib / "0-High.flac", "--model", styles_bundle, "--styles", "--dry-run", "--json",
             report, "--jobs", "0", "--genre-map", genre_map, "--no-store"))
    assert _rows(report)["0-High.flac"]["genres"] == ["High", "Piercing"]


def test_top_k_2_with_styles(runner, lib, styles_bundle, tmp_path):
    report = tmp_path / "r.jsonl"
    _ok(_run(runner, "scan", lib / "0-High.flac", "--model", styles_bundle, "--styles", "--top-k", "2",
             "--next-min-confidence", "0", "--dry-run", "--json", report, "--jobs", "0"))
    row = _rows(report)["0-High.flac"]
    second = next(t["genre"] for t in row["top"][1:2])
    style = ["Rumble"] if second == "Low" and row["styles"]["Rumble"] >= 0.5 else []
    assert row["genres"] == ["High", "Shrill", second, *style]


def test_a_model_without_styles_writes_genres_and_warns_once(runner, lib, tiny_bundle, tmp_path):
    report = tmp_path / "r.jsonl"
    result = _run(runner, "scan", lib, "--model", tiny_bundle, "--styles", "--dry-run", "--json", report,
                  "--jobs", "0")
    _ok(result)
    assert [line for line in result.stderr.splitlines() if "warning" in line or "error" in line] == [
        "warning: model tiny 0.1 has no styles: --styles writes genres only"]
    rows = _rows(report)
    assert all(len(r["genres"]) == 1 and "styles" not in r for r in rows.values())


def test_styles_can_be_set_in_the_config_file(runner, lib, styles_bundle, tmp_path):
    config, report = tmp_path / "config.toml", tmp_path / "r.jsonl"
    config.write_text("[scan]\nstyles = true\n")
    _ok(_run(runner, "scan", lib / "0-High.flac", "--model", styles_bundle, "--config", config, "--dry-run",
             "--json", report, "--jobs", "0"))
    assert _rows(report)["0-High.flac"]["genres"] == ["High", "Shrill"]
    config.write_text("[scan]\nstyles = 3\n")
    bad = _run(runner, "scan", lib / "0-High.flac", "--model", styles_bundle, "--config", config, "--dry-run")
    assert bad.exit_code == 2 and "bad value for 'styles' in [scan] of config file" in bad.stderr


CONTAINERS = ("mp3", "flac", "ogg", "m4a")


@pytest.fixture(scope="module")
def tagged_originals(tmp_path_factory) -> dict[str, Path]:
    """A 4-s High clip per container, pre-tagged as test_tags pre-tags its files (title, artist, album,
    track, comment, genre Ambient, a cover for mp3/flac/m4a)."""
    from test_tags import _pretag

    if not synth.have_ffmpeg():
        pytest.skip("ffmpeg is needed to synthesise m4a")
    folder = tmp_path_factory.mktemp("styles_containers")
    made = {}
    for i, container in enumerate(CONTAINERS):
        path = synth.write_audio(folder / f"song.{container}", synth.tone_mix("High", seconds=4.0, seed=800 + i))
        _pretag(path)
        made[container] = path
    return made


@pytest.mark.parametrize("container, id3v23", [("mp3", False), ("mp3", True), ("flac", False), ("ogg", False),
                                               ("m4a", False)])
def test_scan_writes_the_genre_and_its_style_and_nothing_else(runner, styles_bundle, tagged_originals, tmp_path,
                                                              container, id3v23):
    from test_tags import _other_tags, _payload

    path = Path(shutil.copy(tagged_originals[container], tmp_path / tagged_originals[container].name))
    snapshot = _id3_values if id3v23 else _other_tags  # v2.3 has no UTF-8: frames are re-encoded, values stay
    others, payload = snapshot(path), _payload(path)
    assert read_tags(path).genres == ("Ambient",)
    result = _run(runner, "scan", path, "--model", styles_bundle, "--styles", "--overwrite", "--jobs", "0",
                  "--no-store", *(["--id3v23"] if id3v23 else []))
    _ok(result)
    state = read_tags(path)
    assert state.genres == ("High", "Shrill") and state.provenance == MODEL_ID
    assert snapshot(path) == others
    assert _payload(path) == payload
    audio = mutagen.File(path)
    if container == "mp3":
        assert path.read_bytes()[3] == (3 if id3v23 else 4)
        raw = ID3(path, translate=False)["TCON"].text
        assert raw == (["High/Shrill"] if id3v23 else ["High", "Shrill"])
    elif container == "m4a":
        assert audio.tags["\xa9gen"] == ["High", "Shrill"]
    else:
        assert audio.tags["GENRE"] == ["High", "Shrill"]


def _id3_values(path: Path) -> list[tuple[str, str]]:
    """Every ID3 frame but genre and provenance, by value (text, or bytes of a picture), whatever its encoding."""
    return sorted((key, repr(getattr(frame, "text", None) or getattr(frame, "data", None)))
                  for key, frame in ID3(path).items() if key not in ("TCON", "TXXX:GENRETAG_MODEL"))


# --- the store, apply, --group, show -----------------------------------------------------------------


def test_a_rerun_with_styles_decides_them_from_the_store_without_decoding(runner, lib, styles_bundle, tmp_path,
                                                                         decoded):
    store = tmp_path / "p.sqlite"
    _ok(_run(runner, "scan", lib, "--model", styles_bundle, "--store", store, "--jobs", "0", "--dry-run"))
    assert len(decoded) == 4
    decoded.clear()
    report = tmp_path / "again.jsonl"
    _ok(_run(runner, "scan", lib, "--model", styles_bundle, "--store", store, "--jobs", "0", "--dry-run", "--styles",
             "--json", report))
    assert decoded == []
    rows = _rows(report)
    assert rows["2-Low.flac"]["genres"] == ["Low", "Rumble"]
    assert rows["0-High.flac"]["genres"] == ["High", "Shrill"] and set(rows["0-High.flac"]["styles"]) == {
        "Shrill", "Piercing", "Rumble"}
    with Store(store) as db:
        (entry,) = db.entries(lib / "0-High.flac")
        assert entry.styles == ("Shrill", "Piercing", "Rumble")
        assert entry.style_scores == pytest.approx(list(rows["0-High.flac"]["styles"].values()), abs=1e-4)

    applied = _run(runner, "apply", lib, "--model", styles_bundle, "--store", store, "--styles")
    _ok(applied)
    assert decoded == []
    assert {p.name: list(read_tags(p).genres) for p in lib.iterdir()} == {n: r["genres"] for n, r in rows.items()}

    shown = _run(runner, "show", lib / "0-High.flac", "--store", store, "--json")
    _ok(shown)
    info = json.loads(shown.stdout)
    assert info["tags"]["genres"] == ["High", "Shrill"]
    assert [name for name, _ in info["stored"][0]["styles"]] == ["Shrill", "Piercing", "Rumble"]
    text = _run(runner, "show", lib / "0-High.flac", "--store", store)
    _ok(text)
    assert "genre: High; Shrill (written by tiny-styles 0.1)" in text.stdout and "styles: Shrill " in text.stdout


def test_apply_from_a_hand_edited_report_with_styles(runner, lib, styles_bundle, tmp_path):
    report = tmp_path / "r.jsonl"
    _ok(_run(runner, "scan", lib, "--model", styles_bundle, "--styles", "--dry-run", "--json", report, "--jobs", "0",
             "--no-store"))
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    for row in rows:
        if row["path"].endswith("0-High.flac"):
            row["genres"] = ["High", "Piercing"]  # the reviewer prefers the other style
    report.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _ok(_run(runner, "apply", report, "--model", styles_bundle, "--no-store"))
    assert read_tags(lib / "0-High.flac").genres == ("High", "Piercing")
    assert read_tags(lib / "1-High.flac").genres == ("High", "Shrill")


def test_group_album_pools_style_scores(runner, lib, styles_bundle, tmp_path):
    """One folder, no album tags: one group. Its style scores are the window-weighted mean of the tracks'."""
    (lib / "3-Mid.flac").unlink()
    synth.write_audio(lib / "3-High.flac", synth.tone_mix("High", seconds=4.0, seed=900))  # High outvotes Low
    own, grouped = tmp_path / "own.jsonl", tmp_path / "group.jsonl"
    _ok(_run(runner, "scan", lib, "--model", styles_bundle, "--styles", "--dry-run", "--json", own, "--jobs", "0",
             "--no-store"))
    _ok(_run(runner, "scan", lib, "--model", styles_bundle, "--styles", "--dry-run", "--json", grouped, "--jobs", "0",
             "--no-store", "--group", "album"))
    rows, group_rows = _rows(own), _rows(grouped)
    assert rows["2-Low.flac"]["genres"][0] == "Low"
    assert {n: r["genres"] for n, r in group_rows.items()} == {n: ["High", "Shrill"] for n in group_rows}

    import genretag

    results = [r for r in genretag.tag([lib], model=styles_bundle, options=ScanOptions(
        jobs=0, dry_run=True, group="album", styles=True))]
    group = results[0].group_prediction
    tracks = [r.prediction for r in results]
    weights = np.array([p.windows for p in tracks], np.float64)
    expected = (np.stack([p.style_scores for p in tracks]) * weights[:, None]).sum(axis=0) / weights.sum()
    assert group.styles == tracks[0].styles and group.style_scores == pytest.approx(expected, abs=1e-5)
    assert all(r.group_prediction.style_scores == pytest.approx(expected, abs=1e-5) for r in results)


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE predictions (
    path BLOB NOT NULL, model TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL, labels TEXT, probabilities BLOB, windows INTEGER, previous TEXT NOT NULL,
    provenance TEXT, error TEXT, tags TEXT, outcome TEXT, updated REAL NOT NULL,
    PRIMARY KEY (path, model)
) WITHOUT ROWID;
INSERT INTO meta VALUES ('app', 'genretag prediction store'), ('schema', '1');
"""
"""The schema 1 store genretag 0.x wrote (genretag/store.py before styles), as SQLite has it."""


def _v1_store(path: Path, rows: list[tuple]) -> Path:
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    return path


def test_a_schema_1_store_is_migrated_in_place_and_loses_nothing(runner, lib, knn_bundle, tmp_path, decoded):
    """A v1 store filled by a scan is upgraded when opened, keeps every row, and a rerun still decodes nothing."""
    store = tmp_path / "p.sqlite"
    _ok(_run(runner, "scan", lib, "--model", knn_bundle, "--store", store, "--jobs", "0", "--dry-run"))
    with sqlite3.connect(store) as db:
        v2_rows = db.execute("SELECT * FROM predictions ORDER BY path").fetchall()
    old = _v1_store(tmp_path / "v1.sqlite", [row[:14] for row in v2_rows])  # the same rows, as v1 held them
    before = old.read_bytes()

    with Store(old, readonly=True) as db:  # show reads a v1 store as it is, and leaves it so
        assert db.schema == 1 and db.get(lib / "0-High.flac", v2_rows[0][1]).style_scores is None
    assert old.read_bytes() == before

    with Store(old) as db:
        assert db.schema == SCHEMA_VERSION == 6
        entries = {e.path.name: e for p in sorted(lib.iterdir()) for e in db.entries(p)}
    with Store(store) as fresh:
        for name, entry in entries.items():
            (same,) = fresh.entries(lib / name)
            assert replace(entry, probabilities=None) == replace(same, probabilities=None, identity=replace(
                same.identity, ctime_ns=None, inode=None))  # schema 4 added them: the v1 rows have none (nor music)
            assert (entry.probabilities is None and same.probabilities is None) or np.array_equal(
                entry.probabilities, same.probabilities)
    with sqlite3.connect(old) as db:
        assert dict(db.execute("SELECT key, value FROM meta"))["schema"] == "6"
        assert db.execute("SELECT * FROM predictions ORDER BY path").fetchall() == [r[:14] + (None,) * 5
                                                                                     for r in v2_rows]
    with Store(old) as db:  # opened again: nothing more to do
        assert db.schema == 6

    decoded.clear()
    _ok(_run(runner, "scan", lib, "--model", knn_bundle, "--store", old, "--jobs", "0", "--dry-run"))
    assert decoded == []


def test_a_store_newer_than_this_genretag_is_still_refused(tmp_path):
    from genretag.errors import StoreError

    path = _v1_store(tmp_path / "new.sqlite", [])
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match=f"prediction store has schema {SCHEMA_VERSION + 1}, newer than this "
                                         f"genretag's {SCHEMA_VERSION}"):
        Store(path)


# --- the shipped default model on real music ------------------------------------------------------------

REAL_CONTAINERS = {"mp3": (), "flac": ("-c:a", "flac"), "ogg": ("-c:a", "libvorbis", "-q:a", "5"),
                   "opus": ("-c:a", "libopus", "-b:a", "96k"), "m4a": ("-c:a", "aac", "-b:a", "160k"),
                   "wma": ("-c:a", "wmav2", "-b:a", "160k")}


@pytest.fixture(scope="module")
def real_styles_bundle(tmp_path_factory) -> Path:
    """The shipped default model with one candidate style attached (R&B under Soul-RnB: AudioSet's
    "Rhythm and blues" class, scored by the same EfficientAT network): the real network and the real
    style score on real audio, its genre outputs unchanged."""
    import keras

    from genretag.models.bundle import read_bundle, sha256_file
    from genretag.models.fusion import register_layers, with_styles

    default = genretag.find_model("default")
    folder = tmp_path_factory.mktemp("real_styles")
    register_layers()
    model = keras.saving.load_model(default.weights_path, compile=False)
    card = default.card
    with_styles(model, ("R&B",), labels=card.labels, features=card.features).save(folder / "model.keras")
    data = json.loads((default.path / "card.json").read_text())
    data.pop("runtime", None)
    data.update(name="real-styles", version="0.1", sha256=sha256_file(folder / "model.keras"),
                styles=[{"name": "R&B", "parent": "Soul-RnB", "floor": 0.15}])  # at 0.3 its AAC copy fell just below
    (folder / "card.json").write_text(json.dumps(data))
    read_bundle(folder)
    return folder


def test_real_music_gets_soul_rnb_then_rnb_in_every_container(runner, corpus, real_styles_bundle, tmp_path):
    """A 4Q R&B clip (AllMusic: R&B) in six containers: ``scan --styles`` with the default network and a
    real style head writes the parent genre, then its style, into each file's own genre field, and
    nothing else changes."""
    import subprocess

    from test_tags import _other_tags, _payload, _pretag

    if not synth.have_ffmpeg():
        pytest.skip("ffmpeg is needed to make the other containers")
    source = corpus / "4q" / "Q4" / "MT0028813196.mp3"
    folder = tmp_path / "album"
    folder.mkdir()
    for ext, codec in REAL_CONTAINERS.items():
        target = folder / f"song.{ext}"
        if not codec:
            shutil.copyfile(source, target)  # not its mode: ../shared is read-only
        else:
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-vn", "-map_metadata", "-1", *codec,
                            str(target)], check=True)
        _pretag(target)  # title, artist, album, track, comment, genre, a cover where the format has one
    before = {p: (_other_tags(p), _payload(p)) for p in folder.iterdir()}
    result = _run(runner, "scan", folder, "--model", real_styles_bundle, "--styles", "--overwrite", "--no-store",
                  "--jobs", "0")
    _ok(result)
    for path, (others, payload) in before.items():
        state = read_tags(path)
        assert state.genres == ("Soul-RnB", "R&B"), path.name
        assert state.provenance == "real-styles 0.1"
        assert _other_tags(path) == others and _payload(path) == payload, path.name
