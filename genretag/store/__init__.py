"""The prediction store: what each file was predicted to be, so a rerun decodes nothing twice.

One SQLite database (``~/.cache/genretag/predictions.sqlite`` by default) with one
row per (file, model): the file's identity when it was predicted (size and
modification time in ns), the predict-phase status (``predicted``, ``not-music``, ``silent`` or
``failed`` with its reason), every class probability (and every style score, for a model
with styles, and the music score, for a model with one), the genre tags the file had, and what
the last scan or apply made of it (``tagged``, ``kept``...). A row is used only while the file's
size and mtime are still the ones recorded, so a file that changed is predicted again and never
tagged from an old prediction.

Two scans may share a store: it runs in WAL mode, every result is its own short
transaction (a killed scan loses at most the files in flight), and a busy
database is waited for. A file that is not a genretag store, or a damaged one,
is a :class:`~genretag.errors.StoreError` when opened.

The schema's version is in the ``meta`` table. A store of an older schema is brought up
to date in place when opened for writing (columns are only ever added: nothing is lost);
one of a newer schema is refused.

Rooms: :mod:`~genretag.store.schema` (tables, version, migrations), :mod:`~genretag.store.rows` (rows as
Python values and back), :mod:`~genretag.store.database` (the file, :class:`Store` and its queries). How a
run uses the store (what it files a prediction under, a store set aside when it fails) is
:mod:`genretag.scan.recorder`.
"""

from genretag.files import Identity  # re-exported: where it lived before
from genretag.store.database import STORE_FILE, Store, default_store_path
from genretag.store.rows import Entry, Result, Review, StoredFeatures
from genretag.store.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "STORE_FILE", "Entry", "Identity", "Result", "Review", "Store", "StoredFeatures",
           "default_store_path"]
