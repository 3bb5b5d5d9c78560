"""benchmarks/bench_scan.py runs end to end on a tiny folder, writes nothing there,
and its JSON report has every number its README documents (no timing thresholds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from synth import tone_mix, write_audio

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scan.py"

POSITIVE = {
    "listing": ("wall_s", "files"),
    "keras_import": ("wall_s",),
    "model_load": ("wall_s",),
    "decode_floor": ("wall_s", "tracks", "tracks_per_s", "first_result_s", "tree_peak_rss_mib"),
    "features_floor": ("wall_s", "tracks", "windows", "windows_per_s", "tree_peak_rss_mib"),
    "model_alone": ("wall_s", "warmup_s", "windows", "windows_per_s"),
    "scan": ("wall_s", "tracks_per_s", "windows_per_s", "first_result_s", "ratio_to_sum", "ratio_to_max",
             "main_peak_rss_mib", "tree_peak_rss_mib", "processes"),
    "tag_write": ("wall_s", "tracks", "per_file_ms", "per_file_ms_median"),
}
"""Per stage, the numbers that must be present and above zero."""


@pytest.fixture(scope="module")
def tiny_library(tmp_path_factory) -> Path:
    """Four 8-s synthetic tracks in four containers."""
    root = tmp_path_factory.mktemp("bench_library")
    for i, (label, ext) in enumerate([("Low", "wav"), ("Mid", "flac"), ("High", "mp3"), ("Mid", "ogg")]):
        write_audio(root / f"{i}-{label}.{ext}", tone_mix(label, seconds=8.0, seed=900 + i))
    return root


def _bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_benchmark_reports_every_stage(tiny_library, tiny_bundle, tmp_path):
    before = {p.name: p.read_bytes() for p in tiny_library.iterdir()}
    out = tmp_path / "out.json"
    proc = _bench(str(tiny_library), "--model", str(tiny_bundle), "--jobs", "1", "--json", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    for stage, keys in POSITIVE.items():
        for key in keys:
            value = report["stages"][stage].get(key)
            assert isinstance(value, (int, float)) and value > 0, f"stages.{stage}.{key} = {value!r}"
    assert report["stages"]["scan"]["tracks"] == report["stages"]["features_floor"]["tracks"] == 4
    assert report["stages"]["scan"]["failed"] == 0
    assert report["stages"]["model_alone"]["windows"] == report["stages"]["features_floor"]["windows"]
    for key in ("main_peak_rss_mib", "scan_main_peak_rss_mib", "scan_tree_peak_rss_mib"):
        assert report["memory"][key] > 0
    assert report["memory"]["scan_tree_peak_rss_mib"] >= report["memory"]["scan_main_peak_rss_mib"]
    assert report["machine"]["cores_available"] >= 1 and report["machine"]["backend"]
    assert report["files"] == report["files"] | {"listed": 4, "benchmarked": 4}
    assert "full scan" in proc.stdout
    assert {p.name: p.read_bytes() for p in tiny_library.iterdir()} == before  # dry run; tags only on copies


def test_benchmark_with_a_model_it_cannot_find_says_pass_model(tiny_library, tmp_path):
    proc = _bench(str(tiny_library), "--model", "no-such-model", cwd=tmp_path)
    assert proc.returncode == 1
    assert "error: no model named 'no-such-model'" in proc.stderr and "hint: pass --model DIR" in proc.stderr


def test_rerun_benchmark_times_both_scans(tiny_library, tiny_bundle, tmp_path):
    out = tmp_path / "rerun.json"
    proc = subprocess.run([sys.executable, str(BENCH.parent / "bench_rerun.py"), str(tiny_library), "--files", "6",
                           "--model", str(tiny_bundle), "--json", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["files"] == 6 and "6 would be tagged" in report["rerun"]["summary"]
    assert 0 < report["rerun"]["wall_s"] < report["first"]["wall_s"]


def test_learn_fit_scale_reports_the_fit_of_n_tracks():
    """benchmarks/learn_fit_scale.py: each N in its own process, the fit's seconds and peak memory; the
    synthetic genres are told apart (the fit really ran on the N tracks)."""
    pytest.importorskip("sklearn")
    script = BENCH.parent / "learn_fit_scale.py"
    proc = subprocess.run([sys.executable, str(script), "300", "600"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["tracks"] for r in rows] == [300, 600]
    for row in rows:
        assert row["genres_kept"] == 10 and row["cv_accuracy"] > 0.8
        assert row["choose_genres_s"] > 0 and row["final_fit_s"] > 0
        assert row["peak_rss_mib"] > row["features_mib"] > 0
    assert rows[1]["features_mib"] == pytest.approx(2 * rows[0]["features_mib"], rel=0.05)
