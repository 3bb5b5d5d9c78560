"""``genretag undo`` (issue 22, section C): the genre a file had before genretag wrote it comes back, on every
container, only where genretag's genre is still there; ``--dry-run`` changes nothing."""

from __future__ import annotations

from pathlib import Path

import mutagen
import pytest
from mutagen.id3 import TCON, TIT2

import genretag
import synth
from genretag.cli import app
from genretag.tags import read_tags

CONTAINERS = ("mp3", "flac", "ogg", "opus", "m4a", "wma", "wav", "aiff")


def set_user_tags(path: Path, *, genre: str | None, title: str) -> None:
    """What a user's tagger leaves: a title, and a genre (or none)."""
    ext = path.suffix.lstrip(".")
    if ext in ("mp3", "wav", "aiff"):
        audio = mutagen.File(path)
        if audio.tags is None:
            audio.add_tags()
        audio.tags.add(TIT2(encoding=3, text=[title]))
        if genre:
            audio.tags.add(TCON(encoding=3, text=[genre]))
        audio.save() if ext != "mp3" else audio.tags.save(path)
        return
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    keys = {"m4a": ("\xa9nam", "\xa9gen"), "wma": ("Title", "WM/Genre")}.get(ext, ("TITLE", "GENRE"))
    audio.tags[keys[0]] = [title]
    if genre:
        audio.tags[keys[1]] = [genre]
    audio.save()


def _title(path: Path) -> str:
    audio = mutagen.File(path)
    tags = audio.tags
    for key in ("TIT2", "TITLE", "\xa9nam", "Title"):
        if key in tags:
            value = tags[key]
            return str(value.text[0] if hasattr(value, "text") else value[0])
    raise AssertionError("no title")


@pytest.mark.parametrize("ext", CONTAINERS)
def test_undo_puts_back_what_the_file_had(runner, tmp_path, knn_bundle, ext):
    if ext in ("m4a", "wma") and not synth.have_ffmpeg():
        pytest.skip("ffmpeg is needed to build m4a/wma")
    had, bare = tmp_path / f"had.{ext}", tmp_path / f"bare.{ext}"
    for path, genre in ((had, "Punk"), (bare, None)):
        synth.write_audio(path, synth.tone_mix("High", seconds=4.0, seed=7))
        set_user_tags(path, genre=genre, title=f"Song {path.stem}")
    options = genretag.ScanOptions(jobs=0, overwrite=True, min_confidence=0.0)
    assert {r.status for r in genretag.tag([had, bare], model=knn_bundle, options=options)} == {"tagged"}
    new, new_bare = "; ".join(read_tags(had).genres), "; ".join(read_tags(bare).genres)
    assert new in ("Low", "Mid", "High") and new_bare in ("Low", "Mid", "High")

    dry = runner.invoke(app, ["undo", str(had), str(bare), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"{had}: {new} -> Punk" in dry.stdout and f"{bare}: {new_bare} -> -" in dry.stdout
    assert read_tags(had).genres == (new,)

    result = runner.invoke(app, ["undo", str(had), str(bare)])
    assert result.exit_code == 0, result.output
    assert "2 undone, 0 refused or failed" in result.stdout
    assert read_tags(had).genres == ("Punk",) and read_tags(had).provenance is None
    assert read_tags(bare).genres == () and read_tags(bare).provenance is None
    assert _title(had) == "Song had" and _title(bare) == "Song bare"
    again = runner.invoke(app, ["undo", str(had)])  # nothing of genretag's is left
    assert again.exit_code == 1
    assert again.stderr.strip() == f"error: not undone: genretag did not write its genre ({had})"


def test_undo_refuses_a_genre_changed_since_and_leaves_it(runner, tmp_path, knn_bundle):
    edited, fine = tmp_path / "edited.flac", tmp_path / "fine.flac"
    for path in (edited, fine):
        synth.write_audio(path, synth.tone_mix("Low", seconds=4.0, seed=3))
        set_user_tags(path, genre="Jazz", title="x")
    options = genretag.ScanOptions(jobs=0, overwrite=True, min_confidence=0.0)
    list(genretag.tag([tmp_path], model=knn_bundle, options=options))
    audio = mutagen.File(edited)
    audio["GENRE"] = ["Bebop"]  # the user's, now
    audio.save()
    before = edited.read_bytes()
    result = runner.invoke(app, ["undo", str(tmp_path)])
    assert result.exit_code == 1
    assert f"error: not undone: its genre changed since genretag wrote it ({edited})" in result.stderr
    assert edited.read_bytes() == before and read_tags(fine).genres == ("Jazz",)
    assert "1 undone, 1 refused or failed" in result.stdout
