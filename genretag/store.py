"""The prediction store: what each file was predicted to be, so a rerun decodes nothing twice.

One SQLite database (``~/.cache/genretag/predictions.sqlite`` by default) with one
row per (file, model): the file's identity when it was predicted (size and
modification time in ns), the predict-phase status (``predicted``, ``not-music``, ``silent`` or
``failed`` with its reason), every class probability (and every style score, for a model
with styles, and the music score, for a model with one), the genre tags the file had, and what the last scan or apply made of it
(``tagged``, ``kept``...). A row is used
only while the file's size and mtime are still the ones recorded, so a file that
changed is predicted again and never tagged from an old prediction.

Two scans may share a store: it runs in WAL mode, every result is its own short
transaction (a killed scan loses at most the files in flight), and a busy
database is waited for. A file that is not a genretag store, or a damaged one,
is a :class:`~genretag.errors.StoreError` when opened.

The schema's version is in the ``meta`` table. A store of an older schema is brought up
to date in place when opened for writing (columns are only ever added: nothing is lost);
one of a newer schema is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from genretag.errors import StoreError, describe
from genretag.files import Identity  # noqa: F401 - also re-exported: where it lived before
from genretag.tags import TagState

SCHEMA_VERSION = 6
"""1: the first. 2: ``styles`` and ``style_scores`` (models with styles). 3: status ``kept`` (a file
that keeps a genre genretag did not write, read for its tags only: no prediction); an older genretag
would take such a row for a prediction, so it must refuse the store. 4: ``ctime_ns`` and ``inode`` in a
file's identity (a tag editor that keeps size and mtime still changes the ctime; a file replaced by
another has another inode), and the ``reviews`` table (decisions a person made, see :meth:`Store.review`).
Rows of an older store have no ctime and inode: until the file is next recorded, size and mtime say
whether it is current (whether a file keeps its genre is decided on its tags at write time anyway).
5: the ``features`` table (a track's mean window features for ``genretag learn``, see :meth:`Store.put_features`).
6: status ``not-music`` (a prediction whose music score is below the model's floor: no genre) and the
``music`` column (the track's music score); an older genretag would take such a row for damaged and
predict the file again, so it must refuse the store."""
STORE_FILE = "predictions.sqlite"
_APP = "genretag prediction store"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS predictions (
    path BLOB NOT NULL,             -- the file's absolute path as bytes (any file name)
    model TEXT NOT NULL,            -- "name version sha256-prefix wWINDOWS" (genretag.scan.recorder.store_key)
    size INTEGER NOT NULL,          -- identity when predicted: bytes ...
    mtime_ns INTEGER NOT NULL,      -- ... and modification time
    status TEXT NOT NULL,           -- predicted | not-music (schema 6) | silent | failed | kept (schema 3: not decoded)
    labels TEXT,                    -- JSON list, in probabilities' order
    probabilities BLOB,             -- float32 little-endian
    windows INTEGER,
    previous TEXT NOT NULL,         -- JSON list: genre tags the file had
    provenance TEXT,                -- its GENRETAG_MODEL tag
    error TEXT,
    tags TEXT,                      -- JSON: the tags read from the file (genre fields, album, artist...)
    outcome TEXT,                   -- what the last scan/apply did: tagged, kept, would-tag, ...
    updated REAL NOT NULL,          -- seconds since the epoch
    styles TEXT,                    -- (schema 2) JSON list of the model's style names (NULL: it has none)
    style_scores BLOB,              -- (schema 2) float32 little-endian, in styles' order
    ctime_ns INTEGER,               -- (schema 4) identity: status-change time (no program can set it) ...
    inode INTEGER,                  -- (schema 4) ... and inode number
    music REAL,                     -- (schema 6) the track's music score (NULL: the model has none)
    PRIMARY KEY (path, model)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reviews (  -- (schema 4) what a person decided for a file, whatever the model
    path BLOB PRIMARY KEY,          -- the file's absolute path as bytes
    field TEXT NOT NULL,            -- genre | genretag: the field the decision is for
    genres TEXT NOT NULL,           -- JSON list: the genres chosen (empty: leave the file alone)
    model TEXT,                     -- the model whose prediction was reviewed
    updated REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS features (  -- (schema 5) a track's mean window features, for genretag learn
    path BLOB NOT NULL,             -- the file's absolute path as bytes
    extractor TEXT NOT NULL,        -- what computed them and from how many windows (genretag.learn.features)
    size INTEGER NOT NULL,          -- identity when decoded, as in predictions
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER,
    inode INTEGER,
    status TEXT NOT NULL,           -- ok | silent | failed
    vector BLOB,                    -- float16 little-endian (ok only)
    windows INTEGER NOT NULL,
    error TEXT,
    updated REAL NOT NULL,
    PRIMARY KEY (path, extractor)
) WITHOUT ROWID;
"""
_COLUMNS = ("path", "model", "size", "mtime_ns", "status", "labels", "probabilities", "windows", "previous",
            "provenance", "error", "tags", "outcome", "updated", "styles", "style_scores", "ctime_ns", "inode",
            "music")
"""The ``predictions`` columns, in the order :func:`_entry` reads them."""
_MIGRATIONS = {
    2: ("ALTER TABLE predictions ADD COLUMN styles TEXT", "ALTER TABLE predictions ADD COLUMN style_scores BLOB"),
    3: (),  # a new status value only
    4: ("ALTER TABLE predictions ADD COLUMN ctime_ns INTEGER", "ALTER TABLE predictions ADD COLUMN inode INTEGER",
        "CREATE TABLE IF NOT EXISTS reviews (path BLOB PRIMARY KEY, field TEXT NOT NULL, genres TEXT NOT NULL, "
        "model TEXT, updated REAL NOT NULL) WITHOUT ROWID"),
    5: ("CREATE TABLE IF NOT EXISTS features (path BLOB NOT NULL, extractor TEXT NOT NULL, size INTEGER NOT NULL, "
        "mtime_ns INTEGER NOT NULL, ctime_ns INTEGER, inode INTEGER, status TEXT NOT NULL, vector BLOB, "
        "windows INTEGER NOT NULL, error TEXT, updated REAL NOT NULL, PRIMARY KEY (path, extractor)) WITHOUT ROWID",),
    6: ("ALTER TABLE predictions ADD COLUMN music REAL",),
}
"""What brings a store of the version before each key up to it."""


class Result(Protocol):
    """What the store records of a scan result (a :class:`genretag.scan.ScanResult` is one)."""

    path: Path
    status: str
    prediction: object | None
    """A :class:`genretag.scan.Prediction` (``labels``, ``probabilities``, ``windows``, ``styles``,
    ``style_scores``, ``music``), or None."""
    previous: tuple[str, ...]
    provenance: str | None
    error: str | None
    tags: TagState | None


def default_store_path() -> Path:
    """``$XDG_CACHE_HOME/genretag/predictions.sqlite`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "genretag" / STORE_FILE


@dataclass(frozen=True)
class Entry:
    """One stored row."""

    path: Path
    model: str
    identity: Identity
    status: str
    """``predicted``, ``not-music``, ``silent``, ``failed`` or ``kept``."""
    labels: tuple[str, ...]
    probabilities: np.ndarray | None
    """``float32 [n_classes]``; None unless ``predicted`` or ``not-music``."""
    windows: int
    previous: tuple[str, ...]
    provenance: str | None
    error: str | None
    tags: TagState | None
    outcome: str | None
    updated: float
    styles: tuple[str, ...] = ()
    """The model's style names; empty: it has none (or the row predates schema 2)."""
    style_scores: np.ndarray | None = None
    """``float32 [n_styles]`` in ``styles`` order; None unless ``predicted`` by a model with styles."""
    music: float | None = None
    """The track's music score; None unless predicted by a model with one (or the row predates schema 6)."""


@dataclass(frozen=True)
class Review:
    """A decision a person made for one file (see :meth:`Store.review`)."""

    path: Path
    field: str
    genres: tuple[str, ...]
    """Empty: leave the file alone."""
    model: str | None
    updated: float


@dataclass(frozen=True)
class StoredFeatures:
    """A track's features as ``genretag learn`` recorded them (see :meth:`Store.put_features`)."""

    status: str
    """``ok``, ``silent`` or ``failed``."""
    vector: np.ndarray | None
    """``float32 [d]`` (stored as float16) when ``ok``."""
    windows: int
    error: str | None


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
                self._check_schema()
                return
            _create_private(self.path)
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            self._init_schema()  # first: a file that is not a store is refused before anything is changed
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

    def _check_schema(self) -> bool:
        """True when the file is a store of a schema this genretag reads; False when it is empty."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise StoreError("not a genretag prediction store (other tables in it)", self.path)
        if "meta" not in tables:
            return False
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        if meta.get("app") != _APP:
            raise StoreError("not a genretag prediction store", self.path)
        if int(meta.get("schema", 0)) > SCHEMA_VERSION:
            raise StoreError(f"prediction store has schema {meta['schema']}, newer than this genretag's "
                             f"{SCHEMA_VERSION}: upgrade genretag, or use another --store", self.path)
        self.schema = int(meta.get("schema", 1))
        return True

    def _init_schema(self) -> None:
        if self._check_schema():
            if self.schema < SCHEMA_VERSION:
                self._migrate()
            return
        with self._transaction():  # (executescript would commit on its own)
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 [("app", _APP), ("schema", str(SCHEMA_VERSION))])

    def _migrate(self) -> None:
        """Bring an older store up to :data:`SCHEMA_VERSION` in place, in one transaction (all or nothing).
        The version is read again inside it: another process may have just done it."""
        with self._transaction():
            current = int(dict(self._db.execute("SELECT key, value FROM meta")).get("schema", 1))
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    self._db.execute(statement)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        self.schema = SCHEMA_VERSION

    def _select(self) -> str:
        """``SELECT`` of every column :func:`_entry` reads; a column an older (read-only) store lacks is NULL."""
        have = _COLUMNS if self.schema >= 6 else _COLUMNS[:-1] + ("NULL",)
        if self.schema < 4:
            have = have[:-3] + ("NULL",) * 3
        if self.schema < 2:
            have = have[:-5] + ("NULL",) * 5
        return f"SELECT {', '.join(have)} FROM predictions"

    def _transaction(self):
        db = self._db

        class _Tx:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, kind, value, tb):
                db.execute("COMMIT" if kind is None else "ROLLBACK")

        return _Tx()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ------------------------------------------------------------------------------------

    def get(self, path: str | Path, model: str) -> Entry | None:
        """The row for ``path`` and ``model``, whatever the file is now (see :meth:`current`)."""
        row = self._query(f"{self._select()} WHERE path = ? AND model = ?", (_key(path), model)).fetchone()
        return None if row is None else self._entry(row)

    def current(self, path: str | Path, model: str) -> Entry | None:
        """The row for ``path`` and ``model`` if the file is still the one predicted (same size, mtime,
        ctime and inode)."""
        entry = self.get(path, model)
        return entry if entry is not None and entry.identity.holds_for(Identity.of(path)) else None

    def entries(self, path: str | Path) -> list[Entry]:
        """Every model's row for ``path``, newest first."""
        rows = self._query(f"{self._select()} WHERE path = ? ORDER BY updated DESC", (_key(path),))
        return [entry for r in rows if (entry := self._entry(r)) is not None]

    def _entry(self, row: tuple) -> Entry | None:
        """The row as an :class:`Entry`, or None (and its file in :attr:`damaged`) when it is malformed."""
        try:
            return _entry(row)
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
        row = (_key(result.path), model, identity.size, identity.mtime_ns, status,
               json.dumps(list(pred.labels)) if pred is not None else None,
               np.asarray(pred.probabilities, "<f4").tobytes() if pred is not None else None,
               pred.windows if pred is not None else 0, json.dumps(list(result.previous)), result.provenance,
               result.error, _tags_json(result.tags), result.status, time.time(),
               json.dumps(list(pred.styles)) if scores is not None else None,
               np.asarray(scores, "<f4").tobytes() if scores is not None else None,
               identity.ctime_ns, identity.inode, None if music is None else float(music))
        self._write(f"INSERT OR REPLACE INTO predictions ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})", row)

    def after_write(self, path: str | Path, model: str, *, tags: TagState, outcome: str) -> None:
        """The file was tagged: record its new identity and tags (as read back after the write), so the
        next run knows it."""
        identity = Identity.of(path)
        if identity is None:
            return
        self._write("UPDATE predictions SET size = ?, mtime_ns = ?, ctime_ns = ?, inode = ?, previous = ?, "
                    "provenance = ?, tags = ?, outcome = ?, updated = ? WHERE path = ? AND model = ?",
                    (identity.size, identity.mtime_ns, identity.ctime_ns, identity.inode,
                     json.dumps(list(tags.genres)), tags.provenance, _tags_json(tags), outcome, time.time(),
                     _key(path), model))

    # --- reviews ------------------------------------------------------------------------------------

    def review(self, path: str | Path, *, field: str, genres: tuple[str, ...], model: str | None) -> None:
        """Record what a person decided for ``path`` (a reviewed report row applied): ``genres`` for its
        genre field ``field``, or, empty, that the file is to be left alone. It holds, whatever model or
        scan comes next, until a later review replaces it or ``--overwrite`` names the file."""
        self._write("INSERT OR REPLACE INTO reviews (path, field, genres, model, updated) VALUES (?, ?, ?, ?, ?)",
                    (_key(path), field, json.dumps(list(genres)), model, time.time()))

    def forget_review(self, path: str | Path) -> None:
        """The review of ``path`` no longer holds (``--overwrite`` named the file, or it was undone)."""
        if self.schema >= 4:
            self._write("DELETE FROM reviews WHERE path = ?", (_key(path),))

    def reviewed(self, path: str | Path) -> Review | None:
        """The person's decision recorded for ``path``, if any."""
        if self.schema < 4:
            return None
        row = self._query("SELECT field, genres, model, updated FROM reviews WHERE path = ?",
                          (_key(path),)).fetchone()
        if row is None:
            return None
        try:
            return Review(Path(path), _text(row[0]), _texts(row[1]), row[2] if row[2] is None else _text(row[2]),
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
                    (_key(path), extractor, identity.size, identity.mtime_ns, identity.ctime_ns, identity.inode,
                     status, blob, windows, error, time.time()))

    def features(self, path: str | Path, extractor: str) -> StoredFeatures | None:
        """What ``extractor`` recorded for ``path`` if the file is still the one decoded (same identity),
        else None; a malformed row is None too (and its file in :attr:`damaged`)."""
        if self.schema < 5:
            return None
        row = self._query("SELECT size, mtime_ns, ctime_ns, inode, status, vector, windows, error FROM features "
                          "WHERE path = ? AND extractor = ?", (_key(path), extractor)).fetchone()
        if row is None or not Identity(*row[:4]).holds_for(Identity.of(path)):
            return None
        try:
            status = _text(row[4])
            if status not in ("ok", "silent", "failed") or (status == "ok") != isinstance(row[5], bytes):
                raise ValueError(f"features row with status {status!r}")
            vector = np.frombuffer(row[5], "<f2").astype(np.float32) if status == "ok" else None
            return StoredFeatures(status, vector, _integer(row[6]), row[7] if row[7] is None else _text(row[7]))
        except (ValueError, TypeError):
            self.damaged.add(Path(path))
            return None

    def _write(self, sql: str, args: tuple) -> None:
        try:
            with self._transaction():
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


def _key(path: str | Path) -> bytes:
    return os.fsencode(os.path.abspath(path))


def _tags_json(tags: TagState | None) -> str | None:
    return None if tags is None else json.dumps(dataclasses.asdict(tags))


_STATUSES = ("predicted", "not-music", "silent", "failed", "kept")
"""The statuses a row may hold."""


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a text, got {type(value).__name__}")
    return value


def _texts(text: object) -> tuple[str, ...]:
    """A JSON list of texts; ValueError or TypeError for anything else."""
    value = json.loads(_text(text))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a JSON list of texts")
    return tuple(value)


def _integer(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _scores(blob: object, names: tuple[str, ...]) -> np.ndarray:
    """A float32 blob with one finite value per name."""
    if not isinstance(blob, bytes) or len(blob) != 4 * len(names):
        raise ValueError(f"a scores blob that is not {len(names)} float32 values")
    scores = np.frombuffer(blob, "<f4").astype(np.float32)
    if not np.all(np.isfinite(scores)):
        raise ValueError("a score that is not a finite number")
    return scores


def _tags_of(text: str | None) -> TagState | None:
    if not text:
        return None
    data = json.loads(_text(text))
    if not isinstance(data, dict):
        raise TypeError("tags: expected a JSON object")
    tags = TagState(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    for name in ("genres", "own_genres", "ape_genres", "placeholders", "provenance_values"):
        if not all(isinstance(v, str) for v in getattr(tags, name)):
            raise TypeError(f"tags: {name} must be texts")
    for name in ("provenance", "album", "artist", "album_artist"):
        if getattr(tags, name) is not None:
            _text(getattr(tags, name))
    return tags


def _entry(row: tuple) -> Entry:
    """A row as an :class:`Entry`; ValueError or TypeError when it is malformed (a damaged or hand-edited
    store): probabilities that are not one float32 per label, JSON that is not what genretag writes."""
    (path, model, size, mtime_ns, status, labels, probs, windows, previous, provenance, error, tags, outcome,
     updated, styles, scores, ctime_ns, inode, music) = row
    if status not in _STATUSES:
        raise ValueError(f"unknown status {status!r}")
    names = _texts(labels) if labels else ()
    probabilities = _scores(probs, names) if probs is not None else None
    if (probabilities is None or not names) and status in ("predicted", "not-music"):
        raise ValueError("a prediction without probabilities")
    if music is not None and (isinstance(music, bool) or not isinstance(music, (int, float))
                              or not 0.0 <= music <= 1.0):
        raise ValueError(f"a music score that is not a number from 0 to 1: {music!r}")
    style_names = _texts(styles) if styles and scores is not None else ()
    return Entry(
        path=Path(os.fsdecode(path)), model=_text(model),
        identity=Identity(_integer(size), _integer(mtime_ns), ctime_ns if ctime_ns is None else _integer(ctime_ns),
                          inode if inode is None else _integer(inode)),
        status=status, labels=names, probabilities=probabilities,
        windows=int(windows or 0), previous=_texts(previous),
        provenance=provenance if provenance is None else _text(provenance),
        error=error if error is None else _text(error),
        tags=_tags_of(tags), outcome=outcome if outcome is None else _text(outcome), updated=float(updated),
        styles=style_names,
        style_scores=_scores(scores, style_names) if style_names else None,
        music=None if music is None else float(music),
    )


def _reason(exc: BaseException) -> str:
    text = describe(exc)
    if "file is not a database" in text or "malformed" in text:
        return f"damaged or not an SQLite database ({text})"
    return text
