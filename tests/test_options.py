"""The scan's options: :class:`ScanOptions` keeps one flat keyword per option (the README's
``ScanOptions(top_k=2, min_confidence=0.3, jobs=2)``), and hands the deciding code only a
:class:`DecisionOptions` and the writing code only a :class:`WriteOptions`, each default written once."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest

import genretag
from genretag.config import DecisionOptions, ScanOptions, WriteOptions
from genretag.errors import UsageError
from genretag.scan import Prediction, ScanResult, choose_genres, decide
from genretag.tags import TagState

LABELS = ("Rock", "Pop", "Jazz")


def _predicted(probabilities: tuple[float, ...], *, genres: tuple[str, ...] = ()) -> ScanResult:
    """A ``predicted`` file with these probabilities (in :data:`LABELS` order) whose genre field holds ``genres``
    (written by no one genretag knows: no provenance)."""
    path = Path("x.flac")
    prediction = Prediction(path, LABELS, np.array(probabilities, np.float32), 8)
    return ScanResult(path, "predicted", prediction=prediction, previous=genres,
                      tags=TagState("vorbis", genres, provenance=None, id3_version=None) if genres else None)


def test_flat_construction_builds_the_decision_and_the_writing():
    options = ScanOptions(top_k=2, min_confidence=0.3, jobs=2, genre_map={"Pop": "Pop Music"}, overwrite=True,
                          write_to="genretag", dry_run=True, id3v23=True, id3v23_sep="; ", keep_mtime=True)
    assert options.decision == DecisionOptions(top_k=2, min_confidence=0.3, genre_map={"Pop": "Pop Music"},
                                               overwrite=True, write_to="genretag")
    assert options.writing == WriteOptions(dry_run=True, id3v23=True, id3v23_sep="; ", keep_mtime=True)
    assert options.decision is options.decision  # built once per ScanOptions
    assert replace(options, top_k=3, dry_run=False).decision.top_k == 3  # a changed copy builds its own
    assert replace(options, top_k=3, dry_run=False).writing.dry_run is False


def test_each_default_is_written_once():
    """ScanOptions' deciding and writing fields default to the DecisionOptions' and WriteOptions' values, and
    hold nothing of the pipeline's."""
    defaults = ScanOptions()
    assert defaults.decision == DecisionOptions() and defaults.writing == WriteOptions()
    for part in (DecisionOptions(), WriteOptions()):
        for f in fields(part):
            assert getattr(defaults, f.name) == getattr(part, f.name), f.name
    pipeline = {"windows", "batch_size", "jobs", "timeout", "queue_size", "force", "group", "predict_kept_files"}
    assert {f.name for f in fields(ScanOptions)} == (
        pipeline | {f.name for f in fields(DecisionOptions)} | {f.name for f in fields(WriteOptions)})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"top_k": 0}, "top-k must be at least 1"),
    ({"min_confidence": 1.5}, "min-confidence must be between 0 and 1"),
    ({"next_min_confidence": -0.1}, "next-min-confidence must be between 0 and 1"),
    ({"write_to": "comment"}, "write-to must be one of genre, genretag"),
    ({"styles": "yes"}, "styles must be true or false"),
])
def test_a_bad_decision_option_is_the_same_usage_error_both_ways(kwargs, message):
    with pytest.raises(UsageError, match=message):
        DecisionOptions(**kwargs)
    with pytest.raises(UsageError, match=message):
        ScanOptions(**kwargs)


def test_a_bad_separator_is_a_usage_error_both_ways():
    for build in (WriteOptions, ScanOptions):
        with pytest.raises(UsageError, match="the ID3v2.3 separator must be a visible text"):
            build(id3v23_sep="a\x00b")


def test_the_floors_left_open_come_from_the_card():
    card = {"min_confidence": 0.45, "next_min_confidence": 0.2}
    assert DecisionOptions(top_k=2).for_model(card) == DecisionOptions(top_k=2, min_confidence=0.45,
                                                                       next_min_confidence=0.2)
    assert DecisionOptions(min_confidence=0.0).for_model(card).min_confidence == 0.0  # a floor given wins
    assert DecisionOptions().for_model({}) == DecisionOptions(min_confidence=0.0, next_min_confidence=0.0)
    assert ScanOptions(jobs=1).for_model(card).decision == DecisionOptions().for_model(card)


def test_a_model_fills_the_floors_of_a_decision():
    model = genretag.load_model(lazy=True)  # the card only
    floors = model.bundle.card.calibration
    filled = model.with_floors(DecisionOptions(top_k=2))
    assert (filled.min_confidence, filled.next_min_confidence) == (floors["min_confidence"],
                                                                   floors["next_min_confidence"])
    assert filled.top_k == 2


def test_decide_takes_a_decision():
    rockish = _predicted((0.6, 0.3, 0.1))
    assert choose_genres(rockish.prediction, DecisionOptions(top_k=2, next_min_confidence=0.25)) == ("Rock", "Pop")
    assert choose_genres(rockish.prediction, DecisionOptions(top_k=2, next_min_confidence=0.35)) == ("Rock",)
    decided = decide(rockish, DecisionOptions(top_k=2, genre_map={"Pop": "Pop Music"}))
    assert (decided.status, decided.genres) == ("would-tag", ("Rock", "Pop Music"))
    assert decide(rockish, DecisionOptions(min_confidence=0.7)).status == "low-confidence"
    assert decide(rockish, DecisionOptions(genre_map={"Rock": ""})).status == "excluded"
    # the keep rule: a genre genretag did not write stays unless overwrite (or merge) or the other field
    tagged = _predicted((0.6, 0.3, 0.1), genres=("Folk",))
    assert decide(tagged, DecisionOptions()).status == "kept"
    assert decide(tagged, DecisionOptions(overwrite=True)).genres == ("Rock",)
    assert decide(tagged, DecisionOptions(merge=True)).genres == ("Folk", "Rock")
    assert decide(tagged, DecisionOptions(write_to="genretag")).genres == ("Rock",)
    # a scan's options decide the same through their decision
    options = ScanOptions(top_k=2, genre_map={"Pop": "Pop Music"}, jobs=0, batch_size=8)
    assert decide(rockish, options.decision) == decided
