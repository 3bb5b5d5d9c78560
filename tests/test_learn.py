"""``genretag learn``: the owner's genres learned from their tagged files, then scanned onto the rest.

The fast tests cover the labels, the bad libraries (each a one-line error and its exit code), the store's
features and the layer's fit. The slow one builds a library from real corpus clips (copies in a temporary
folder) whose own genre tags are the labels on 70% of the albums, learns, scans the rest and checks the
genres written against the held-back tags.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections import defaultdict
from pathlib import Path

import mutagen
import mutagen.flac
import numpy as np
import pytest
from synth import tone_mix, write_audio

from genretag.cli import app
from genretag.learn.fit import cross_validate, fit_layer, masks_of
from genretag.learn.labels import read_labels
from genretag.files import Identity
from genretag.store import Store


def _tagged(path: Path, genres: list[str] | None, *, album: str | None = None, artist: str = "A") -> Path:
    """A short FLAC at ``path`` with these genre values (several: a multi-value field), album and artist."""
    write_audio(path, tone_mix("Low", seconds=1.0, seed=len(path.name)))
    f = mutagen.flac.FLAC(path)
    if genres:
        f["genre"] = genres
    if album:
        f["album"] = album
    f["artist"] = artist
    f.save()
    return path


def _learn(runner, *args):
    return runner.invoke(app, ["learn", *map(str, args)])


# --- labels --------------------------------------------------------------------------------------------------


def test_labels_multi_value_genre_map_groups_and_bad_values(tmp_path):
    _tagged(tmp_path / "a.flac", ["Post-Rock", "Ambient"], album="X", artist="Mogwai")
    _tagged(tmp_path / "b.flac", ["Alt. Rock"], album="Y", artist="Pixies")
    _tagged(tmp_path / "c.flac", None, artist="Pixies")
    bad = _tagged(tmp_path / "d.flac", ["RockX"])
    bad.write_bytes(bad.read_bytes().replace(b"RockX", b"Rock\xff"))  # not UTF-8
    labels = read_labels(sorted(tmp_path.iterdir()), field="genre", min_tracks=1,
                         genre_map={"alt. rock": "Alternative Rock"})
    by_name = {f.path.name: f for f in labels.files}
    assert by_name["a.flac"].genres == ("Post-Rock", "Ambient")
    assert by_name["a.flac"].group == "album:mogwai/x"
    assert by_name["b.flac"].genres == ("Alternative Rock",)
    assert by_name["c.flac"].genres == () and by_name["c.flac"].group == "artist:pixies"
    assert by_name["d.flac"].genres == ()
    assert labels.counts == {"Post-Rock": 1, "Ambient": 1, "Alternative Rock": 1}
    (path, reason), = labels.problems
    assert path.name == "d.flac" and "not valid text (undecodable bytes)" in reason


# --- bad libraries: one line each, the right exit code ---------------------------------------------------------


def _library(root: Path, genres: list[list[str] | None]) -> Path:
    for i, g in enumerate(genres):
        _tagged(root / f"{i:04d}.flac", g, album=f"album {i // 3}")
    return root


@pytest.mark.parametrize(("genres", "expected"), [
    ([None] * 6, "no file has a genre in its genre field to learn from (6 files read): tag some of them first"),
    ([["Rock"]] * 16 + [None] * 2, "only one genre to learn (Rock, 16 files): a model needs at least two"),
    ([["Rock"], ["Jazz"], ["Rock"]] + [None] * 5,
     "no genre is on 15 files or more (the most is on 2): tag more files, or lower --min-tracks"),
    ([[f"genre {i}"] for i in range(120)],
     "120 distinct genres, 0 of them on 15 files or more: the tags look like free text; merge spellings with "
     "--genre-map, or lower --min-tracks"),
])
def test_nothing_to_learn_is_one_line_and_exit_1(runner, tmp_path, genres, expected):
    lib = _library(tmp_path / "lib", genres)
    result = _learn(runner, lib, "--out", tmp_path / "model", "--no-store")
    assert result.exit_code == 1, result.output
    assert result.output.strip() == f"error: {expected}"
    assert not (tmp_path / "model").exists()


def test_genres_that_are_all_unreadable_say_so(runner, tmp_path):
    lib = _library(tmp_path / "lib", [["RockX"]] * 3 + [None])
    for path in sorted(lib.iterdir())[:3]:
        path.write_bytes(path.read_bytes().replace(b"RockX", b"Rock\xff"))  # not UTF-8
    result = _learn(runner, lib, "--out", tmp_path / "model", "--no-store")
    assert result.exit_code == 1, result.output
    assert result.output.strip() == "error: no file has a genre in its genre field to learn from (4 files read; 3 " \
        "values could not be labels, e.g. genre 'Rock\ufffd' is not valid text (undecodable bytes) in 0000.flac): " \
        "tag some of them first"


def test_usage_errors_exit_2(runner, tmp_path):
    result = _learn(runner, "--out", tmp_path / "model")
    assert result.exit_code == 2 and result.output.strip() == \
        "error: name the library to learn from (or --update an existing learned model)"
    (tmp_path / "model").mkdir()
    result = _learn(runner, "--update", "--out", tmp_path / "model")
    assert result.exit_code == 1 and "not a model bundle: no card.json" in result.output
    genre_map = tmp_path / "map.csv"
    genre_map.write_bytes(b"Alt. Rock,Alternative \xffRock\n")
    lib = _library(tmp_path / "lib", [["Rock"]] * 3)
    result = _learn(runner, lib, "--out", tmp_path / "m2", "--genre-map", genre_map)
    assert result.exit_code == 2 and "genre map is not UTF-8 text (byte 22)" in result.output


# --- the [learn] table of the config file ----------------------------------------------------------------------


def test_learn_table_values_apply_and_flags_win(runner, tmp_path):
    lib = _library(tmp_path / "lib", [["Rock"], ["Rock"], ["Jazz"], None])
    config = tmp_path / "config.toml"
    config.write_text(f'[learn]\nmin_tracks = 3\nout = "{tmp_path / "model"}"\nstore = false\njobs = 0\n')
    result = _learn(runner, lib, "--config", config)  # --out from the file
    assert result.exit_code == 1, result.output
    assert result.output.strip() == "error: no genre is on 3 files or more (the most is on 2): tag more files, " \
                                    "or lower --min-tracks"
    flagged = _learn(runner, lib, "--config", config, "--min-tracks", "4")
    assert flagged.exit_code == 1 and "no genre is on 4 files or more" in flagged.output
    config.write_text('[learn]\nfield = "genretag"\nno_store = true\n')
    result = _learn(runner, lib, "--config", config, "--out", tmp_path / "model")
    assert result.exit_code == 1
    assert result.output.strip() == "error: no file has a genre in its GENRETAG_GENRE field to learn from " \
                                    "(4 files read): tag some of them first"
    shown = runner.invoke(app, ["config", "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    lines = {line.split("│")[1].strip(): line for line in shown.output.splitlines() if "[learn]" in line}
    assert str(config) in lines["[learn] field"] and "genretag" in lines["[learn] field"]
    assert "default" in lines["[learn] min_tracks"]


@pytest.mark.parametrize(("content", "reason"), [
    ("[learn]\nmin_trackz = 3\n", "unknown setting 'min_trackz' in [learn] of config file"),
    ("[learn]\nupdate = true\n", "unknown setting 'update' in [learn] of config file"),
    ("[learn]\nmin_tracks = 1\n", "bad value for 'min_tracks' in [learn] of config file"),
    ("[learn]\nmin_tracks = \"many\"\n", "bad value for 'min_tracks' in [learn] of config file: expected a whole "
     "number, got a text"),
    ("[learn]\ntop_k = 2\n", "unknown setting 'top_k' in [learn] of config file"),
])
def test_a_bad_learn_table_is_one_usage_error(runner, tmp_path, content, reason):
    lib = _library(tmp_path / "lib", [["Rock"]])
    config = tmp_path / "config.toml"
    config.write_text(content)
    for command in (["learn", str(lib), "--out", str(tmp_path / "model")], ["config"]):
        result = runner.invoke(app, [*command, "--config", str(config)])
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"error: {reason}") and result.output.strip().endswith(f"({config})")
        assert len(result.output.strip().splitlines()) == 1


# --- the store keeps features under the file's identity ---------------------------------------------------------


def test_store_features_round_trip_and_identity(tmp_path):
    song = _tagged(tmp_path / "a.flac", ["Rock"])
    vector = np.linspace(-3, 3, 1425).astype(np.float32)
    with Store(tmp_path / "s.sqlite") as store:
        store.put_features(song, "learn k w8", identity=Identity.of(song), status="ok", vector=vector, windows=8)
        row = store.features(song, "learn k w8")
        assert row.status == "ok" and row.windows == 8
        np.testing.assert_allclose(row.vector, vector, atol=2e-3)  # float16
        assert store.features(song, "learn k w4") is None
        _tagged(song, ["Jazz"])  # rewritten: another identity
        assert store.features(song, "learn k w8") is None


# --- the layer --------------------------------------------------------------------------------------------------


def test_layer_learns_partial_labels_and_folds_keep_albums_apart():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 20))
    y = np.repeat(np.arange(3), 40)
    x = (centres[y] + rng.normal(0, 1, (120, 20))).astype(np.float32)
    genres = ("A", "B", "C")
    per_track = [[genres[i]] for i in y]
    for i in range(0, 40, 4):  # a partial label: an A track that may be A or B
        per_track[i] = ["B", "A"]
    masks = masks_of(per_track, genres)
    groups = [f"album {i // 4}" for i in range(120)]
    cv = cross_validate(x, masks, groups, genres, columns=np.arange(20), folds=5, seed=0)
    assert cv.accuracy > 0.95 and all(s.precision > 0.9 for s in cv.scores)
    a, b, c = cv.scores  # B's partial tracks may land on A (inside their set): B's recall counts them as missed
    assert a.recall > 0.9 and c.recall > 0.9 and 0.75 <= b.recall <= 0.85
    assert [s.tracks for s in cv.scores] == [40, 50, 40]
    layer = fit_layer(x, masks, columns=np.arange(20), shrinkage=cv.shrinkage)
    assert (layer.logits(x).argmax(1) == y).mean() > 0.95

    from genretag.learn.fit import fold_indices

    for train, test in fold_indices(masks, groups, folds=5, seed=0):
        assert not {groups[i] for i in train} & {groups[i] for i in test}


def test_each_folds_shared_eigendecomposition_gives_the_layer_a_direct_fit_gives():
    """cross_validate decomposes each fold's scatter once and reads every shrinkage's logits from it: for each
    shrinkage they are the logits of fit_layer on that fold's tracks (the layer the bundle ships)."""
    from genretag.learn.fit import SHRINKAGE_GRID, fold_indices

    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (4, 30))
    y = rng.integers(0, 4, 160)
    x = (centres[y] + rng.normal(0, 1.5, (160, 30))).astype(np.float32)
    genres = tuple("ABCD")
    masks = masks_of([[genres[i]] for i in y], genres)
    groups = [f"album {i // 4}" for i in range(160)]
    (train, test), *_ = fold_indices(masks, groups, folds=5, seed=0)
    for shrinkage in SHRINKAGE_GRID:
        cv = cross_validate(x, masks, groups, genres, columns=np.arange(30), folds=5, seed=0,
                            shrinkages=(shrinkage,))
        direct = fit_layer(x[train], masks[train], columns=np.arange(30), shrinkage=shrinkage).logits(x[test])
        np.testing.assert_allclose(cv.logits[test], direct, rtol=1e-4, atol=1e-3 * np.abs(direct).max())
        assert cv.shrinkage == shrinkage


def test_at_full_shrinkage_the_layer_picks_the_nearest_genre_centre():
    """The closed form is the linear discriminant: with the covariance replaced by its mean variance, each
    track goes to the genre whose mean (of the standardised features) is nearest; the learned layer is that
    rule on the raw features (standardisation folded into the kernel)."""
    rng = np.random.default_rng(2)
    scale = np.linspace(0.5, 20, 12)  # features on very different scales: the layer standardises them
    y = rng.integers(0, 3, 90)
    x = (rng.normal(0, 1, (3, 12))[y] + rng.normal(0, 1.2, (90, 12))) * scale
    masks = masks_of([["XYZ"[i]] for i in y], tuple("XYZ"))
    layer = fit_layer(x.astype(np.float32), masks, columns=np.arange(12), shrinkage=1.0)
    z = (x - x.mean(0)) / x.std(0)
    centres = np.stack([z[y == k].mean(0) for k in range(3)])
    nearest = ((z[:, None, :] - centres[None]) ** 2).sum(2).argmin(1)
    assert (layer.logits(x.astype(np.float32)).argmax(1) == nearest).all()
    assert 0.6 < (nearest == y).mean() < 1.0  # a real task: neither trivial nor hopeless


# --- a whole learn on synthetic genres: a bad value is one line, --update decodes only what is new ---------------


def _sound(path: Path, label: str, genres: list[str] | None, *, seed: int, album: str) -> Path:
    write_audio(path, tone_mix(label, seconds=4.0, seed=seed))
    f = mutagen.flac.FLAC(path)
    if genres:
        f["genre"] = genres
    f["album"], f["artist"] = album, f"artist of {album}"
    f.save()
    return path


@pytest.mark.slow
def test_learn_goes_on_past_a_bad_value_and_update_decodes_only_new_files(runner, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(12):  # two genres the networks tell apart, 6 albums each; one untagged file of each
        for label, genre in (("Low", "Drone"), ("High", "Glitch")):
            _sound(lib / f"{genre}-{i:02d}.flac", label, [genre] if i < 11 else None, seed=i, album=f"{genre} {i // 2}")
    bad = _sound(lib / "bad.flac", "Low", ["DroneX"], seed=99, album="Bad")
    bad.write_bytes(bad.read_bytes().replace(b"DroneX", b"Drone\xff"))  # not UTF-8
    store, model = tmp_path / "store.sqlite", tmp_path / "model"
    result = _learn(runner, lib, "--out", model, "--min-tracks", "5", "--store", store, "--jobs", "0", "--no-export")
    assert result.exit_code == 1, result.output  # the bad value: the batch went on, and says so
    assert f"error: genre 'Drone\ufffd' is not valid text (undecodable bytes); this value is not learned ({bad})" \
        in result.output
    assert "Traceback" not in result.output
    assert "learned 2 genres from 22 tagged tracks (22 decoded, 0 from the store)" in result.output
    assert "(3 files without a learned genre)" in result.output
    assert re.search(r"^features [\d.]+ s \(22 decoded on OpenVINO\), fit [\d.]+ s$", result.output, re.M)
    card = json.loads((model / "card.json").read_text())
    assert card["labels"] == ["Drone", "Glitch"] and card["version"] == "1"

    _sound(lib / "Glitch-new.flac", "High", ["Glitch"], seed=50, album="Glitch new")  # added since
    f = mutagen.flac.FLAC(lib / "Drone-11.flac")  # tagged since
    f["genre"] = ["Drone"]
    f.save()
    bad.unlink()
    again = _learn(runner, "--update", "--out", model, "--store", store, "--jobs", "0", "--no-export")
    assert again.exit_code == 0, again.output
    assert "features: 22 tracks from the store, 2 to decode" in again.output
    assert "learned 2 genres from 24 tagged tracks (2 decoded, 22 from the store)" in again.output
    card = json.loads((model / "card.json").read_text())
    assert card["version"] == "2" and card["training"]["counts"] == {"Drone": 12, "Glitch": 12}
    assert card["training"]["learned"]["config"]["min_tracks"] == 5  # what it was learned with


# --- the done-when run: real clips, their own genres, 70% of the albums tagged -----------------------------------

SUBSET = {"classical": 12, "electronic": 12, "rock": 12}
"""Emotify clips per folder (their own tags: Classical, Electronic, Alternative Rock / Hard Rock...)."""


@pytest.mark.slow
def test_learn_then_scan_the_rest_with_the_owners_genres(runner, corpus, tmp_path):
    lib = tmp_path / "library"
    for folder, n in SUBSET.items():
        (lib / folder).mkdir(parents=True)
        for clip in sorted((corpus / "emotify" / folder).glob("*.mp3"), key=lambda p: int(p.stem))[:n]:
            shutil.copyfile(clip, lib / folder / clip.name)  # writable
    albums = defaultdict(list)
    for path in sorted(lib.rglob("*.mp3")):
        tags = mutagen.File(path).tags
        albums[(str(tags.get("TPE1")), str(tags.get("TALB")))].append(path)
    keys = sorted(albums)
    random.Random(0).shuffle(keys)
    held = {p: str(mutagen.File(p).tags["TCON"]) for k in keys[: int(len(keys) * 0.3)] for p in albums[k]}
    for path in held:
        f = mutagen.File(path)
        f.tags.delall("TCON")
        f.save()
    store, model = tmp_path / "store.sqlite", tmp_path / "model"
    result = _learn(runner, lib, "--out", model, "--min-tracks", "5", "--store", store, "--jobs", "2", "--no-export")
    assert result.exit_code == 0, result.output
    assert "learned 3 genres from" in result.output
    for genre in ("Classical", "Electronic", "Alternative Rock"):
        assert genre in result.output
    learned = json.loads((model / "card.json").read_text())
    assert learned["labels"] == sorted(learned["labels"], key=learned["training"]["counts"].get, reverse=True)
    assert learned["pooling"] == "geometric" and learned["calibration"]["temperature"] == 1.0
    assert 0.05 <= learned["calibration"]["folded_temperature"] <= 1000

    config = tmp_path / "config.toml"  # [scan] model = "DIR" makes it the default
    config.write_text(f'[scan]\nmodel = "{model}"\nmin_confidence = 0\n')
    scanned = runner.invoke(app, ["scan", str(lib), "--config", str(config), "--store", str(store), "--jobs", "2"])
    assert scanned.exit_code == 0, scanned.output
    from genretag.tags import read_tags

    comparable = {p: g for p, g in held.items() if g in learned["labels"]}
    right = sum(read_tags(p).genres == (g,) for p, g in comparable.items())
    assert len(comparable) >= 5 and right >= 0.7 * len(comparable), f"{right}/{len(comparable)}"
    for path in held:
        assert read_tags(path).provenance == "genretag-learned 1"
    for path in set(lib.rglob("*.mp3")) - set(held):  # files with a genre keep it, untouched
        assert read_tags(path).provenance is None

    # the beets plugin takes the learned model like any bundle: held-back files, their genre removed, imported
    from test_beets_safety import Library

    # what the scan wrote, by title (beets renames the files it imports)
    scanned_genres = {str(mutagen.File(p).tags["TIT2"]): read_tags(p).genres for p in comparable}
    src = tmp_path / "beets-src" / "Held back"
    src.mkdir(parents=True)
    for path in sorted(comparable)[:4]:
        copy = Path(shutil.copyfile(path, src / path.name))
        f = mutagen.File(copy)
        f.tags.delall("TCON")
        f.tags.delall("TXXX:GENRETAG_MODEL")
        f.save()
    beets = Library(tmp_path / "beets", model)
    assert beets("import", "-A", "-q", str(src.parent)).returncode == 0
    run = beets("genretag")
    assert run.returncode == 0, run.stderr
    written = {item["title"]: tuple(item["genres"]) for item in beets.items().values() if item.get("genres")}
    assert written and all(genres == scanned_genres[title] for title, genres in written.items()), written

    extra = lib / "rock" / "extra.mp3"  # one more tagged file: --update decodes it alone
    shutil.copyfile(sorted((corpus / "emotify" / "rock").glob("*.mp3"), key=lambda p: int(p.stem))[20], extra)
    again = _learn(runner, "--update", "--out", model, "--store", store, "--jobs", "0", "--no-export")
    assert again.exit_code == 0, again.output
    assert "to decode" in again.output and ", 1 to decode" in again.output
    assert json.loads((model / "card.json").read_text())["version"] == "2"

    card = json.loads((model / "card.json").read_text())  # a damaged card is refused, as any bundle's
    card["sha256"] = "0" * 64
    (model / "card.json").write_text(json.dumps(card))
    refused = runner.invoke(app, ["scan", str(extra), "--model", str(model), "--no-store", "--overwrite"])
    assert refused.exit_code == 1 and "weights do not match card.json sha256" in refused.output


def test_genres_below_the_precision_floor_are_left_out_one_at_a_time():
    """Three genres the features tell apart, and a fourth whose tracks sound like the other three: the fourth
    is left out (its cross-validated precision is below the floor), and the three are judged again without it."""
    from genretag.config import LearnConfig
    from genretag.learn.core import choose_genres

    rng = np.random.default_rng(4)
    centres = rng.normal(0, 1, (3, 16))
    x, genres, groups = [], [], []
    for n in range(120):
        label = ("A", "B", "C", "Mixed")[n % 4]
        centre = centres[n % 3 if label == "Mixed" else "ABC".index(label)]
        x.append(centre + rng.normal(0, 0.3, 16))
        genres.append((label,))
        groups.append(f"{label} album {n // 12}")
    chosen = choose_genres(genres, np.array(x, np.float32), groups, genres=("A", "B", "C", "Mixed"), left_out=(),
                           columns=np.arange(16), config=LearnConfig())
    assert chosen.genres == ("A", "B", "C")
    (dropped,) = chosen.left_out
    assert dropped.genre == "Mixed" and dropped.tracks == 30
    assert dropped.reason.startswith("cross-validated precision 0.") and "below --min-precision 0.5" in dropped.reason
    assert len(chosen.keep) == 90 and all(s.precision > 0.9 for s in chosen.cv.scores)
    first = cross_validate(np.array(x, np.float32), masks_of(genres, ("A", "B", "C", "Mixed")), groups,
                           ("A", "B", "C", "Mixed"), columns=np.arange(16), folds=LearnConfig().folds,
                           seed=LearnConfig().seed)
    assert chosen.cv.shrinkage == first.shrinkage  # the shrinkage is chosen once, on every genre
