"""The beets plugin against real beets: a temporary library, real clips imported with ``beet import -A``,
the plugin driven through beets' own entry point (``python -m beets``). No mocks of beets.

The tests share one library and run in file order (each beets run loads the model, ~5 s):
import with ``auto`` -> rerun skips -> a user genre: pretend, keep_existing, overwrite -> a corrupt file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import synth

pytest.importorskip("beets")
mediafile = pytest.importorskip("mediafile")

REPO = Path(__file__).resolve().parents[1]
_CARD = json.loads((REPO / "genretag" / "bundled" / "default" / "card.json").read_text())
MODEL_ID = f"{_CARD['name']} {_CARD['version']}"  # the provenance the shipped model writes
CLIPS = {  # album -> clips of ../shared/corpus; the rock clip is outvoted by the album's two electronic ones
    "A": ["emotify/electronic/1.mp3", "emotify/electronic/10.mp3", "emotify/rock/1.mp3"],
    "B": ["emotify/classical/1.mp3", "emotify/classical/100.mp3"],
}
CONFIG = """\
directory: {root}/music
library: {root}/library.db
plugins: [genretag]
import:
  copy: yes
  write: yes
ui:
  color: no
genretag:
  jobs: 2
{extra}"""


class Beets:
    """A beets library in a temp folder, its config files, and ``beet`` as a subprocess."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "config.yaml"
        self.config.write_text(CONFIG.format(root=root, extra=""))
        self.overwrite = root / "overwrite.yaml"
        self.overwrite.write_text(CONFIG.format(root=root, extra="  force: yes\n"))

    def __call__(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "BEETSDIR": str(self.root), "TF_CPP_MIN_LOG_LEVEL": "3",
               "XDG_CACHE_HOME": str(self.root / "cache"),  # genretag's prediction store: this library's own
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        return subprocess.run([sys.executable, "-m", "beets", "-c", str(config or self.config), *args],
                              env=env, capture_output=True, text=True, timeout=300, check=False)

    def items(self) -> dict[str, dict]:
        """title -> the item's own fields (not its album's), read through beets' Library."""
        from beets.library import Library

        lib = Library(str(self.root / "library.db"), str(self.root / "music"))
        try:
            return {i.title: {**{k: i.get(k, with_album=False) for k in i.keys(with_album=False)}, "path": os.fsdecode(i.path), "album_genres": i.get_album().genres,
                              "album_flex": dict(i.get_album())} for i in lib.items()}
        finally:
            lib._close()

    def file_genres(self) -> dict[str, list[str]]:
        return {t: mediafile.MediaFile(f["path"]).genres for t, f in self.items().items()}

    def snapshot(self) -> tuple[dict, dict]:
        """The database rows and the bytes of every file."""
        items = self.items()
        digests = {t: hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest() for t, f in items.items()}
        return items, digests


@pytest.fixture(scope="module")
def beet(corpus: Path, tmp_path_factory) -> Beets:
    """Two albums imported as-is (``auto`` on): the tracks of album A and B, genre tags cleared."""
    root = tmp_path_factory.mktemp("beets")
    for album, clips in CLIPS.items():
        for clip in clips:
            dest = root / "src" / album / clip.replace("/", "-")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(corpus / clip, dest)
            tags = mediafile.MediaFile(dest)
            tags.album, tags.albumartist, tags.artist, tags.genres = f"Album {album}", "Artist", "Artist", []
            tags.save()
    beet = Beets(root)
    run = beet("import", "-A", "-q", str(root / "src"))
    assert run.returncode == 0, run.stderr
    beet.imported = run
    return beet


def album_of(items: dict[str, dict], album: str) -> list[dict]:
    return [f for f in items.values() if f["album"] == f"Album {album}"]


def test_auto_tags_imported_albums_by_consensus(beet):
    """Each album's tracks get the album's decision in their genre field (and in ``genretag_album_*``), the
    album its decision in its ``genretag_*`` fields, and each track its own prediction in its own; import says
    what it did, one line per album."""
    items = beet.items()
    assert len(items) == 5
    expected = {"A": "Electronic", "B": "Classical"}
    for album, genre in expected.items():
        tracks = album_of(items, album)
        for f in tracks:  # the rock clip too: the album's decision
            assert f["genretag_model"] == MODEL_ID
            assert (f["genres"], f["album_genres"], f["genretag_album_genre"]) == ([genre], [genre], genre)
            assert f["album_flex"]["genretag_genre"] == genre
            assert f["album_flex"]["genretag_top"].startswith(f"{genre} ")
            assert float(f["album_flex"]["genretag_confidence"]) == float(f["genretag_album_confidence"])
            assert f["genretag_top"].startswith(f"{f['genretag_genre']} ")
            assert 0.0 < float(f["genretag_confidence"]) <= 1.0
        assert len({f["genretag_album_confidence"] for f in tracks}) == 1  # one decision per album
    own = sorted(f["genretag_genre"] for f in album_of(items, "A"))  # each track's own prediction
    assert own == ["Electronic", "Electronic", "Rock"], own
    assert beet.file_genres() == {t: [expected[f["album"][-1]]] for t, f in items.items()}
    lines = [line for line in beet.imported.stdout.splitlines() if line.startswith("genretag: ")]
    assert [line.split(": heard ")[0] for line in lines] == ["genretag: Artist - Album A", "genretag: Artist - Album B"]
    for line, (album, genre) in zip(lines, expected.items()):
        confidence = float(album_of(items, album)[0]["genretag_album_confidence"])
        assert line.endswith(f": heard {genre} {confidence:.2f}; genres: {genre} ({len(CLIPS[album])} tracks, "
                             f"{len(CLIPS[album])} decoded)"), line


def test_query_by_prediction(beet):
    run = beet("ls", "-f", "$title", "genretag_genre:Classical")
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == 2


def test_rerun_skips_what_this_model_did(beet):
    before = beet.snapshot()
    run = beet("genretag")
    assert run.returncode == 0, run.stderr
    assert "0 predicted" in run.stdout and "5 skipped" in run.stdout
    assert beet.snapshot() == before


def test_pretend_force_and_keep_existing(beet):
    """A genre the user set: ``-p`` with ``force: yes`` shows old -> new and changes nothing; without force it
    is kept (the prediction is stored); with ``force: yes`` it is replaced (``-a``: the album too)."""
    run = beet("modify", "-y", "-a", "album:Album A", "genres=Jazz")  # the user's genre, written to the files
    assert run.returncode == 0, run.stderr
    assert {g[0] for t, g in beet.file_genres().items() if beet.items()[t]["album"] == "Album A"} == {"Jazz"}

    before = beet.snapshot()
    run = beet("genretag", "-p", "-f", "album:Album A", config=beet.overwrite)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("- Jazz") == 4 and run.stdout.count("+ Electronic") == 4  # 3 tracks and the album
    assert "3 genre changes (pretend)" in run.stdout
    assert beet.snapshot() == before

    run = beet("genretag", "-F", "album:Album A")  # force: no (the default): Jazz stays
    assert run.returncode == 0, run.stderr
    assert "0 genre changes" in run.stdout and "3 skipped" in run.stdout, run.stdout
    tracks = album_of(beet.items(), "A")
    assert {tuple(f["genres"]) for f in tracks} == {("Jazz",)}
    assert sorted(f["genretag_genre"] for f in tracks) == ["Electronic", "Electronic", "Rock"]  # their own

    run = beet("genretag", "-a", "album:Album A", config=beet.overwrite)
    assert run.returncode == 0, run.stderr
    items = beet.items()
    assert {tuple(f["genres"]) for f in album_of(items, "A")} == {("Electronic",)}
    assert album_of(items, "A")[0]["album_genres"] == ["Electronic"]
    assert {tuple(g) for t, g in beet.file_genres().items() if items[t]["album"] == "Album A"} == {("Electronic",)}

    run = beet("genretag", "-s", "track", "album:Album A", config=beet.overwrite)  # lastgenre's source: track
    assert run.returncode == 0, run.stderr
    tracks = album_of(beet.items(), "A")
    assert sorted((f["genres"][0], f["genretag_genre"]) for f in tracks) == [
        ("Electronic", "Electronic"), ("Electronic", "Electronic"), ("Rock", "Rock")]
    assert not any("genretag_album_genre" in f for f in tracks)


def test_corrupt_file_is_one_line_and_the_rest_are_tagged(beet):
    items = beet.items()
    bad = Path(album_of(items, "B")[0]["path"])
    bad.write_bytes(os.urandom(40_000))
    forget = beet("modify", "-y", "-a", "genretag_model!")  # forget the predictions (albums, and so tracks)
    assert forget.returncode == 0 and "genretag_model" in forget.stdout, forget.stdout + forget.stderr

    run = beet("genretag")
    assert run.returncode == 1
    assert sum(bad.name in line for line in run.stderr.splitlines()) == 1, run.stderr
    assert "4 predicted" in run.stdout and "1 failed" in run.stdout
    after = beet.items()
    done = {t for t, f in after.items() if f.get("genretag_model") == MODEL_ID and f.get("genretag_genre")}
    assert done == {t for t, f in after.items() if f["path"] != str(bad)}
    (broken,) = (f for f in after.values() if f["path"] == str(bad))  # recorded as failed: not tried next run
    assert (broken["genretag_status"], broken["genretag_genre"], broken["genretag_model"]) == ("failed", "", MODEL_ID)


def test_styles_option_writes_each_genre_and_its_style(styles_bundle, tmp_path):
    """``styles: yes`` with a model whose card lists styles (the tiny one: Shrill beneath High): an album
    imported with ``auto`` gets the album's genre and its best style, in the database and in the files."""
    for i in range(2):
        path = synth.write_audio(tmp_path / "src" / f"{i}.flac", synth.tone_mix("High", seconds=4.0, seed=810 + i))
        tags = mediafile.MediaFile(path)
        tags.title, tags.album, tags.albumartist, tags.artist = f"High {i}", "Treble", "Synth", "Synth"
        tags.save()
    beet = Beets(tmp_path)
    config = tmp_path / "styles.yaml"
    config.write_text(CONFIG.format(root=tmp_path, extra=f"  model: {styles_bundle}\n  styles: yes\n"))
    run = beet("import", "-A", "-q", str(tmp_path / "src"), config=config)
    assert run.returncode == 0, run.stderr
    items = beet.items()
    assert {t: (f["genres"], f["genretag_genre"], f["genretag_model"]) for t, f in items.items()} == {
        t: (["High", "Shrill"], "High", "tiny-styles 0.1") for t in ("High 0", "High 1")}
    assert items["High 0"]["album_genres"] == ["High", "Shrill"]
    assert beet.file_genres() == {"High 0": ["High", "Shrill"], "High 1": ["High", "Shrill"]}
