"""The beets plugin follows beets' conventions: real beets libraries in temp folders, driven through
``python -m beets`` subprocesses, with the fast k-NN bundle (``knn_bundle``) on synthetic files. No mocks.

- uncertain tracks and albums can be found: each track's own confidence, and its album's;
- lastgenre's meanings for ``force``, ``keep_existing``, ``pretend``, ``source``;
- genretag's prediction store is shared with the CLI: files are decoded once (counted, not timed);
- ``auto`` on import says what it did, one line per album.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import synth
from test_beets_safety import MODEL_ID, Library, file_genres, small_library, tagged_source

pytest.importorskip("beets")
mediafile = pytest.importorskip("mediafile")

COUNTER = '''\
import os

if os.environ.get("GENRETAG_DECODE_LOG"):  # every file genretag decodes (reads windows of), one line each
    import genretag.audio as _audio

    _real = _audio.load_segments

    def _counted(path, *args, **kwargs):
        with open(os.environ["GENRETAG_DECODE_LOG"], "a") as log:
            log.write(os.fsdecode(path) + "\\n")
        return _real(path, *args, **kwargs)

    _audio.load_segments = _counted
'''


class Counted(Library):
    """A library whose ``beet`` and ``genretag`` subprocesses log every file they decode (a ``sitecustomize``
    wrapping :func:`genretag.audio.load_segments`; ``jobs: 0`` decodes in the process itself)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        hooks = self.root / "hooks"
        hooks.mkdir(exist_ok=True)
        (hooks / "sitecustomize.py").write_text(COUNTER)
        self.log = self.root / "decoded.log"

    def env(self) -> dict[str, str]:
        env = super().env()
        return {**env, "GENRETAG_DECODE_LOG": str(self.log),
                "PYTHONPATH": os.pathsep.join([str(self.root / "hooks"), env["PYTHONPATH"]])}

    def decoded(self) -> list[str]:
        """The files decoded since the last call."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return sorted(lines)

    def genretag(self, *args: str) -> subprocess.CompletedProcess:
        """genretag's own CLI, with this library's environment (the same default prediction store)."""
        return subprocess.run([sys.executable, "-m", "genretag", *args], env=self.env(), capture_output=True,
                              text=True, timeout=300, check=False)


# Uncertain tracks can be found -----------------------------------------------------------------------------


def test_own_and_album_confidence_queries_find_the_unsure(knn_bundle, tmp_path):
    """Album "Sure": two Low tracks and one that is a third Low, Mid and High (unsure on its own, outvoted);
    album "Unsure": one sure track of each class (each sure, the album not). ``genretag_confidence:..0.5``
    finds the unsure track, ``-a genretag_confidence:..0.5`` and ``genretag_album_confidence:..0.5`` the
    unsure album (and its tracks)."""
    src = tmp_path / "src"
    for i in range(2):
        tagged_source(src / "Sure", f"{i}.flac", "Low", seed=700 + i, seconds=9.0, title=f"sure{i}")
    mixed = np.concatenate([synth.tone_mix(label, seconds=3.0, seed=710 + i)
                            for i, label in enumerate(("Low", "Mid", "High"))])
    path = synth.write_audio(src / "Sure" / "mixed.flac", mixed)
    tags = mediafile.MediaFile(path)
    tags.title, tags.artist, tags.album = "mixed", "Synth", "Sure"
    tags.save()
    for i, label in enumerate(("Low", "Mid", "High")):
        tagged_source(src / "Unsure", f"{i}.flac", label, seed=720 + i, seconds=9.0, title=f"unsure{label}")
    lib = Library(tmp_path, knn_bundle, extra="  min_confidence: 0.0\n")
    assert lib("import", "-A", "-q", str(src)).returncode == 0
    run = lib("genretag")
    assert run.returncode == 0, run.stderr

    def listed(*args: str) -> list[str]:
        run = lib("ls", *args)
        assert run.returncode == 0, run.stderr
        return sorted(run.stdout.split())

    assert listed("-f", "$title", "genretag_confidence:..0.5") == ["mixed"]
    assert listed("-a", "-f", "$album", "genretag_confidence:..0.5") == ["Unsure"]
    assert listed("-f", "$title", "genretag_album_confidence:..0.5") == ["unsureHigh", "unsureLow", "unsureMid"]
    items = {f["title"]: f for f in lib.items().values()}
    assert items["mixed"]["genres"] == ["Low"] == [items["mixed"]["genretag_album_genre"]]  # the album's decision
    assert float(items["mixed"]["genretag_album_confidence"]) > 0.5


# lastgenre's meanings ----------------------------------------------------------------------------------------


def test_force_and_keep_existing_mean_what_lastgenre_means(knn_bundle, tmp_path):
    """A genre the user set (Jazz, in the database and the files): kept by default (``force: no``; the
    prediction is still stored); ``-f -k`` combines it with the new one; ``-f`` replaces it (the file's
    provenance records Jazz as the genre before, as ``genretag scan`` records it); ``pretend: yes`` in the
    config and ``-p`` change nothing; ``-s track`` decides each track on its own."""
    from genretag.tags import read_tags

    lib = small_library(tmp_path, knn_bundle, albums=1, tracks=2, seconds=6.0)
    run = lib("modify", "-y", "genres=Jazz")
    assert run.returncode == 0, run.stderr

    def state() -> dict[str, tuple]:
        return {p: (tuple(f["genres"]), tuple(file_genres(p)), f.get("genretag_genre")) for p, f in lib.items().items()}

    run = lib("genretag")
    assert run.returncode == 0, run.stderr
    assert "0 genre changes" in run.stdout, run.stdout
    assert set(state().values()) == {(("Jazz",), ("Jazz",), "Low")}

    run = lib("genretag", "-f", "-k")
    assert run.returncode == 0, run.stderr
    assert "2 genre changes" in run.stdout, run.stdout
    assert set(state().values()) == {(("Jazz", "Low"), ("Jazz", "Low"), "Low")}

    run = lib("genretag", "-f")
    assert run.returncode == 0, run.stderr
    assert set(state().values()) == {(("Low",), ("Low",), "Low")}
    for path in lib.items():
        assert read_tags(path).provenance_values == (MODEL_ID, "wrote genre: Low", "before genre: Jazz"), path

    before = state()
    pretend = Library(tmp_path, knn_bundle, extra="  pretend: yes\n  keep_existing: yes\n", config="pretend.yaml")
    run = pretend("genretag", "-f")
    assert run.returncode == 0, run.stderr
    assert "2 genre changes (pretend)" in run.stdout and run.stdout.count("+ Jazz") == 2, run.stdout
    assert state() == before
    run = lib("genretag", "-f", "-k", "-p")
    assert run.returncode == 0 and "2 genre changes (pretend)" in run.stdout, run.stdout
    assert state() == before

    one = sorted(lib.items())[0]  # genretag undo (the CLI) gives the file the user's genre back
    undo = subprocess.run([sys.executable, "-m", "genretag", "undo", one], env=lib.env(), capture_output=True,
                          text=True, timeout=120, check=False)
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert file_genres(one) == ["Jazz"]

    run = lib("genretag", "-f", "-s", "track")
    assert run.returncode == 0, run.stderr
    assert {"genretag_album_confidence" in f for f in lib.items().values()} == {False}
    run = lib("genretag", "-s", "artist")
    assert run.returncode == 1
    assert run.stderr == "configuration error: genretag.source: must be one of ['album', 'track'], not 'artist'\n"


def test_merge_adds_the_prediction_to_the_users_genres(knn_bundle, tmp_path):
    """``merge: yes`` (the CLI's ``--merge``): a track with the user's genre gets the predicted one after it,
    in the database and the file, without ``force``."""
    small_library(tmp_path, knn_bundle, albums=1, tracks=2, seconds=6.0)
    lib = Library(tmp_path, knn_bundle, extra="  merge: yes\n")
    assert lib("modify", "-y", "genres=Jazz").returncode == 0
    run = lib("genretag")
    assert run.returncode == 0, run.stderr
    assert "2 genre changes" in run.stdout, run.stdout
    assert {(tuple(f["genres"]), tuple(file_genres(p))) for p, f in lib.items().items()} == {
        (("Jazz", "Low"), ("Jazz", "Low"))}


# Memory: genretag's prediction store ----------------------------------------------------------------------


def test_pretend_then_real_run_decodes_once(knn_bundle, tmp_path):
    """``beet genretag -p`` decodes every track; the real run after it decodes none (the store has them);
    a ``-f`` run after it neither (the written files' entries were brought up to date)."""
    lib = small_library(tmp_path, knn_bundle, albums=2, tracks=2, seconds=6.0)
    lib = Counted(tmp_path, knn_bundle)
    tracks = sorted(lib.items())
    pretend = lib("genretag", "-p")
    assert pretend.returncode == 0, pretend.stderr
    assert lib.decoded() == tracks

    run = lib("genretag")
    assert run.returncode == 0, run.stderr
    assert lib.decoded() == []
    assert "4 predicted (4 decoded, 0 from the prediction store)" in pretend.stdout, pretend.stdout
    assert "4 predicted (0 decoded, 4 from the prediction store), 4 genre changes" in run.stdout, run.stdout
    assert all(f["genres"] == file_genres(p) and f["genres"] for p, f in lib.items().items())

    run = lib("genretag", "-f")
    assert run.returncode == 0, run.stderr
    assert lib.decoded() == []
    assert (tmp_path / "cache" / "genretag" / "predictions.sqlite").is_file()  # the CLI's default store


def test_the_store_is_shared_with_the_cli_both_ways(knn_bundle, tmp_path):
    """``genretag scan`` of an album, then ``beet genretag``: nothing decoded; ``beet genretag -p`` of
    another, then ``genretag scan --dry-run``: nothing decoded either."""
    lib = small_library(tmp_path, knn_bundle, albums=2, tracks=2, seconds=6.0)
    lib = Counted(tmp_path, knn_bundle)
    first = sorted(p for p in lib.items() if "/Album 0/" in p)
    second = sorted(p for p in lib.items() if "/Album 1/" in p)

    run = lib.genretag("scan", "--model", str(knn_bundle), "--jobs", "0", "--dry-run", *first)
    assert run.returncode == 0, run.stdout + run.stderr
    assert lib.decoded() == first
    beet = lib("genretag", "album:Album 0")
    assert beet.returncode == 0, beet.stderr
    assert lib.decoded() == []

    run = lib("genretag", "-p", "album:Album 1")
    assert run.returncode == 0, run.stderr
    assert lib.decoded() == second
    run = lib.genretag("scan", "--model", str(knn_bundle), "--jobs", "0", "--dry-run", *second)
    assert run.returncode == 0, run.stdout + run.stderr
    assert lib.decoded() == []
    assert "2 predicted (0 decoded, 2 from the prediction store)" in beet.stdout, beet.stdout


def test_store_no_decodes_every_time(knn_bundle, tmp_path):
    """``store: no``: no store is read or written, so each run decodes again."""
    small_library(tmp_path, knn_bundle, albums=1, tracks=2, seconds=6.0)
    lib = Counted(tmp_path, knn_bundle, extra="  store: no\n")
    for _ in range(2):
        run = lib("genretag", "-p")
        assert run.returncode == 0, run.stderr
        assert len(lib.decoded()) == 2
    assert not (tmp_path / "cache" / "genretag" / "predictions.sqlite").exists()


# auto on import -------------------------------------------------------------------------------------------


def test_auto_says_what_it_did_one_line_per_album(knn_bundle, tmp_path):
    """``beet import`` with ``auto``: one line per album (what genretag heard, the genres now, the tracks and
    decodes), and for a compilation the tracks' own."""
    src = tmp_path / "src"
    for i in range(2):
        tagged_source(src / "Deep", f"{i}.flac", "Low", seed=800 + i, title=f"deep{i}")
    for i, (artist, label) in enumerate((("One", "Mid"), ("Two", "High"))):
        tagged_source(src / "Hits", f"{i}.flac", label, seed=810 + i, artist=artist, title=f"hit{i}")
    lib = Library(tmp_path, knn_bundle, auto=True, extra="  min_confidence: 0.0\n")
    run = lib("import", "-A", "-q", str(src))
    assert run.returncode == 0, run.stderr
    lines = sorted(line for line in run.stdout.splitlines() if line.startswith("genretag: "))
    deep = next(f for f in lib.items().values() if f["album"] == "Deep")
    assert lines == [
        f"genretag: Synth - Deep: heard Low {float(deep['genretag_album_confidence']):.2f}; genres: Low "
        "(2 tracks, 2 decoded)",
        "genretag: Various Artists - Hits: one by one (a compilation, or source: track): heard Mid 1.00, "
        "High 1.00; genres: High, Mid (2 tracks, 2 decoded)",
    ], run.stdout
