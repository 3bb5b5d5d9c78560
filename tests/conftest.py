"""Shared fixtures: synthetic audio, a tiny trained model bundle, the corpus path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The tests' own cache (prediction store, features) and config folders: never the user's.
_HOME = Path(tempfile.mkdtemp(prefix="genretag-tests-"))
os.environ["XDG_CACHE_HOME"] = str(_HOME / "cache")
os.environ["XDG_CONFIG_HOME"] = str(_HOME / "config")

from synth import CLASS_BANDS, tone_mix, write_audio  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def runner():
    """Typer's in-process runner, wide and without colour, so output reads as a user sees it."""
    from typer.testing import CliRunner

    return CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture(scope="session")
def corpus() -> Path:
    """``../shared/corpus`` (real clips, read-only); skips when absent."""
    if not (CORPUS / "labels.csv").is_file():
        pytest.skip("../shared/corpus is not present")
    return CORPUS


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory) -> Path:
    """A folder per synthetic class (Low/Mid/High), 16 six-second WAVs each."""
    root = tmp_path_factory.mktemp("synth_dataset")
    for c, label in enumerate(CLASS_BANDS):
        for i in range(16):
            write_audio(root / label / f"{i:02d}.wav", tone_mix(label, seconds=6.0, seed=100 * c + i))
    return root


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, synth_dataset) -> Path:
    """A cnn1d bundle trained for a few epochs on ``synth_dataset`` (separable classes)."""
    from genretag.config import TrainConfig
    from genretag.datasets import load_folder
    from genretag.train import train

    out = tmp_path_factory.mktemp("tiny_bundle")
    data = load_folder(synth_dataset, seed=0)
    config = TrainConfig(model="cnn1d", epochs=4, patience=4, crops_per_track=4, batch_size=32)
    train(data, out, config=config, name="tiny", version="0.1", cache_dir=out.parent / "tiny_cache", jobs=0,
          export=False)
    return out


@pytest.fixture(scope="session")
def knn_bundle(tmp_path_factory, synth_dataset) -> Path:
    """A k-NN bundle (``rel 1``) trained on the synthetic classes: loads without TensorFlow, so
    subprocess scans start fast."""
    from genretag.config import TrainConfig
    from genretag.datasets import load_folder
    from genretag.train import train

    out = tmp_path_factory.mktemp("knn_bundle")
    train(load_folder(synth_dataset), out, config=TrainConfig(model="knn"), name="rel", version="1",
          cache_dir=tmp_path_factory.mktemp("knn_cache"), jobs=0)
    return out


STYLES = (  # name, parent label, floor, (weight, bias) on the parent's probability
    ("Shrill", "High", 0.5, (20.0, -10.0)),
    ("Piercing", "High", 0.5, (12.0, -6.0)),
    ("Rumble", "Low", 0.5, (20.0, -10.0)),
)
"""The styles of ``styles_bundle``: each scores ``sigmoid(weight * p(parent) + bias)`` per window, so a
window with p(High) = 0.75 scores Shrill 0.993 and Piercing 0.953, one with p(High) = 0.3 scores them 0.018
and 0.083 (above 0.5, Shrill always outscores Piercing)."""


@pytest.fixture(scope="session")
def styles_bundle(tmp_path_factory, tiny_bundle) -> Path:
    """``tiny_bundle``'s network with a style head, as a model with styles ships it: per window one vector,
    ``Concatenate([softmax genres, sigmoid styles])`` (the styles of :data:`STYLES`), bundle ``tiny-styles 0.1``."""
    import dataclasses

    import numpy as np

    from genretag.models.bundle import Style, read_bundle, sha256_file, write_card
    from genretag.models.runtime import import_keras

    keras = import_keras()
    base = read_bundle(tiny_bundle)
    genres = keras.saving.load_model(base.weights_path, compile=False, safe_mode=True)
    head = keras.layers.Dense(len(STYLES), activation="sigmoid", name="styles")
    probs = genres.outputs[0]
    model = keras.Model(genres.inputs, keras.layers.Concatenate(name="genres_styles")([probs, head(probs)]))
    kernel = np.zeros((len(base.card.labels), len(STYLES)), np.float32)
    for i, (_, parent, _, (weight, _)) in enumerate(STYLES):
        kernel[base.card.labels.index(parent), i] = weight
    head.set_weights([kernel, np.array([bias for *_, (_, bias) in STYLES], np.float32)])
    out = tmp_path_factory.mktemp("styles_bundle")
    model.save(out / "model.keras")
    styles = tuple(Style(name, parent, floor, {"name": name, "parent": parent, "floor": floor, "precision": 0.9})
                   for name, parent, floor, _ in STYLES)
    card = dataclasses.replace(base.card, name="tiny-styles", sha256=sha256_file(out / "model.keras"),
                               params=int(model.count_params()), styles=styles)
    write_card(out, card)
    return out


@pytest.fixture
def decoded(monkeypatch) -> list[Path]:
    """Every file the scan decodes (inline, --jobs 0), in order."""
    import genretag.scan.pipeline as pipeline

    seen: list[Path] = []
    real = pipeline.extract_track

    def spy(path, **kwargs):
        seen.append(Path(path))
        return real(path, **kwargs)

    monkeypatch.setattr(pipeline, "extract_track", spy)
    return seen

