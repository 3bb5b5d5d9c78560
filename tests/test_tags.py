"""Tag round trips per container on seeded synthetic files, plus atomicity and errors.

Every container of ``synth.CONTAINERS`` is synthesised once per session and
pre-tagged (with mutagen) with title, artist, album, track number, a comment,
an old genre and, for mp3/flac/m4a, a cover picture. Each test tags a copy.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf
import synth
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mutagen.apev2 import APEv2
from mutagen.asf import ASF
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, COMM, ID3, TALB, TCON, TDRL, TIT2, TPE1, TRCK, TYER
from mutagen.mp4 import MP4, MP4Cover
from mutagen.ogg import OggPage

from genretag.config import PROVENANCE_KEY
from genretag.errors import TagError
from genretag.tags import TMP_SUFFIX, read_tags, split_genres, write_genre
from genretag.tags import write as tags_module

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
PROV = "genretag-test 1.0"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))  # mutagen stores pictures as opaque bytes
OWN_KEYS = {
    "TCON", f"TXXX:{PROVENANCE_KEY}",  # ID3
    "GENRE", PROVENANCE_KEY,  # Vorbis comments, ASF provenance
    "\xa9gen", f"----:com.apple.iTunes:{PROVENANCE_KEY}",  # MP4
    "WM/Genre",  # ASF
}
"""Tag keys write_genre may change; every other key must survive unchanged."""
ID3_CONTAINERS = ("mp3", "wav", "aiff")
SOUNDFILE_CONTAINERS = ("mp3", "flac", "ogg", "opus", "wav", "aiff")
FFMPEG_CONTAINERS = ("m4a", "wma")
EXPECTED_CONTAINER = {
    "mp3": "id3", "flac": "vorbis", "ogg": "vorbis", "opus": "vorbis",
    "m4a": "mp4", "wma": "asf", "wav": "riff-id3", "aiff": "aiff-id3",
}


# --- fixtures ---------------------------------------------------------------------------


def _pretag_id3(audio: mutagen.FileType, *, picture: bool) -> None:
    if audio.tags is None:
        audio.add_tags()
    frames = [
        TIT2(encoding=3, text="Title"), TPE1(encoding=3, text="Artist"),
        TALB(encoding=3, text="Album"), TRCK(encoding=3, text="3/12"),
        COMM(encoding=3, lang="eng", desc="", text="a comment"), TCON(encoding=3, text="Ambient"),
    ]
    if picture:
        frames.append(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=PNG))
    for frame in frames:
        audio.tags.add(frame)


def _pretag_vorbis(audio: mutagen.FileType) -> None:
    for key, value in [("TITLE", "Title"), ("ARTIST", "Artist"), ("ALBUM", "Album"),
                       ("TRACKNUMBER", "3"), ("COMMENT", "a comment"), ("GENRE", "Ambient")]:
        audio[key] = [value]
    if isinstance(audio, FLAC):
        pic = Picture()
        pic.type, pic.mime, pic.desc, pic.data = 3, "image/png", "cover", PNG
        audio.add_picture(pic)


def _pretag_mp4(audio: MP4) -> None:
    audio["\xa9nam"], audio["\xa9ART"], audio["\xa9alb"] = ["Title"], ["Artist"], ["Album"]
    audio["trkn"], audio["\xa9cmt"], audio["\xa9gen"] = [(3, 12)], ["a comment"], ["Ambient"]
    audio["covr"] = [MP4Cover(PNG, imageformat=MP4Cover.FORMAT_PNG)]


def _pretag_asf(audio: ASF) -> None:
    for key, value in [("Title", "Title"), ("Author", "Artist"), ("WM/AlbumTitle", "Album"),
                       ("WM/TrackNumber", "3"), ("Description", "a comment"), ("WM/Genre", "Ambient")]:
        audio[key] = [value]


def _pretag(path: Path) -> None:
    audio = mutagen.File(path)
    if isinstance(audio, MP4):
        _pretag_mp4(audio)
    elif isinstance(audio, ASF):
        _pretag_asf(audio)
    elif path.suffix in (".mp3", ".wav", ".aiff"):
        _pretag_id3(audio, picture=path.suffix == ".mp3")
    else:
        _pretag_vorbis(audio)
    audio.save()


@pytest.fixture(scope="session")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One pre-tagged 1-s file per container (m4a/wma only when ffmpeg exists)."""
    folder = tmp_path_factory.mktemp("tag-originals")
    made = {}
    for seed, container in enumerate(synth.CONTAINERS):
        if container in FFMPEG_CONTAINERS and not synth.have_ffmpeg():
            continue
        path = synth.write_audio(folder / f"song.{container}", synth.tone_mix("Mid", seconds=1.0, seed=seed))
        _pretag(path)
        made[container] = path
    return made


def _copy(originals: dict[str, Path], container: str, folder: Path, name: str | None = None) -> Path:
    if container not in originals:
        pytest.skip(f"no {container} file (ffmpeg missing)")
    dst = folder / (name or originals[container].name)
    shutil.copyfile(originals[container], dst)
    return dst


# --- what must not change ---------------------------------------------------------------


def _other_tags(path: Path) -> object:
    """Every tag except genre and provenance, in a comparable form."""
    audio = mutagen.File(path)
    if audio.tags is None:
        return None
    if hasattr(audio.tags, "vendor"):  # Vorbis comments: an ordered list of (key, value)
        return audio.tags.vendor, [(k.upper(), v) for k, v in audio.tags if k.upper() not in OWN_KEYS]
    return sorted((key, repr(value)) for key, value in audio.tags.items() if key not in OWN_KEYS)


def _iff_chunk(data: bytes, name: bytes, endian: str) -> bytes:
    """Body of the first top-level chunk ``name`` of a RIFF (``<``) or FORM (``>``) file."""
    pos = 12
    while pos + 8 <= len(data):
        size = struct.unpack(endian + "I", data[pos + 4:pos + 8])[0]
        if data[pos:pos + 4] == name:
            return data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)
    raise AssertionError(f"no {name!r} chunk")


def _mp4_mdat(data: bytes) -> bytes:
    pos = 0
    while pos + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        if name == b"mdat":
            return data[pos + header:pos + size]
        pos += size
    raise AssertionError("no mdat atom")


def _flac_frames(data: bytes) -> bytes:
    assert data[:4] == b"fLaC"
    pos = 4
    while True:
        last, size = data[pos] & 0x80, int.from_bytes(data[pos + 1:pos + 4], "big")
        pos += 4 + size
        if last:
            return data[pos:]


def _ogg_pages(path: Path) -> list[OggPage]:
    pages = []
    with open(path, "rb") as f:
        while True:  # (peek() may see fewer than 4 bytes at the end of its buffer: read until EOF instead)
            try:
                pages.append(OggPage(f))
            except EOFError:
                return pages


def _ogg_audio_packets(path: Path, headers: int) -> list[bytes]:
    return OggPage.to_packets(_ogg_pages(path))[headers:]


def _payload(path: Path) -> object:
    """The audio bytes of ``path`` (without any tag), or its packets for Ogg."""
    data = path.read_bytes()
    ext = path.suffix.lstrip(".")
    if ext == "mp3":
        end = len(data) - 128 if data[-128:-125] == b"TAG" else len(data)
        return data[ID3(path).size if data[:3] == b"ID3" else 0:end]
    if ext == "flac":
        return _flac_frames(data)
    if ext in ("ogg", "opus"):
        return _ogg_audio_packets(path, headers=3 if ext == "ogg" else 2)
    if ext == "wav":
        return _iff_chunk(data, b"data", "<")
    if ext == "aiff":
        return _iff_chunk(data, b"SSND", ">")
    if ext == "m4a":
        return _mp4_mdat(data)
    return None  # wma: decoded PCM is compared instead


def _decoded(path: Path) -> bytes:
    if path.suffix.lstrip(".") in SOUNDFILE_CONTAINERS:
        samples, rate = sf.read(path, dtype="float32")
        return samples.tobytes() + str(rate).encode()
    return subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "s16le", "-"],
        check=True, capture_output=True,
    ).stdout


def _ffprobe_tags(path: Path) -> dict[str, str]:
    """Format and stream tags as ffprobe (an independent reader) sees them, keys lower-cased."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags:stream_tags", "-of", "json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    found = dict(info.get("format", {}).get("tags", {}))
    for stream in info.get("streams", []):  # Ogg keeps Vorbis comments per stream
        found.update(stream.get("tags", {}))
    return {k.lower(): v for k, v in found.items()}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TMP_SUFFIX in p.name)


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("container", synth.CONTAINERS)
def test_round_trip_changes_only_genre_and_provenance(originals, tmp_path, container):
    path = _copy(originals, container, tmp_path)
    tags_before, payload_before, decoded_before = _other_tags(path), _payload(path), _decoded(path)
    assert read_tags(path).genres == ("Ambient",)

    state = write_genre(path, ["Rock", "Pop"], provenance=PROV)

    assert state == read_tags(path)
    assert state.container == EXPECTED_CONTAINER[container]
    assert state.genres == ("Rock", "Pop")
    assert state.provenance == PROV
    assert state.id3_version == (4 if container in ID3_CONTAINERS else None)
    assert _other_tags(path) == tags_before
    assert _payload(path) == payload_before
    assert _decoded(path) == decoded_before
    assert _leftovers(tmp_path) == []
    if synth.have_ffmpeg():  # ffmpeg shows every Vorbis value joined by ";", only the first elsewhere
        seen = _ffprobe_tags(path)
        assert seen["genre"] == ("Rock;Pop" if state.container == "vorbis" else "Rock"), seen
        assert seen[PROVENANCE_KEY.lower()] == PROV, seen


def test_flac_picture_and_streaminfo_kept(originals, tmp_path):
    path = _copy(originals, "flac", tmp_path)
    before = FLAC(path)
    write_genre(path, ["Rock"], provenance=PROV)
    after = FLAC(path)
    assert [(p.type, p.mime, p.desc, p.data) for p in after.pictures] == [(3, "image/png", "cover", PNG)]
    assert after.info.md5_signature == before.info.md5_signature
    assert [type(b).__name__ for b in after.metadata_blocks] == [type(b).__name__ for b in before.metadata_blocks]


@pytest.mark.parametrize("container", synth.CONTAINERS)
def test_writing_again_replaces_instead_of_appending(originals, tmp_path, container):
    path = _copy(originals, container, tmp_path)
    write_genre(path, ["Rock", "Pop"], provenance=PROV)
    state = write_genre(path, ["Jazz"], provenance="other 2.0")
    assert (state.genres, state.provenance) == (("Jazz",), "other 2.0")


@pytest.mark.parametrize("container", ["mp3", "flac", "ogg", "wav", "aiff"])
def test_untagged_file_reads_empty(tmp_path, container):
    path = synth.write_audio(tmp_path / f"bare.{container}", synth.tone_mix("Low", seconds=0.5))
    state = read_tags(path)
    assert (state.genres, state.provenance, state.id3_version) == ((), None, None)
    assert state.container == EXPECTED_CONTAINER[container]


def test_genres_cleaned_and_deduplicated(originals, tmp_path):
    path = _copy(originals, "flac", tmp_path)
    state = write_genre(path, [" Rock ", "", "Rock", "Pop"], provenance=f" {PROV} ")
    assert (state.container, state.genres, state.provenance, state.id3_version) == ("vorbis", ("Rock", "Pop"), PROV, None)


def _is_id3_reference(name: str) -> bool:
    """Names ID3 readers take for a numeric ID3v1 genre (a documented limitation)."""
    return name.strip().isdecimal() or name.strip() in ("CR", "RX")


GENRE_NAMES = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=24)


@pytest.mark.parametrize("container", ["mp3", "flac", "m4a", "wma"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(genres=st.lists(GENRE_NAMES.filter(lambda g: not _is_id3_reference(g)), min_size=1, max_size=3)
       .filter(lambda gs: bool(split_genres(gs, slash=True))))
@example(genres=["(Live) Rock", "Hip-Hop/Rap", "Drum & Bass", "Électro"])
@example(genres=["(12)", "(CR)ossover"])  # would read as ID3v1 references unless escaped
def test_any_genre_names_round_trip(originals, tmp_path, container, genres):
    """Names come back as written, except that a name holding a separator other taggers join genres
    with (";" anywhere; "/" in ID3v2.3, where genretag joins with "/" too) reads as several (documented)."""
    path = _copy(originals, container, tmp_path)
    written = list(dict.fromkeys(g.strip() for g in genres if g.strip()))
    assert write_genre(path, genres, provenance=PROV).genres == split_genres(written)
    v23 = split_genres(written, slash=container == "mp3")  # only mp3 has ID3v2.3
    assert write_genre(path, genres, provenance=PROV, id3v23=True).genres == v23


@pytest.mark.parametrize(
    ("genres", "provenance", "error"),
    [("Rock", PROV, TypeError), ([], PROV, ValueError), (["  "], PROV, ValueError), ([";"], PROV, ValueError),
     ([" / ; "], PROV, ValueError),
     (["Rock"], "", ValueError), (["Ro\x00ck"], PROV, ValueError), ([3], PROV, TypeError)],
)
def test_bad_arguments_rejected_before_touching_the_file(originals, tmp_path, genres, provenance, error):
    path = _copy(originals, "mp3", tmp_path)
    before = path.read_bytes()
    with pytest.raises(error):
        write_genre(path, genres, provenance=provenance)
    assert path.read_bytes() == before


def test_container_chosen_by_content(originals, tmp_path):
    path = _copy(originals, "flac", tmp_path, name="actually-flac.mp3")
    state = write_genre(path, ["Rock"], provenance=PROV)
    assert (state.container, state.genres) == ("vorbis", ("Rock",))


# --- ID3 specifics ----------------------------------------------------------------------


@pytest.mark.parametrize("container", ID3_CONTAINERS)
def test_id3v23_option_writes_v23(originals, tmp_path, container):
    path = _copy(originals, container, tmp_path)
    state = write_genre(path, ["Rock", "Pop"], provenance=PROV, id3v23=True)
    assert state.id3_version == 3
    assert state.genres == ("Rock", "Pop")  # NUL-separated, so it reads back as two
    after = mutagen.File(path).tags
    assert [str(after[k]) for k in ("TIT2", "TPE1", "TALB", "TRCK")] == ["Title", "Artist", "Album", "3/12"]
    assert after["COMM::eng"].text == ["a comment"]
    if container == "mp3":
        assert path.read_bytes()[:4] == b"ID3\x03"


def _as_v23(path: Path) -> None:
    """Re-save the ID3 tag of ``path`` as v2.3 with a year, and an off-spec v2.4 frame (TDRL)."""
    tags = ID3(path)
    tags.update_to_v23()
    tags.add(TYER(encoding=1, text="2001"))
    tags.add(TDRL(encoding=1, text="2001"))
    tags.save(path, v2_version=3)


def _raw_frames(path: Path) -> list[tuple[str, str]]:
    """ID3 frames as stored (not translated to v2.4), without genre and provenance."""
    return sorted((k, repr(v)) for k, v in ID3(path, translate=False).items() if k not in OWN_KEYS)


def test_existing_v23_tag_stays_v23(originals, tmp_path):
    path = _copy(originals, "mp3", tmp_path)
    _as_v23(path)
    before, raw_before = _other_tags(path), _raw_frames(path)
    assert "TYER" in dict(raw_before) and "TDRL" in dict(raw_before)
    state = write_genre(path, ["Rock", "Pop"], provenance=PROV)
    assert state.id3_version == 3
    assert path.read_bytes()[:4] == b"ID3\x03"
    assert state.genres == ("Rock", "Pop")
    assert _other_tags(path) == before
    assert _raw_frames(path) == raw_before  # TYER not turned into TDRC, TDRL kept


def test_id3v1_kept_except_its_genre_byte(originals, tmp_path):
    path = _copy(originals, "mp3", tmp_path)
    tags = ID3(path)
    tags.save(path, v1=2)
    data = bytearray(path.read_bytes())
    data[-125:-95] = b"Only in v1".ljust(30, b"\x00")  # differs from the v2 title
    data[-35:-31] = b"1999"  # a year the v2 tag doesn't have
    path.write_bytes(bytes(data))
    v2_before = sorted(ID3(path, load_v1=False).keys())
    assert "TDRC" not in v2_before

    write_genre(path, ["Rock", "Pop"], provenance=PROV)

    after = path.read_bytes()
    assert after[-128:-1] == bytes(data[-128:-1])
    assert after[-1] == 17  # "Rock" in the ID3v1 genre list
    v2_after = sorted(k for k in ID3(path, load_v1=False).keys() if k != f"TXXX:{PROVENANCE_KEY}")
    assert v2_after == v2_before  # nothing merged in from v1 (no TDRC)


def test_id3v1_only_file(tmp_path):
    path = synth.write_audio(tmp_path / "v1.mp3", synth.tone_mix("High", seconds=0.5))
    v1 = b"TAG" + b"v1 title".ljust(30, b"\x00") + bytes(30 + 30) + b"1999" + bytes(30) + bytes([17])
    path.write_bytes(path.read_bytes() + v1)
    state = read_tags(path)  # as players show it
    assert (state.container, state.genres, state.provenance, state.id3_version) == ("id3", ("Rock",), None, None)

    state = write_genre(path, ["Pop"], provenance=PROV)

    assert (state.genres, state.id3_version) == (("Pop",), 4)
    assert path.read_bytes()[-128:] == v1[:-1] + bytes([13])  # "Pop"
    assert str(ID3(path, load_v1=False)["TIT2"]) == "v1 title"  # copied into the new v2 tag (FFmpeg reads only v2)


def test_id3v22_tag_upgraded_to_v24(tmp_path):
    path = synth.write_audio(tmp_path / "old.mp3", synth.tone_mix("High", seconds=0.5))
    frame = b"TT2" + (1 + 5).to_bytes(3, "big") + b"\x00Title"
    header = b"ID3\x02\x00\x00" + len(frame).to_bytes(4, "big")  # < 128: syncsafe as is
    path.write_bytes(header + frame + path.read_bytes())
    assert read_tags(path).id3_version == 2

    state = write_genre(path, ["Rock"], provenance=PROV)

    assert (state.genres, state.id3_version) == (("Rock",), 4)
    assert str(ID3(path)["TIT2"]) == "Title"


def test_no_id3v1_created(originals, tmp_path):
    path = _copy(originals, "mp3", tmp_path)
    write_genre(path, ["Rock"], provenance=PROV)
    assert path.read_bytes()[-128:-125] != b"TAG"


def test_apev2_tag_untouched(originals, tmp_path):
    path = _copy(originals, "mp3", tmp_path)
    ape = APEv2()
    ape["Title"] = "ape title"
    ape.save(path)
    ape_bytes = path.read_bytes()[-200:]
    write_genre(path, ["Rock"], provenance=PROV)
    assert path.read_bytes()[-200:] == ape_bytes
    assert str(APEv2(path)["Title"]) == "ape title"


# --- MP4 / ASF specifics ----------------------------------------------------------------


@pytest.mark.parametrize("number", [18, 1000], ids=["known", "unknown"])
def test_mp4_numeric_gnre_atom_removed(originals, tmp_path, number):
    from mutagen.mp4._atom import Atom  # test-only: craft a gnre atom mutagen can't render

    path = _copy(originals, "m4a", tmp_path)
    audio = MP4(path)
    del audio["\xa9gen"]
    audio.tags._failed_atoms["gnre"] = [Atom.render(b"data", bytes(8) + struct.pack(">H", number))]
    audio.save()
    assert b"gnre" in path.read_bytes()

    state = write_genre(path, ["Rock", "Pop"], provenance=PROV)

    assert b"gnre" not in path.read_bytes()
    assert state.genres == ("Rock", "Pop")


def test_asf_genre_id_removed(originals, tmp_path):
    path = _copy(originals, "wma", tmp_path)
    audio = ASF(path)
    audio["WM/GenreID"] = ["(17)"]
    audio.save()
    write_genre(path, ["Pop"], provenance=PROV)
    assert "WM/GenreID" not in ASF(path).tags
    assert read_tags(path).genres == ("Pop",)


# --- atomicity and safety ---------------------------------------------------------------


def test_failed_rename_leaves_original_and_no_temp(originals, tmp_path, monkeypatch):
    path = _copy(originals, "mp3", tmp_path)
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tags_module, "_replace", boom)
    with pytest.raises(TagError, match="No space left on device") as info:
        write_genre(path, ["Rock"], provenance=PROV)
    assert info.value.path == path
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_failed_mutagen_save_leaves_original_and_no_temp(originals, tmp_path, monkeypatch):
    path = _copy(originals, "flac", tmp_path)
    before = path.read_bytes()

    def boom(self, *args, **kwargs):
        raise mutagen.MutagenError("simulated")

    monkeypatch.setattr(FLAC, "save", boom)
    with pytest.raises(TagError, match=r"cannot write tags: simulated"):
        write_genre(path, ["Rock"], provenance=PROV)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_interrupt_removes_temp_and_propagates(originals, tmp_path, monkeypatch):
    path = _copy(originals, "ogg", tmp_path)
    before = path.read_bytes()

    def interrupt(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(tags_module, "_sync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_genre(path, ["Rock"], provenance=PROV)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_file_changed_while_tagging_is_not_replaced(originals, tmp_path, monkeypatch):
    path = _copy(originals, "wav", tmp_path)
    real_write = tags_module._write_tags

    def write_and_meddle(*args, **kwargs):
        real_write(*args, **kwargs)
        with open(path, "ab") as f:
            f.write(b"someone else")

    monkeypatch.setattr(tags_module, "_write_tags", write_and_meddle)
    with pytest.raises(TagError, match=r"^file changed while tagging \("):
        write_genre(path, ["Rock"], provenance=PROV)
    assert path.read_bytes().endswith(b"someone else")
    assert read_tags(path).genres == ("Ambient",)
    assert _leftovers(tmp_path) == []


def test_read_only_file_refused(originals, tmp_path):
    path = _copy(originals, "mp3", tmp_path)
    before = path.read_bytes()
    path.chmod(0o444)
    with pytest.raises(TagError, match=r"^file is read-only \("):
        write_genre(path, ["Rock"], provenance=PROV)
    assert path.read_bytes() == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_folder_is_permission_denied(originals, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    path = _copy(originals, "mp3", folder)
    before = path.read_bytes()
    folder.chmod(0o555)
    try:
        with pytest.raises(TagError, match=r"^permission denied: cannot create a file in its folder .*locked \("):
            write_genre(path, ["Rock"], provenance=PROV)
    finally:
        folder.chmod(0o755)
    assert path.read_bytes() == before


def test_a_writable_file_in_a_folder_that_is_not_names_the_folder(originals, tmp_path, monkeypatch):
    """Root may write into any folder: an EACCES from creating the temporary copy stands in for a read-only
    folder (the file itself is writable: the reason names the folder, not "permission denied" on the file)."""
    path = _copy(originals, "mp3", tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tags_module.tempfile, "mkstemp", denied)
    with pytest.raises(TagError) as info:
        write_genre(path, ["Rock"], provenance=PROV)
    assert info.value.reason == f"permission denied: cannot create a file in its folder {tmp_path}"
    assert info.value.path == path


def test_keep_mtime(originals, tmp_path):
    path = _copy(originals, "flac", tmp_path)
    old_ns = 1_000_000_000 * 1_000_000_000  # 2001-09-09
    os.utime(path, ns=(old_ns, old_ns))
    write_genre(path, ["Rock"], provenance=PROV, keep_mtime=True)
    assert path.stat().st_mtime_ns == old_ns
    write_genre(path, ["Pop"], provenance=PROV)
    assert path.stat().st_mtime_ns > old_ns


def test_permission_bits_kept(originals, tmp_path):
    path = _copy(originals, "m4a", tmp_path)
    path.chmod(0o640)
    write_genre(path, ["Rock"], provenance=PROV)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_symlink_followed_and_kept(originals, tmp_path):
    target = _copy(originals, "ogg", tmp_path)
    link = tmp_path / "link.ogg"
    link.symlink_to(target.name)
    write_genre(link, ["Rock"], provenance=PROV)
    assert link.is_symlink()
    assert read_tags(target).genres == ("Rock",)


def test_long_file_name(originals, tmp_path):
    path = _copy(originals, "mp3", tmp_path, name="é" * 120 + ".mp3")  # 244 bytes
    assert write_genre(path, ["Rock"], provenance=PROV).genres == ("Rock",)
    assert _leftovers(tmp_path) == []


# --- unreadable files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [("noise.mp3", np.random.default_rng(0).bytes(20_000)), ("empty.flac", b""),
     ("notes.m4a", b"not audio, just some text\n" * 20)],
)
def test_corrupt_files_raise_tag_error_naming_the_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TagError, match=r"^unsupported or unreadable tags: ") as info:
        read_tags(path)
    assert info.value.path == path and str(path) in str(info.value)
    with pytest.raises(TagError, match=r"^unsupported or unreadable tags: .*" + name):
        write_genre(path, ["Rock"], provenance=PROV)
    assert path.read_bytes() == content
    assert _leftovers(tmp_path) == []


def test_missing_file(tmp_path):
    path = tmp_path / "gone.mp3"
    with pytest.raises(TagError, match=r"^file not found \("):
        read_tags(path)
    with pytest.raises(TagError, match=r"^file not found \("):
        write_genre(path, ["Rock"], provenance=PROV)


# --- real files -------------------------------------------------------------------------


def test_corpus_mp3_tags(tmp_path):
    files = sorted(CORPUS.glob("*/*/*.mp3")) if CORPUS.is_dir() else []
    if not files:
        pytest.skip("no corpus at ../shared/corpus")
    tagged = []
    for file in files:  # the corpus mixes untagged files and ID3v2.3-tagged ones
        state = read_tags(file)
        assert state.container == "id3"
        if state.id3_version is not None:
            tagged.append(file)
        if len(tagged) == 3:
            break
    if not tagged:
        pytest.skip("no ID3v2-tagged corpus file")
    path = tmp_path / tagged[0].name
    shutil.copyfile(tagged[0], path)
    version, tags_before, payload_before = read_tags(path).id3_version, _other_tags(path), _payload(path)

    state = write_genre(path, ["Rock", "Pop"], provenance=PROV)

    assert (state.genres, state.provenance, state.id3_version) == (("Rock", "Pop"), PROV, version)
    assert _other_tags(path) == tags_before
    assert _payload(path) == payload_before


# --- Vorbis whose first audio packet shares the last header page ---------------------------------------


def _first_audio_packet_on_the_header_page(path: Path) -> None:
    """Repack ``path`` (Vorbis) as Debian's wesnoth-1.16-music songs are: the comment and setup headers and
    the first audio packet (which yields no samples) share one page, granule position 0, and the other packets
    of the first audio page follow on a page of their own. When the comments grow, mutagen moves that audio
    packet onto a page of its own, again at granule position 0."""
    pages = _ogg_pages(path)
    end = next(j for j in range(2, len(pages) + 1)  # pages 1..j-1 hold 2 headers + at least 1 audio packet
               if pages[j - 1].complete and len(OggPage.to_packets(pages[1:j])) >= 3)
    packets = OggPage.to_packets(pages[1:end])
    joined = OggPage.from_packets(packets[:3], sequence=1, default_size=1 << 20)
    joined[-1].position = 0
    if packets[3:]:
        joined += OggPage.from_packets(packets[3:], sequence=len(joined) + 1, default_size=1 << 20)
        joined[-1].position = pages[end - 1].position
    rest = pages[end:]
    for n, page in enumerate([*joined, *rest], start=1):
        page.serial, page.sequence = pages[0].serial, n
    path.write_bytes(b"".join(page.write() for page in [pages[0], *joined, *rest]))


def _ffmpeg_samples(path: Path) -> bytes:
    return subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-"],
                          capture_output=True, check=True).stdout


def test_vorbis_with_audio_on_the_last_header_page_is_tagged(originals, tmp_path):
    """The packets and granule positions stay, so ffmpeg decodes the same samples. (libsndfile does not read
    the layout the Vorbis spec forbids, audio on a header page, as ffmpeg does: this file 256 samples short
    before the write and like ffmpeg after it; a wesnoth song shifted by 128 samples.)"""
    if not synth.have_ffmpeg():
        pytest.skip("needs ffmpeg to decode")
    path = _copy(originals, "ogg", tmp_path)
    _first_audio_packet_on_the_header_page(path)
    audio = _ffmpeg_samples(path)
    packets = _ogg_audio_packets(path, headers=3)
    long_names = [" ".join(["A genre name long enough to make the comment header outgrow its page"] * 40)]
    write_genre(path, long_names, provenance=PROV)  # mutagen moves the audio packet onto a page of its own
    assert read_tags(path).genres == tuple(long_names)
    assert _ogg_audio_packets(path, headers=3) == packets
    assert _ffmpeg_samples(path) == audio


def test_real_vorbis_game_score_is_tagged(tmp_path):
    """A song of Debian's wesnoth-1.16-music, whose first audio packet shares the last header page."""
    listing = subprocess.run(["dpkg", "-L", "wesnoth-1.16-music"], capture_output=True, text=True)
    songs = sorted(line for line in listing.stdout.split() if line.endswith("battle-epic.ogg"))
    if not songs:
        pytest.skip("apt-get install wesnoth-1.16-music")
    path = Path(shutil.copyfile(songs[0], tmp_path / "battle-epic.ogg"))
    packets = _ogg_audio_packets(path, headers=3)
    write_genre(path, ["Classical"], provenance=PROV)
    assert read_tags(path).genres == ("Classical",)
    assert _ogg_audio_packets(path, headers=3) == packets
