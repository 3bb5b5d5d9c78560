"""genretag in a real library: albums decided together, the user's own genres, tags other tools wrote,
and what an independent reader (ffprobe, as players do) shows after a write. Real corpus clips."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import mutagen
import pytest
from mutagen.apev2 import APEv2
from mutagen.id3 import ID3, TALB, TCMP, TCON, TPE2

import genretag
import synth
from genretag.cli import app
from genretag.tags import read_tags, write_genre

ALBUMS = {"Quiet Strings": "classical", "Loud Guitars": "rock", "Night Machines": "electronic"}
"""Three albums of four real Emotify clips each (the folder each clip comes from)."""


def _retag(path: Path, *, album: str | None, album_artist: str | None, genre: str | None = None,
           compilation: bool = False) -> None:
    tags = ID3(path)
    for key in ("TALB", "TPE2", "TCON", "TCMP"):
        tags.delall(key)
    if album:
        tags.add(TALB(encoding=3, text=album))
    if album_artist:
        tags.add(TPE2(encoding=3, text=album_artist))
    if genre:
        tags.add(TCON(encoding=3, text=genre))
    if compilation:
        tags.add(TCMP(encoding=3, text="1"))
    tags.save(path, v2_version=3)


@pytest.fixture
def albums(corpus, tmp_path) -> Path:
    """Music/<album>/NN.mp3: four clips a folder, album and album artist tags set, no genre."""
    root = tmp_path / "Music"
    for album, source in ALBUMS.items():
        for n in range(4):
            dst = root / album / f"{n + 1:02d}.mp3"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(corpus / "emotify" / source / f"{n + 10}.mp3", dst)
            dst.chmod(0o644)
            _retag(dst, album=album, album_artist=f"The {album} Band")
    return root


def _scan(runner, *args):
    return runner.invoke(app, ["scan", *map(str, args), "--no-store", "--jobs", "0"])


def _rows(report: Path) -> list[dict]:
    return [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]


def test_group_album_gives_one_genre_per_album_and_keeps_each_tracks_own(runner, albums, tmp_path):
    report = tmp_path / "r.jsonl"
    # no floor: this is about grouping (model 4.0 is unsure of the rock album, 0.4-0.6 a track)
    result = _scan(runner, albums, "--group", "album", "--dry-run", "--json", report, "--min-confidence", "0")
    assert result.exit_code == 0, result.output
    rows = _rows(report)
    assert len(rows) == 12
    by_album: dict[str, list[dict]] = {}
    for row in rows:
        by_album.setdefault(Path(row["path"]).parent.name, []).append(row)
    for album, members in by_album.items():
        assert {r["group"] for r in members} == {f"album: The {album} Band - {album}"}
        assert len({tuple(r["genres"]) for r in members}) == 1  # one decision per album ...
        assert {r["group_genre"] for r in members} == {members[0]["genres"][0]}
        assert all(r["status"] == "would-tag" for r in members)
    own = {r["genre"] for r in rows}  # ... while each row keeps the track's own prediction
    assert len(own) >= 3
    track = tmp_path / "t.jsonl"
    assert _scan(runner, albums, "--dry-run", "--json", track, "--min-confidence", "0").exit_code == 0
    assert {r["path"]: r["genre"] for r in _rows(track)} == {r["path"]: r["genre"] for r in rows}
    assert all(r["group"] == "" for r in _rows(track))


def test_compilations_are_decided_per_track_and_artist_grouping_uses_the_album_artist(runner, albums, tmp_path):
    comp = albums / "Quiet Strings"
    for path in comp.iterdir():
        _retag(path, album="Quiet Strings", album_artist="Various Artists")
    flagged = albums / "Loud Guitars" / "01.mp3"
    _retag(flagged, album="Loud Guitars", album_artist="The Loud Guitars Band", compilation=True)
    report = tmp_path / "r.jsonl"
    assert _scan(runner, albums, "--group", "artist", "--dry-run", "--json", report).exit_code == 0
    rows = {str(Path(r["path"]).relative_to(albums)): r for r in _rows(report)}
    assert all(rows[f"Quiet Strings/0{n}.mp3"]["group"] == "" for n in range(1, 5))
    assert rows["Loud Guitars/01.mp3"]["group"] == ""
    assert {rows[f"Loud Guitars/0{n}.mp3"]["group"] for n in (2, 3, 4)} == {"artist: The Loud Guitars Band"}


def test_write_to_genretag_leaves_the_curated_genre_alone(runner, albums, tmp_path):
    path = albums / "Loud Guitars" / "01.mp3"
    _retag(path, album="Loud Guitars", album_artist="X", genre="Shoegaze")
    before_tcon = ID3(path)["TCON"].text
    result = _scan(runner, path, "--write-to", "genretag", "--min-confidence", "0")  # a synthetic clip: any genre
    assert result.exit_code == 0, result.output
    state = read_tags(path)
    assert ID3(path)["TCON"].text == before_tcon and state.genres == ("Shoegaze",)
    assert len(state.own_genres) == 1 and state.provenance == genretag.find_model("default").card.model_id
    probe = _ffprobe_tags(path)
    assert probe["GENRETAG_GENRE"] == state.own_genres[0] and probe["genre"] == "Shoegaze"


def test_merge_adds_to_the_genres_a_file_has(runner, albums, tmp_path):
    path = albums / "Loud Guitars" / "02.mp3"
    _retag(path, album="Loud Guitars", album_artist="X", genre="Shoegaze")
    report = tmp_path / "r.jsonl"
    result = _scan(runner, path, "--merge", "--json", report, "--min-confidence", "0")
    assert result.exit_code == 0, result.output
    (row,) = _rows(report)
    assert row["status"] == "tagged" and row["genres"] == ["Shoegaze", row["genre"]]
    assert read_tags(path).genres == ("Shoegaze", row["genre"])
    again = _scan(runner, path, "--merge", "--force", "--min-confidence", "0")
    assert again.exit_code == 0 and "1 kept existing genre" in again.stdout  # nothing new to add


@pytest.mark.parametrize("stored, expected", [
    ("Rock/Pop", ("Rock", "Pop")),       # ID3v2.3's own separator
    ("Rock; Pop", ("Rock", "Pop")),      # MusicBee, Mp3tag
    ("(17)", ("Rock",)),                 # a numeric ID3v1 reference
    ("17", ("Rock",)),
])
def test_genres_other_taggers_wrote_count_as_existing(runner, albums, stored, expected):
    path = albums / "Night Machines" / "01.mp3"
    _retag(path, album="Night Machines", album_artist="X", genre=stored)
    assert read_tags(path).genres == expected
    before = path.read_bytes()
    result = _scan(runner, path)
    assert result.exit_code == 0 and "1 kept existing genre" in result.stdout
    assert path.read_bytes() == before


def test_an_ape_genre_that_would_contradict_is_said(runner, albums):
    path = albums / "Night Machines" / "02.mp3"
    ape = APEv2()
    ape["Genre"] = "Polka"
    ape.save(path)
    assert read_tags(path).ape_genres == ("Polka",)
    result = _scan(runner, path)
    assert result.exit_code == 0, result.output
    assert "note: its APEv2 tag says genre 'Polka', left as it was" in result.stderr
    assert APEv2(path)["Genre"] == "Polka" and read_tags(path).provenance is not None


def _ffprobe_tags(path: Path) -> dict[str, str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags:stream_tags", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    tags = dict(data.get("format", {}).get("tags", {}))
    for stream in data.get("streams", []):
        tags.update(stream.get("tags", {}))
    return {k if k.isupper() and k.startswith("GENRETAG") else k.lower(): v for k, v in tags.items()}


# What a player shows, per container: several genres written, read back by ffprobe.
SHOWN = {
    "mp3": "Rock",            # ID3v2.4: NUL-separated values, as the spec says; FFmpeg shows the first
    "mp3-v23": "Rock/Pop",    # ID3v2.3: joined with the separator (default "/")
    "flac": "Rock;Pop",       # two GENRE comments; FFmpeg joins them with ";"
    "ogg": "Rock;Pop",
    "opus": "Rock;Pop",
    "m4a": "Rock",            # MP4 ©gen holds one value for ffprobe (mutagen writes both)
    "wav": "Rock",            # the same ID3v2.4 frames in a chunk
    "aiff": "Rock",
    "wma": "Rock",            # WM/Genre holds both; FFmpeg shows the first
}


@pytest.mark.parametrize("container", list(SHOWN))
def test_what_an_independent_reader_shows_after_a_multi_genre_write(tmp_path, container):
    ext = container.split("-")[0]
    path = synth.write_audio(tmp_path / f"song.{ext}", synth.tone_mix("Mid", seconds=2.0))
    write_genre(path, ["Rock", "Pop"], provenance="test 1", id3v23=container.endswith("v23"))
    shown = _ffprobe_tags(path)
    assert shown.get("genre") == SHOWN[container], shown
    assert mutagen.File(path) is not None and read_tags(path).genres[:1] == ("Rock",)


def test_the_default_models_calibrated_floors_decide_what_is_written(runner, albums, tmp_path):
    """The default model's card recommends a floor for the top genre and one for each further one; scan uses them."""
    import genretag

    calibration = genretag.find_model("default").card.calibration
    top, further = calibration["min_confidence"], calibration["next_min_confidence"]
    assert 0 < further < top < 1
    report = tmp_path / "r.jsonl"
    assert _scan(runner, albums, "--dry-run", "--json", report, "--top-k", "3").exit_code == 0
    rows = _rows(report)
    for row in rows:
        probs = sorted(row["probabilities"].values(), reverse=True)
        if row["confidence"] < top:
            assert row["status"] == "low-confidence" and row["genres"] == []
        else:
            assert row["status"] == "would-tag"
            assert len(row["genres"]) == 1 + sum(p >= further for p in probs[1:3]), (row["genres"], probs[:3])
    assert {r["status"] for r in rows} == {"low-confidence", "would-tag"}  # both occur on these 12 clips
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-3
    opened = tmp_path / "o.jsonl"
    assert _scan(runner, albums, "--dry-run", "--json", opened, "--min-confidence", "0").exit_code == 0
    assert {r["status"] for r in _rows(opened)} == {"would-tag"}
