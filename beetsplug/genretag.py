"""beets plugin: genretag listens to each track and records its genre in the beets library.

Add ``genretag`` to ``plugins:`` in beets' config.yaml, then ``beet genretag [-p] [-f] [-a] [QUERY]``
(or let ``auto`` tag albums as they are imported). Predictions go into flexible attributes
(``genretag_genre``, ``genretag_confidence``, ``genretag_top``, ``genretag_model``); the ``genres``
field (``genre`` on beets that lacks ``genres``) is set as configured, and the files get the new genre
through genretag's own writer (:func:`genretag.write_genre`: a checked copy renamed over the file; only the
genre and provenance fields change), never beets' ``item.write``, which would also write beets' other fields.
A file the writer refuses is reported and its track is not stored.

A front end like genretag's CLI: it calls the library API (:func:`genretag.load_model`,
:func:`genretag.predict`, :func:`genretag.decide`) and owns the messages.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from beets import ui
from beets.dbcore import types
from beets.library import Album, Item
from beets.plugins import BeetsPlugin
from beets.util import displayable_path

import genretag
from genretag.tags import remove_stale_copies

if TYPE_CHECKING:
    from beets.importer import ImportSession, ImportTask
    from beets.library import Library

FLEX_FIELDS = ("genretag_genre", "genretag_confidence", "genretag_top", "genretag_model")
"""The flexible attributes the plugin sets on items (and on albums it decides as a whole)."""

GENRE_FIELDS = tuple(f for f in ("genres", "genre") if f in Item._fields)
"""The genre fields this beets has: ``genres`` (a list; beets 2.14+), ``genre`` (a string; older)."""

WRITE_TO = ("genre", "none")

EXIT_INTERRUPTED = 130
"""``beet genretag``'s exit status after Ctrl-C (128 + SIGINT), as ``genretag scan``'s."""


@dataclass
class _Tally:
    predicted: int = 0
    changed: int = 0
    skipped: int = 0
    failed: int = 0
    silent: int = 0
    saved: int = 0
    unwritten: int = 0  # files genretag's writer refused (reported; their tracks are not stored)


@dataclass
class _Change:
    """One track's (or album's) new values: the fields that changed, and the genres its file gets."""

    obj: Item | Album
    fields: list[str]
    genres: list[str] | None

    @property
    def genre_changed(self) -> bool:
        return any(f in GENRE_FIELDS for f in self.fields)


@dataclass
class _Group:
    """Tracks decided together: an album's (with ``album_consensus``) or a single track."""

    items: list[Item]
    album: Album | None = None
    predictions: dict[str, Any] = field(default_factory=dict)  # path -> genretag.Prediction
    unheard: dict[str, str] = field(default_factory=dict)  # path -> "silent" or "failed" (nothing to decide from)
    waiting: set[str] = field(default_factory=set)


class GenretagPlugin(BeetsPlugin):
    item_types: ClassVar[dict[str, types.Type]] = {"genretag_confidence": types.Float(3)}  # numeric queries: 0.5..
    album_types: ClassVar[dict[str, types.Type]] = {"genretag_confidence": types.Float(3)}

    def __init__(self) -> None:
        super().__init__()
        defaults = genretag.ScanOptions
        self.config.add({
            "auto": True,
            "model": "default",
            "write_to": "genre",
            "keep_existing": True,
            "count": 1,
            "styles": False,
            "min_confidence": None,  # the model's calibrated floor, as genretag scan uses it
            "album_consensus": True,
            "genre_map": {},
            "top": 3,
            "force": False,
            "jobs": None,
            "batch_size": defaults.batch_size,
            "windows": defaults.windows,
        })
        self._model: genretag.Model | None = None
        self._model_lock = threading.Lock()
        if self.config["auto"].get(bool):
            self.register_listener("import_task_files", self.imported)

    # Settings --------------------------------------------------------------

    def _options(self) -> genretag.ScanOptions:
        """The scan options the config asks for; ``force`` always (beets decides what to skip). A floor left at
        ``null`` stays None: :func:`genretag.decide` with the model takes the model's calibrated one."""
        extra = {} if self.config["jobs"].get() is None else {"jobs": self.config["jobs"].get(int)}
        floor = self.config["min_confidence"]
        try:
            return genretag.ScanOptions(
                windows=self.config["windows"].get(int), batch_size=self.config["batch_size"].get(int),
                top_k=self.config["count"].get(int), min_confidence=None if floor.get() is None else floor.as_number(),
                styles=self.config["styles"].get(bool),
                genre_map={str(k): str(v or "") for k, v in (self.config["genre_map"].get(dict) or {}).items()},
                overwrite=True, force=True, **extra)
        except genretag.GenretagError as exc:
            raise ui.UserError(f"genretag: {exc}") from exc

    def _write_to(self) -> str:
        return self.config["write_to"].as_choice(WRITE_TO)

    def model_id(self) -> str:
        """The configured model's id, from its card alone (nothing loaded)."""
        try:
            return genretag.find_model(self.config["model"].as_str()).card.model_id
        except genretag.GenretagError as exc:
            raise ui.UserError(f"genretag: {exc}") from exc

    def model(self) -> genretag.Model:
        """The configured model, loaded once per beets process (first use), in the background while
        the first files decode."""
        with self._model_lock:
            if self._model is None:
                try:
                    self._model = genretag.load_model(self.config["model"].as_str(),
                                                      batch_size=self.config["batch_size"].get(int), background=True)
                except genretag.GenretagError as exc:
                    raise ui.UserError(f"genretag: {exc}") from exc
            return self._model

    # Command ----------------------------------------------------------------

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("genretag", help="predict genres from the audio and store them")
        cmd.parser.add_option("-p", "--pretend", action="store_true", default=False,
                              help="show old -> new and change nothing")
        cmd.parser.add_option("-f", "--force", action="store_true", default=None,
                              help="predict again tracks this model already predicted")
        cmd.parser.add_album_option()
        cmd.parser.usage += " [QUERY]"
        cmd.func = self._command
        return [cmd]

    def _command(self, lib: Library, opts: Any, args: list[str]) -> None:
        force = self.config["force"].get(bool) if opts.force is None else opts.force
        if opts.album:
            groups = [g for a in lib.albums(args) for g in _album_groups(list(a.items()), a)]
        else:
            groups = self._groups(list(lib.items(args)), lib)
        if not groups:
            raise ui.UserError("genretag: no matching items")
        try:
            tally = self.run(groups, pretend=opts.pretend, force=force, write=ui.should_write(), verbose=True)
        except KeyboardInterrupt:
            raise SystemExit(EXIT_INTERRUPTED) from None  # run() said "interrupted"; beets would exit 0
        ui.print_(f"genretag: {tally.predicted} predicted, {tally.changed} genre changes"
                  f"{' (pretend)' if opts.pretend else ''}, {tally.skipped} skipped (already predicted), "
                  f"{tally.silent} silent, {tally.failed} failed, {tally.unwritten} not written")
        problems = [f"{n} file{'s' if n != 1 else ''} could not be {what}"
                    for n, what in ((tally.failed, "decoded"), (tally.unwritten, "written")) if n]
        if problems:
            raise ui.UserError(f"genretag: {' and '.join(problems)} (listed above; left as they were); "
                               "the others were processed")

    def _groups(self, items: list[Item], lib: Library) -> list[_Group]:
        """Items decided together: per album (consensus), else one by one; an album whose every
        track is among ``items`` is also decided as an album."""
        if not self.config["album_consensus"].get(bool):
            return [_Group([i]) for i in items]
        by_album: dict[int, list[Item]] = {}
        groups: list[_Group] = []
        for item in items:
            if item.album_id is None:
                groups.append(_Group([item]))
            else:
                by_album.setdefault(item.album_id, []).append(item)
        for album_id, members in by_album.items():
            album = lib.get_album(album_id)
            whole = album is not None and {i.id for i in album.items()} <= {i.id for i in members}
            if album is not None and _compilation(album):
                groups.extend(_Group([i]) for i in members)
            else:
                groups.append(_Group(members, album if whole else None))
        return groups

    # Import ---------------------------------------------------------------------

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        """``auto``: predict the tracks of each imported album (or singleton), after beets moved the files."""
        items = list(task.imported_items())
        if not items:
            return
        album = getattr(task, "album", None) if task.is_album else None
        if album is not None and self.config["album_consensus"].get(bool):
            groups = _album_groups(items, album)
        else:
            groups = [_Group([i]) for i in items]
        write = ui.should_write()
        self.run(groups, pretend=False, force=self.config["force"].get(bool), write=write, verbose=False)

    # The work -------------------------------------------------------------------

    def run(self, groups: Sequence[_Group], *, pretend: bool, force: bool, write: bool, verbose: bool) -> _Tally:
        """Predict every group that needs it, decide and store each group as soon as its last track is in.

        Ctrl-C stops the prediction; groups already stored stay stored, the others are untouched.
        """
        tally = _Tally()
        try:
            self._run(groups, tally, pretend=pretend, force=force, write=write, verbose=verbose)
        except KeyboardInterrupt:
            self._log.warning("interrupted: {} tracks saved, the others are unchanged", tally.saved)
            raise
        return tally

    def _run(self, groups: Sequence[_Group], tally: _Tally, *, pretend: bool, force: bool, write: bool,
             verbose: bool) -> None:
        model_id = self.model_id()
        todo = [g for g in groups if force or any(_own(i, "genretag_model") != model_id for i in g.items)]
        tally.skipped = sum(len(g.items) for g in groups if g not in todo)
        if not todo:
            return  # nothing to predict: no model loaded
        model = self.model()
        by_path: dict[str, list[_Group]] = {}
        for group in todo:
            for item in group.items:
                key = os.fsdecode(item.path)
                group.waiting.add(key)
                by_path.setdefault(key, []).append(group)
        if not by_path:
            return
        self._log.info("predicting {} tracks with {}", len(by_path), model.model_id)
        options = self._options()
        if write and not pretend:
            remove_stale_copies(by_path)  # what a kill -9 during a write left beside the files
        results = genretag.predict([Path(p) for p in by_path], model=model, options=options)
        with closing(results):
            for result in results:
                key = os.fsdecode(os.fspath(result.path))
                self._note(result, tally)
                for group in by_path.get(key, ()):
                    if result.status == "predicted" and result.prediction is not None:
                        group.predictions[key] = result.prediction
                    elif result.status in ("silent", "failed"):
                        group.unheard[key] = result.status
                    group.waiting.discard(key)
                    if not group.waiting:
                        self._settle(group, model, options, pretend=pretend, write=write, tally=tally,
                                     verbose=verbose)
        for group in todo:  # a path predict() merged with another (the same file twice)
            if group.waiting:
                group.waiting.clear()
                self._settle(group, model, options, pretend=pretend, write=write, tally=tally, verbose=verbose)

    def _note(self, result: Any, tally: _Tally) -> None:
        if result.status == "failed":
            tally.failed += 1
            self._log.error("{}: {}", displayable_path(os.fsencode(result.path)), result.error or "failed")
        elif result.status == "silent":
            tally.silent += 1
            self._log.info("{}: silent, no genre", displayable_path(os.fsencode(result.path)))
        elif result.status == "predicted":
            tally.predicted += 1

    def _settle(self, group: _Group, model: genretag.Model, options: genretag.ScanOptions, *, pretend: bool,
                write: bool, tally: _Tally, verbose: bool) -> None:
        """Decide the group's genre(s) and store them (and write the files) in one go."""
        done = [(item, group.predictions[os.fsdecode(item.path)]) for item in group.items
                if os.fsdecode(item.path) in group.predictions]
        unheard = [(item, group.unheard[os.fsdecode(item.path)]) for item in group.items
                   if os.fsdecode(item.path) in group.unheard]
        if not done and not unheard:
            return
        if not done:
            decisions = []
        elif group.album is not None or len(group.items) > 1:
            shared = consensus([p for _, p in done], pooling=model.bundle.card.pooling)
            decisions = [(item, shared) for item, _ in done]
        else:
            decisions = done
        write_to = self._write_to()
        top = self.config["top"].get(int)
        changes: list[_Change] = []
        for item, prediction in decisions:
            genres = self._genres(item, prediction, options, write_to, model)
            changes.append(_Change(item, self._assign(item, prediction, genres, model.model_id, top), genres))
        for item, status in unheard:  # recorded as such: not predicted again (unless -f), no genre of the album's
            changes.append(_Change(item, _mark_unheard(item, status, model.model_id), None))
        if group.album is not None and decisions:
            genres = self._genres(group.album, decisions[0][1], options, write_to, model)
            changes.append(_Change(group.album, self._assign(group.album, decisions[0][1], genres, model.model_id, top),
                                   genres))
        shown = [*GENRE_FIELDS, "genretag_genre", "genretag_confidence"]
        for change in changes:
            if verbose:
                ui.show_model_changes(change.obj, fields=shown)
            else:
                self._log.debug("{}: {}", change.obj, ", ".join(change.fields))
        if pretend:
            tally.changed += sum(isinstance(c.obj, Item) and c.genre_changed for c in changes)
            return
        with _interrupt_deferred():
            # Files first, each through genretag's writer; then the database, in one transaction. A kill in
            # between leaves files the database does not know: their tracks lack genretag_model, so the next
            # run predicts them again and writes the same genre (a file is never newer in the database).
            keep = [c for c in changes if not (write and isinstance(c.obj, Item) and c.genre_changed)
                    or self._write_file(c.obj, c.genres, model.model_id, tally)]
            with group.items[0]._db.transaction():
                for change in keep:
                    if isinstance(change.obj, Album):
                        change.obj.store(inherit=False)  # the tracks were decided one by one above
                    else:
                        change.obj.store()
                        tally.saved += 1
                        tally.changed += change.genre_changed

    def _write_file(self, item: Item, genres: list[str] | None, provenance: str, tally: _Tally) -> bool:
        """Write ``item``'s new genres into its file through genretag's writer (a checked copy renamed over
        the file: only the genre and the provenance field change); False, with the reason logged, if refused."""
        path = os.fsdecode(item.path)
        try:
            genretag.write_genre(path, genres or [], provenance=provenance)
        except (genretag.GenretagError, ValueError) as exc:
            tally.unwritten += 1
            self._log.error("{}: {}", displayable_path(item.path), getattr(exc, "reason", None) or exc)
            return False
        item.mtime = item.current_mtime()  # as beets' own write does: ``beet update`` sees nothing new
        return True

    def _genres(self, obj: Item | Album, prediction: Any, options: genretag.ScanOptions,
                write_to: str, model: genretag.Model) -> list[str] | None:
        """The genres ``obj`` gets (with ``styles``, each followed by its best style), or ``None``: leave its
        genre field as it is."""
        if write_to == "none":
            return None
        existing = _genres_of(obj)
        ours = _own(obj, "genretag_model") is not None and existing[:1] == [_own(obj, "genretag_genre")]
        if existing and not ours and self.config["keep_existing"].get(bool):
            return None
        decided = genretag.decide(genretag.ScanResult(prediction.path, "predicted", prediction=prediction), options,
                                  model=model)  # floors left at None: the model's calibrated ones
        return list(decided.genres) if decided.status == "would-tag" else None

    @staticmethod
    def _assign(obj: Item | Album, prediction: Any, genres: list[str] | None, model_id: str, top: int) -> list[str]:
        """Set the flexible attributes (and the genre field, unless ``genres`` is None); the names of changed fields."""
        before = {k: _own(obj, k) for k in (*FLEX_FIELDS, *GENRE_FIELDS)}
        ranked = prediction.ranked()
        obj["genretag_genre"] = ranked[0][0]
        obj["genretag_confidence"] = round(float(ranked[0][1]), 4)
        obj["genretag_top"] = "; ".join(f"{label} {p:.3f}" for label, p in ranked[:max(top, 1)])
        obj["genretag_model"] = model_id
        if _own(obj, "genretag_status") is not None:
            del obj["genretag_status"]
        if genres is not None:
            if "genres" in GENRE_FIELDS:
                obj["genres"] = genres
                if "genre" in GENRE_FIELDS:
                    obj["genre"] = genres[0] if genres else ""
            else:
                obj["genre"] = "; ".join(genres)
        return [k for k, v in before.items() if _own(obj, k) != v]


def _mark_unheard(item: Item, status: str, model_id: str) -> list[str]:
    """Record that ``model_id`` found ``item`` silent or could not decode it: ``genretag_status``, and an empty
    ``genretag_genre`` of its own (so the album's does not show through); its genre field is left alone."""
    before = {k: _own(item, k) for k in (*FLEX_FIELDS, "genretag_status")}
    for key in ("genretag_confidence", "genretag_top"):
        if key in item.keys(with_album=False):
            del item[key]
    item["genretag_genre"] = ""
    item["genretag_model"] = model_id
    item["genretag_status"] = status
    return [k for k, v in before.items() if _own(item, k) != v]


def consensus(predictions: Iterable[Any], *, pooling: str = "mean") -> Any:
    """An album's decision: the same pooling as ``genretag scan --group album`` (window-weighted, by the
    model's ``pooling``)."""
    from genretag.scan import pooled

    return pooled(list(predictions), pooling=pooling)


def _compilation(album: Album) -> bool:
    """beets' compilation flag, or an album artist such as "Various Artists": as ``genretag scan --group album``
    tells a compilation, whose tracks are decided one by one."""
    from genretag.scan.group import VARIOUS_ARTISTS

    return bool(album.get("comp")) or (album.get("albumartist") or "").casefold() in VARIOUS_ARTISTS


def _album_groups(items: list[Item], album: Album) -> list[_Group]:
    """An album decided as a whole, or a compilation's tracks one by one (the album itself gets no decision)."""
    return [_Group([i]) for i in items] if _compilation(album) else [_Group(items, album)]


def _own(obj: Item | Album, key: str) -> Any:
    """``obj``'s own value of ``key``: an item's ``get`` falls back to its album's fields."""
    return obj.get(key, with_album=False) if isinstance(obj, Item) else obj.get(key)


def _genres_of(obj: Item | Album) -> list[str]:
    if "genres" in GENRE_FIELDS:
        return [g for g in (_own(obj, "genres") or []) if g]
    value = _own(obj, "genre") or ""
    return [value] if value else []


@contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block is done (a group is stored and written whole), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt
