"""Training and evaluation end to end: train -> eval -> scan through the CLI on a fake FMA.

The dataset is tests/fmagen.py's fake FMA (FMA's own on-disk format) with the
separable synthetic classes Low/Mid/High, 10 good tracks a class (6 train,
2 val, 2 test: FMA's artist-filtered split) plus three broken entries.
Every model trains for 2 epochs (cnn 3) on a shared feature cache, so the whole file
stays within a few minutes on two cores.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from fmagen import make_fma
from synth import tone_mix, write_audio

from genretag.train.augment import AUGMENTATIONS, WindowSampler
from genretag.cli import app
from genretag.config import FeatureConfig
from genretag.datasets import load_fma
from genretag.models.bundle import read_bundle, verify_bundle

LABELS = ["High", "Low", "Mid"]
STUDY_MODELS = ("cnn", "crnn", "cnn-rnn", "knn", "svm")
KERAS_MODELS = ("cnn", "crnn", "cnn-rnn", "cnn1d", "musicnn")

MODEL_ARGS: dict[str, tuple[str, ...]] = {
    # Batches of 16 give the BatchNorm statistics enough steps in two epochs.
    "cnn": ("--crops-per-track", "8", "--batch-size", "16", "--seed", "0"),
    "cnn1d": ("--crops-per-track", "8", "--batch-size", "16", "--seed", "0"),
    "crnn": ("--crops-per-track", "4", "--batch-size", "16", "--seed", "0"),
    "cnn-rnn": ("--crops-per-track", "4", "--batch-size", "16", "--seed", "0"),
    "knn": ("--seed", "0"),
    "svm": ("--seed", "0"),
    # A linear head on frozen pretrained features: small batches and a high rate learn in two epochs.
    "musicnn": ("--crops-per-track", "4", "--batch-size", "8", "--lr", "1e-2", "--seed", "0"),
}

EXPORTED = ("cnn1d",)
"""Runs that also export model.onnx (the others pass --no-export: each export costs seconds)."""

EPOCHS = {"cnn": 3}
"""Epochs per model (2 unless named). After two epochs cnn's six validation tracks are both times at
chance (batch-norm statistics not settled), and on a tie the earlier epoch is kept (Keras' rule)."""

MIN_TEST_ACCURACY = {"cnn": 0.6, "cnn1d": 0.6, "knn": 0.6, "svm": 0.6, "musicnn": 0.6}
"""Track accuracy on the 6 test tracks (chance: 1/3). crnn and cnn-rnn only have to run."""


# ---------------------------------------------------------------- helpers


def cli(*args: object) -> Result:
    """Invoke ``genretag`` in-process; an unexpected exception is re-raised with its traceback."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def explain(result: Result) -> str:
    return f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Fma:
    metadata: Path
    audio: Path

    def args(self) -> list[object]:
        return ["--fma-metadata", self.metadata, "--fma-audio", self.audio]


@dataclass
class Runs:
    """Models trained (and evaluated) once per session, shared by the tests that need them."""

    fma: Fma
    root: Path
    cache: Path
    trained: dict[str, Result] = field(default_factory=dict)
    evaluated: dict[str, Result] = field(default_factory=dict)

    def out(self, model: str) -> Path:
        return self.root / "runs" / model

    def report(self, model: str) -> Path:
        return self.root / "reports" / model

    def train(self, model: str) -> Result:
        if model not in self.trained:
            self.trained[model] = cli("train", *self.fma.args(), "--model", model, "--epochs", EPOCHS.get(model, 2),
                                      "--out", self.out(model), "--cache-dir", self.cache, "--jobs", 0, "-q",
                                      *MODEL_ARGS[model], *(() if model in EXPORTED else ("--no-export",)))
        return self.trained[model]

    def eval(self, model: str) -> Result:
        if model not in self.evaluated:
            assert self.train(model).exit_code == 0, explain(self.train(model))
            self.evaluated[model] = cli("eval", "--model", self.out(model), *self.fma.args(),
                                        "--report", self.report(model), "--cache-dir", self.cache, "--jobs", 0, "-q")
        return self.evaluated[model]


@pytest.fixture(scope="session")
def fma(tmp_path_factory) -> Fma:
    metadata, audio = make_fma(tmp_path_factory.mktemp("fma"), per_class=10, seconds=6.0, seed=0)
    return Fma(metadata, audio)


@pytest.fixture(scope="session")
def runs(fma, tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("training")
    return Runs(fma, root, root / "feature-cache")


def fma_tracks(fma: Fma, split: str):
    return load_fma(fma.metadata, fma.audio).split(split)


# ---------------------------------------------------------------- train -> eval -> scan, every model


@pytest.mark.parametrize("model", [
    pytest.param(m, marks=pytest.mark.slow) if m in KERAS_MODELS else m
    for m in (*STUDY_MODELS, "cnn1d", "musicnn")
])
def test_train_eval_scan_end_to_end(model, runs, fma, tmp_path):
    trained = runs.train(model)
    assert trained.exit_code == 0, explain(trained)
    out = runs.out(model)
    assert "model bundle:" in trained.stdout and "test: track accuracy" in trained.stdout

    card = read_json(out / "card.json")
    weights = "model.keras" if model in KERAS_MODELS else "model.npz"
    assert card["labels"] == LABELS
    assert card["architecture"] == model and card["weights"] == weights
    assert card["kind"] == ("keras" if model in KERAS_MODELS else "classic")
    assert card["params"] > 0
    verify_bundle(read_bundle(out))  # the weights file is there and matches the card's sha256
    for split in ("val", "test"):
        assert (out / f"report-{split}" / "report.json").is_file()
    if model in KERAS_MODELS:
        assert card["training"]["epochs_run"] == EPOCHS.get(model, 2)
        assert (out / "training.csv").is_file() and (out / "curves.png").stat().st_size > 0
    # 30 good tracks: the official artist-filtered split, broken entries left out.
    assert {s: sum(c.values()) for s, c in card["training"]["counts"].items()} == {"train": 18, "val": 6, "test": 6}

    test_report = read_json(out / "report-test" / "report.json")
    assert test_report["labels"] == LABELS and test_report["track"]["n"] == 6
    accuracy = test_report["track"]["accuracy"]
    assert card["metrics"]["test"]["track_accuracy"] == pytest.approx(accuracy)
    if model in MIN_TEST_ACCURACY:
        assert accuracy >= MIN_TEST_ACCURACY[model], f"{model}: test track accuracy {accuracy:.3f}"

    evaluated = runs.eval(model)
    assert evaluated.exit_code == 0, explain(evaluated)
    report_dir = runs.report(model)
    for name in ("report.json", "report.md", "confusion.png"):
        assert (report_dir / name).stat().st_size > 0, name
    report = read_json(report_dir / "report.json")
    assert report["model"] == f"genretag-{model} 1.0" and report["labels"] == LABELS
    assert report["track"]["n"] == 6 and "test part" in report["dataset"]
    assert f"genretag-{model} 1.0" in evaluated.stdout and "track accuracy" in evaluated.stdout
    # eval judges the test split exactly as training's own test report did (one track of slack
    # for Keras: a reloaded model in different batch sizes may flip a near tie)
    slack = 1 / 6 + 1e-9 if model in KERAS_MODELS else 1e-12
    assert abs(report["track"]["accuracy"] - accuracy) <= slack

    # scan uses the bundle as is; --dry-run writes nothing
    library = tmp_path / "library"
    library.mkdir()
    originals = {}
    for track in fma_tracks(fma, "test")[::3][:2]:
        copy = library / track.path.name
        shutil.copyfile(track.path, copy)
        originals[copy] = track.path.read_bytes()
    report_csv = tmp_path / "scan.csv"
    scanned = cli("scan", library, "--model", out, "--dry-run", "--jobs", 0, "--csv", report_csv)
    assert scanned.exit_code == 0, explain(scanned)
    assert "2 would be tagged" in scanned.stdout
    with report_csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2
    assert {r["status"] for r in rows} == {"would-tag"}
    assert all(r["genre"] in LABELS and 0.0 < float(r["confidence"]) <= 1.0 for r in rows)
    for copy, data in originals.items():
        assert copy.read_bytes() == data


def test_eval_compare_prints_both_models(runs):
    for model in ("knn", "svm"):
        assert runs.eval(model).exit_code == 0, explain(runs.eval(model))
    result = cli("eval", "--compare", runs.report("knn"), runs.report("svm"))
    assert result.exit_code == 0, explain(result)
    assert "genretag-knn 1.0" in result.stdout and "genretag-svm 1.0" in result.stdout


def test_eval_compare_needs_report_folders(runs):
    result = cli("eval", "--compare")
    assert result.exit_code == 2  # a usage error
    assert result.stderr.startswith("error: --compare needs report folders")
    missing = cli("eval", "--compare", runs.root / "no-such-report")
    assert missing.exit_code == 1 and "error: no evaluation report found" in missing.stderr


# ---------------------------------------------------------------- the feature cache


@pytest.fixture()
def clips(tmp_path) -> list[Path]:
    paths = [write_audio(tmp_path / "audio" / f"{label}.wav", tone_mix(label, seconds=4.0, seed=i))
             for i, label in enumerate(("Low", "Mid", "High"))]
    empty = tmp_path / "audio" / "empty.wav"
    empty.write_bytes(b"")
    return [*paths, empty]


def counting_clip_mel(monkeypatch) -> list[Path]:
    """Let clip_mel run, but record every file it decodes."""
    import genretag.train.featurecache as featurecache

    real, calls = featurecache.clip_mel, []

    def counted(path, **kwargs):
        calls.append(Path(path))
        return real(path, **kwargs)

    monkeypatch.setattr(featurecache, "clip_mel", counted)
    return calls


def forbid_decoding(monkeypatch) -> list[Path]:
    """Make any decode fail loudly (and record it: the inline pool turns exceptions into errors)."""
    import genretag.train.featurecache as featurecache

    calls: list[Path] = []

    def no_decoding(path, **kwargs):
        calls.append(Path(path))
        raise AssertionError(f"decoded {path} although it is cached")

    def no_pool(*args, **kwargs):
        raise AssertionError("the decode pool ran although everything is cached")

    monkeypatch.setattr(featurecache, "clip_mel", no_decoding)
    monkeypatch.setattr(featurecache, "run_pool", no_pool)
    return calls


def test_feature_cache_second_call_decodes_nothing(clips, tmp_path, monkeypatch):
    from genretag.train.featurecache import load_features

    cache, config = tmp_path / "cache", FeatureConfig()
    calls = counting_clip_mel(monkeypatch)
    first = load_features(clips, config=config, max_seconds=30.0, cache_dir=cache, jobs=0)
    assert not first.from_cache and sorted(calls) == sorted(clips)
    assert list(first.errors) == [clips[-1]] and first.mels[-1] is None
    assert len(list(cache.glob("*.npz"))) == 1

    monkeypatch.undo()
    calls = forbid_decoding(monkeypatch)
    second = load_features(clips, config=config, max_seconds=30.0, cache_dir=cache, jobs=0)
    assert second.from_cache and calls == []
    assert second.paths == first.paths and second.errors == first.errors
    np.testing.assert_array_equal(second.durations, first.durations)
    for a, b in zip(first.mels, second.mels):
        if a is None:
            assert b is None
        else:
            assert b.dtype == np.float16 and b.shape == a.shape == (config.n_mels, b.shape[1])
            np.testing.assert_array_equal(a, b)


def test_feature_cache_invalidated_by_mtime_and_params(clips, tmp_path, monkeypatch):
    from genretag.train.featurecache import load_features

    cache, config = tmp_path / "cache", FeatureConfig()
    load_features(clips, config=config, max_seconds=30.0, cache_dir=cache, jobs=0)

    # a touched file: the key changes and the list is extracted again
    st = clips[0].stat()
    os.utime(clips[0], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    calls = counting_clip_mel(monkeypatch)
    touched = load_features(clips, config=config, max_seconds=30.0, cache_dir=cache, jobs=0)
    assert not touched.from_cache and clips[0] in calls

    # other feature parameters, or another clip length: a miss too
    calls.clear()
    smaller = FeatureConfig(n_mels=64)
    other = load_features(clips, config=smaller, max_seconds=30.0, cache_dir=cache, jobs=0)
    assert not other.from_cache and calls
    assert other.mels[0].shape[0] == 64
    calls.clear()
    shorter = load_features(clips, config=config, max_seconds=2.0, cache_dir=cache, jobs=0)
    assert not shorter.from_cache and calls
    assert shorter.durations[0] == pytest.approx(2.0, abs=0.05)

    # and each of them is now cached in its own right
    monkeypatch.undo()
    forbid_decoding(monkeypatch)
    for cfg, seconds in ((config, 30.0), (smaller, 30.0), (config, 2.0)):
        assert load_features(clips, config=cfg, max_seconds=seconds, cache_dir=cache, jobs=0).from_cache


def test_second_training_run_decodes_nothing(runs, monkeypatch):
    assert runs.train("knn").exit_code == 0
    forbid_decoding(monkeypatch)
    again = cli("train", *runs.fma.args(), "--model", "knn", "--out", runs.root / "knn-again",
                "--cache-dir", runs.cache, "--jobs", 0, "-q", *MODEL_ARGS["knn"])
    assert again.exit_code == 0, explain(again)
    assert read_json(runs.root / "knn-again" / "card.json")["training"]["failed_files"] == 0


# ---------------------------------------------------------------- data problems


def test_broken_fma_files_are_skipped_and_counted(runs, fma, tmp_path):
    data = load_fma(fma.metadata, fma.audio)
    reasons = sorted(reason for _, reason in data.skipped)
    assert len(reasons) == 3
    assert reasons[0] == "empty file (0 bytes)" and reasons[1] == "missing file"
    assert reasons[2].startswith("too short (1.0 s")
    assert len(data.tracks) == 30 and all(t.path not in {p for p, _ in data.skipped} for t in data.tracks)

    out = tmp_path / "knn"
    result = cli("train", *fma.args(), "--model", "knn", "--out", out, "--cache-dir", runs.cache, "--jobs", 0)
    assert result.exit_code == 0, explain(result)
    assert "30 tracks, 3 classes (train 18, val 6, test 6)" in result.stderr
    assert "skipped 3 files" in result.stderr
    for path, reason in data.skipped:
        assert f"{path}: {reason}" in result.stderr
    assert (out / "model.npz").is_file()


@pytest.fixture(scope="session")
def labelled(synth_dataset, tmp_path_factory) -> Path:
    """labels.csv (path,genre,artist): 8 synthetic tracks a class by artists of two tracks,
    a 2-track class 'Tiny' (relative paths) and one undecodable file."""
    root = tmp_path_factory.mktemp("labelled")
    rows = []
    for label in ("Low", "Mid", "High"):
        for i in range(8):
            rows.append((synth_dataset / label / f"{i:02d}.wav", label, f"{label} artist {i // 2}"))
    for i in range(2):
        write_audio(root / "tiny" / f"{i}.wav", tone_mix("Mid", seconds=6.0, seed=900 + i))
        rows.append((Path("tiny") / f"{i}.wav", "Tiny", "tiny artist"))
    (root / "junk.wav").write_bytes(b"RIFF this is not audio at all" * 10)
    rows.append((Path("junk.wav"), "Low", "junk artist"))
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "genre", "artist"])
        writer.writerows((str(p), g, a) for p, g, a in rows)
    return root / "labels.csv"


def test_train_on_labels_csv_drops_tiny_class_and_leaves_out_junk(labelled, tmp_path):
    out = tmp_path / "run"
    result = cli("train", "--dataset", labelled, "--model", "svm", "--min-per-class", 3, "--out", out,
                 "--cache-dir", tmp_path / "cache", "--jobs", 0)
    assert result.exit_code == 0, explain(result)
    assert "dropped class Tiny (2 tracks, below --min-per-class)" in result.stderr
    assert "left out" in result.stderr and "junk.wav" in result.stderr
    card = read_json(out / "card.json")
    assert card["labels"] == LABELS
    assert card["training"]["failed_files"] == 1
    assert card["training"]["dataset"].startswith("labels.csv (artist-stratified")
    assert card["metrics"]["test"]["track_accuracy"] >= 0.6


def test_train_on_folder_per_genre(synth_dataset, tmp_path):
    out = tmp_path / "run"
    result = cli("train", "--dataset", synth_dataset, "--model", "knn", "--out", out,
                 "--cache-dir", tmp_path / "cache", "--jobs", 0, "-q")
    assert result.exit_code == 0, explain(result)
    card = read_json(out / "card.json")
    assert card["labels"] == LABELS
    assert card["training"]["dataset"].startswith("folder ")
    assert sum(sum(c.values()) for c in card["training"]["counts"].values()) == 48
    assert card["metrics"]["test"]["track_accuracy"] >= 0.6
    assert (out / "report-test" / "report.json").is_file()


# ---------------------------------------------------------------- resume and seeds


def checkpoint_state(out: Path) -> dict:
    """The one backup Keras' BackupAndRestore left under ``out/checkpoint`` (wherever the layout puts it)."""
    states = sorted((out / "checkpoint").rglob("training_metadata.json"))
    assert len(states) == 1, states
    return read_json(states[0])


@pytest.mark.slow
def test_resume_continues_from_checkpoint(runs, tmp_path):
    from genretag.models.runtime import load_classifier

    out = tmp_path / "resumed"
    common = ["train", *runs.fma.args(), "--model", "cnn1d", "--out", out, "--cache-dir", runs.cache,
              "--jobs", 0, "-q", "--crops-per-track", 2, "--batch-size", 16, "--seed", 0]
    first = cli(*common, "--epochs", 1)
    assert first.exit_code == 0, explain(first)
    with (out / "training.csv").open(newline="") as fh:
        first_rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in first_rows] == ["0"]
    assert checkpoint_state(out)["epoch"] == 1

    second = cli(*common, "--epochs", 2, "--resume")
    assert second.exit_code == 0, explain(second)
    with (out / "training.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert rows[0] == first_rows[0]  # the first epoch was continued, not redone
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert checkpoint_state(out)["epoch"] == 2
    card = read_json(out / "card.json")
    assert card["training"]["epochs_run"] == 2 and card["labels"] == LABELS

    bundle = read_bundle(out)
    verify_bundle(bundle)
    classifier = load_classifier(bundle)
    probs = classifier.predict(np.zeros((2, 128, 128), np.float32))
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("model", ["knn", "svm"])
def test_seed_makes_classic_models_repeatable(model, runs, tmp_path):
    reports, arrays = [], []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        result = cli("train", *runs.fma.args(), "--model", model, "--out", out, "--cache-dir", runs.cache,
                     "--jobs", 0, "-q", "--seed", 7)
        assert result.exit_code == 0, explain(result)
        assert read_json(out / "card.json")["training"]["config"]["seed"] == 7
        reports.append({s: read_json(out / f"report-{s}" / "report.json") for s in ("val", "test")})
        with np.load(out / "model.npz", allow_pickle=False) as data:
            arrays.append({k: data[k] for k in data.files})
    assert reports[0] == reports[1]
    assert arrays[0].keys() == arrays[1].keys()
    for key in arrays[0]:
        np.testing.assert_array_equal(arrays[0][key], arrays[1][key], err_msg=key)


# ---------------------------------------------------------------- errors are API


def test_train_without_data_is_one_error_line(tmp_path):
    result = cli("train", "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: no data: give --dataset LABELS.csv|DIR or --fma-metadata DIR --fma-audio DIR"]
    assert result.stdout == ""


def only_error_line(result: Result) -> str:
    """The single stderr line of a command that failed with exit status 1."""
    assert result.exit_code == 1, explain(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def usage_error(result: Result) -> str:
    """The message of a command refused as a usage error (exit 2, no traceback), on one line."""
    assert result.exit_code == 2, explain(result)
    assert "Traceback" not in result.output and result.stdout == ""
    return " ".join(line.strip(" │╭╮╰╯─") for line in result.stderr.splitlines())


@pytest.mark.parametrize("command, option, value, choices", [
    ("train", "--model", "nosuch", (*STUDY_MODELS, "cnn1d", "musicnn")),
    ("train", "--subset", "tiny", ("small", "medium", "large")),
    ("train", "--split-mode", "artist", ("official", "random")),
    ("eval", "--subset", "tiny", ("small", "medium", "large")),
    ("eval", "--split-mode", "artist", ("official", "random")),
    ("eval", "--part", "foo", ("test", "val", "train", "all")),
])
def test_choice_options_are_usage_errors_listing_the_choices(fma, tmp_path, command, option, value, choices):
    out = tmp_path / "run"
    target = ["--out", out] if command == "train" else ["--model", "default"]
    message = usage_error(cli(command, *fma.args(), *target, option, value, "-q"))
    assert f"Invalid value for '{option}'" in message and repr(value) in message
    assert all(repr(c) in message for c in choices), message
    assert not out.exists()


def test_train_unknown_augmentation(fma, tmp_path):
    out = tmp_path / "run"
    message = usage_error(cli("train", *fma.args(), "--augment", "crops,bogus", "--out", out, "-q"))
    assert "Invalid value for '--augment': unknown augmentation(s) bogus; choose from " in message
    assert all(a in message for a in AUGMENTATIONS)
    assert not out.exists()


@pytest.mark.parametrize("old", ["--split"])
def test_split_options_are_named_for_what_they_choose(fma, tmp_path, old):
    """``--split-mode`` says how FMA is split, ``eval --part`` which part is scored; a bare ``--split`` is gone."""
    for command, target in (("train", ["--out", tmp_path / "run"]), ("eval", ["--model", "default"])):
        assert "No such option: --split" in usage_error(cli(command, *fma.args(), *target, old, "official"))


def test_eval_scores_the_part_asked_for(runs):
    assert runs.train("knn").exit_code == 0
    result = cli("eval", "--model", runs.out("knn"), *runs.fma.args(), "--part", "val", "--cache-dir", runs.cache,
                 "--jobs", 0, "-q")
    assert result.exit_code == 0, explain(result)
    assert "official split), val part: 6 tracks" in result.stdout


def test_train_fma_needs_both_folders(fma, tmp_path):
    result = cli("train", "--fma-metadata", fma.metadata, "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: FMA needs both --fma-metadata")


# ---------------------------------------------------------------- the window sampler

CONFIG = FeatureConfig()


def sampler_input(lengths=(128, 200, 431), seed=0):
    rng = np.random.default_rng(seed)
    mels = [rng.standard_normal((CONFIG.n_mels, t)).astype(np.float16) for t in lengths]
    return mels, np.arange(len(lengths)) % 3


@pytest.mark.parametrize("augment", [*AUGMENTATIONS, "all", "none"])
def test_sampler_augmentations_keep_shape_and_finite(augment):
    mels, labels = sampler_input()
    chosen = frozenset(AUGMENTATIONS) if augment == "all" else frozenset() if augment == "none" else frozenset({augment})
    sampler = WindowSampler(mels, labels, 3, CONFIG, chosen, seed=1)
    for mel in mels:
        for _ in range(5):
            w = sampler.window(mel)
            assert w.shape == (CONFIG.n_mels, CONFIG.n_frames) and w.dtype == np.float32
            assert np.isfinite(w).all()
    x, y = sampler.batch(16)
    assert x.shape == (16, CONFIG.n_mels, CONFIG.n_frames) and x.dtype == np.float32
    assert y.shape == (16, 3) and y.dtype == np.float32
    assert np.isfinite(x).all() and (y >= 0).all()
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)


def test_sampler_without_augmentation_takes_the_middle_window():
    mels, labels = sampler_input()
    sampler = WindowSampler(mels, labels, 3, CONFIG, frozenset(), seed=0)
    for mel in mels:
        start = (mel.shape[1] - CONFIG.n_frames) // 2
        np.testing.assert_array_equal(sampler.window(mel), mel[:, start:start + CONFIG.n_frames].astype(np.float32))


def test_sampler_crops_are_slices_of_the_clip():
    (mel,), labels = sampler_input(lengths=(300,))
    sampler = WindowSampler([mel], labels, 3, CONFIG, frozenset({"crops"}), seed=3)
    starts = set()
    for _ in range(20):
        w = sampler.window(mel)
        matches = [s for s in range(mel.shape[1] - CONFIG.n_frames + 1)
                   if np.array_equal(w, mel[:, s:s + CONFIG.n_frames].astype(np.float32))]
        assert len(matches) == 1
        starts.add(matches[0])
    assert len(starts) > 5  # random crops, not one fixed window


def test_sampler_pitch_shift_by_zero_is_identity():
    mels, labels = sampler_input()
    sampler = WindowSampler(mels, labels, 3, CONFIG, frozenset({"pitch"}), seed=0)
    w = mels[0].astype(np.float32)
    np.testing.assert_allclose(sampler._pitch(w, 0.0), w, atol=1e-6)


def test_sampler_mixup_labels_are_convex():
    mels, labels = sampler_input(lengths=(128,) * 12)
    sampler = WindowSampler(mels, labels, 3, CONFIG, frozenset({"mixup"}), seed=5)
    _, y = sampler.batch(64)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    assert (y >= 0).all() and (y.max(axis=1) >= 0.5 - 1e-6).all()  # the first window dominates
    assert ((y > 1e-3) & (y < 1 - 1e-3)).any()  # some labels really are mixed


def test_sampler_balance_draws_classes_uniformly():
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    mels = [np.zeros((CONFIG.n_mels, CONFIG.n_frames), np.float16)] * len(labels)
    n = 6000
    balanced = WindowSampler(mels, labels, 4, CONFIG, frozenset({"balance"}), seed=0)  # class 3 has no tracks
    share = np.bincount(labels[balanced.draw_tracks(n)], minlength=4) / n
    np.testing.assert_allclose(share[:3], 1 / 3, atol=0.04)
    assert share[3] == 0
    plain = WindowSampler(mels, labels, 4, CONFIG, frozenset(), seed=0)
    share = np.bincount(labels[plain.draw_tracks(n)], minlength=4) / n
    assert share[0] == pytest.approx(0.9, abs=0.03)


def test_sampler_is_repeatable_for_a_seed():
    mels, labels = sampler_input()
    a = WindowSampler(mels, labels, 3, CONFIG, frozenset(AUGMENTATIONS), seed=11).batch(8)
    b = WindowSampler(mels, labels, 3, CONFIG, frozenset(AUGMENTATIONS), seed=11).batch(8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_train_exports_model_onnx_checked_against_keras(runs, monkeypatch):
    result = runs.train("cnn1d")
    assert result.exit_code == 0, explain(result)
    assert "model.onnx exported" in result.stdout
    card = read_json(runs.out("cnn1d") / "card.json")
    runtime = card["runtime"]
    assert runtime["file"] == "model.onnx" and runtime["exported_from_sha256"] == card["sha256"]
    assert runtime["max_abs_diff_vs_keras"] <= 1e-4 and runtime["windows_checked"] > 0
    from genretag.models.runtime import OpenVINOClassifier, load_classifier

    monkeypatch.setenv("GENRETAG_RUNTIME", "openvino")
    assert isinstance(load_classifier(read_bundle(runs.out("cnn1d"))), OpenVINOClassifier)


def test_train_without_tf2onnx_keeps_the_keras_bundle_and_says_why(runs, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tf2onnx(name, *args, **kwargs):
        if name == "tf2onnx":
            raise ImportError("No module named 'tf2onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tf2onnx)
    out = tmp_path / "run"
    result = cli("train", *runs.fma.args(), "--model", "cnn1d", "--epochs", 1, "--out", out, "--cache-dir", runs.cache,
                 "--jobs", 0, "-q", *MODEL_ARGS["cnn1d"])
    assert result.exit_code == 0, explain(result)
    assert "model.onnx not exported" in result.stdout and "pip install 'genretag[train]'" in result.stdout
    assert not (out / "model.onnx").exists() and "runtime" not in read_json(out / "card.json")
