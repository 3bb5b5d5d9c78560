"""Broken and awkward inputs for the reliability tests, plus pool workers that misbehave.

Every generator is seeded and writes one file; the audio comes from
:mod:`synth`. The worker functions live at module level so that the spawn
pool's fresh interpreters can import them (``tests/`` is on ``sys.path``
under pytest, and spawn hands ``sys.path`` to its children).
"""

from __future__ import annotations

import os
import signal
import struct
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3, TIT2, TPE1

from synth import tone_mix, write_audio

SR = 22_050


# --- broken files -------------------------------------------------------------------------------


def zero_bytes(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def random_bytes(path: Path, *, size: int = 40_000, seed: int = 0) -> Path:
    """Noise without 0xFF bytes, so no decoder finds an MPEG frame sync in it."""
    rng = np.random.default_rng(seed)
    path.write_bytes(rng.integers(0, 255, size, dtype=np.uint8).tobytes())
    return path


def text_file(path: Path) -> Path:
    path.write_text("These are my liner notes, not audio.\n" * 50, encoding="utf-8")
    return path


def truncated(source: Path, path: Path, *, fraction: float = 0.3) -> Path:
    """The first ``fraction`` of ``source``'s bytes (a download cut short)."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def clip(path: Path, *, seconds: float, seed: int = 0, label: str = "Mid") -> Path:
    return write_audio(path, tone_mix(label, seconds=seconds, seed=seed))


def silence(path: Path, *, seconds: float = 4.0) -> Path:
    return write_audio(path, np.zeros(int(seconds * SR), np.float32))


def wav(path: Path, *, rate: int = SR, channels: int = 1, subtype: str = "PCM_16",
        seconds: float = 4.0, seed: int = 0) -> Path:
    """A tone mix at ``rate`` with ``channels`` (each a slightly different mix) in ``subtype``."""
    cols = [tone_mix("Mid", seconds=seconds, sr=rate, seed=seed + c) for c in range(channels)]
    data = cols[0] if channels == 1 else np.stack(cols, axis=1)
    sf.write(path, data, rate, subtype=subtype)
    return path


def mp3_with_broken_id3(path: Path, *, seed: int = 0) -> Path:
    """An mp3 whose ID3v2 tag has a frame whose size field points past the tag,
    and garbage inside the frame data (the audio after the tag is intact)."""
    write_audio(path, tone_mix("Low", seconds=4.0, seed=seed))
    tags = ID3()
    tags.add(TIT2(encoding=3, text="A title that is long enough to corrupt"))
    tags.add(TPE1(encoding=3, text="Some artist"))
    tags.save(path, v2_version=4)
    data = bytearray(path.read_bytes())
    assert data[:3] == b"ID3"
    frame = data.index(b"TIT2")
    data[frame + 4 : frame + 8] = b"\x7f\x7f\x7f\x7f"  # syncsafe size ~256 MB: past the tag's end
    for i in range(frame + 11, frame + 30):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))
    return path


def flac_with_huge_picture(path: Path, *, megabytes: int = 8, seed: int = 0) -> Path:
    """A FLAC carrying a ``megabytes``-MB front-cover PICTURE block."""
    write_audio(path, tone_mix("High", seconds=4.0, seed=seed))
    audio = FLAC(path)
    picture = Picture()
    picture.type = 3
    picture.mime = "image/jpeg"
    picture.desc = "cover"
    picture.width = picture.height = 3000
    picture.depth = 24
    picture.data = b"\xff\xd8\xff\xe0" + np.random.default_rng(seed).bytes(megabytes * 1_000_000)
    audio.add_picture(picture)
    audio.save()
    return path


def riff_header_only(path: Path) -> Path:
    """A WAV header promising data that is not there."""
    header = b"RIFF" + struct.pack("<I", 36 + 1_000_000) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, SR, SR * 2, 2, 16) + b"data" + struct.pack("<I", 1_000_000)
    path.write_bytes(header)
    return path


# --- byte mutations (fuzzing) ----------------------------------------------------------------------


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    """Apply ``(op, position, value)`` edits: ``flip`` xors a byte with ``value | 1``,
    ``insert`` puts ``value`` bytes of 0xFF..., ``delete`` drops ``value`` bytes,
    ``truncate`` cuts the data at ``position``. Positions wrap to the data length."""
    buf = bytearray(data)
    for op, pos, value in ops:
        if not buf:
            break
        pos %= len(buf)
        if op == "flip":
            buf[pos] ^= (value & 0xFF) | 1
        elif op == "insert":
            buf[pos:pos] = bytes((value * 37 + i) & 0xFF for i in range(value % 64 + 1))
        elif op == "delete":
            del buf[pos : pos + value % 64 + 1]
        elif op == "truncate":
            del buf[max(pos, 1):]
    return bytes(buf)


# --- a process held at a chosen point (for kill -9 and Ctrl-C at a known moment) ------------------


def hold(target: str, *, call: int, flag: Path) -> None:
    """Make this process stop for good right after the ``call``-th call (counting from 1) of
    ``target`` (``"module:function"`` or ``"module:Class.method"``, replaced where it is defined, so
    callers that reach it through the module or the class see it) returns: it creates ``flag`` and sleeps until killed.
    A test waits for ``flag`` and then signals the process, knowing exactly where it is."""
    import importlib

    module_name, attribute = target.split(":")
    owner = importlib.import_module(module_name)
    *parents, name = attribute.split(".")  # "Class.method" replaces the method on the class
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    calls = 0

    def held(*args, **kwargs):
        nonlocal calls
        result = original(*args, **kwargs)
        calls += 1
        if calls == call:
            Path(flag).write_text(str(os.getpid()))
            while True:
                time.sleep(3600)
        return result

    setattr(owner, name, held)


def stall(target: str, *, flag: Path) -> None:
    """Make every call of ``target`` (as :func:`hold` names it) create ``flag`` and never return: a stage stuck
    for good (a model load that never ends), in whichever thread calls it."""
    import importlib

    module_name, attribute = target.split(":")
    owner = importlib.import_module(module_name)
    *parents, name = attribute.split(".")
    for parent in parents:
        owner = getattr(owner, parent)

    def stuck(*args, **kwargs):
        Path(flag).write_text(str(os.getpid()))
        while True:
            time.sleep(3600)

    setattr(owner, name, stuck)


def wait_for(flag: Path, proc, *, limit: float = 120) -> bool:
    """Wait until ``flag`` exists (the process reached its hold); False if ``proc`` ended first."""
    deadline = time.monotonic() + limit
    while not flag.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- Ray workers that die once (a Ray ``worker_process_setup_hook``) -----------------------------------

RAY_KILL_DIR = "GENRETAG_TEST_RAY_KILL_DIR"
"""Environment variable naming a folder; a file ``decode_batch`` or ``Infer`` in it is a kill order."""


def ray_kill_once() -> None:
    """Run by every Ray worker as it starts: the next call of the decode stage
    (``ray_stages.decode_batch``) or of an inference actor (``ray_stages.Infer``) after a test
    drops a file of that name in ``$GENRETAG_TEST_RAY_KILL_DIR`` SIGKILLs the worker running it.
    The first worker to remove the file takes the order, so each order kills exactly one worker."""
    import genretag.engines.ray_stages as stages

    folder = Path(os.environ[RAY_KILL_DIR])

    def ordered(name: str) -> None:
        try:
            (folder / name).unlink()
        except FileNotFoundError:
            return
        os.kill(os.getpid(), signal.SIGKILL)

    decode, infer = stages.decode_batch, stages.Infer.__call__

    def decode_batch(*args, **kwargs):
        ordered("decode_batch")
        return decode(*args, **kwargs)

    def infer_call(self, batch):
        ordered("Infer")
        return infer(self, batch)

    stages.decode_batch, stages.Infer.__call__ = decode_batch, infer_call


# --- pool workers ----------------------------------------------------------------------------------


def misbehaving_worker(item: str, *, factor: int = 2) -> str:
    """``crash``: the process segfaults; ``hang``: it sleeps for ever; ``raise``: an
    ordinary exception; anything else comes back repeated ``factor`` times."""
    if item == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(60)  # the signal is delivered before this returns
    if item == "hang":
        while True:
            time.sleep(3600)
    if item == "raise":
        raise ValueError("bad item")
    return item * factor


def worker_pid(item: str) -> int:
    """Which process ran ``item``."""
    return os.getpid()


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts: Ctrl-C as in a terminal, even when the test run itself
    was started in the background by a shell without job control, which starts it with SIGINT ignored (and a
    child inherits that, so Python would not turn SIGINT into KeyboardInterrupt)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


# --- a signal at a known point of a tag write ------------------------------------------------------


def signal_after(seam: str, sig: int) -> None:
    """Make the tag writer's ``seam`` (``_sync``: the tagged copy is flushed, before the rename; ``_replace``: the
    rename itself) send this process ``sig`` as it returns, the first time only: Ctrl-C, ``kill`` or ``kill -9``
    at a known point of a write, with no timing to hope for."""
    import genretag.tags.write as tags

    real = getattr(tags, seam)
    fired: list[bool] = []

    def then_signal(*args, **kwargs):
        result = real(*args, **kwargs)
        if not fired:
            fired.append(True)
            os.kill(os.getpid(), sig)
        return result

    setattr(tags, seam, then_signal)
