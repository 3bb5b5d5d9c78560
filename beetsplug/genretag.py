"""beets plugin: genretag listens to each track and records its genre in the beets library.

Add ``genretag`` to ``plugins:`` in beets' config.yaml, then ``beet genretag [-p] [-f] [-k] [-s SOURCE] [-a] [QUERY]``
(or let ``auto`` tag albums as they are imported). Each track's own prediction goes into flexible attributes
(``genretag_genre``, ``genretag_confidence``, ``genretag_top``, ``genretag_model``), its album's decision into
the album's (and ``genretag_album_genre``, ``genretag_album_confidence`` on the tracks decided with it); the
``genres`` field (``genre`` on beets that lacks ``genres``) is set as lastgenre's options mean it (``force``,
``keep_existing``, ``count``, ``source``), and the files get the new genre through genretag's own writer
(:func:`genretag.write_genre`: a checked copy renamed over the file; only the genre and provenance fields
change), never beets' ``item.write``, which would also write beets' other fields. A file the writer refuses is
reported and its track is not stored. Predictions are kept in genretag's prediction store (the CLI's, keyed as
the CLI keys them), so a file is decoded once whichever of the two predicted it.

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
from genretag.interrupts import Terminated, exit_status, sigterm_as_interrupt
from genretag.tags import remove_stale_copies

from ._genretag_fields import (
    GENRE_FIELDS, Rules, assign, assign_album, genres_for, genres_of, mark_unheard, own,
)

if TYPE_CHECKING:
    from beets.importer import ImportSession, ImportTask
    from beets.library import Library

    from genretag.models.bundle import Bundle
    from genretag.store import Store

WRITE_TO = ("genre", "none")
SOURCES = ("album", "track")
"""lastgenre's ``source`` values genretag has: an album decided as a whole, or each track on its own."""



@dataclass
class _Tally:
    predicted: int = 0
    decoded: int = 0  # files decoded in this run
    stored: int = 0  # predictions taken from the prediction store (nothing decoded)
    changed: int = 0
    skipped: int = 0
    failed: int = 0
    silent: int = 0
    not_music: int = 0  # the model's music score says it is not music (speech, noise...): no genre
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
    """Tracks decided together: an album's (``source: album``) or a single track."""

    items: list[Item]
    album: Album | None = None
    predictions: dict[str, Any] = field(default_factory=dict)  # path -> genretag.Prediction
    unheard: dict[str, str] = field(default_factory=dict)  # path -> "silent", "not-music" or "failed" (no genre)
    waiting: set[str] = field(default_factory=set)
    decision: Any = None  # the prediction the group's genres were chosen from
    genres: list[str] | None = None  # what the group's genre fields got (None: left as they were)


class GenretagPlugin(BeetsPlugin):
    item_types: ClassVar[dict[str, types.Type]] = {  # numeric queries: genretag_confidence:..0.5
        "genretag_confidence": types.Float(3), "genretag_album_confidence": types.Float(3)}
    album_types: ClassVar[dict[str, types.Type]] = {"genretag_confidence": types.Float(3)}

    def __init__(self) -> None:
        super().__init__()
        defaults = genretag.ScanOptions
        self.config.add({
            "auto": True,
            "model": "default",
            "source": "album",
            "force": False,
            "keep_existing": False,
            "merge": False,
            "count": 1,
            "min_confidence": None,  # the model's calibrated floor, as genretag scan uses it
            "styles": False,
            "genre_map": {},
            "write_to": "genre",
            "pretend": False,
            "store": None,  # genretag's prediction store: null, the CLI's; a path; no: none
            "top": 3,
            "jobs": None,
            "batch_size": defaults.batch_size,
            "windows": defaults.windows,
        })
        self._model: genretag.Model | None = None
        self._recorded: tuple[Store | None, str] = (None, "")
        self._model_lock = threading.Lock()
        if self.config["auto"].get(bool):
            self.register_listener("import_task_files", self.imported)

    # Settings --------------------------------------------------------------

    def _options(self, bundle: Bundle) -> genretag.ScanOptions:
        """The scan options the config asks for, floors left at ``null`` taken from the model's card (its
        calibrated ones, as ``genretag scan`` takes them); ``force`` always (beets decides what to skip)."""
        extra = {} if self.config["jobs"].get() is None else {"jobs": self.config["jobs"].get(int)}
        floor = self.config["min_confidence"]
        try:
            return genretag.ScanOptions(
                windows=self.config["windows"].get(int), batch_size=self.config["batch_size"].get(int),
                top_k=self.config["count"].get(int), min_confidence=None if floor.get() is None else floor.as_number(),
                styles=self.config["styles"].get(bool),
                genre_map={str(k): str(v or "") for k, v in (self.config["genre_map"].get(dict) or {}).items()},
                overwrite=True, force=True, **extra).for_model(bundle.card.calibration)
        except genretag.GenretagError as exc:
            raise ui.UserError(f"genretag: {exc}") from exc

    def _write_to(self) -> str:
        return self.config["write_to"].as_choice(WRITE_TO)

    def _source(self) -> str:
        return self.config["source"].as_choice(SOURCES)

    def _rules(self) -> Rules:
        return Rules(self.config["force"].get(bool), self.config["keep_existing"].get(bool),
                      self.config["merge"].get(bool))

    def bundle(self) -> Bundle:
        """The configured model's bundle, from its card alone (nothing loaded)."""
        try:
            return genretag.find_model(self.config["model"].as_str())
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

    def _open_store(self) -> Store | None:
        """genretag's prediction store as ``store`` says (null: the CLI's default path); None with ``store: no``
        or when it can't be opened (said once; the run goes on without it)."""
        from genretag.store import Store, default_store_path

        where = self.config["store"].get()
        if where is False or where == "":
            return None
        path = default_store_path() if where in (None, True) else Path(str(where)).expanduser()
        try:
            return Store(path)
        except genretag.GenretagError as exc:
            self._log.warning("prediction store not used: {}", exc)
            return None

    # Command ----------------------------------------------------------------

    def commands(self) -> list[ui.Subcommand]:
        cmd = ui.Subcommand("genretag", help="predict genres from the audio and store them")
        add = cmd.parser.add_option
        add("-p", "--pretend", action="store_true", default=None, help="show old -> new and change nothing")
        add("-f", "--force", dest="force", action="store_true", default=None,
            help="replace existing genres (and decide again tracks this model already did)")
        add("-F", "--no-force", dest="force", action="store_false", help="keep existing genres")
        add("-k", "--keep-existing", dest="keep_existing", action="store_true", default=None,
            help="with --force: combine the existing genres with the new ones")
        add("-K", "--no-keep-existing", dest="keep_existing", action="store_false",
            help="with --force: replace the existing genres")
        add("-s", "--source", dest="source", default=None, help=f"decide per: {', '.join(SOURCES)}")
        cmd.parser.add_album_option()
        cmd.parser.usage += " [QUERY]"
        cmd.func = self._command
        return [cmd]

    def _command(self, lib: Library, opts: Any, args: list[str]) -> None:
        self.config.set_args({k: getattr(opts, k) for k in ("pretend", "force", "keep_existing", "source")
                              if getattr(opts, k) is not None})
        pretend = self.config["pretend"].get(bool)
        if opts.album:
            groups = [g for a in lib.albums(args) for g in self._album_groups(list(a.items()), a)]
        else:
            groups = self._groups(list(lib.items(args)), lib)
        if not groups:
            raise ui.UserError("genretag: no matching items")
        try:
            with sigterm_as_interrupt():  # `kill` cleans up as Ctrl-C does (by default it leaves temporary copies)
                tally = self.run(groups, pretend=pretend, write=ui.should_write(), verbose=True)
        except KeyboardInterrupt as exc:
            raise SystemExit(exit_status(exc)) from None  # run() said "interrupted"; beets would exit 0
        ui.print_(f"genretag: {tally.predicted} predicted ({tally.decoded} decoded, {tally.stored} from the "
                  f"prediction store), {tally.changed} genre changes"
                  f"{' (pretend)' if pretend else ''}, {tally.skipped} skipped (already predicted), "
                  f"{tally.not_music} not music, {tally.silent} silent, {tally.failed} failed, "
                  f"{tally.unwritten} not written")
        problems = [f"{n} file{'s' if n != 1 else ''} could not be {what}"
                    for n, what in ((tally.failed, "decoded"), (tally.unwritten, "written")) if n]
        if problems:
            raise ui.UserError(f"genretag: {' and '.join(problems)} (listed above; left as they were); "
                               "the others were processed")

    def _groups(self, items: list[Item], lib: Library) -> list[_Group]:
        """Items decided together: per album (``source: album``), else one by one; an album whose every
        track is among ``items`` is also decided as an album."""
        if self._source() == "track":
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

    def _album_groups(self, items: list[Item], album: Album) -> list[_Group]:
        """An album decided as a whole, or its tracks one by one (a compilation, or ``source: track``)."""
        if _compilation(album) or self._source() == "track":
            return [_Group([i]) for i in items]
        return [_Group(items, album)]

    # Import ---------------------------------------------------------------------

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        """``auto``: predict the tracks of each imported album (or singleton), after beets moved the files,
        and say in one line what the album got."""
        items = list(task.imported_items())
        if not items:
            return
        album = getattr(task, "album", None) if task.is_album else None
        groups = self._album_groups(items, album) if album is not None else [_Group([i]) for i in items]
        tally = self.run(groups, pretend=self.config["pretend"].get(bool), write=ui.should_write(), verbose=False)
        ui.print_(f"genretag: {_import_line(album or items[0], groups, tally)}")

    # The work -------------------------------------------------------------------

    def run(self, groups: Sequence[_Group], *, pretend: bool, write: bool, verbose: bool) -> _Tally:
        """Predict every group that needs it, decide and store each group as soon as its last track is in.

        Ctrl-C stops the prediction; groups already stored stay stored, the others are untouched.
        """
        tally = _Tally()
        try:
            self._run(groups, tally, pretend=pretend, write=write, verbose=verbose)
        except KeyboardInterrupt:
            self._log.warning("interrupted: {} tracks saved, the others are unchanged", tally.saved)
            raise
        return tally

    def _run(self, groups: Sequence[_Group], tally: _Tally, *, pretend: bool, write: bool, verbose: bool) -> None:
        from genretag.scan.recorder import store_key

        bundle = self.bundle()
        model_id = bundle.card.model_id
        rules = self._rules()
        todo = [g for g in groups if rules.force or any(own(i, "genretag_model") != model_id for i in g.items)]
        tally.skipped = sum(len(g.items) for g in groups if g not in todo)
        by_path: dict[str, list[_Group]] = {}
        for group in todo:
            for item in group.items:
                key = os.fsdecode(item.path)
                group.waiting.add(key)
                by_path.setdefault(key, []).append(group)
        if not by_path:
            return  # nothing to predict: no model loaded
        options = self._options(bundle)
        if write and not pretend:
            remove_stale_copies(by_path)  # what a kill -9 during a write left beside the files
        store = self._open_store()
        self._recorded = (store, store_key(bundle, options))  # where _write_file notes what it wrote
        try:
            results = self._predictions(list(by_path), bundle, options, store, tally)
            with closing(results):
                for result in results:
                    key = os.fsdecode(os.fspath(result.path))
                    self._note(result, tally)
                    for group in by_path.get(key, ()):
                        if result.status == "predicted" and result.prediction is not None:
                            group.predictions[key] = result.prediction
                        elif result.status in ("silent", "not-music", "failed"):
                            group.unheard[key] = result.status
                        group.waiting.discard(key)
                        if not group.waiting:
                            self._settle(group, bundle, options, rules, pretend=pretend, write=write, tally=tally,
                                         verbose=verbose)
            for group in todo:  # a path predict() merged with another (the same file twice)
                if group.waiting:
                    group.waiting.clear()
                    self._settle(group, bundle, options, rules, pretend=pretend, write=write, tally=tally,
                                 verbose=verbose)
        finally:
            self._recorded = (None, "")
            if store is not None:
                store.close()
                if store.failed is not None:
                    self._log.warning("prediction store set aside: {}", store.failed)

    def _predictions(self, paths: list[str], bundle: Bundle, options: genretag.ScanOptions, store: Store | None,
                     tally: _Tally) -> Iterator[Any]:
        """Every path's result: from the prediction store where it holds this model's prediction of the file as
        it is now (as ``genretag scan`` keys it: :func:`genretag.scan.recorder.store_key`), else decoded and predicted
        (and recorded in the store); the model is loaded only when something is left to decode."""
        from genretag.scan.recorder import StoreRecorder, store_key

        recorder = StoreRecorder(store)
        key = store_key(bundle, options)
        todo = []
        for path in paths:
            known = recorder.known(Path(path), key, provenance=bundle.card.model_id, skip_own=False)
            if known is None:
                todo.append(path)
            else:
                tally.stored += 1
                yield known
        if not todo:
            return
        model = self.model()
        self._log.info("predicting {} tracks with {}", len(todo), model.model_id)
        results = genretag.predict([Path(p) for p in todo], model=model, options=options, store=recorder.store)
        with closing(results):
            for result in results:
                tally.decoded += 1
                yield result

    def _note(self, result: Any, tally: _Tally) -> None:
        if result.status == "failed":
            tally.failed += 1
            self._log.error("{}: {}", displayable_path(os.fsencode(result.path)), result.error or "failed")
        elif result.status == "silent":
            tally.silent += 1
            self._log.info("{}: silent, no genre", displayable_path(os.fsencode(result.path)))
        elif result.status == "not-music":
            tally.not_music += 1
            score = result.prediction.music if result.prediction is not None else None
            self._log.info("{}: not music (music score {}), no genre", displayable_path(os.fsencode(result.path)),
                           "?" if score is None else f"{score:.2f}")
        elif result.status == "predicted":
            tally.predicted += 1

    def _settle(self, group: _Group, bundle: Bundle, options: genretag.ScanOptions, rules: Rules, *,
                pretend: bool, write: bool, tally: _Tally, verbose: bool) -> None:
        """Decide the group's genre(s) and store them (and write the files) in one go."""
        done = [(item, group.predictions[os.fsdecode(item.path)]) for item in group.items
                if os.fsdecode(item.path) in group.predictions]
        unheard = [(item, group.unheard[os.fsdecode(item.path)]) for item in group.items
                   if os.fsdecode(item.path) in group.unheard]
        if not done and not unheard:
            return
        together = group.album is not None or len(group.items) > 1
        if done:
            group.decision = consensus([p for _, p in done], pooling=bundle.card.pooling) if together else done[0][1]
            group.genres = self._decided(group.decision, options, bundle)
        write_to = self._write_to()
        top = self.config["top"].get(int)
        model_id = bundle.card.model_id
        changes: list[_Change] = []
        for item, prediction in done:  # each track keeps its own prediction; its genre field gets the decision
            genres = genres_for(item, group.genres, write_to, rules)
            fields = assign(item, prediction, genres, model_id, top)
            fields += assign_album(item, group.decision if together else None)
            changes.append(_Change(item, fields, genres))
        for item, status in unheard:  # recorded as such: not predicted again (unless -f), no genre of the album's
            changes.append(_Change(item, mark_unheard(item, status, model_id), None))
        if group.album is not None and done:
            genres = genres_for(group.album, group.genres, write_to, rules)
            changes.append(_Change(group.album, assign(group.album, group.decision, genres, model_id, top), genres))
        shown = [*GENRE_FIELDS, "genretag_genre", "genretag_confidence", "genretag_album_confidence"]
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
                    or self._write_file(c.obj, c.genres, model_id, tally)]
            with group.items[0]._db.transaction():
                for change in keep:
                    if isinstance(change.obj, Album):
                        change.obj.store(inherit=False)  # the tracks were decided one by one above
                    else:
                        change.obj.store()
                        tally.saved += 1
                        tally.changed += change.genre_changed

    def _write_file(self, item: Item, genres: list[str] | None, model_id: str, tally: _Tally) -> bool:
        """Write ``item``'s new genres into its file through genretag's writer (a checked copy renamed over
        the file: only the genre and the provenance field change), the provenance recorded as ``genretag scan``
        records it (the model, the genres written, the genre before genretag first wrote it: ``genretag undo``
        works on the file); False, with the reason logged, if refused."""
        from genretag.tags import Plan
        from genretag.tags.provenance import after_write

        path = os.fsdecode(item.path)
        values = tuple(genres or ())

        def choose(state: genretag.TagState) -> Plan:
            return Plan(values, after_write(state, model=model_id, name="genre", genres=values))

        try:
            after = genretag.write_genre(path, values, provenance=model_id, choose=choose)
        except (genretag.GenretagError, ValueError) as exc:
            tally.unwritten += 1
            self._log.error("{}: {}", displayable_path(item.path), getattr(exc, "reason", None) or exc)
            return False
        store, key = self._recorded
        if store is not None:  # the file's prediction stays current though its bytes changed, as after a scan
            try:
                store.after_write(path, key, tags=after, outcome="tagged")
            except genretag.GenretagError as exc:
                self._log.warning("prediction store: {}", exc)
        item.mtime = item.current_mtime()  # as beets' own write does: ``beet update`` sees nothing new
        return True

    def _decided(self, prediction: Any, options: genretag.ScanOptions, bundle: Bundle) -> list[str] | None:
        """The genres a decision gives (``count``, the floors, ``genre_map``, ``styles``), or None: below the
        floor, or mapped away."""
        decided = genretag.decide(genretag.ScanResult(prediction.path, "predicted", prediction=prediction), options,
                                  styles=bundle.card.styles)
        return list(decided.genres) if decided.status == "would-tag" else None

def _import_line(obj: Item | Album, groups: Sequence[_Group], tally: _Tally) -> str:
    """What ``auto`` did to one imported album (or singleton), on one line: what genretag heard, the genres
    its tracks have now, and how many files it decoded."""
    heard = [g.decision.ranked()[0] for g in groups if g.decision is not None]
    if len(groups) > 1:
        said = "one by one (a compilation, or source: track): heard " + ", ".join(
            f"{label} {p:.2f}" for label, p in heard)
    elif heard:
        said = f"heard {heard[0][0]} {heard[0][1]:.2f}" + ("" if groups[0].genres else " (below the floor)")
    else:
        said = "nothing heard"
    now = sorted({"; ".join(genres_of(i)) or "none" for g in groups for i in g.items})
    tracks = sum(len(g.items) for g in groups)
    counts = [f"{tracks} track{'s' if tracks != 1 else ''}", f"{tally.decoded} decoded"]
    counts += [f"{n} {what}" for n, what in ((tally.stored, "from the prediction store"), (tally.skipped, "skipped"),
                                             (tally.not_music, "not music"), (tally.silent, "silent"),
                                             (tally.failed, "failed"),
                                             (tally.unwritten, "not written")) if n]
    return f"{obj}: {said}; genres: {', '.join(now)} ({', '.join(counts)})"


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


@contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM, where the command turned it into an interrupt) until the block is done (a group
    is stored and written whole), then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    deferred = [signal.SIGINT] + ([signal.SIGTERM] if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL,
                                                                                             signal.SIG_IGN) else [])
    previous = {signum: signal.signal(signum, lambda signum, frame: caught.append(signum)) for signum in deferred}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if caught:
        raise Terminated() if signal.SIGTERM in caught else KeyboardInterrupt
