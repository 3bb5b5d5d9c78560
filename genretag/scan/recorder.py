"""The prediction store as a run uses it: what it files a prediction under (:func:`store_key`), the entries
still valid for a file, results recorded. A store that fails mid-run is set aside and the run goes on without
it; ``store.failed`` keeps the error, and the ``genretag`` logger says so (a warning)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from genretag.config import ScanOptions
from genretag.errors import StoreError

if TYPE_CHECKING:
    from genretag.models.bundle import Bundle
    from genretag.scan import ScanResult
    from genretag.store import Store

log = logging.getLogger("genretag")


def store_key(bundle: Bundle, options: ScanOptions = ScanOptions()) -> str:
    """What the prediction store files a model's predictions under: its id, the start of its weights'
    sha256 (a retrained bundle with the same name and version is another model), the windows a track
    is listened to (``--windows 32`` is another prediction than 8) and a fingerprint of everything else on
    the card that shapes a stored prediction (labels, features, calibration, pooling, styles, runtime: a
    re-calibrated card is another model), e.g. ``genretag-default 3.0 977094d2bb9e w8 c1a2b3c4d``."""
    import hashlib
    import json

    card = bundle.card.to_dict()
    shaping = {k: card.get(k) for k in ("labels", "features", "sha256", "calibration", "pooling", "runtime",
                                        "styles")}
    fingerprint = hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()
    return f"{bundle.card.model_id} {bundle.card.sha256[:12]} w{options.windows} c{fingerprint[:9]}"


class StoreRecorder:
    """The store as a run uses it: entries still valid for a file, results recorded; a store that
    fails is set aside (``store.failed`` keeps the error) and the run goes on without it."""

    def __init__(self, store: Store | None) -> None:
        self.store = store
        self._outcomes: dict[Path, str | None] = {}
        """What the store said the last run made of each file taken from it (to skip rewriting it)."""

    def _set_aside(self, exc: StoreError) -> None:
        """Go on without the store (``store.failed`` keeps why), and say so through the ``genretag`` logger."""
        if self.store is not None:
            log.warning("prediction store set aside for the rest of the run: %s (%s)", exc.reason, exc.path)
        self.store = None

    def known(self, path: Path, key: str, *, provenance: str, skip_own: bool = True,
              accept_unpredicted: bool = False) -> ScanResult | None:
        """The stored result of ``path``, or None when it must be decoded. ``accept_unpredicted``: an entry of a
        file that kept its genre without being predicted will do (the run needs no prediction of it)."""
        try:
            entry = self.store.current(path, key) if self.store is not None else None
        except StoreError as exc:
            self._set_aside(exc)
            return None
        if entry is None or entry.status == "failed" or (entry.status == "kept" and not accept_unpredicted):
            return None
        self._outcomes[path] = entry.outcome
        return _from_entry(entry, provenance if skip_own else None, path=path)

    def why_unknown(self, path: Path, key: str) -> str:
        """Why the store has no usable prediction of ``path``."""
        entry = None
        if self.store is not None:
            try:
                entry = self.store.get(path, key)
            except Exception:  # noqa: BLE001 - only the message depends on it
                entry = None
        if entry is None:
            return "no stored prediction by this model (scan it first)"
        if entry.status == "failed":
            return f"its last scan failed ({entry.error}); scan it again"
        if entry.status == "kept":
            return "it kept its genre, so its last scan did not predict it (scan it with --overwrite or a report)"
        return "changed since it was predicted (scan it again)"

    def review_of(self, path: Path) -> tuple[str, ...] | None:
        """The genres a person chose for ``path`` (``()``: leave it alone), or None."""
        try:
            review = self.store.reviewed(path) if self.store is not None else None
        except StoreError as exc:
            self._set_aside(exc)
            return None
        return None if review is None else review.genres

    def note_review(self, path: Path, *, field: str, genres: tuple[str, ...], model: str | None) -> None:
        try:
            if self.store is not None:
                self.store.review(path, field=field, genres=genres, model=model)
        except StoreError as exc:
            self._set_aside(exc)

    def forget_review(self, path: Path) -> None:
        try:
            if self.store is not None:
                self.store.forget_review(path)
        except StoreError as exc:
            self._set_aside(exc)

    def after_write(self, result: ScanResult, key: str) -> None:
        """A file was tagged outside a scan (from a report): update its entry, if it has one."""
        if self.store is None or result.status != "tagged" or result.tags is None:
            return
        try:
            self.store.after_write(result.path, key, tags=result.tags, outcome="tagged")
        except StoreError as exc:
            self._set_aside(exc)

    def record(self, result: ScanResult, key: str) -> None:
        if self.store is None:
            return
        if result.path in self._outcomes and self._outcomes.pop(result.path) == result.status != "tagged":
            return  # taken from the store and nothing new happened to it
        try:
            self.store.put(result, model=key, identity=result.identity)
            if result.status == "tagged" and result.tags is not None:
                self.store.after_write(result.path, key, tags=result.tags, outcome="tagged")
        except StoreError as exc:
            self._set_aside(exc)


def _from_entry(entry, provenance: str | None, *, path: Path) -> ScanResult:
    """A stored prediction of the file at ``path`` as the pipeline would have produced it
    (``skipped``, with its prediction, if the model ``provenance`` names tagged the file; ``not-music`` as
    the store recorded it)."""
    from genretag.scan import Prediction, TrackFeatures, as_result

    if entry.status in ("silent", "kept", "not-music"):
        status = "ok" if entry.status == "not-music" else entry.status
    else:
        status = "skipped" if provenance is not None and entry.provenance == provenance else "ok"
    track = TrackFeatures(path, status, genres=entry.previous, provenance=entry.provenance, error=entry.error,
                          identity=entry.identity, tags=entry.tags)
    prediction = None if status in ("silent", "kept") else Prediction(
        path, entry.labels, entry.probabilities, entry.windows, entry.styles, entry.style_scores, entry.music)
    return as_result(track, prediction, not_music=entry.status == "not-music")
