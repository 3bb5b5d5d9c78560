"""Cheap checks that a dataset's audio files are there and long enough.

Only file metadata and audio headers are read, never the audio itself, so
checking the 8,000 files of FMA small takes seconds. Problems come back as
reasons (strings), never as exceptions.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MIN_SECONDS = 5.0
"""Tracks shorter than this are skipped when a loader checks audio (FMA has a few ~1-s clips)."""

PROBE_THREADS = 16
"""Header reads run in this many threads (they wait on the disk, not the CPU)."""


def check_files(
    paths: list[Path], *, read_header: bool, min_seconds: float = MIN_SECONDS
) -> list[str | None]:
    """Why each file is unusable, or ``None`` where it is fine, in input order.

    Always checks that the file exists and is not empty; with ``read_header``
    also that its header reads and gives a duration of at least ``min_seconds``.
    """
    if not read_header:
        return [_stat_reason(p) for p in paths]
    if len(paths) < 2:
        return [_probe_reason(p, min_seconds) for p in paths]
    with ThreadPoolExecutor(max_workers=min(PROBE_THREADS, len(paths))) as pool:
        return list(pool.map(lambda p: _probe_reason(p, min_seconds), paths))


def duration_seconds(path: Path) -> float:
    """Duration in seconds from the file's header: soundfile first, mutagen as fallback.

    Raises ``ValueError`` (with the libraries' own messages) when neither can read it.
    """
    import soundfile as sf

    try:
        return float(sf.info(str(path)).duration)
    except Exception as sf_exc:  # noqa: BLE001 - libsndfile raises several types
        first = str(sf_exc)
    try:
        import mutagen

        audio = mutagen.File(str(path))
    except Exception as exc:  # noqa: BLE001 - mutagen raises many types for bad files
        raise ValueError(f"{first}; {exc}") from exc
    length = getattr(getattr(audio, "info", None), "length", None)
    if not length:
        raise ValueError(first)
    return float(length)


def _stat_reason(path: Path) -> str | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing file"
    except OSError as exc:
        return f"unreadable file: {exc.strerror or exc}"
    if not path.is_file():
        return "not a file"
    if st.st_size == 0:
        return "empty file (0 bytes)"
    return None


def _probe_reason(path: Path, min_seconds: float) -> str | None:
    reason = _stat_reason(path)
    if reason is not None:
        return reason
    try:
        seconds = duration_seconds(path)
    except ValueError as exc:
        return f"unreadable audio: {' '.join(str(exc).split())}"
    if seconds < min_seconds:
        return f"too short ({seconds:.1f} s < {min_seconds:g} s)"
    return None
