"""``learn``: from a library's tagged files to a bundle that tags the rest with the owner's genres.

Tags are read (:mod:`~genretag.learn.labels`), the tagged files' features taken from the store or decoded
(:mod:`~genretag.learn.features`), the layer judged by album-grouped cross-validation and fitted
(:mod:`~genretag.learn.fit`), genres below the precision floor left out (and the rest judged again),
and the bundle written (:mod:`~genretag.learn.bundle`). Returns a :class:`LearnResult`; prints nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from genretag.version import __version__
from genretag.config import LEARN_FEATURE_SETS, LearnConfig
from genretag.errors import DatasetError, UsageError
from genretag.learn.fit import SHRINKAGE_GRID, CrossValidation, GenreScore, calibrated, cross_validate, fit_layer, \
    fit_temperature, masks_of
from genretag.learn.labels import Labels, LeftOut, read_labels
from genretag.models.bundle import Bundle
from genretag.store import Store

Progress = Callable[[str, dict], None]
MANY_GENRES = 100
"""More distinct genres than this, most of them too small: the tags are probably free text (said so)."""


@dataclass(frozen=True)
class LearnResult:
    """What ``learn`` did."""

    bundle: Bundle
    genres: tuple[GenreScore, ...]
    """The genres learned, with their cross-validated precision and recall."""
    left_out: tuple[LeftOut, ...]
    accuracy: float
    """Cross-validated share of tagged tracks whose predicted genre is one of theirs."""
    folds: int
    temperature: float
    files: int
    """Audio files found."""
    trained_on: int
    """Tagged tracks the layer learned from."""
    untagged: int
    """Files without any of the learned genres (what a scan would tag)."""
    decoded: int
    """Tracks decoded this time (the others' features came from the store)."""
    problems: tuple[tuple[Path, str], ...]
    """Files that could not be read or decoded, or whose genre values can't be labels."""
    export_note: str
    seconds_features: float
    seconds_fit: float
    feature_runtime: str = ""
    """What ran the feature network (``openvino`` or ``keras``; empty when every track came from the store)."""


def learn(paths: Sequence[Path], *, out: Path, config: LearnConfig = LearnConfig(),
          genre_map: Mapping[str, str] | None = None, store: Store | None = None, jobs: int = 1,
          timeout: float = 120.0, name: str = "genretag-learned", version: str = "1", export: bool = True,
          command: str = "", extra_card: Mapping[str, object] | None = None,
          on_event: Progress | None = None) -> LearnResult:
    """Learn the genres of the files under ``paths`` that have them; write the bundle into ``out``.

    Raises :class:`~genretag.errors.DatasetError` when there is nothing to learn (no audio, no genre, fewer
    than two genres with ``config.min_tracks`` files, fewer than two above the precision floor)."""
    from genretag.discover import discover
    from genretag.models.registry import resolve_model

    tell = on_event or (lambda event, info: None)
    found = discover(paths)
    problems = list(found.problems)
    if not found.files:
        raise DatasetError("no audio files to learn from" + (f" ({problems[0][1]})" if problems else ""),
                           paths[0] if len(paths) == 1 else None)
    labels = read_labels(found.files, field=config.field, min_tracks=config.min_tracks, genre_map=genre_map)
    problems += labels.problems
    _check_learnable(labels, config)
    tell("labels", {"files": len(labels.files), "genres": len(labels.genres)})
    base = resolve_model("default")
    started = time.perf_counter()
    from genretag.learn.features import track_features

    tagged = labels.tagged
    vectors = track_features([f.path for f in tagged], bundle=base, store=store, windows=config.windows, jobs=jobs,
                             timeout=timeout, on_event=on_event)
    problems += vectors.failed
    seconds_features = time.perf_counter() - started
    started = time.perf_counter()
    by_path = {f.path: f for f in tagged}
    rows = [by_path[p] for p in vectors.paths]
    columns = feature_columns(config.features)
    chosen = choose_genres([f.genres for f in rows], vectors.vectors, [f.group for f in rows],
                           genres=labels.genres, left_out=labels.left_out, columns=columns, config=config)
    genres, left_out, cv, keep = chosen.genres, list(chosen.left_out), chosen.cv, chosen.keep
    x, masks = vectors.vectors[keep], masks_of([rows[i].genres for i in keep], genres)
    tell("fitting", {"tracks": len(keep), "genres": len(genres)})
    temperature = fit_temperature(cv.logits, masks)
    # calibration folded into the layer: a discriminant's logits are tens of times too confident, and each
    # window's softmax (before the track's windows are pooled) must not saturate
    layer = fit_layer(x, masks, columns=columns, shrinkage=cv.shrinkage).divided(temperature)
    seconds_fit = time.perf_counter() - started
    calibration = _calibration(cv, masks, temperature, config)
    training = {
        "learned": {"libraries": [str(Path(p).resolve()) for p in paths], "config": _plain(asdict(config)),
                    "genre_map": dict(genre_map or {}), **dict(extra_card or {})},
        "tracks": len(keep), "counts": {g: int(n) for g, n in zip(genres, masks.sum(0))},
        "features": list(config.features), "layer": "shrinkage linear discriminant", "shrinkage": cv.shrinkage,
        "command": command, "genretag": __version__,
        "seconds_fit": round(seconds_fit, 2), "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    metrics = {"cross_validation": {
        "grouped_by": "album (else artist, else folder)", "folds": cv.folds, "tracks": len(keep),
        "accuracy": round(cv.accuracy, 4),
        "genres": [{"genre": s.genre, "precision": round(s.precision, 4), "recall": round(s.recall, 4),
                    "tracks": s.tracks} for s in cv.scores],
        "left_out": [{"genre": g.genre, "tracks": g.tracks, "reason": g.reason} for g in left_out],
    }}
    from genretag.learn.bundle import check_windows, write_bundle

    windows = check_windows([rows[i].path for i in keep], base=base, windows=config.windows) if export else None
    bundle, note = write_bundle(out, layer, genres=genres, base=base, name=name, version=version,
                                calibration=calibration, training=training, metrics=metrics, check_windows=windows,
                                export=export)
    kept = set(genres)
    untagged = sum(1 for f in labels.files if not any(g in kept for g in f.genres))
    return LearnResult(bundle, cv.scores, tuple(left_out), cv.accuracy, cv.folds, temperature, len(found.files),
                       len(keep), untagged, vectors.decoded, tuple(problems), note, seconds_features, seconds_fit,
                       vectors.runtime)


@dataclass(frozen=True)
class Chosen:
    """The genres a library's tags can teach, and how they were judged."""

    genres: tuple[str, ...]
    left_out: tuple[LeftOut, ...]
    cv: CrossValidation
    """The cross-validation of the genres kept."""
    keep: list[int]
    """The tracks (indices into the rows given) that have one of ``genres``."""


def choose_genres(track_genres: Sequence[tuple[str, ...]], x: np.ndarray, groups: Sequence[object], *,
                  genres: tuple[str, ...], left_out: Sequence[LeftOut], columns: np.ndarray,
                  config: LearnConfig) -> Chosen:
    """Judge ``genres`` by album-grouped cross-validation of the tracks' features ``x`` (``float [n, d]``;
    ``track_genres`` and ``groups``, one per row), leaving out genres on fewer than ``config.min_tracks``
    tracks, then, one at a time, the genre of lowest cross-validated precision below
    ``config.min_precision`` (the others are judged again without it, with the shrinkage the first round
    chose). DatasetError when fewer than two
    genres (or albums) are left."""
    left_out = list(left_out)
    shrinkages = SHRINKAGE_GRID
    while True:
        keep = [i for i, values in enumerate(track_genres) if any(g in genres for g in values)]
        masks = masks_of([track_genres[i] for i in keep], genres)
        small = [g for g, n in zip(genres, masks.sum(0)) if n < config.min_tracks]  # decoded too few
        if small:
            left_out += [LeftOut(g, int(n), f"only {int(n)} decodable files (--min-tracks {config.min_tracks})")
                         for g, n in zip(genres, masks.sum(0)) if g in small]
            genres = tuple(g for g in genres if g not in small)
            _enough(genres, left_out)
            continue
        kept_groups = [groups[i] for i in keep]
        _enough_groups(kept_groups)
        cv = cross_validate(x[keep], masks, kept_groups, genres, columns=columns, folds=config.folds,
                            seed=config.seed, shrinkages=shrinkages)
        shrinkages = (cv.shrinkage,)  # chosen once, on every genre: the later rounds only judge the genres left
        weak = [s for s in cv.scores if s.precision < config.min_precision]
        if not weak:
            return Chosen(genres, tuple(left_out), cv, keep)
        worst = min(weak, key=lambda s: (s.precision, s.tracks))  # one at a time: the others' change without it
        left_out.append(LeftOut(worst.genre, worst.tracks, f"cross-validated precision {worst.precision:.2f} "
                                f"(recall {worst.recall:.2f}) is below --min-precision {config.min_precision:g}"))
        genres = tuple(g for g in genres if g != worst.genre)
        _enough(genres, left_out)


def feature_columns(sets: Sequence[str]) -> np.ndarray:
    """Indices of the feature blocks ``sets`` (:data:`~genretag.config.LEARN_FEATURE_SETS`) in a track's vector."""
    from genretag.models import musicnn
    from genretag.models.efficientat import EMBEDDING, N_CLASSES

    sizes = {"musicnn": musicnn.pooled_width(), "embedding": EMBEDDING, "audioset": N_CLASSES}
    starts, at = {}, 0
    for block in LEARN_FEATURE_SETS:
        starts[block] = at
        at += sizes[block]
    return np.concatenate([np.arange(starts[s], starts[s] + sizes[s]) for s in LEARN_FEATURE_SETS if s in sets])


def _check_learnable(labels: Labels, config: LearnConfig) -> None:
    if not labels.counts:
        where = "genre field" if config.field == "genre" else "GENRETAG_GENRE field"
        bad = [(path, reason) for path, reason in labels.problems if reason.endswith("this value is not learned")]
        unusable = (f"; {len(bad)} value{'s' if len(bad) != 1 else ''} could not be labels, e.g. "
                    f"{bad[0][1].split(';')[0]} in {bad[0][0].name}" if bad else "")
        raise DatasetError(f"no file has a genre in its {where} to learn from ({len(labels.files)} files read"
                           f"{unusable}): tag some of them first")
    _enough(labels.genres, labels.left_out, counts=labels.counts, min_tracks=config.min_tracks)


def _enough(genres: tuple[str, ...], left_out, *, counts: Mapping[str, int] | None = None,
            min_tracks: int | None = None) -> None:
    """DatasetError unless at least two genres are left to learn."""
    if len(genres) >= 2:
        return
    if counts is not None and len(counts) > MANY_GENRES and len(genres) < 2:
        raise DatasetError(f"{len(counts):,} distinct genres, {len(genres)} of them on {min_tracks} files or more: "
                           "the tags look like free text; merge spellings with --genre-map, or lower --min-tracks")
    if counts is not None and len(counts) == 1:
        (genre, n), = counts.items()
        raise DatasetError(f"only one genre to learn ({genre}, {n} files): a model needs at least two")
    if counts is not None and not genres:
        most = max(counts.values())
        raise DatasetError(f"no genre is on {min_tracks} files or more (the most is on {most}): tag more files, "
                           "or lower --min-tracks")
    have = f"only {genres[0]} is" if genres else "none is"
    why = "; ".join(f"{g.genre}: {g.reason}" for g in left_out[-3:])
    raise DatasetError(f"fewer than two genres left to learn ({have} left; {why})")


def _enough_groups(groups) -> None:
    if len(set(groups)) < 2:
        raise DatasetError("every tagged file is in one album: cross-validation needs at least two albums")


def _calibration(cv: CrossValidation, masks: np.ndarray, temperature: float, config: LearnConfig) -> dict:
    """The card's calibration: the temperature (fitted on the out-of-fold logits and folded into the layer,
    so the card's is 1), the floors, and what the floor did out of fold."""
    probs = calibrated(cv.logits, temperature)
    top = probs.max(1)
    right = masks[np.arange(len(masks)), probs.argmax(1)]
    above = top >= config.min_confidence
    return {"temperature": 1.0, "folded_temperature": round(temperature, 4), "min_confidence": config.min_confidence,
            "next_min_confidence": config.next_min_confidence,
            "fitted_on": f"out-of-fold track probabilities of {len(masks)} tagged tracks ({cv.folds} album-grouped folds)",
            "at_min_confidence": {"tagged": round(float(above.mean()), 4),
                                  "right": round(float(right[above].mean()), 4) if above.any() else None}}


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def read_learned(out: Path) -> dict:
    """The ``learned`` settings of the bundle in ``out`` (for ``--update``); UsageError if it is not one."""
    from genretag.learn.bundle import ARCHITECTURE
    from genretag.models.bundle import read_bundle

    bundle = read_bundle(out)
    learned = bundle.card.training.get("learned")
    if bundle.card.architecture != ARCHITECTURE or not isinstance(learned, dict):
        raise UsageError("--update needs a bundle written by genretag learn", out)
    return {**learned, "name": bundle.card.name, "version": bundle.card.version}
