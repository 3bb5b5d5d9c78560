"""The tags a user owns besides the genre survive a write, and the genre players show is the one read.

Each test builds the odd tag it is about (with mutagen, or byte by byte where
mutagen itself would normalise it) on a seeded synthetic file, and checks what
other readers (ffprobe, mutagen) see afterwards.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import mutagen
import pytest
import soundfile as sf
import synth
from mutagen.id3 import ID3, TCON, TIT2

from genretag.errors import TagError
from genretag.tags import read_tags, write_genre
from genretag.tags import write as tags_module

PROV = "genretag-test 1.0"
PROV_KEY = "genretag_model"  # as ffprobe shows it, lower-cased
needs_ffmpeg = pytest.mark.skipif(not synth.have_ffmpeg(), reason="ffmpeg missing")


# --- helpers ----------------------------------------------------------------------------


def _syncsafe(n: int) -> bytes:
    return bytes((n >> shift) & 0x7F for shift in (21, 14, 7, 0))


def _text_frame(frame_id: str, *texts: str, v24: bool = True) -> bytes:
    """One ID3v2 text frame, UTF-8 (v2.4) or Latin-1 (v2.3), values NUL-separated."""
    body = (b"\x03" + "\0".join(texts).encode("utf-8")) if v24 else (b"\x00" + "\0".join(texts).encode("latin-1"))
    size = _syncsafe(len(body)) if v24 else len(body).to_bytes(4, "big")
    return frame_id.encode() + size + b"\x00\x00" + body


def _id3v2_tag(frames: list[bytes], *, version: int = 4, padding: int = 0) -> bytes:
    body = b"".join(frames) + bytes(padding)
    return b"ID3" + bytes([version, 0, 0]) + _syncsafe(len(body)) + body


def _mp3(folder: Path, name: str = "song.mp3", seconds: float = 0.5) -> Path:
    return synth.write_audio(folder / name, synth.tone_mix("Mid", seconds=seconds))


def _stored_text(path: Path) -> dict[str, list[str]]:
    """Text frames as stored (nothing parsed as a date), frame ID -> values."""
    from genretag.tags.othertags import other_tags

    return {k: list(v) for k, v in other_tags(path).items()}


def _ffprobe(path: Path) -> dict[str, str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags:stream_tags", "-of", "json",
                          str(path)], check=True, capture_output=True, text=True).stdout
    info = json.loads(out)
    found = dict(info.get("format", {}).get("tags", {}))
    for stream in info.get("streams", []):
        found.update(stream.get("tags", {}))
    return {k.lower(): v for k, v in found.items()}


# --- case 1: ID3v2.4 frames are saved back as they were --------------------------------

ODD_DATES = {"TDRC": "c. 1970", "TDOR": "05.10.1995", "TDRL": "Oct 3, 1995", "TDEN": "1970s"}


def _v24_with_odd_dates(folder: Path) -> Path:
    path = _mp3(folder)
    frames = [_text_frame("TIT2", "Title"), _text_frame("TPE1", "A", "B")]
    frames += [_text_frame(k, v) for k, v in ODD_DATES.items()]
    path.write_bytes(_id3v2_tag(frames, padding=64) + path.read_bytes())
    return path


def _raw_frames(data: bytes) -> dict[str, bytes]:
    """Frame ID -> whole frame bytes of the v2.4 tag at the start of ``data`` (one frame per ID)."""
    end = 10 + sum((b & 0x7F) << s for b, s in zip(data[6:10], (21, 14, 7, 0)))
    pos, frames = 10, {}
    while pos + 10 <= end and data[pos] != 0:
        size = sum((b & 0x7F) << s for b, s in zip(data[pos + 4:pos + 8], (21, 14, 7, 0)))
        frames[data[pos:pos + 4].decode()] = data[pos:pos + 10 + size]
        pos += 10 + size
    return frames


def test_v24_write_keeps_other_frames_byte_for_byte(tmp_path):
    path = _v24_with_odd_dates(tmp_path)
    before = _raw_frames(path.read_bytes())
    assert set(before) == {"TIT2", "TPE1", *ODD_DATES}

    state = write_genre(path, ["Rock"], provenance=PROV)

    assert state.id3_version == 4
    after = _raw_frames(path.read_bytes())
    assert {k: after[k] for k in before} == before  # not one byte of another frame changed
    assert set(after) == set(before) | {"TCON", "TXXX"}


@needs_ffmpeg
def test_v24_write_keeps_dates_players_show(tmp_path):
    path = _v24_with_odd_dates(tmp_path)
    shown = _ffprobe(path)
    write_genre(path, ["Rock"], provenance=PROV)
    after = _ffprobe(path)
    assert after.pop("genre") == "Rock"
    after.pop(PROV_KEY)
    assert after == shown


# --- the write check: every other tag value as it was ----------------------------------

TITLE_KEY = {"mp3": "TIT2", "wav": "TIT2", "aiff": "TIT2", "flac": "TITLE", "ogg": "TITLE", "opus": "TITLE",
             "m4a": "\xa9nam", "wma": "Title"}


def _titled(folder: Path, container: str) -> Path:
    if container in ("m4a", "wma") and not synth.have_ffmpeg():
        pytest.skip("ffmpeg missing")
    path = synth.write_audio(folder / f"song.{container}", synth.tone_mix("Mid", seconds=0.5))
    audio = mutagen.File(path)
    if audio.tags is None:
        audio.add_tags()
    key = TITLE_KEY[container]
    audio.tags[key] = TIT2(encoding=3, text="Title") if key == "TIT2" else ["Title"]
    audio.save()
    return path


@pytest.mark.parametrize("container", synth.CONTAINERS)
def test_write_that_changes_another_tag_is_refused(tmp_path, monkeypatch, container):
    """A tagging step that also changes the title (here injected) is caught before the rename."""
    path = _titled(tmp_path, container)
    original = path.read_bytes()
    real_write = tags_module._write_tags

    def also_retitle(tmp, *args, **kwargs):
        real_write(tmp, *args, **kwargs)
        audio = mutagen.File(tmp)
        key = TITLE_KEY[container]
        audio.tags[key] = TIT2(encoding=3, text="Other") if key == "TIT2" else ["Other"]
        audio.save()

    monkeypatch.setattr(tags_module, "_write_tags", also_retitle)
    with pytest.raises(TagError) as err:
        write_genre(path, ["Rock"], provenance=PROV)
    assert err.value.reason == f"cannot write tags: other tags would change ({TITLE_KEY[container]})"
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_check_compares_dates_as_stored_text(tmp_path, monkeypatch):
    """A tagging step that saves the tag through mutagen's date parser (the old writer) is refused."""
    path = _v24_with_odd_dates(tmp_path)
    original = path.read_bytes()
    real_write = tags_module._write_tags

    def parse_dates(tmp, *args, **kwargs):
        real_write(tmp, *args, **kwargs)
        ID3(tmp, translate=False).save(tmp)

    monkeypatch.setattr(tags_module, "_write_tags", parse_dates)
    with pytest.raises(TagError) as err:
        write_genre(path, ["Rock"], provenance=PROV)
    assert err.value.reason == "cannot write tags: other tags would change (TDEN, TDOR, TDRC, TDRL)"
    assert path.read_bytes() == original


# --- case 3: an mp3 with only an ID3v1 tag ---------------------------------------------


def _v1(title: str, artist: str, album: str, year: str, comment: str, track: int, genre: int) -> bytes:
    def field(text: str, n: int) -> bytes:
        return text.encode("latin-1").ljust(n, b"\x00")

    return (b"TAG" + field(title, 30) + field(artist, 30) + field(album, 30) + field(year, 4)
            + field(comment, 28) + bytes([0, track, genre]))


@needs_ffmpeg
@pytest.mark.parametrize("id3v23", [False, True])
def test_id3v1_only_mp3_keeps_its_fields_shown(tmp_path, id3v23):
    path = _mp3(tmp_path)
    v1 = _v1("Song", "Singer", "Record", "1987", "a note", 5, 43)  # 43: Punk
    path.write_bytes(path.read_bytes() + v1)
    shown = _ffprobe(path)
    assert {k: shown.get(k) for k in ("title", "artist", "album", "date", "track", "genre")} == {
        "title": "Song", "artist": "Singer", "album": "Record", "date": "1987", "track": "5", "genre": "Punk"}

    state = write_genre(path, ["Pop"], provenance=PROV, id3v23=id3v23)

    assert state.id3_version == (3 if id3v23 else 4)
    after = _ffprobe(path)
    assert after.pop("genre") == "Pop"
    assert after.pop(PROV_KEY) == PROV
    shown.pop("genre")
    assert after == shown  # title, artist, album, date, track and comment still shown
    assert path.read_bytes()[-128:] == v1[:-1] + bytes([13])  # v1 kept but its genre byte (13: Pop)


# --- case 4: a second ID3v2 tag right after the first ----------------------------------


def _two_tags(folder: Path, first: list[bytes], second: list[bytes]) -> Path:
    path = _mp3(folder)
    path.write_bytes(_id3v2_tag(first, padding=32) + _id3v2_tag(second) + path.read_bytes())
    return path


@needs_ffmpeg
def test_genre_in_a_second_id3v2_tag_is_the_files_genre(tmp_path):
    path = _two_tags(tmp_path, [_text_frame("TIT2", "Title")], [_text_frame("TCON", "Punk"),
                                                                 _text_frame("TALB", "Album")])
    assert _ffprobe(path)["genre"] == "Punk"  # FFmpeg reads both tags

    state = read_tags(path)

    assert (state.genres, state.album) == (("Punk",), "Album")


@needs_ffmpeg
def test_writing_over_a_second_tag_shows_the_new_genre_and_keeps_that_tag(tmp_path):
    second = _id3v2_tag([_text_frame("TCON", "Punk"), _text_frame("TIT2", "Other")])
    path = _two_tags(tmp_path, [_text_frame("TIT2", "Title")], [_text_frame("TCON", "Punk"),
                                                                 _text_frame("TIT2", "Other")])
    state = write_genre(path, ["Rock", "Punk"], provenance=PROV)  # what --overwrite or --merge write

    assert state.genres == ("Rock", "Punk")
    data = path.read_bytes()
    assert data[ID3(path).size:][:len(second)] == second  # the second tag, byte for byte
    shown = _ffprobe(path)
    assert (shown["genre"], shown["title"]) == ("Rock", "Title")  # the first tag's values win


# --- case 7: placeholder genres ----------------------------------------------------------

GENRE_KEY = {"mp3": "TCON", "flac": "GENRE", "m4a": "\xa9gen", "wma": "WM/Genre"}


@pytest.mark.parametrize("container", list(GENRE_KEY))
@pytest.mark.parametrize("placeholder", ["(None)", "Unknown", "Other", "genre", "<unknown>", "Unknown Genre"])
def test_placeholder_genre_reads_as_no_genre(tmp_path, container, placeholder):
    path = _titled(tmp_path, container)
    audio = mutagen.File(path)
    key = GENRE_KEY[container]
    audio.tags[key] = TCON(encoding=3, text=placeholder) if key == "TCON" else [placeholder]
    audio.save()

    state = read_tags(path)

    assert (state.genres, state.placeholders) == ((), (placeholder,))


def test_placeholder_beside_a_real_genre_leaves_the_real_one(tmp_path):
    path = _titled(tmp_path, "flac")
    audio = mutagen.File(path)
    audio["GENRE"] = ["Unknown", "Jazz"]
    audio.save()
    assert read_tags(path).genres == ("Jazz",)


def test_id3v1_genre_other_is_no_genre(tmp_path):
    path = _mp3(tmp_path)
    path.write_bytes(path.read_bytes() + _v1("Song", "", "", "", "", 1, 12))  # 12: Other
    assert read_tags(path).genres == ()


# --- case 5: WMA, the genre players show ---------------------------------------------------


def _wma(folder: Path, *, extension_last: bool) -> Path:
    """A WMA as FFmpeg writes it (Header Extension object first), or with that object after the tags."""
    path = synth.write_audio(folder / "song.wma", synth.tone_mix("Mid", seconds=0.5))
    audio = mutagen.File(path)
    audio["Title"] = ["Title"]
    objects = audio._header.objects
    names = [type(o).__name__ for o in objects]
    assert names.index("HeaderExtensionObject") < names.index("ExtendedContentDescriptionObject")
    if extension_last:
        objects.append(objects.pop(names.index("HeaderExtensionObject")))
    audio.save()
    return path


@needs_ffmpeg
@pytest.mark.parametrize("extension_last", [False, True])
def test_wma_shows_the_first_genre_written(tmp_path, extension_last):
    path = _wma(tmp_path, extension_last=extension_last)
    state = write_genre(path, ["Rock", "Pop"], provenance=PROV)
    assert _ffprobe(path)["genre"] == "Rock"
    assert state.genres == read_tags(path).genres == ("Rock", "Pop")
    assert sorted(str(v) for v in mutagen.File(path)["WM/Genre"]) == ["Pop", "Rock"]


@needs_ffmpeg
@pytest.mark.parametrize("extension_last", [False, True])
def test_wma_reads_the_shown_genre_first(tmp_path, extension_last):
    path = _wma(tmp_path, extension_last=extension_last)
    audio = mutagen.File(path)
    audio["WM/Genre"] = ["Punk", "Jazz"]  # as another tagger stores them
    audio.save()
    shown = _ffprobe(path)["genre"]
    assert shown == ("Jazz" if extension_last else "Punk")

    assert read_tags(path).genres[0] == shown
    # --merge writes the file's genres first, then the new ones: the user's shown genre stays shown
    write_genre(path, [*read_tags(path).genres, "Rock"], provenance=PROV)
    assert _ffprobe(path)["genre"] == shown


# --- case 6: WAV with a RIFF LIST-INFO chunk ---------------------------------------------


def _info_chunk(items: list[tuple[str, str]]) -> bytes:
    body = b"INFO"
    for key, value in items:
        data = value.encode("utf-8") + b"\0"
        body += key.encode() + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
    return b"LIST" + struct.pack("<I", len(body)) + body


def _wav_with_info(folder: Path, items: list[tuple[str, str]], *, before_data: bool = True) -> Path:
    """A WAV whose LIST-INFO chunk (as FFmpeg, Windows and rippers write it) holds ``items``."""
    path = synth.write_audio(folder / "song.wav", synth.tone_mix("Mid", seconds=0.5))
    data = path.read_bytes()
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunks.append(data[pos:pos + 8 + size + (size & 1)])
        pos += 8 + size + (size & 1)
    at = [c[:4] for c in chunks].index(b"data") if before_data else len(chunks)
    chunks.insert(at, _info_chunk(items))
    body = b"WAVE" + b"".join(chunks)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


INFO_ITEMS = [("INAM", "Title"), ("IART", "Artist"), ("IPRD", "Album"), ("IGNR", "Punk"), ("ICRD", "1999"),
              ("ITRK", "3"), ("ICMT", "odd length")]


@needs_ffmpeg
def test_wav_info_genre_album_and_artist_are_read(tmp_path):
    path = _wav_with_info(tmp_path, INFO_ITEMS)
    assert _ffprobe(path)["genre"] == "Punk"

    state = read_tags(path)

    assert (state.genres, state.album, state.artist) == (("Punk",), "Album", "Artist")


@needs_ffmpeg
@pytest.mark.parametrize("before_data", [True, False])
def test_wav_info_genre_is_written_where_ffmpeg_looks(tmp_path, before_data):
    path = _wav_with_info(tmp_path, INFO_ITEMS, before_data=before_data)
    shown = _ffprobe(path)
    samples = sf.read(path)[0]

    state = write_genre(path, ["Rock", "Pop"], provenance=PROV)

    after = _ffprobe(path)
    assert after.pop("genre") == "Rock; Pop"
    shown.pop("genre")
    assert after == shown  # every other INFO item as FFmpeg showed it
    assert state.genres == read_tags(path).genres == ("Rock", "Pop")
    assert mutagen.File(path).tags["TCON"].text == ["Rock", "Pop"]  # the ID3 chunk too, for mutagen-based readers
    assert (sf.read(path)[0] == samples).all()


def test_wav_without_info_gets_no_info(tmp_path):
    path = synth.write_audio(tmp_path / "song.wav", synth.tone_mix("Mid", seconds=0.5))
    write_genre(path, ["Rock"], provenance=PROV)
    assert b"LIST" not in path.read_bytes()


def test_write_that_changes_an_info_item_is_refused(tmp_path, monkeypatch):
    path = _wav_with_info(tmp_path, INFO_ITEMS)
    original = path.read_bytes()
    real_write = tags_module._write_tags

    def also_retitle(tmp, *args, **kwargs):
        real_write(tmp, *args, **kwargs)
        tmp.write_bytes(tmp.read_bytes().replace(b"INAM\x06\x00\x00\x00Title\x00", b"INAM\x06\x00\x00\x00Other\x00"))

    monkeypatch.setattr(tags_module, "_write_tags", also_retitle)
    with pytest.raises(TagError) as err:
        write_genre(path, ["Rock"], provenance=PROV)
    assert err.value.reason == "cannot write tags: other tags would change (INFO:INAM)"
    assert path.read_bytes() == original


# --- case 2: --id3v23 on an ID3v2.4 tag --------------------------------------------------


def test_id3v23_refuses_a_v24_tag_it_would_cut(tmp_path):
    path = _mp3(tmp_path)
    frames = [_text_frame(k, v) for k, v in [("TIT2", "Title"), ("TDRC", "2001"), ("TDRL", "2002"),
                                              ("TMOO", "calm"), ("TSOP", "Beatles, The")]]
    path.write_bytes(_id3v2_tag(frames, padding=64) + path.read_bytes())
    original = path.read_bytes()

    with pytest.raises(TagError) as err:
        write_genre(path, ["Rock"], provenance=PROV, id3v23=True)

    assert err.value.reason == ("cannot write ID3v2.3 (--id3v23): this ID3v2.4 tag's TDRL, TMOO, TSOP would be "
                                "lost or cut; without --id3v23 it stays v2.4")
    assert path.read_bytes() == original
    assert write_genre(path, ["Rock"], provenance=PROV).id3_version == 4  # without the option: written, v2.4


@pytest.mark.parametrize("date", ["2001", "2001-05-03"])
def test_id3v23_downgrades_a_v24_tag_v23_can_hold(tmp_path, date):
    path = _mp3(tmp_path)
    path.write_bytes(_id3v2_tag([_text_frame("TIT2", "Title"), _text_frame("TDRC", date)]) + path.read_bytes())

    state = write_genre(path, ["Rock"], provenance=PROV, id3v23=True)

    assert state.id3_version == 3
    assert str(ID3(path)["TDRC"]) == date  # stored as TYER (+ TDAT), read back as the same date
