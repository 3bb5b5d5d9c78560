"""Change the genre of one file atomically: copy, tag the copy, check it, rename it over.

Every failure is a :class:`~genretag.errors.TagError` naming the user's file,
and leaves the original as it was.

The file-system calls go through small module-level functions (:func:`_make_temp`,
:func:`copy_file`, :func:`_write_tags`, :func:`check_audio`, :func:`_sync`,
:func:`_replace`): the seams the fault-injection tests replace.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

from genretag.errors import TagError, os_reason
from genretag.tags.audiocheck import check_audio
from genretag.tags.containers import (
    _PARSER_ERRORS,
    GENRE_FIELDS,
    ID3V23_SEPARATOR,
    TagState,
    _read_state,
    _tag_error,
    _write_tags,
    size_limit_problem,
    split_genres,
)
from genretag.tags.othertags import Snapshot, changed_tags, snapshot
from genretag.tags.safefile import (
    check_unchanged,
    folder_denied,
    copy_file,
    digest,
    digest_of,
    discard,
    fsync_dir,
    fsync_file,
    leased,
    locked,
    stat_for_write,
)

TMP_SUFFIX = ".genretag-tmp"
"""Temporary copies are named ``.<name>.<random>.genretag-tmp`` next to the file."""
_TMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}" + re.escape(TMP_SUFFIX), re.DOTALL)
"""A temporary copy's name: ``tempfile.mkstemp`` puts 8 of ``[a-z0-9_]`` between prefix and suffix."""


def write_genre(
    path: str | Path,
    genres: Sequence[str],
    *,
    provenance: str,
    field: str = "genre",
    id3v23: bool = False,
    id3v23_sep: str = ID3V23_SEPARATOR,
    keep_mtime: bool = False,
    choose: Callable[[TagState], Plan | None] | None = None,
) -> TagState:
    """Replace the genre of one file and record ``provenance``; return the state after.

    Only the genre field (see the module table; ``field="genretag"``: genretag's own
    ``GENRETAG_GENRE`` field instead, leaving the genre field to the user) and the
    provenance field change. In ID3v2.3, whose text frames hold one string, several
    genres are joined with ``id3v23_sep`` (``/`` by default, as the specification says).
    The write is atomic: a copy in the same folder is tagged, read back (a
    damaged file whose new tag can't be found is refused), its audio compared
    with the original's (:func:`~genretag.tags.audiocheck.check_audio`: the same
    bytes where a decoder looks, else ``cannot write tags: the audio would
    change (...)``), synced and renamed over the original; on any failure the
    copy is removed and the original is untouched. A WAV or AIFF too close to
    the 4 GiB limit of its size field is refused before anything is copied. A symlink is followed (its target is replaced). The new file keeps
    the original's permission bits and, where allowed, its owner; a file with
    several hard links becomes a separate file (the other links keep the old bytes).

    ID3 (mp3, wav, aiff):
        * ID3v2.4 is written by default; ``id3v23=True`` writes v2.3, converting
          a v2.4 tag as mutagen's ``update_to_v23`` does (TDRC becomes TYER/TDAT/
          TIME). A v2.4 tag holding what v2.3 can't (TDRL, TMOO, TSOP..., a date
          v2.3's frames can't hold) is refused: ``cannot write ID3v2.3 (--id3v23): ...``.
        * A file whose tag already is v2.3 stays v2.3 even without ``id3v23``,
          so the user's other frames are not silently converted. An ID3v2.2 tag
          (which cannot be written) is upgraded to v2.4 (or v2.3).
        * In v2.3, several genres are one string joined with ``id3v23_sep``
          (``/``, the v2.3 specification's separator): a name that holds the
          separator, such as ``Hip-Hop/Rap``, reads back as two. Every other
          frame keeps its values exactly as stored.
        * An existing ID3v1 tag (mp3) is kept byte for byte except its genre
          byte, which becomes the first genre's ID3v1 number (255 if none).
          No ID3v1 tag is created. APEv2 tags are not touched. An mp3 whose only
          tag is ID3v1 gets an ID3v2 tag holding its fields too (title, artist,
          album, year, comment, track): FFmpeg-based players read only ID3v2.
        * Every frame but the genre and provenance is saved back as the bytes it
          was (unless the version changes: v2.2, or ``id3v23`` on a v2.4 tag).

    Args:
        path: The audio file.
        genres: Genre names, best first; blanks are dropped, duplicates removed.
        provenance: Value of the ``GENRETAG_MODEL`` field, e.g. ``"cnn1d 1.2"``.
        id3v23: Write ID3v2.3 instead of v2.4 (ID3-based containers only).
        keep_mtime: Give the result the original's access and modification times.
        choose: Decides at write time. Called with the tags as the file holds them
            under the lock (read from the copy, whose bytes the original must still
            hash to right before the rename), it returns a :class:`Plan` (the genres
            and provenance values to write instead of ``genres`` and ``provenance``;
            either may be empty: the field is then removed, as ``genretag undo``
            does), or None to leave the file as it is: then nothing is written and
            those tags are returned. So a genre another program set after the caller
            read the file is seen (see :func:`genretag.scan.write`).

    Other writers:
        An exclusive ``flock`` is held on the original for the whole write
        (another genretag, or any program that locks, waits; after
        :data:`~genretag.tags.safefile.LOCK_WAIT_S` s: ``file is locked by
        another program``). Right before the rename, the original's device,
        inode, size, mtime and ctime must be as at the start AND its bytes must
        hash to what was copied (coarse file-system timestamps can hide a
        same-size edit); else ``file changed while tagging`` and the other
        program's version stays. After the rename, the old inode (still open) is
        hashed once more: an edit that landed between the check and the rename
        is put back under the name, and the error is the same.

        What remains (the residual race): a program that does not lock, opened
        the file before the rename and writes to it after that last hash, writes
        into the unlinked old inode; its edit is lost, as with any editor that
        saves by renaming. The window is from the last hash to that program's
        write, typically well under a millisecond.

    Raises:
        TagError: unsupported or unreadable file, ``file is read-only``,
            ``permission denied``, ``read-only file system``, ``file changed
            while tagging``, ``file is locked by another program``, a tag that
            does not read back, audio that would change, a WAV/AIFF at its size
            limit, or a failed write.
        ValueError, TypeError: ``genres`` or ``provenance`` is empty or malformed.
    """
    shown = Path(path)
    if field not in GENRE_FIELDS:
        raise ValueError(f"field must be one of {', '.join(GENRE_FIELDS)}, not {field!r}")
    values = _clean_genres(genres)
    provenance = (_clean_text(provenance, what="provenance"),)
    real = Path(os.path.realpath(shown))
    before = stat_for_write(real, shown)
    try:
        problem = size_limit_problem(real, before.st_size)
    except OSError as exc:
        raise TagError(os_reason(exc), shown) from exc
    if problem:
        raise TagError(problem, shown)
    with locked(real, shown) as held, _folder(real, shown) as folder:
        try:
            tmp = _make_temp(real)
        except PermissionError as exc:  # the file may be writable, its folder not: name the folder
            raise TagError(folder_denied(real.parent), shown) from exc
        except OSError as exc:
            raise TagError(os_reason(exc), shown) from exc
        try:
            copy_file(real, tmp, before)
            copied = digest(tmp)
            if choose is not None:
                now, plan = _chosen(tmp, shown, choose)
                if plan is None:
                    discard(tmp)
                    return now
                values, provenance = plan
            others = _snapshot(tmp, shown)
            _write_tags(tmp, shown, values, provenance, id3v23=id3v23, field=field, id3v23_sep=id3v23_sep)
            after = _read_back(tmp, shown, provenance, field=field, genres=values)
            _check_other_tags(others, tmp, shown, field=field, id3v23=id3v23)
            check_audio(real, tmp, shown)
            if keep_mtime:
                os.utime(tmp, ns=(before.st_atime_ns, before.st_mtime_ns))
            _sync(tmp)
            with leased(held, shown) as opened_for_writing:
                check_unchanged(real, before, shown, copied)
                if opened_for_writing is None:
                    _replace(tmp, real)
                else:
                    _replace_unless_opened(tmp, real, shown, opened_for_writing)
        except BaseException as exc:
            discard(tmp, folder)
            if isinstance(exc, (OSError, TagError)) and _moved(folder, real.parent):
                raise TagError("its folder was moved or renamed while tagging", shown) from exc
            if isinstance(exc, OSError):
                raise TagError(os_reason(exc), shown) from exc
            raise
        fsync_dir(real.parent)
        if opened_for_writing is None and held is not None and digest_of(held) != copied:
            _put_back(held, real, shown)
    return after


@contextlib.contextmanager
def _folder(real: Path, shown: Path):
    """The folder that will hold the temporary copy, open (``O_DIRECTORY``) for the whole write: the copy is
    removed from that folder even if it is renamed or moved meanwhile, when its old path leads nowhere.
    Opened before the copy is made, so the copy is made in it or not at all. None where it can't be opened
    (the write then fails, or goes on by path alone)."""
    try:
        fd = os.open(real.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def _moved(folder: int | None, path: Path) -> bool:
    """Whether the folder open as ``folder`` is no longer at ``path`` (renamed, moved or deleted)."""
    if folder is None:
        return False
    try:
        now, then = os.stat(path), os.fstat(folder)
    except OSError:
        return True
    return (now.st_dev, now.st_ino) != (then.st_dev, then.st_ino)


class Plan(NamedTuple):
    """What a :func:`write_genre` ``choose`` decided to write: the genre field's values and the provenance
    field's (the model first). Empty: that field is removed."""

    genres: Sequence[str]
    provenance: Sequence[str]


def _chosen(tmp: Path, shown: Path, choose: Callable[[TagState], Plan | None]) -> tuple[TagState, Plan | None]:
    """The tags in ``tmp`` (the locked copy of ``shown``), and what ``choose`` makes of them (cleaned)."""
    now = _read_state(tmp, shown)
    plan = choose(now)
    if plan is None:
        return now, None
    genres = _clean_genres(plan.genres) if plan.genres else ()
    return now, Plan(genres, tuple(_clean_text(v, what="provenance") for v in plan.provenance))


def undo_genre(path: str | Path, *, dry_run: bool = False) -> tuple[TagState, tuple[str, ...]]:
    """Put back the genre ``path`` had before genretag first wrote it (``genretag undo``), atomically and
    under the same checks as :func:`write_genre`; only the genre and provenance fields change. Decided on
    the tags under the write's lock (:func:`genretag.tags.provenance.undo_plan`). Returns the tags before
    and the genres put back (``dry_run``: what would be; nothing is written). Raises :class:`TagError`
    for a file genretag must not change (see ``undo_plan``) or can't write."""
    from genretag.tags.provenance import undo_plan

    shown = Path(path)
    if dry_run:
        state = _read_state(shown, shown)
        return state, undo_plan(state, shown)[0]
    seen: list[TagState] = []

    def choose(state: TagState) -> Plan:
        seen.append(state)
        return Plan(*undo_plan(state, shown))

    write_genre(shown, ["-"], provenance="-", choose=choose)
    return seen[-1], undo_plan(seen[-1], shown)[0]


def _make_temp(real: Path) -> Path:
    """An empty hidden file beside ``real``: ``.<name>.<random>.genretag-tmp``."""
    fd, name = tempfile.mkstemp(dir=real.parent, prefix=f".{_short(real.name)}.", suffix=TMP_SUFFIX)
    os.close(fd)
    return Path(name)


def _sync(path: Path) -> None:
    """Flush the tagged copy to disk before it replaces the original."""
    fsync_file(path)


def _replace(tmp: Path, real: Path) -> None:
    """The atomic step: ``tmp`` takes ``real``'s name."""
    os.replace(tmp, real)


def _replace_unless_opened(tmp: Path, real: Path, shown: Path, opened: Callable[[], bool]) -> None:
    """Rename ``tmp`` over ``real`` under a lease; undo it if a writer opened the original meanwhile.

    A program that opened the original for writing during the check or the
    rename holds the old inode: a hard link kept aside puts that inode back
    under the name, so its edit is not lost (where hard links fail, the
    rename goes ahead as without a lease).
    """
    changed = TagError("file changed while tagging", shown)
    if opened():
        raise changed
    aside: Path | None = None
    try:
        aside = _make_temp(real)
        aside.unlink()
        os.link(real, aside)
    except OSError:
        aside = None
    try:
        _replace(tmp, real)
        if opened() and aside is not None:
            os.replace(aside, real)
            aside = None
            raise changed
    finally:
        if aside is not None:
            discard(aside)


def _put_back(held: BinaryIO, real: Path, shown: Path) -> None:
    """Another program wrote to the original after the last check and before the rename.

    Its edit went to the old inode (still open as ``held``), which the rename
    unlinked: put those bytes back under the name (the genre is then not
    written) and raise ``file changed while tagging``.
    """
    old = os.fstat(held.fileno())
    try:
        tmp = _make_temp(real)
        held.seek(0)
        with open(tmp, "wb") as out:
            shutil.copyfileobj(held, out)
        os.chmod(tmp, stat.S_IMODE(old.st_mode))
        os.utime(tmp, ns=(old.st_atime_ns, old.st_mtime_ns))
        _sync(tmp)
        _replace(tmp, real)
    except OSError as exc:
        discard(tmp)
        raise TagError(f"file changed while tagging, and restoring it failed: {os_reason(exc)}", shown) from exc
    fsync_dir(real.parent)
    raise TagError("file changed while tagging", shown)


def remove_stale_copies(files: Iterable[str | Path]) -> list[Path]:
    """Delete the temporary copies that interrupted writes of ``files`` left behind.

    :func:`write_genre` removes its copy on every error, but a process killed
    outright (``kill -9``, a power cut) can leave one: ``.<name>.<random>.genretag-tmp``
    beside the file (the original is intact). Only copies of the given files are
    removed, whatever their age: a file is written by one genretag at a time, and
    a copy deleted under a concurrent writer only makes its rename fail. One
    folder listing per folder. Returns the copies removed.
    """
    wanted: dict[Path, set[str]] = {}
    for f in files:
        real = Path(os.path.realpath(f))
        wanted.setdefault(real.parent, set()).add(_short(real.name))
    removed = []
    for folder, names in wanted.items():
        stale: list[str] = []
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            stale = [e.path for e in entries if (m := _TMP_NAME.fullmatch(e.name)) and m["name"] in names
                     and e.is_file(follow_symlinks=False)]
        for path in stale:
            with contextlib.suppress(OSError):
                os.unlink(path)
                removed.append(Path(path))
    return removed


def _read_back(tmp: Path, shown: Path, provenance: tuple[str, ...], *, field: str = "genre",
               genres: tuple[str, ...] = ()) -> TagState:
    """The copy's tags as any reader will now see them; TagError unless they hold the new genre.

    A damaged file can take a tag where no reader finds it: in a WAV or AIFF whose
    audio chunk claims more bytes than the file has (a truncated download), the
    new chunk lands inside the audio, which would then play the tag's bytes.
    """
    try:
        state = _read_state(tmp, shown)
    except TagError as exc:
        raise TagError(f"cannot write tags: they do not read back ({exc.reason})", shown) from exc
    if state.provenance != (provenance[0] if provenance else None) or bool(state.field(field)) != bool(genres):
        raise TagError("cannot write tags: they do not read back (is the file truncated or damaged?)", shown)
    return state


def _snapshot(tmp: Path, shown: Path) -> Snapshot:
    """Every tag value of the untouched copy, to check the write against (:func:`_check_other_tags`)."""
    try:
        return snapshot(tmp, shown)
    except _PARSER_ERRORS as exc:
        raise _tag_error(exc, shown, "unsupported or unreadable tags") from exc


def _check_other_tags(before: Snapshot, tmp: Path, shown: Path, *, field: str, id3v23: bool = False) -> None:
    """TagError unless every tag of the copy but the genre written and the provenance is as ``before``.

    ``id3v23`` on a v2.4 tag: the frames v2.3 has no place for (TDRL, TMOO, TSOP...; a
    TDOR or TDRC that v2.3's year/date/time frames can't hold) make the write refused.
    """
    try:
        changed = changed_tags(before, tmp, shown, field=field)
    except _PARSER_ERRORS as exc:
        raise _tag_error(exc, shown, "cannot write tags") from exc
    if not changed:
        return
    listed = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    if id3v23 and before.id3_version == 4:
        raise TagError(f"cannot write ID3v2.3 (--id3v23): this ID3v2.4 tag's {listed} would be lost or cut; "
                       "without --id3v23 it stays v2.4", shown)
    raise TagError(f"cannot write tags: other tags would change ({listed})", shown)


def _short(name: str, limit: int = 100) -> str:
    """At most ``limit`` UTF-8 bytes of ``name``, so the temporary name fits in 255 bytes."""
    return name.encode("utf-8", "surrogateescape")[:limit].decode("utf-8", "ignore")


def _clean_text(value: str, *, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    value = value.strip()
    if not value:
        raise ValueError(f"{what} is empty")
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character: {value!r}")
    return value


def _clean_genres(genres: Sequence[str]) -> tuple[str, ...]:
    """Strip, drop blanks and duplicates (first kept); at least one must remain."""
    if isinstance(genres, str) or not all(isinstance(g, str) for g in genres):
        raise TypeError(f"genres must be a sequence of strings, not {genres!r}")
    values = tuple(dict.fromkeys(_clean_text(g, what="genre") for g in genres if g.strip()))
    if not values:
        raise ValueError("no genre to write")
    if not split_genres(list(values), slash=True):  # ";" or "/" alone: every reader would see no genre
        raise ValueError(f"no genre to write: {list(values)!r} holds only the separators genres are joined with")
    return values
