"""Tag writes that must not hurt the audio, nor another program's edits.

Real files that once went wrong come from ``../shared/faults`` (read-only: each
test copies the file into ``tmp_path`` first).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mutagen.id3 import ID3, TIT2

import synth
from genretag import audio
from genretag.errors import TagError
from genretag.tags import TMP_SUFFIX, read_tags, write_genre
from genretag.tags import safefile
from genretag.tags import write as tags_write

FAULTS = Path(__file__).resolve().parents[1].parent / "shared" / "faults"
PROV = "integrity 1"


def _fault(name: str, tmp_path: Path) -> Path:
    src = FAULTS / name
    if not src.is_file():
        pytest.skip(f"../shared/faults/{name} is not present")
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    dst.chmod(0o644)
    return dst


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TMP_SUFFIX in p.name)


def _ffmpeg_pcm(path: Path) -> bytes:
    return subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "s16le", "-"],
                          capture_output=True, check=False).stdout


# --- 1. the audio is proven unchanged before the rename ------------------------------------------


@pytest.mark.skipif(not synth.have_ffmpeg(), reason="needs ffmpeg")
def test_mp4_whose_chunk_offsets_would_go_stale_is_refused(tmp_path):
    """mutagen moves mdat but not the co64 offsets in this file: refused, left byte-identical."""
    path = _fault("nonprintable-atom-type.m4a", tmp_path)
    before, pcm = path.read_bytes(), _ffmpeg_pcm(path)
    assert len(pcm) > 0

    with pytest.raises(TagError, match=r"^cannot write tags: the audio would change \(mp4 chunk offsets") as info:
        write_genre(path, ["Rock"], provenance=PROV)

    assert info.value.path == path and "\n" not in str(info.value)
    assert path.read_bytes() == before and _ffmpeg_pcm(path) == pcm
    assert _leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def one_per_container(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("integrity")
    out = {}
    for seed, ext in enumerate(synth.CONTAINERS):
        if ext in ("m4a", "wma") and not synth.have_ffmpeg():
            continue
        out[ext] = synth.write_audio(folder / f"a.{ext}", synth.tone_mix("Low", seconds=1.0, seed=seed))
    return out


@pytest.mark.parametrize("ext", synth.CONTAINERS)
def test_audio_check_sees_one_changed_audio_byte_in_every_container(one_per_container, tmp_path, ext):
    """Tag a copy (passes the check), then change one byte of its audio (fails it)."""
    from genretag.tags.audiocheck import _mapped, check_audio, layout
    from genretag.tags.containers import _write_tags

    if ext not in one_per_container:
        pytest.skip("no ffmpeg")
    original = one_per_container[ext]
    copy = tmp_path / f"copy.{ext}"
    shutil.copyfile(original, copy)
    _write_tags(copy, original, ("Rock",), PROV, id3v23=False)
    check_audio(original, copy, original)

    with _mapped(copy) as data:
        if ext in ("ogg", "opus"):  # Ogg is compared packet by packet: a byte inside the last page's packets
            last = bytes(data).rindex(b"OggS")
            spot = last + 27 + data[last + 26] + 1
        else:
            start, end = layout(data).spans[-1]
            spot = (start + end) // 2
    damaged = bytearray(copy.read_bytes())
    damaged[spot] ^= 0x01
    copy.write_bytes(bytes(damaged))
    with pytest.raises(TagError, match=r"^cannot write tags: the audio would change \("):
        check_audio(original, copy, original)


# --- 8. a WAV holding MPEG audio stays readable by genretag ---------------------------------------------


def _decode(path: Path) -> np.ndarray:
    return audio.load_audio(path, sample_rate=22_050)


@pytest.mark.skipif(not synth.have_ffmpeg(), reason="needs ffmpeg")
def test_mpeg_in_wav_still_decodes_after_tagging(tmp_path):
    path = _fault("mpeglayer3.wav", tmp_path)
    samples = _decode(path)
    assert len(samples) > 0

    write_genre(path, ["Rock"], provenance=PROV)

    assert read_tags(path).genres == ("Rock",)
    assert np.array_equal(_decode(path), samples)


def test_decode_check_refuses_a_wav_its_decoder_would_misread(tmp_path, monkeypatch):
    """With MPEG WAVs sent to libsndfile again, the check after writing must catch the damage."""
    monkeypatch.setattr(audio, "_FFMPEG_WAV_TAGS", frozenset())
    path = _fault("mpeglayer3.wav", tmp_path)
    before = path.read_bytes()
    with pytest.raises(TagError, match=r"^cannot write tags: the audio would change \(it no longer decodes"):
        write_genre(path, ["Rock"], provenance=PROV)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


# --- 9. messages and limits -----------------------------------------------------------------------------


def test_read_only_mount_says_read_only_file_system(tmp_path, monkeypatch):
    path = synth.write_audio(tmp_path / "a.flac", synth.tone_mix("Mid", seconds=1.0))
    monkeypatch.setattr(safefile, "_can_write", lambda p: False)  # what os.access says on a read-only mount
    monkeypatch.setattr(safefile, "_on_read_only_mount", lambda p: True)
    with pytest.raises(TagError, match=r"^read-only file system \("):
        write_genre(path, ["Rock"], provenance=PROV)
    monkeypatch.setattr(safefile, "_on_read_only_mount", lambda p: False)
    with pytest.raises(TagError, match=r"^permission denied \("):
        write_genre(path, ["Rock"], provenance=PROV)


def test_read_only_mount_detected_by_statvfs():
    ro = next((Path(p) for p in ("/proc/sys", "/sys") if Path(p).exists()
               and os.statvfs(p).f_flag & os.ST_RDONLY), None)
    if ro is None:
        pytest.skip("no read-only mount here")
    assert safefile._on_read_only_mount(ro)
    assert not safefile._on_read_only_mount(Path(__file__))


@pytest.mark.parametrize(("magic", "kind"), [(b"RIFF\0\0\0\0WAVE", "WAV"), (b"FORM\0\0\0\0AIFF", "AIFF")])
def test_4gib_wav_refused_before_anything_is_copied(tmp_path, monkeypatch, magic, kind):
    """A sparse 4 GiB file: refused at once, without writing a 4 GiB copy."""
    path = tmp_path / f"huge.{kind.lower()}"
    with open(path, "wb") as f:
        f.write(magic)
        f.truncate(2**32 - 1000)

    def no_copy(*args, **kwargs):
        raise AssertionError("a 4 GiB file was copied before being refused")

    monkeypatch.setattr(tags_write, "copy_file", no_copy)
    started = time.monotonic()
    with pytest.raises(TagError, match=rf"^cannot write tags: a {kind} \S+ file can't grow past 4 GiB"):
        write_genre(path, ["Rock"], provenance=PROV)
    assert time.monotonic() - started < 5
    assert _leftovers(tmp_path) == []


def test_size_limit_decided_on_the_size_alone(tmp_path):
    from genretag.tags.containers import ID3_CHUNK_ALLOWANCE, IFF_SIZE_LIMIT, size_limit_problem

    wav = synth.write_audio(tmp_path / "a.wav", synth.tone_mix("Mid", seconds=0.5))
    mp3 = synth.write_audio(tmp_path / "a.mp3", synth.tone_mix("Mid", seconds=0.5))
    assert size_limit_problem(wav, IFF_SIZE_LIMIT - ID3_CHUNK_ALLOWANCE) is None
    assert "4 GiB" in size_limit_problem(wav, IFF_SIZE_LIMIT - ID3_CHUNK_ALLOWANCE + 1)
    assert size_limit_problem(mp3, 10 * 2**30) is None


# --- 7. another program's edit is never undone -------------------------------------------------------------

_TITLE_WRITER = """
import random, sys, time
from mutagen.id3 import ID3, TIT2
path, seconds = sys.argv[1], float(sys.argv[2])
rng = random.Random(7)
i, lost, end = 0, [], time.monotonic() + seconds
while time.monotonic() < end:
    tags = ID3(path)
    title = str(tags["TIT2"])
    if title != f"t{i}":
        lost.append(f"after edit t{i} the file said {title}")
    i += 1
    tags.setall("TIT2", [TIT2(encoding=3, text=f"t{i}")])
    tags.save(path)
    time.sleep(rng.uniform(0, 0.004))
print(i)
print("\\n".join(lost))
"""


def test_another_programs_title_edits_are_never_lost(tmp_path):
    """A second process rewrites the title with mutagen in a loop and checks, before each edit,
    that its previous edit is still there; genretag writes the genre over and over meanwhile."""
    path = synth.write_audio(tmp_path / "song.mp3", synth.tone_mix("Mid", seconds=2.0))
    tags = ID3()
    tags.add(TIT2(encoding=3, text="t0"))
    tags.save(path)
    writer = subprocess.Popen([sys.executable, "-c", _TITLE_WRITER, str(path), "4"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outcomes = {"tagged": 0, "file changed while tagging": 0}
    while writer.poll() is None:
        try:
            write_genre(path, ["Rock"], provenance=PROV)
            outcomes["tagged"] += 1
        except TagError as exc:
            assert exc.reason == "file changed while tagging", exc
            outcomes["file changed while tagging"] += 1
    out, err = writer.communicate()
    assert writer.returncode == 0, err
    edits, *lost = out.strip().split("\n")
    lost = [line for line in lost if line]
    print(f"{edits} title edits; genretag: {outcomes}")
    assert lost == [], f"{len(lost)} of {edits} edits undone ({outcomes}): {lost[:3]}"
    assert outcomes["tagged"] >= 1
    assert str(ID3(path)["TIT2"]) == f"t{edits}"
    assert _leftovers(tmp_path) == []
