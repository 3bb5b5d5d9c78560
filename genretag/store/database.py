"""The prediction store's file and the queries a run makes of it: :class:`Store` (see :mod:`genretag.store`)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np

from genretag.config import user_folder
from genretag.errors import StoreError, describe
from genretag.files import Identity
from genretag.store.rows import (
    Entry,
    Result,
    Review,
    StoredFeatures,
    as_integer,
    as_text,
    as_texts,
    entry_of,
    path_key,
    tags_json,
)
from genretag.store.schema import COLUMNS, SCHEMA_VERSION, create_or_migrate, schema_of, select, transaction
from genretag.tags import TagState

STORE_FILE = "predictions.sqlite"


def default_store_path() -> Path:
    """``$XDG_CACHE_HOME/genretag/predictions.sqlite`` (``~/.cache/...``)."""
    return user_folder("cache") / STORE_FILE


class Store:
    """An open prediction store. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0, readonly: bool = False) -> None:
        """Open (and unless ``readonly``, create) the store at ``path``. ``readonly``: a missing store is a
        :class:`StoreError` (``no prediction store``), and nothing is ever written."""
        self.path = Path(path)
        self.schema = SCHEMA_VERSION
        """The schema of the file (an older one only when opened ``readonly``: it is read as it is)."""
        self.failed: StoreError | None = None
        """The error that made a reading or writing call fail, if one did."""
        self.damaged: set[Path] = set()
        """Files whose row could not be read (bad JSON, a probabilities blob that does not match its labels...):
        such a row is taken for no row (the file is predicted again, which replaces it)."""
        if readonly and not self.path.is_file():
            raise StoreError("no prediction store here (nothing has been scanned with it yet)", self.path)
        _check_regular(self.path)
        try:
            if readonly:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout,
                                           isolation_level=None)
                self.schema = schema_of(self._db, self.path) or SCHEMA_VERSION
                return
            _create_private(self.path)
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            # first: a file that is not a store is refused before anything is changed
            create_or_migrate(self._db, self.path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        except (sqlite3.Error, OSError) as exc:
            self._close_quietly()
            raise StoreError(f"cannot use the prediction store: {_reason(exc)}", self.path) from exc
        except StoreError:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ------------------------------------------------------------------------------------

    def get(self, path: str | Path, model: str) -> Entry | None:
        """The row for ``path`` and ``model``, whatever the file is now (see :meth:`current`)."""
        row = self._query(f"{select(self.schema)} WHERE path = ? AND model = ?", (path_key(path), model)).fetchone()
        return None if row is None else self._entry(row)

    def current(self, path: str | Path, model: str) -> Entry | None:
        """The row for ``path`` and ``model`` if the file is still the one predicted (same size, mtime,
        ctime and inode)."""
        entry = self.get(path, model)
        return entry if entry is not None and entry.identity.holds_for(Identity.of(path)) else None

    def entries(self, path: str | Path) -> list[Entry]:
        """Every model's row for ``path``, newest first."""
        rows = self._query(f"{select(self.schema)} WHERE path = ? ORDER BY updated DESC", (path_key(path),))
        return [entry for r in rows if (entry := self._entry(r)) is not None]

    def _entry(self, row: tuple) -> Entry | None:
        """The row as an :class:`Entry`, or None (and its file in :attr:`damaged`) when it is malformed."""
        try:
            return entry_of(row)
        except (ValueError, TypeError):  # JSONDecodeError and UnicodeError are ValueErrors
            self.damaged.add(Path(os.fsdecode(row[0])) if isinstance(row[0], bytes) else Path(str(row[0])))
            return None

    def _query(self, sql: str, args: tuple) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            self.failed = StoreError(f"cannot read the prediction store: {_reason(exc)}", self.path)
            raise self.failed from exc

    # --- writing ------------------------------------------------------------------------------------

    def put(self, result: Result, *, model: str, identity: Identity | None) -> None:
        """Record a scan result for ``model``.

        Results without an identity (the file vanished) and ``skipped`` results (the
        file was not looked at) leave the store as it was. A result with a
        prediction records it; a decided result also records its outcome; a ``kept``
        result without a prediction (read for its tags only) is recorded as status ``kept``; a ``not-music``
        one as ``not-music``, with its prediction.
        """
        if identity is None or result.status == "skipped":
            return
        pred = result.prediction
        if pred is not None:
            status = "not-music" if result.status == "not-music" else "predicted"
        else:
            status = result.status if result.status in ("silent", "kept") else "failed"
        music = getattr(pred, "music", None)
        scores = getattr(pred, "style_scores", None)
        row = (path_key(result.path), model, identity.size, identity.mtime_ns, status,
               json.dumps(list(pred.labels)) if pred is not None else None,
               np.asarray(pred.probabilities, "<f4").tobytes() if pred is not None else None,
               pred.windows if pred is not None else 0, json.dumps(list(result.previous)), result.provenance,
               result.error, tags_json(result.tags), result.status, time.time(),
               json.dumps(list(pred.styles)) if scores is not None else None,
               np.asarray(scores, "<f4").tobytes() if scores is not None else None,
               identity.ctime_ns, identity.inode, None if music is None else float(music))
        self._write(f"INSERT OR REPLACE INTO predictions ({', '.join(COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(COLUMNS))})", row)

    def after_write(self, path: str | Path, model: str, *, tags: TagState, outcome: str) -> None:
        """The file was tagged: record its new identity and tags (as read back after the write), so the
        next run knows it."""
        identity = Identity.of(path)
        if identity is None:
            return
        self._write("UPDATE predictions SET size = ?, mtime_ns = ?, ctime_ns = ?, inode = ?, previous = ?, "
                    "provenance = ?, tags = ?, outcome = ?, updated = ? WHERE path = ? AND model = ?",
                    (identity.size, identity.mtime_ns, identity.ctime_ns, identity.inode,
                     json.dumps(list(tags.genres)), tags.provenance, tags_json(tags), outcome, time.time(),
                     path_key(path), model))

    # --- reviews ------------------------------------------------------------------------------------

    def review(self, path: str | Path, *, field: str, genres: tuple[str, ...], model: str | None) -> None:
        """Record what a person decided for ``path`` (a reviewed report row applied): ``genres`` for its
        genre field ``field``, or, empty, that the file is to be left alone. It holds, whatever model or
        scan comes next, until a later review replaces it or ``--overwrite`` names the file."""
        self._write("INSERT OR REPLACE INTO reviews (path, field, genres, model, updated) VALUES (?, ?, ?, ?, ?)",
                    (path_key(path), field, json.dumps(list(genres)), model, time.time()))

    def forget_review(self, path: str | Path) -> None:
        """The review of ``path`` no longer holds (``--overwrite`` named the file, or it was undone)."""
        if self.schema >= 4:
            self._write("DELETE FROM reviews WHERE path = ?", (path_key(path),))

    def reviewed(self, path: str | Path) -> Review | None:
        """The person's decision recorded for ``path``, if any."""
        if self.schema < 4:
            return None
        row = self._query("SELECT field, genres, model, updated FROM reviews WHERE path = ?",
                          (path_key(path),)).fetchone()
        if row is None:
            return None
        try:
            return Review(Path(path), as_text(row[0]), as_texts(row[1]), row[2] if row[2] is None else as_text(row[2]),
                          float(row[3]))
        except (ValueError, TypeError):
            self.damaged.add(Path(path))
            return None

    # --- learned features (genretag learn) ------------------------------------------------------------

    def put_features(self, path: str | Path, extractor: str, *, identity: Identity, status: str,
                     vector: np.ndarray | None = None, windows: int = 0, error: str | None = None) -> None:
        """Record a track's mean window features (``float [d]``, stored as float16) computed by ``extractor``,
        or that it is ``silent`` / ``failed`` (with ``error``), for the file as ``identity`` says it was."""
        blob = None if vector is None else np.asarray(vector, "<f2").tobytes()
        self._write("INSERT OR REPLACE INTO features (path, extractor, size, mtime_ns, ctime_ns, inode, status, "
                    "vector, windows, error, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (path_key(path), extractor, identity.size, identity.mtime_ns, identity.ctime_ns, identity.inode,
                     status, blob, windows, error, time.time()))

    def features(self, path: str | Path, extractor: str) -> StoredFeatures | None:
        """What ``extractor`` recorded for ``path`` if the file is still the one decoded (same identity),
        else None; a malformed row is None too (and its file in :attr:`damaged`)."""
        if self.schema < 5:
            return None
        row = self._query("SELECT size, mtime_ns, ctime_ns, inode, status, vector, windows, error FROM features "
                          "WHERE path = ? AND extractor = ?", (path_key(path), extractor)).fetchone()
        if row is None or not Identity(*row[:4]).holds_for(Identity.of(path)):
            return None
        try:
            status = as_text(row[4])
            if status not in ("ok", "silent", "failed") or (status == "ok") != isinstance(row[5], bytes):
                raise ValueError(f"features row with status {status!r}")
            vector = np.frombuffer(row[5], "<f2").astype(np.float32) if status == "ok" else None
            return StoredFeatures(status, vector, as_integer(row[6]), row[7] if row[7] is None else as_text(row[7]))
        except (ValueError, TypeError):
            self.damaged.add(Path(path))
            return None

    def _write(self, sql: str, args: tuple) -> None:
        try:
            with transaction(self._db):
                self._db.execute(sql, args)
        except sqlite3.Error as exc:
            self.failed = StoreError(f"cannot write the prediction store: {_reason(exc)}", self.path)
            raise self.failed from exc


def _check_regular(path: Path) -> None:
    """StoreError unless ``path`` is missing or a regular file (``--store /dev/null`` would make SQLite
    create ``/dev/null-journal``; a named pipe would hang it)."""
    import stat

    from genretag.files import kind_of

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot use the prediction store: {describe(exc, path=path)}", path) from exc
    if not stat.S_ISREG(mode):
        raise StoreError(f"cannot use the prediction store: {kind_of(mode)}, not a regular file", path)


def _create_private(path: Path) -> None:
    """Create the store's folder (0700) and the store (0600) if missing: it holds every path and tag of a
    library. SQLite gives its ``-wal`` and ``-shm`` files the store's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600))
    except FileExistsError:
        _check_regular(path)  # swapped for something else since the first check


def _reason(exc: BaseException) -> str:
    text = describe(exc)
    if "file is not a database" in text or "malformed" in text:
        return f"damaged or not an SQLite database ({text})"
    return text
