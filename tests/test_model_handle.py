"""One model handle: ``genretag.load_model`` resolves a model once, its methods are the API with it, and its
card's confidence floors are the default in every entry point (``decide``, ``tag``, ``Model.decide``)."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import genretag
import synth
from genretag.models.bundle import read_bundle, write_card
from genretag.tags import read_tags


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "music"
    for i, label in enumerate(("Low", "Mid", "High")):
        synth.write_audio(root / f"{i}-{label}.flac", synth.tone_mix(label, seconds=5.0, seed=70 + i))
    return root


@pytest.fixture(scope="module")
def floored(tiny_bundle, tmp_path_factory) -> Path:
    """``tiny_bundle`` whose card recommends a floor no prediction reaches (``calibration.min_confidence`` 1.0)."""
    out = tmp_path_factory.mktemp("floored") / "bundle"
    shutil.copytree(tiny_bundle, out)
    write_card(out, dataclasses.replace(read_bundle(out).card, calibration={"min_confidence": 1.0}))
    return out


def test_scan_options_has_no_model_to_ignore():
    with pytest.raises(TypeError, match="model"):
        genretag.ScanOptions(model="no-such-model")


def test_a_model_that_does_not_exist_is_an_error_not_the_default(folder):
    with pytest.raises(genretag.ModelError, match="no model named 'no-such-model'"):
        list(genretag.predict([folder], model="no-such-model", options=genretag.ScanOptions(jobs=0)))


def test_the_model_methods_are_the_functions(folder, tiny_bundle):
    model = genretag.load_model(tiny_bundle)
    assert genretag.load_model(model) is model  # a handle passes through
    options = genretag.ScanOptions(jobs=0)
    by_method = {r.path.name: r for r in model.predict([folder], options=options)}
    by_function = {r.path.name: r for r in genretag.predict([folder], model=model, options=options)}
    assert set(by_method) == {"0-Low.flac", "1-Mid.flac", "2-High.flac"}
    for name, result in by_method.items():
        assert result.status == "predicted" and result.prediction.genre == name.split("-")[1].split(".")[0]
        assert np.allclose(result.prediction.probabilities, by_function[name].prediction.probabilities, atol=1e-5)
    single = model.predict_file(folder / "1-Mid.flac")
    assert np.allclose(single.probabilities, by_method["1-Mid.flac"].prediction.probabilities, atol=1e-5)


def test_the_models_floor_is_the_default_of_decide_and_tag(folder, floored):
    model = genretag.load_model(floored)
    (result,) = model.predict([folder / "1-Mid.flac"], options=genretag.ScanOptions(jobs=0))
    assert result.status == "predicted" and result.prediction.confidence < 1.0
    assert genretag.decide(result, model=model).status == "low-confidence"
    assert genretag.decide(result, model=floored).status == "low-confidence"  # a folder, resolved
    assert model.decide(result).status == "low-confidence"
    # a floor given wins over the card's
    assert model.decide(result, genretag.ScanOptions(min_confidence=0.0)).status == "would-tag"
    # tag() and Model.tag() with the floor left open: nothing written
    tagged = {r.path.name: r.status for r in genretag.tag([folder], model=floored,
                                                          options=genretag.ScanOptions(jobs=0))}
    assert tagged == {"0-Low.flac": "low-confidence", "1-Mid.flac": "low-confidence", "2-High.flac": "low-confidence"}
    assert read_tags(folder / "1-Mid.flac").genres == ()


def test_decide_without_a_model_uses_the_defaults_floor_and_refuses_another_models_result(folder, tiny_bundle):
    (result,) = genretag.predict([folder / "1-Mid.flac"], model=tiny_bundle, options=genretag.ScanOptions(jobs=0))
    with pytest.raises(genretag.UsageError, match="not predicted by genretag-default") as info:
        genretag.decide(result)
    assert info.value.path == folder / "1-Mid.flac"
    # the default model's own result: its floor applies (a prediction below it gets no genre)
    default = genretag.find_model()
    floor = default.card.calibration["min_confidence"]
    prediction = genretag.Prediction(folder / "x.mp3", default.card.labels,
                                     np.full(len(default.card.labels), 1 / len(default.card.labels), np.float32), 8)
    assert prediction.confidence < floor
    below = genretag.ScanResult(folder / "x.mp3", "predicted", prediction=prediction)
    assert genretag.decide(below).status == "low-confidence"
    assert genretag.decide(below, genretag.ScanOptions(min_confidence=0.0)).status == "would-tag"
    # both floors set and the styles given: nothing to read from a model, any result is decided
    assert genretag.decide(result, genretag.ScanOptions(min_confidence=0.0, next_min_confidence=0.0),
                           styles=()).status == "would-tag"


def test_a_lazy_model_reads_the_card_only_until_a_prediction_needs_it(folder, tiny_bundle, monkeypatch):
    loads = []

    def refuse(*args, **kwargs):
        loads.append(args)
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("genretag.models.runtime.DeferredClassifier", refuse)
    model = genretag.load_model(tiny_bundle, lazy=True)
    assert model.labels == read_bundle(tiny_bundle).card.labels and loads == []
    with pytest.raises(AssertionError, match="the model was loaded"):
        model.predict_file(folder / "1-Mid.flac")
    assert len(loads) == 1


def test_a_store_set_aside_mid_run_is_logged_on_the_genretag_logger(folder, tiny_bundle, tmp_path, caplog):
    from genretag.store import Store

    store = Store(tmp_path / "p.sqlite")
    with sqlite3.connect(tmp_path / "p.sqlite") as other:  # the store breaks under the run
        other.execute("DROP TABLE predictions")
    with caplog.at_level(logging.WARNING, logger="genretag"):
        results = list(genretag.predict([folder], model=tiny_bundle, options=genretag.ScanOptions(jobs=0),
                                        store=store))
    assert sorted(r.status for r in results) == ["predicted"] * 3  # the run went on without it
    assert store.failed is not None and "no such table" in store.failed.reason
    (record,) = [r for r in caplog.records if r.name == "genretag"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("prediction store set aside for the rest of the run: cannot read the "
                                          "prediction store") and str(tmp_path / "p.sqlite") in record.getMessage()
    assert logging.getLogger("genretag").handlers == []  # the library adds no handler of its own
    store.close()
