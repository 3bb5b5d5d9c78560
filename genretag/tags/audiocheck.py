"""Prove that a tagged copy still holds the original's audio where a decoder will look for it.

mutagen edits tag structures it understands only in part: in an MP4 whose
``moov`` holds a child with a bogus size it inserted its ``udta``, moved
``mdat`` and left the ``co64`` chunk offsets pointing at the old place (the file
no longer decoded). So before a copy replaces the original, its audio is
compared with the original's, per container, byte for byte:

=========  ==========================================================================
container  what must be the same bytes
=========  ==========================================================================
mp3        everything after the ID3v2 tag(s) and before an ID3v1 tag (MPEG frames, APE)
flac       STREAMINFO, and everything from the first audio frame to the end
ogg/opus   every packet after the header packets: its bytes, the granule position of the page
           it ends on, end of stream (pages may be repacked and renumbered: CRCs change)
mp4/m4a    every chunk the sample tables (``stco``/``co64``, ``stsc``, ``stsz``) point at,
           in order: the offsets may move, the bytes they point at may not
wma/asf    everything after the ASF header object (the data object and indexes)
wav/aiff   the ``fmt ``/``COMM`` chunk and the ``data``/``SSND`` chunk body, found by
           walking the chunks as a decoder does
=========  ==========================================================================

A WAV whose payload is compressed (MPEG, ADPCM...) is, in addition, decoded
from both files with genretag's own decoder (:mod:`genretag.audio`), and the
samples must match: libsndfile once read an MPEG WAV past its ``data`` chunk
into the new ``id3 `` chunk. A file whose structure can't be walked (a
fragmented MP4, an RF64 WAV) falls back to decoding both with ffmpeg.

Measured cost (``benchmarks/bench_tagcheck.py``; see ``benchmarks/README.md``):
about a millisecond per file for the structural checks (Ogg, walked packet by packet: 3.5 ms for
a 1.4 MB Vorbis file, measured 2026-12-06); the decode fallback
costs a decode of both files.
"""

from __future__ import annotations

import hashlib
import mmap
import shutil
import struct
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genretag.errors import DecodeError, TagError, os_reason

_ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_MP4_PATH = (b"trak", b"mdia", b"minf", b"stbl")
_PCM_TAGS = frozenset({1, 3})  # WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT
_EXTENSIBLE = 0xFFFE


class Unverifiable(Exception):
    """The structure can't be walked here; the caller decodes instead."""


@dataclass
class Layout:
    """Where a file keeps its audio: byte ranges a decoder reads, and header fields that must not change."""

    spans: list[tuple[int, int]] = field(default_factory=list)
    """``(start, end)`` byte offsets of audio data, in the order a decoder reads them."""
    fixed: list[object] = field(default_factory=list)
    """Values that must be equal in both files (codec headers, page granules...)."""
    what: str = "audio"
    """How the spans are named in an error: ``mp4 chunk offsets``, ``ogg packets``..."""
    compressed_wav: bool = False
    """A WAV whose payload is not PCM/float: decode both as well."""


def check_audio(original: Path, copy: Path, shown: Path) -> None:
    """Raise :class:`TagError` unless ``copy`` holds the audio of ``original`` where decoders look.

    The message is ``cannot write tags: the audio would change (<what>)``.
    Both files are mapped read-only; nothing is written.
    """
    try:
        with _mapped(original) as old, _mapped(copy) as new:
            try:
                before = layout(old)
            except Unverifiable:
                before = None
            if before is not None:
                try:
                    after = layout(new)
                except Unverifiable as exc:
                    raise _changed(f"{before.what}: {exc}", shown) from None
                problem = compare(old, before, new, after)
                if problem:
                    raise _changed(problem, shown)
    except OSError as exc:  # pragma: no cover - the copy was just written
        raise TagError(f"cannot verify the audio: {os_reason(exc)}", shown) from exc
    if before is None:
        _compare_decoded(original, copy, shown, ffmpeg_only=True)
    elif before.compressed_wav:
        _compare_decoded(original, copy, shown, ffmpeg_only=False)


def _changed(detail: str, shown: Path) -> TagError:
    return TagError(f"cannot write tags: the audio would change ({detail})", shown)


@contextmanager
def _mapped(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            yield b""
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            yield m  # type: ignore[misc]


def compare(old: bytes, before: Layout, new: bytes, after: Layout) -> str | None:
    """What differs between two layouts' audio, or None when it is the same bytes."""
    if before.fixed != after.fixed:
        if before.what == "ogg packets":
            differ = next((n for n, (a, b) in enumerate(zip(before.fixed, after.fixed)) if a != b), None)
            if differ is None:
                return f"{before.what}: {len(before.fixed)} before, {len(after.fixed)} after"
            if before.fixed[differ][0] == "audio bytes":
                return f"{before.what}: the audio bytes differ"
            return f"{before.what}: #{differ} differs"
        return f"{before.what}: headers differ"
    if len(before.spans) != len(after.spans):
        return f"{before.what}: {len(before.spans)} before, {len(after.spans)} after"
    for n, ((a0, a1), (b0, b1)) in enumerate(zip(before.spans, after.spans)):
        if a1 - a0 != b1 - b0 or old[a0:a1] != new[b0:b1]:
            return f"{before.what}: #{n} (byte {a0:,} -> {b0:,}) points at other bytes"
    return None


def layout(data: bytes) -> Layout:
    """Find the audio of a file held in ``data`` (the whole file, e.g. an mmap).

    Raises:
        Unverifiable: not a structure walked here (or too damaged to walk).
    """
    head = bytes(data[:12])
    if head[:4] == b"OggS":
        return _ogg(data)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _iff(data, "<", b"fmt ", b"data", "wav data chunk")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return _iff(data, ">", b"COMM", b"SSND", "aiff SSND chunk")
    if bytes(data[:16]) == _ASF_HEADER:
        return _asf(data)
    if head[4:8] == b"ftyp":
        return _mp4(data)
    start = _after_id3v2(data)
    if bytes(data[start:start + 4]) == b"fLaC":
        return _flac(data, start)
    return _mp3(data, start)  # what mutagen took for MPEG audio (it skips junk before the first frame)


def _after_id3v2(data: bytes) -> int:
    """Offset after the ID3v2 tag(s) at the start (0 when none); several in a row are skipped, as mutagen does."""
    pos = 0
    while bytes(data[pos:pos + 3]) == b"ID3" and len(data) >= pos + 10:
        flags, b = data[pos + 5], data[pos + 6:pos + 10]
        size = (b[0] & 0x7F) << 21 | (b[1] & 0x7F) << 14 | (b[2] & 0x7F) << 7 | b[3] & 0x7F
        pos += 10 + size + 10 * bool(flags & 0x10)  # 0x10: a footer follows
    return pos


def _mp3(data: bytes, start: int) -> Layout:
    end = len(data) - 128 if len(data) >= start + 128 and bytes(data[-128:-125]) == b"TAG" else len(data)
    return Layout([(start, end)], what="mp3 frames after the ID3v2 tag")


def _flac(data: bytes, pos: int) -> Layout:
    pos += 4
    streaminfo = b""
    while True:
        if pos + 4 > len(data):
            raise Unverifiable("flac metadata runs past the end")
        last, kind, size = data[pos] & 0x80, data[pos] & 0x7F, int.from_bytes(data[pos + 1:pos + 4], "big")
        if kind == 0:
            streaminfo = bytes(data[pos + 4:pos + 4 + size])
        pos += 4 + size
        if last:
            break
    return Layout([(pos, len(data))], [streaminfo], what="flac frames")


def _ogg(data: bytes) -> Layout:
    """Every audio packet of every logical stream, as a decoder reads them; header packets are skipped.

    Header packets: 3 for Vorbis, 2 for Opus, 1 + the count in the first packet for Ogg FLAC; any
    other codec: none (all its packets must stay). Each audio packet is compared by its length, the
    granule position of the page it ends on and whether that page ends the stream; each stream's audio
    bytes, all its packets in order, by one digest (one update per page: 3.5 ms for a 1.4 MB Vorbis file,
    where a digest per packet took 5.6). Pages themselves may be repacked: an encoder may put the first
    audio packet on the last header page, and when the comments grow, mutagen moves that packet onto a page
    of its own (with the same granule position), as real Vorbis files from Debian's wesnoth-1.16-music showed.
    """
    out = Layout(what="ogg packets")
    headers_left: dict[int, int] = {}
    streams: dict[int, hashlib._Hash] = {}  # serial -> digest of its audio bytes so far
    length: dict[int, int] = {}  # serial -> bytes so far of its unfinished audio packet
    pos, n = 0, len(data)
    while pos + 27 <= n and bytes(data[pos:pos + 4]) == b"OggS":
        flags, granule, serial = struct.unpack_from("<xBqI", data, pos + 4)
        segs = data[pos + 26]
        lacing = bytes(data[pos + 27:pos + 27 + segs])
        body = pos + 27 + segs
        end = body + sum(lacing)
        if end > n:
            raise Unverifiable("an ogg page runs past the end")
        if flags & 0x02 and serial not in headers_left:  # first page of a stream: its codec
            first = bytes(data[body:body + 16])
            headers_left[serial] = (3 if first.startswith(b"\x01vorbis") else 2 if first.startswith(b"OpusHead")
                                    else 1 + int.from_bytes(first[7:9], "big") if first.startswith(b"\x7fFLAC")
                                    else 0)
        at, audio_from = body, None
        for size in lacing:
            if headers_left.get(serial, 0) == 0:
                audio_from = at if audio_from is None else audio_from
                length[serial] = length.get(serial, 0) + size
            at += size
            if size < 255:  # the packet ends here
                if headers_left.get(serial, 0) > 0:
                    headers_left[serial] -= 1
                else:
                    out.fixed.append((serial, length.pop(serial), granule, bool(flags & 0x04)))
        if audio_from is not None:  # a page's audio bytes follow its header packets' bytes, to its end
            streams.setdefault(serial, hashlib.blake2b(digest_size=16)).update(data[audio_from:end])
        pos = end
    for serial, size in length.items():  # a last packet cut short: it must stay cut the same way
        out.fixed.append((serial, size, None, False))
    out.fixed += [("audio bytes", serial, digest.digest()) for serial, digest in streams.items()]
    if pos < n:  # trailing bytes that are not a page (junk, an ID3v1 tag): they must stay too
        out.spans.append((pos, n))
    return out


def _iff(data: bytes, endian: str, fmt_id: bytes, audio_id: bytes, what: str) -> Layout:
    """RIFF/FORM chunks walked as a decoder walks them: sizes, pad bytes, first match wins."""
    fmt = audio = None
    pos, n = 12, len(data)
    while pos + 8 <= n and (fmt is None or audio is None):
        name = bytes(data[pos:pos + 4])
        (size,) = struct.unpack_from(endian + "I", data, pos + 4)
        body = pos + 8
        if name == fmt_id and fmt is None:
            fmt = bytes(data[body:min(body + size, n)])
        elif name == audio_id and audio is None:
            audio = (body, min(body + size, n))
        pos = body + size + (size & 1)
    if fmt is None or audio is None:
        raise Unverifiable(f"no {fmt_id.decode().strip()} or {audio_id.decode()} chunk")
    compressed = False
    if endian == "<" and len(fmt) >= 2:
        tag = int.from_bytes(fmt[:2], "little")
        if tag == _EXTENSIBLE and len(fmt) >= 26:
            tag = int.from_bytes(fmt[24:26], "little")  # SubFormat GUID starts with the format tag
        compressed = tag not in _PCM_TAGS
    return Layout([audio], [fmt], what=what, compressed_wav=compressed)


def _asf(data: bytes) -> Layout:
    (size,) = struct.unpack_from("<Q", data, 16)
    if size < 30 or size > len(data):
        raise Unverifiable("asf header object size out of range")
    return Layout([(size, len(data))], what="asf data after the header object")


def _mp4(data: bytes) -> Layout:
    """Every chunk of every track, as ``(offset, offset + bytes)`` from its sample tables."""
    top = dict(_atoms(data, 0, len(data)))
    if b"moof" in top:
        raise Unverifiable("fragmented mp4")
    if b"moov" not in top:
        raise Unverifiable("no moov atom")
    out = Layout(what="mp4 chunk offsets")
    start, end = top[b"moov"]
    for name, (t0, t1) in _atoms(data, start, end):
        if name != b"trak":
            continue
        box = (t0, t1)
        for step in _MP4_PATH[1:]:
            box = dict(_atoms(data, *box)).get(step)
            if box is None:
                raise Unverifiable(f"a track without {step.decode()}")
        tables = dict(_atoms(data, *box))
        out.spans.extend(_chunk_spans(data, tables))
    if not out.spans:
        raise Unverifiable("no track with samples")
    return out


def _atoms(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, tuple[int, int]]]:
    """``(type, (body start, body end))`` of the atoms in ``data[start:end]``; stops at one that overruns."""
    pos = start
    while pos + 8 <= end:
        size, name = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            if pos + 16 > end:
                return
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return
        yield name, (pos + head, pos + size)
        pos += size


def _chunk_spans(data: bytes, tables: dict[bytes, tuple[int, int]]) -> list[tuple[int, int]]:
    if b"stco" in tables:
        offsets = _table(data, tables[b"stco"], ">u4", 1)
    elif b"co64" in tables:
        offsets = _table(data, tables[b"co64"], ">u8", 1)
    else:
        raise Unverifiable("a track without stco/co64")
    if b"stsc" not in tables or b"stsz" not in tables:
        raise Unverifiable("a track without stsc/stsz")
    stsc = _table(data, tables[b"stsc"], ">u4", 3).reshape(-1, 3)
    s0, s1 = tables[b"stsz"]
    if s1 - s0 < 12:
        raise Unverifiable("short stsz")
    uniform, count = struct.unpack_from(">II", data, s0 + 4)
    n_chunks = len(offsets)
    per_chunk = np.zeros(n_chunks, np.int64)
    for i, (first, samples, _) in enumerate(stsc):
        stop = stsc[i + 1][0] - 1 if i + 1 < len(stsc) else n_chunks
        per_chunk[max(0, int(first) - 1):max(0, int(stop))] = samples
    if uniform:
        lengths = per_chunk * int(uniform)
    else:
        if s1 - s0 < 12 + 4 * count:
            raise Unverifiable("short stsz")
        sizes = np.frombuffer(data, ">u4", count, s0 + 12).astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(sizes)])
        bounds = np.minimum(np.concatenate([[0], np.cumsum(per_chunk)]), count)
        lengths = cum[bounds[1:]] - cum[bounds[:-1]]
    ends = offsets.astype(np.int64) + lengths
    return list(zip(offsets.astype(np.int64).tolist(), ends.tolist()))


def _table(data: bytes, box: tuple[int, int], dtype: str, width: int) -> np.ndarray:
    """The entries of a full-box table (version/flags, u32 count, entries) as a flat array."""
    start, end = box
    if end - start < 8:
        raise Unverifiable("short sample table")
    (count,) = struct.unpack_from(">I", data, start + 4)
    item = np.dtype(dtype).itemsize
    if start + 8 + count * width * item > end:
        raise Unverifiable("a sample table runs past its atom")
    return np.frombuffer(data, dtype, count * width, start + 8)


def _compare_decoded(original: Path, copy: Path, shown: Path, *, ffmpeg_only: bool) -> None:
    """Decode both files (ffmpeg, or genretag's own decoder) and refuse unless the samples match."""
    if ffmpeg_only:
        old, new = _ffmpeg_pcm(original), _ffmpeg_pcm(copy)
        if old is None:
            return  # the original does not decode: nothing to lose
        if new != old:
            raise _changed("decoded samples differ", shown)
        return
    from genretag.audio import load_audio, probe

    def decode(path: Path) -> np.ndarray:
        info = probe(path)
        return load_audio(path, sample_rate=info.sample_rate, info=info)

    try:
        old_samples = decode(original)
    except DecodeError:
        return
    try:
        new_samples = decode(copy)
    except DecodeError as exc:
        raise _changed(f"it no longer decodes: {exc.reason}", shown) from exc
    if not np.array_equal(old_samples, new_samples):
        raise _changed("decoded samples differ", shown)


def _ffmpeg_pcm(path: Path) -> bytes | None:
    """All audio streams of ``path`` as raw float PCM; None when it doesn't decode (or no ffmpeg)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    proc = subprocess.run([exe, "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "f32le", "-"],
                          capture_output=True, check=False, stdin=subprocess.DEVNULL)
    return proc.stdout if proc.returncode == 0 and proc.stdout else None
