"""The prediction store's schema: its tables, its version, and how an older store is brought up to date.

The version is in the ``meta`` table (with the ``app`` key that says the file is a genretag store). Columns
are only ever added (:data:`MIGRATIONS`): nothing is lost; a store of a newer schema is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genretag.errors import StoreError

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
APP = "genretag prediction store"
TABLES = """
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
COLUMNS = ("path", "model", "size", "mtime_ns", "status", "labels", "probabilities", "windows", "previous",
            "provenance", "error", "tags", "outcome", "updated", "styles", "style_scores", "ctime_ns", "inode",
            "music")
"""The ``predictions`` columns, in the order :func:`~genretag.store.rows.entry_of` reads them."""
MIGRATIONS = {
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




@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` when the block raises): the database is locked for
    writing from the start, so two writers wait for each other instead of failing mid-way."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def schema_of(db: sqlite3.Connection, path: Path) -> int | None:
    """The schema of the store in ``db`` (at ``path``); None when the file is empty. :class:`StoreError`
    when it is not a genretag store, or one of a newer schema than this genretag's."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables and "meta" not in tables:
        raise StoreError("not a genretag prediction store (other tables in it)", path)
    if "meta" not in tables:
        return None
    meta = dict(db.execute("SELECT key, value FROM meta"))
    if meta.get("app") != APP:
        raise StoreError("not a genretag prediction store", path)
    if int(meta.get("schema", 0)) > SCHEMA_VERSION:
        raise StoreError(f"prediction store has schema {meta['schema']}, newer than this genretag's "
                         f"{SCHEMA_VERSION}: upgrade genretag, or use another --store", path)
    return int(meta.get("schema", 1))


def create_or_migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables in an empty file, or bring an older store up to :data:`SCHEMA_VERSION` (see
    :func:`migrate`); a file that is not a store is refused (:func:`schema_of`) before anything is changed."""
    schema = schema_of(db, path)
    if schema is not None:
        if schema < SCHEMA_VERSION:
            migrate(db)
        return
    with transaction(db):  # (executescript would commit on its own)
        for statement in filter(str.strip, TABLES.split(";")):
            db.execute(statement)
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [("app", APP), ("schema", str(SCHEMA_VERSION))])


def migrate(db: sqlite3.Connection) -> None:
    """Bring an older store up to :data:`SCHEMA_VERSION` in place, in one transaction (all or nothing).
    The version is read again inside it: another process may have just done it."""
    with transaction(db):
        current = int(dict(db.execute("SELECT key, value FROM meta")).get("schema", 1))
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                db.execute(statement)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))


def select(schema: int) -> str:
    """``SELECT`` of every ``predictions`` column (:data:`COLUMNS`) from a store of ``schema``; a column an
    older (read-only) store lacks is NULL."""
    have = COLUMNS if schema >= 6 else COLUMNS[:-1] + ("NULL",)
    if schema < 4:
        have = have[:-3] + ("NULL",) * 3
    if schema < 2:
        have = have[:-5] + ("NULL",) * 5
    return f"SELECT {', '.join(have)} FROM predictions"
