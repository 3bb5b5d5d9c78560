"""The library API (``import genretag``): what the CLI, the benchmarks and any other front end call."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import genretag
import synth
from genretag.tags import read_tags

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "jax", "torch", "numpy", "mutagen", "librosa")


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          cwd=REPO)


def test_import_genretag_loads_nothing_heavy():
    code = ("import sys, genretag; print(sorted({m.split('.')[0] for m in sys.modules} & set(%r)))" % (HEAVY,))
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_predict_file_on_a_real_clip_loads_tensorflow_only_when_predicting(corpus):
    clip = corpus / "emotify" / "rock" / "1.mp3"
    code = ("import sys, genretag; before = 'tensorflow' in sys.modules or 'keras' in sys.modules; "
            f"p = genretag.predict_file({str(clip)!r}); "
            "print(before, p.genre, round(sum(p.probabilities.tolist()), 4), p.windows, len(p.labels))")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    before, genre, total, windows, n = result.stdout.split()
    assert before == "False"
    assert total == "1.0" and int(windows) == 8 and int(n) == 10
    assert genre == "Rock"  # the clip's label (Emotify "rock"); the default model says Rock at 0.92


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "music"
    for i, label in enumerate(("Low", "Mid", "High")):
        synth.write_audio(root / f"{i}-{label}.flac", synth.tone_mix(label, seconds=5.0, seed=70 + i))
    (root / "broken.mp3").write_bytes(b"not audio at all" * 64)
    return root


def _hashes(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_predict_yields_predictions_and_failures_as_values_and_writes_nothing(folder, tiny_bundle):
    before = _hashes(folder)
    model = genretag.load_model(tiny_bundle)
    seen = []
    results = {r.path.name: r for r in genretag.predict([folder], model=model,
                                                        options=genretag.ScanOptions(jobs=0),
                                                        on_progress=lambda d, n: seen.append((d, n)))}
    assert _hashes(folder) == before
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert results["broken.mp3"].status == "failed" and "not an audio file" in results["broken.mp3"].error
    for name, label in (("0-Low.flac", "Low"), ("1-Mid.flac", "Mid"), ("2-High.flac", "High")):
        result = results[name]
        assert result.status == "predicted" and result.prediction.genre == label
        assert np.isclose(result.prediction.probabilities.sum(), 1.0)
        # the batch pipeline and the one-file call agree
        single = genretag.predict_file(folder / name, model=model)
        assert np.allclose(single.probabilities, result.prediction.probabilities, atol=1e-5)


def test_decide_is_pure_and_write_tags_atomically(folder, tiny_bundle):
    model = genretag.load_model(tiny_bundle)
    path = folder / "1-Mid.flac"
    (result,) = genretag.predict([path], model=model, options=genretag.ScanOptions(jobs=0))
    before = _hashes(folder)
    options = genretag.ScanOptions(top_k=2, genre_map={"Mid": "Middle"})
    decided = genretag.decide(result, options, model=model)
    assert decided.status == "would-tag" and decided.genres[0] == "Middle" and len(decided.genres) == 2
    assert _hashes(folder) == before  # deciding reads and writes nothing
    written = genretag.write(decided, model_id=model.model_id, options=options)
    assert written.status == "tagged"
    state = read_tags(path)
    assert state.genres == decided.genres and state.provenance == model.model_id
    assert genretag.write(written, model_id=model.model_id) is written  # only a decided result is written


def test_predict_file_names_the_file_when_it_cannot_give_a_genre(folder, tiny_bundle, tmp_path):
    model = genretag.load_model(tiny_bundle)
    with pytest.raises(genretag.DecodeError, match="not an audio file") as info:
        genretag.predict_file(folder / "broken.mp3", model=model)
    assert info.value.path == folder / "broken.mp3"
    silent = synth.write_audio(tmp_path / "silence.wav", np.zeros(22_050 * 4, np.float32))
    with pytest.raises(genretag.DecodeError, match="silent"):
        genretag.predict_file(silent, model=model)


def test_bad_options_are_usage_errors():
    for kwargs in ({"batch_size": 0}, {"batch_size": 100_000}, {"top_k": 0}, {"min_confidence": 1.5},
                   {"windows": 0}):
        with pytest.raises(genretag.UsageError):
            genretag.ScanOptions(**kwargs)


def test_tag_through_the_api_tags_and_skips_on_the_second_run(folder, tiny_bundle, tmp_path):
    lib = Path(shutil.copytree(folder, tmp_path / "copy"))
    (lib / "broken.mp3").unlink()
    model = genretag.load_model(tiny_bundle)
    options = genretag.ScanOptions(jobs=0)
    first = {r.path.name: r.status for r in genretag.tag([lib], model=model, options=options)}
    again = {r.path.name: r.status for r in genretag.tag([lib], model=model, options=options)}
    assert set(first.values()) == {"tagged"} and set(again.values()) == {"skipped"}


def test_predict_kept_files_false_leaves_only_files_that_keep_their_genre_undecoded(folder, tiny_bundle, tmp_path):
    import mutagen

    lib = Path(shutil.copytree(folder, tmp_path / "copy"))
    (lib / "broken.mp3").unlink()
    names = sorted(p.name for p in lib.iterdir())
    audio = mutagen.File(lib / names[0], easy=True)
    audio["genre"] = "Ambient"
    audio.save()
    model = genretag.load_model(tiny_bundle)
    lazy = genretag.ScanOptions(jobs=0, dry_run=True, predict_kept_files=False)
    results = {r.path.name: r for r in genretag.tag([lib], model=model, options=lazy)}
    assert results[names[0]].status == "kept" and results[names[0]].prediction is None
    assert results[names[0]].previous == ("Ambient",)
    assert all(r.prediction is not None for n, r in results.items() if n != names[0])
    # the default, and every option under which the prediction can matter, predicts it
    for options in (genretag.ScanOptions(jobs=0, dry_run=True), replace(lazy, overwrite=True),
                    replace(lazy, merge=True), replace(lazy, group="album"), replace(lazy, write_to="genretag")):
        assert not options.leaves_kept_undecoded
        again = {r.path.name: r for r in genretag.tag([lib], model=model, options=options)}
        assert again[names[0]].prediction is not None, options
