"""The beets plugin is as safe as ``genretag scan``: real beets libraries in temp folders, driven through
``python -m beets`` subprocesses, with the fast k-NN bundle (``knn_bundle``: no TensorFlow) on small
synthetic files. No mocks.

- a file genretag's writer refuses (``../shared/faults/nonprintable-atom-type.m4a``) is reported, left
  byte-identical, and its track is not changed in the database (``beet genretag`` and ``beet import``);
- only the genre and genretag's provenance field change in the files, in every container;
- ``kill -9`` at random points: database and files agree after one rerun;
- Ctrl-C exits 130 after "interrupted".
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import faults
import synth

pytest.importorskip("beets")
mediafile = pytest.importorskip("mediafile")
mutagen = pytest.importorskip("mutagen")

REPO = Path(__file__).resolve().parents[1]
FAULT = REPO.parent / "shared" / "faults" / "nonprintable-atom-type.m4a"
MODEL_ID = "rel 1"  # knn_bundle's name and version
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
  model: {model}
  jobs: 0
  auto: {auto}
{extra}"""
GENRE_KEYS = frozenset({"tcon", "genre", "\xa9gen", "gnre", "wm/genre", "wm/genreid",  # the genre field
                        "txxx:genretag_model", "genretag_model", "----:com.apple.itunes:genretag_model"})
"""Every container's genre field and genretag's provenance field, as mutagen names them (lower case)."""


class Library:
    """A beets library in ``root``; ``self(...)`` runs ``beet`` on it as a subprocess."""

    def __init__(self, root: Path, model: Path, *, auto: bool = False, extra: str = "",
                 config: str = "config.yaml") -> None:
        self.root = root
        self.config = root / config
        root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(CONFIG.format(root=root, model=model, auto="yes" if auto else "no", extra=extra))

    def env(self) -> dict[str, str]:
        return {**os.environ, "BEETSDIR": str(self.root), "TF_CPP_MIN_LOG_LEVEL": "3",
                "XDG_CACHE_HOME": str(self.root / "cache"),  # genretag's prediction store: this library's own
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "beets", "-c", str(self.config), *args]

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), env=self.env(), capture_output=True, text=True, timeout=300,
                              check=False)

    def items(self) -> dict[str, dict]:
        """path -> the item's own fields (not its album's), read through beets' Library."""
        from beets.library import Library as BeetsLibrary

        lib = BeetsLibrary(str(self.root / "library.db"), str(self.root / "music"))
        try:
            return {os.fsdecode(i.path): {k: i.get(k, with_album=False) for k in i.keys(with_album=False)}
                    for i in lib.items()}
        finally:
            lib._close()


def tagged_source(folder: Path, name: str, label: str, *, seed: int, seconds: float = 4.0, **tags: object) -> Path:
    """A synthetic clip of class ``label`` with a few tags (sparse, as files often are)."""
    path = synth.write_audio(folder / name, synth.tone_mix(label, seconds=seconds, seed=seed))
    f = mediafile.MediaFile(path)
    for key, value in {"title": path.stem, "artist": "Synth", "album": folder.name, **tags}.items():
        setattr(f, key, value)
    f.save()
    return path


def tag_text(path: str | Path) -> dict[str, str]:
    """Every tag of the file as mutagen reads it (key in lower case -> repr of its values), and the audio
    properties (``info``)."""
    f = mutagen.File(path)
    out: dict[str, list[str]] = {}
    for key, value in (f.tags.items() if f.tags is not None else []):
        out.setdefault(str(key).lower(), []).append(repr(value))
    return {"info": f.info.pprint(), **{k: "\n".join(v) for k, v in out.items()}}


def file_genres(path: str | Path) -> list[str]:
    return list(mediafile.MediaFile(path).genres or [])


def fault_or_skip() -> Path:
    if not FAULT.is_file():
        pytest.skip("../shared/faults is not present")
    return FAULT


# 1. A file genretag refuses is left alone -------------------------------------------------------


def test_fault_file_is_refused_by_beet_genretag_and_left_byte_identical(knn_bundle, tmp_path):
    """``genretag scan`` refuses to tag this m4a (writing it would move ``mdat`` but not the chunk offsets);
    the plugin refuses too: one line naming the file and the reason, exit 1, the file byte-identical and its
    track unchanged in the database, while the other track of the album is tagged."""
    fault = fault_or_skip()
    album = tmp_path / "src" / "Faults"
    album.mkdir(parents=True)
    shutil.copyfile(fault, album / fault.name)
    tagged_source(album, "high.flac", "High", seed=1)
    lib = Library(tmp_path, knn_bundle)
    run = lib("import", "-A", "-q", str(tmp_path / "src"))
    assert run.returncode == 0, run.stderr
    copy = next(p for p in lib.items() if p.endswith(".m4a"))
    assert Path(copy).read_bytes() == fault.read_bytes()  # beets copied it as it is
    before = lib.items()[copy]

    run = lib("genretag")
    assert run.returncode == 1, run.stdout + run.stderr
    refused = [line for line in run.stderr.splitlines() if copy in line]
    assert refused == [f"genretag: {copy}: cannot write tags: the audio would change (mp4 chunk offsets: "
                       "#0 (byte 2,924 -> 2,924) points at other bytes)"], run.stderr
    assert "error: genretag: 1 file could not be written (listed above; left as they were); the others were " \
           "processed" in run.stderr
    assert "2 predicted (2 decoded, 0 from the prediction store), 1 genre changes" in run.stdout and "1 not written" in run.stdout
    assert Path(copy).read_bytes() == fault.read_bytes()
    items = lib.items()
    assert items[copy] == before  # not a field of it changed (nor its mtime)
    (flac,) = (p for p in items if p.endswith(".flac"))
    assert (items[flac]["genres"], items[flac]["genretag_model"], file_genres(flac)) == (["High"], MODEL_ID, ["High"])


def test_fault_file_is_refused_on_import_with_auto(knn_bundle, tmp_path):
    """``auto: yes``: the album is tagged as it is imported, except the file the writer refuses (one line),
    which stays byte-identical and keeps its track's fields as imported."""
    fault = fault_or_skip()
    album = tmp_path / "src" / "Faults"
    album.mkdir(parents=True)
    shutil.copyfile(fault, album / fault.name)
    tagged_source(album, "high.flac", "High", seed=1)
    lib = Library(tmp_path, knn_bundle, auto=True)
    run = lib("import", "-A", "-q", str(tmp_path / "src"))
    assert run.returncode == 0, run.stderr
    items = lib.items()
    copy = next(p for p in items if p.endswith(".m4a"))
    assert [line for line in run.stderr.splitlines() if copy in line] == [
        f"genretag: {copy}: cannot write tags: the audio would change (mp4 chunk offsets: "
        "#0 (byte 2,924 -> 2,924) points at other bytes)"], run.stderr
    assert Path(copy).read_bytes() == fault.read_bytes()
    assert "genretag_model" not in items[copy] and items[copy]["genres"] == []
    (flac,) = (p for p in items if p.endswith(".flac"))
    assert (items[flac]["genres"], items[flac]["genretag_model"], file_genres(flac)) == (["High"], MODEL_ID, ["High"])


# 2. Only the genre (and genretag's provenance field) changes in the files --------------------------

CONTAINERS = ("mp3", "flac", "ogg", "opus", "m4a", "wav", "aiff", "wma")


def sparse_sources(src: Path) -> dict[str, Path]:
    """One file per container, each with the few tags many files have (beets' ``write`` would add its
    other fields: date, BPM, disc, track total, empty lyrics...), and album "Mixed"; plus a two-artist
    album, which beets calls a compilation (album artist "Various Artists" in the database)."""
    files = {ext: tagged_source(src / "Mixed", f"{ext}.{ext}", "Low", seed=300 + i, track=i + 1)
             for i, ext in enumerate(CONTAINERS)}
    for i, artist in enumerate(("One", "Two")):
        files[f"va{i}"] = tagged_source(src / "Various", f"va{i}.mp3", "Mid", seed=400 + i, artist=artist)
    return files


def assert_only_genre_changed(before: dict[str, str], after: dict[str, str], *, where: str) -> None:
    other = sorted((set(before) | set(after)) - GENRE_KEYS)
    assert {k: after.get(k) for k in other} == {k: before.get(k) for k in other}, where
    assert set(after) & GENRE_KEYS, f"{where}: no genre was written"  # the test can fail


def test_beet_genretag_changes_only_the_genre_in_every_container(knn_bundle, tmp_path):
    sparse_sources(tmp_path / "src")
    lib = Library(tmp_path, knn_bundle)
    run = lib("import", "-A", "-q", str(tmp_path / "src"))
    assert run.returncode == 0, run.stderr
    before = {p: tag_text(p) for p in lib.items()}
    assert len(before) == len(CONTAINERS) + 2

    run = lib("genretag")
    assert run.returncode == 0, run.stderr
    items = lib.items()
    for path, fields in items.items():
        assert_only_genre_changed(before[path], tag_text(path), where=path)
        assert file_genres(path) == fields["genres"] == [fields["genretag_genre"]], path


def test_import_with_auto_changes_only_the_genre_in_every_container(knn_bundle, tmp_path):
    sources = sparse_sources(tmp_path / "src")
    lib = Library(tmp_path, knn_bundle, auto=True)
    run = lib("import", "-A", "-q", str(tmp_path / "src"))
    assert run.returncode == 0, run.stderr
    items = lib.items()
    assert len(items) == len(sources)
    by_title = {f["title"]: p for p, f in items.items()}
    for source in sources.values():
        copy = by_title[source.stem]
        assert_only_genre_changed(tag_text(source), tag_text(copy), where=copy)
        assert file_genres(copy) == items[copy]["genres"] == [items[copy]["genretag_genre"]], copy


# 3. kill -9, and Ctrl-C ------------------------------------------------------------------------------


def small_library(root: Path, model: Path, *, albums: int, tracks: int, seconds: float, extra: str = "") -> Library:
    """``albums`` albums of ``tracks`` synthetic tracks (flac, mp3, ogg in turn), imported as they are."""
    kinds = ("flac", "mp3", "ogg")
    for a in range(albums):
        label = ("Low", "Mid", "High")[a % 3]
        for t in range(tracks):
            tagged_source(root / "src" / f"Album {a}", f"{t:02d}.{kinds[(a + t) % 3]}", label, seed=1000 * a + t,
                          seconds=seconds, title=f"a{a}t{t}")
    lib = Library(root, model, extra=extra)
    run = lib("import", "-A", "-q", str(root / "src"))
    assert run.returncode == 0, run.stderr
    return lib


def disagreements(lib: Library) -> dict[str, tuple]:
    """path -> (database genres, file genres) where they differ."""
    return {p: (f["genres"], file_genres(p)) for p, f in lib.items().items() if f["genres"] != file_genres(p)}


def _interrupted(lib: Library, send) -> tuple[int, str, str]:
    """Run ``beet genretag``; once it says it is predicting (before the first track is decoded), ``send(proc)``
    a signal. Its exit status, stdout and stderr (a hung run is killed with its workers when the wait ends)."""
    proc = subprocess.Popen(lib.command("genretag"), env=lib.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=faults.default_sigint)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "genretag: predicting 24 tracks" in line:
            send(proc)
            break
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out, "".join(lines) + err


@pytest.mark.parametrize(("send", "status"), [
    (lambda proc: os.killpg(proc.pid, signal.SIGINT), 130),  # Ctrl-C in a terminal: the whole process group
    (lambda proc: os.kill(proc.pid, signal.SIGTERM), 143),  # `kill PID`, as a service manager sends it
], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_saves_what_is_done_and_exits_128_plus_the_signal(knn_bundle, tmp_path, send, status):
    """An interrupt while tracks are predicted: the "interrupted" warning, no traceback, exit 130 (SIGINT) or 143
    (SIGTERM), no temporary copy left; what was stored agrees with the files."""
    lib = small_library(tmp_path, knn_bundle, albums=8, tracks=3, seconds=20.0)
    returncode, out, err = _interrupted(lib, send)
    assert returncode == status, (out, err)
    assert "genretag: interrupted: " in err and "tracks saved, the others are unchanged" in err, err
    assert "Traceback" not in err
    assert "predicted," not in out  # it stopped before the summary: the run did not finish
    assert disagreements(lib) == {}
    assert not list((tmp_path / "music").rglob("*.genretag-tmp"))


@pytest.mark.slow
def test_kill_9_at_random_points_then_one_rerun_agrees(knn_bundle, tmp_path):
    """20 runs of ``beet genretag`` killed (SIGKILL, the whole process group) at seeded random moments
    while it predicts, decides, writes and stores (even trials: 0 to 1.1 times that phase of a full run; odd
    ones: right after a random number of files were written), each followed by one complete rerun: then every track's genres in the
    database are its file's, every track is predicted, the refused fault file is byte-identical, and no
    temporary copy is left. The library: 3 albums of 3 tracks and an album with the fault m4a."""
    fault = fault_or_skip()
    # batches of one track's windows: each album is stored as soon as its tracks are in, not all at the end
    lib = small_library(tmp_path, knn_bundle, albums=3, tracks=3, seconds=6.0, extra="  batch_size: 8\n")
    (tmp_path / "src" / "Fault").mkdir()
    shutil.copyfile(fault, tmp_path / "src" / "Fault" / fault.name)
    run = lib("import", "-A", "-q", str(tmp_path / "src" / "Fault"))
    assert run.returncode == 0, run.stderr
    pristine = tmp_path / "pristine"
    shutil.copytree(tmp_path / "music", pristine / "music")
    shutil.copyfile(tmp_path / "library.db", pristine / "library.db")
    fault_copy = next(p for p in lib.items() if p.endswith(".m4a"))
    untouched = {p: os.stat(p).st_mtime_ns for p in lib.items() if p != fault_copy}  # restore() keeps them

    def restore() -> None:
        shutil.rmtree(tmp_path / "music")
        shutil.copytree(pristine / "music", tmp_path / "music")
        shutil.copyfile(pristine / "library.db", tmp_path / "library.db")

    def started() -> tuple[subprocess.Popen, float]:
        """``beet genretag`` running, once it has said it starts predicting (beets and the model loaded)."""
        proc = subprocess.Popen(lib.command("genretag"), env=lib.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        for line in proc.stderr:
            if "genretag: predicting 10 tracks" in line:
                break
        return proc, time.monotonic()

    proc, start = started()
    proc.communicate(timeout=120)
    work = time.monotonic() - start  # from the first decode to the exit
    assert proc.returncode == 1

    rng = random.Random(27)
    partial = ahead = 0  # kills that left some tracks stored and others not; files the database did not know
    for trial in range(20):
        restore()
        proc, start = started()
        if trial % 2 == 0:  # at a random moment
            time.sleep(rng.uniform(0.0, 1.1 * work))
        else:  # right after the k-th file was renamed into place (a random k): its album is not stored yet
            k = rng.randint(1, len(untouched) - 1)
            while proc.poll() is None and sum(os.stat(p).st_mtime_ns != m for p, m in untouched.items()) < k:
                time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        stored = [f.get("genretag_model") == MODEL_ID for p, f in lib.items().items() if p != fault_copy]
        partial += any(stored) and not all(stored)
        ahead += bool(disagreements(lib))

        rerun = lib("genretag")
        where = f"trial {trial}: {rerun.stdout}{rerun.stderr}"
        assert rerun.returncode == 1, where
        assert f"genretag: {fault_copy}: cannot write tags: the audio would change" in rerun.stderr, where
        items = lib.items()
        assert disagreements(lib) == {}, where
        assert all(f.get("genretag_model") == MODEL_ID and f["genres"] for p, f in items.items()
                   if p != fault_copy), where
        assert Path(fault_copy).read_bytes() == fault.read_bytes(), where
        assert not list((tmp_path / "music").rglob("*.genretag-tmp")), where
    print(f"kill -9: {partial}/20 partly stored, {ahead}/20 with files ahead of the database; work {work:.2f} s")
    assert partial >= 1 and ahead >= 1, f"no kill landed while tracks were being stored ({partial}, {ahead})"


# beets' own conventions -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def floored_bundle(knn_bundle, tmp_path_factory) -> Path:
    """``knn_bundle`` whose card recommends a confidence floor of 0.75 (``calibration.min_confidence``)."""
    import dataclasses

    from genretag.models.bundle import read_bundle, write_card

    out = tmp_path_factory.mktemp("floored") / "bundle"
    shutil.copytree(knn_bundle, out)
    write_card(out, dataclasses.replace(read_bundle(out).card, calibration={"min_confidence": 0.75}))
    return out


def test_confidence_floor_defaults_to_the_models(floored_bundle, tmp_path):
    """``min_confidence`` unset: an album below the model's calibrated floor gets no genre (its prediction is
    still stored), one above gets it, as ``genretag scan`` decides; ``min_confidence: 0.0`` writes them all."""
    lib = small_library(tmp_path, floored_bundle, albums=3, tracks=2, seconds=6.0)
    run = lib("genretag")
    assert run.returncode == 0, run.stderr
    items = lib.items()
    unsure = {p for p, f in items.items() if float(f["genretag_album_confidence"]) < 0.75}  # the album's decision
    assert unsure and len(unsure) < len(items), {p: f["genretag_album_confidence"] for p, f in items.items()}
    for path, f in items.items():
        assert f["genretag_model"] == MODEL_ID
        assert f["genres"] == file_genres(path) == ([] if path in unsure else [f["genretag_album_genre"]]), path

    zero = Library(tmp_path, floored_bundle, extra="  min_confidence: 0.0\n", config="zero.yaml")
    run = zero("genretag", "-f")
    assert run.returncode == 0, run.stderr
    assert f"{len(unsure)} genre changes" in run.stdout
    assert all(f["genres"] == file_genres(p) == [f["genretag_album_genre"]] for p, f in lib.items().items())


def test_compilation_tracks_are_decided_one_by_one(knn_bundle, tmp_path):
    """A compilation (beets sets ``comp`` and album artist "Various Artists" on an album of several artists)
    is not pooled: each track gets its own genre, on import with ``auto``, with ``-a`` and per item, as
    ``genretag scan --group album`` decides it; the two Low tracks would outvote the High one if pooled."""
    src = tmp_path / "src" / "Hits"
    for i, (artist, label) in enumerate((("One", "Low"), ("Two", "Low"), ("Three", "High"))):
        tagged_source(src, f"{i}.flac", label, seed=500 + i, artist=artist, title=label + str(i))
    lib = Library(tmp_path, knn_bundle, auto=True)
    run = lib("import", "-A", "-q", str(src.parent))
    assert run.returncode == 0, run.stderr
    expected = {"Low0": ["Low"], "Low1": ["Low"], "High2": ["High"]}
    for args in ((), ("genretag", "-f", "-a"), ("genretag", "-f")):
        if args:
            run = lib(*args)
            assert run.returncode == 0, run.stderr
        items = lib.items()
        assert {f["title"]: f["genres"] for f in items.values()} == expected, args
        assert {f["title"]: file_genres(p) for p, f in items.items()} == expected, args
        assert all(f["comp"] for f in items.values())


def test_not_music_is_recorded_and_its_file_left_as_it_was(tmp_path):
    """With the shipped model (it has a music score), white noise imported into beets gets ``genretag_status``
    ``not-music`` and no genre, its file is not written, and the summary counts it (exit status 0)."""
    import numpy as np

    src = tmp_path / "src" / "Hiss"
    src.mkdir(parents=True)
    noise = synth.write_audio(src / "noise.flac", 0.1 * np.random.default_rng(3).standard_normal(22_050 * 8)
                              .astype(np.float32))
    tags = mediafile.MediaFile(noise)
    tags.title, tags.artist, tags.album = "noise", "Synth", "Hiss"
    tags.save()
    lib = Library(tmp_path, "default")
    run = lib("import", "-A", "-q", str(src.parent))
    assert run.returncode == 0, run.stderr
    (path, fields), = lib.items().items()
    before = Path(path).read_bytes()
    run = lib("genretag")
    assert run.returncode == 0, run.stderr
    assert "0 predicted" in run.stdout and "1 not music, 0 silent, 0 failed" in run.stdout, run.stdout
    fields = lib.items()[path]
    assert (fields["genretag_status"], fields["genretag_genre"], fields["genres"]) == ("not-music", "", [])
    assert "genretag_confidence" not in fields
    assert Path(path).read_bytes() == before


def test_silent_and_undecodable_tracks_are_recorded_not_inherited_nor_predicted_again(knn_bundle, tmp_path):
    """An album with a silent track and one that does not decode: the album is decided from the other two;
    the silent and the broken track get ``genretag_status`` (silent, failed), no genre (nor the album's
    ``genretag_genre`` showing through), and the next run predicts nothing (``-f`` does)."""
    import numpy as np

    src = tmp_path / "src" / "Quiet"
    for i in range(2):
        tagged_source(src, f"{i}.flac", "Low", seed=600 + i, title=f"tone{i}")
    silent = synth.write_audio(src / "silent.flac", np.zeros(22_050 * 6, np.float32))
    tags = mediafile.MediaFile(silent)
    tags.title, tags.artist, tags.album = "silent", "Synth", "Quiet"
    tags.save()
    lib = Library(tmp_path, knn_bundle)
    run = lib("import", "-A", "-q", str(src.parent))
    assert run.returncode == 0, run.stderr
    broken = next(p for p, f in lib.items().items() if f["title"] == "tone1")
    Path(broken).write_bytes(os.urandom(30_000))

    run = lib("genretag")
    assert run.returncode == 1 and "1 file could not be decoded" in run.stderr, run.stderr
    assert "1 predicted" in run.stdout and "1 silent, 1 failed" in run.stdout, run.stdout
    items = {f["title"]: f for f in lib.items().values()}
    assert (items["tone0"]["genres"], items["tone0"]["genretag_genre"]) == (["Low"], "Low")
    for title, status in (("silent", "silent"), ("tone1", "failed")):
        f = items[title]
        assert (f["genres"], f["genretag_genre"], f["genretag_status"], f["genretag_model"]) == (
            [], "", status, MODEL_ID), title
        assert "genretag_confidence" not in f
    shown = lib("ls", "-f", "$title:$genretag_genre", "album:Quiet")
    assert sorted(shown.stdout.split()) == ["silent:", "tone0:Low", "tone1:"], shown.stdout

    run = lib("genretag")
    assert run.returncode == 0, run.stderr
    assert "0 predicted" in run.stdout and "3 skipped" in run.stdout, run.stdout
