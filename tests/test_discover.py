"""discover(): paths in -> sorted audio files out (the files need not be real audio)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from genretag.discover import discover, is_audio


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    _touch(
        root,
        "b.mp3", "a.flac", "UP.MP3", "Mixed.FlAc", "notes.txt", "cover.jpg", "playlist.m3u", "noext",
        "sub/c.wav", "sub/deeper/d.ogg", "sub/deeper/e.opus",
        "Z Folder/f.m4a", "Z Folder/g.aiff",
        ".hidden/h.mp3", "sub/.cache/i.flac", ".j.mp3", "sub/.k.wav",
    )
    (root / "empty").mkdir()
    return root


def _rel(files, root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in files]


EXPECTED = [
    # each folder: its files sorted by name, then its subfolders (sorted), depth first
    "Mixed.FlAc", "UP.MP3", "a.flac", "b.mp3",
    "Z Folder/f.m4a", "Z Folder/g.aiff",
    "sub/c.wav", "sub/deeper/d.ogg", "sub/deeper/e.opus",
]


def test_recursive_sorted_hidden_and_non_audio_skipped(library):
    found = discover([library])
    assert _rel(found.files, library) == EXPECTED
    assert found.problems == ()


def test_order_is_deterministic_and_independent_of_creation_order(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    names = ["10.mp3", "2.mp3", "b/x.flac", "a/y.flac", "1.mp3"]
    _touch(one, *names)
    _touch(two, *reversed(names))
    assert _rel(discover([one]).files, one) == _rel(discover([two]).files, two)
    assert _rel(discover([one]).files, one) == ["1.mp3", "10.mp3", "2.mp3", "a/y.flac", "b/x.flac"]


def test_uppercase_extensions_accepted():
    assert is_audio(Path("SONG.MP3")) and is_audio(Path("x.Flac")) and is_audio(Path("a.b.AIF"))
    assert not is_audio(Path("mp3")) and not is_audio(Path("x.mp3.txt")) and not is_audio(Path("x.m3u"))


def test_symlink_loop_terminates_and_lists_each_file_once(library):
    os.symlink("..", library / "sub" / "back")  # sub/back -> lib
    os.symlink(library, library / "sub" / "deeper" / "again")  # absolute link to the root, deeper down
    found = discover([library])
    assert _rel(found.files, library) == EXPECTED
    assert found.problems == ()


def test_symlink_to_folder_outside_is_followed(tmp_path, library):
    outside = tmp_path / "outside"
    _touch(outside, "o.mp3")
    os.symlink(outside, library / "linked")
    rel = _rel(discover([library]).files, library)
    assert "linked/o.mp3" in rel
    assert rel.index("linked/o.mp3") > rel.index("b.mp3")  # a folder, walked after the files


def test_file_reachable_twice_is_listed_once(library):
    os.symlink(library / "b.mp3", library / "sub" / "alias.mp3")
    found = discover([library, library / "sub", library / "b.mp3"])
    assert _rel(found.files, library) == EXPECTED
    assert len(set(found.files)) == len(found.files)


def test_broken_symlink_is_skipped_quietly(library):
    os.symlink(library / "nowhere.mp3", library / "dangling.mp3")
    found = discover([library])
    assert _rel(found.files, library) == EXPECTED


def test_missing_input_reported_and_the_rest_listed(library, tmp_path):
    missing = tmp_path / "does-not-exist"
    found = discover([missing, library / "sub"])
    assert _rel(found.files, library) == ["sub/c.wav", "sub/deeper/d.ogg", "sub/deeper/e.opus"]
    assert found.problems == ((missing, "no such file or folder"),)


def test_explicit_files(library):
    found = discover([library / "notes.txt", library / ".j.mp3", library / "UP.MP3"])
    assert _rel(found.files, library) == [".j.mp3", "UP.MP3"]  # an explicit hidden audio file is kept
    assert len(found.problems) == 1
    path, reason = found.problems[0]
    assert path == library / "notes.txt" and reason.startswith("not an audio file")


def test_empty_folder_gives_nothing(library):
    found = discover([library / "empty"])
    assert found.files == () and found.problems == ()


def test_unreadable_folder_reported(library, monkeypatch):
    locked = library / "sub" / "deeper"
    real_scandir = os.scandir

    def scandir(path):  # chmod 0 does not stop root, so refuse the way the OS would
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr("genretag.discover.os.scandir", scandir)
    found = discover([library])
    assert _rel(found.files, library) == [f for f in EXPECTED if not f.startswith("sub/deeper/")]
    assert found.problems == ((locked, "permission denied"),)


def test_accepts_strings_and_expands_user(library, monkeypatch):
    monkeypatch.setenv("HOME", str(library.parent))
    found = discover(["~/lib/sub/deeper", str(library / "a.flac")])
    assert _rel(found.files, library) == ["sub/deeper/d.ogg", "sub/deeper/e.opus", "a.flac"]
