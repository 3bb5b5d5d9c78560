"""The scan on Ray Data (``genretag scan --engine ray``): one local Ray on 2 CPUs for the module."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import faults
from synth import CLASS_BANDS, tone_mix, write_audio

import genretag
from genretag.engines.outputs import Outputs
from genretag.engines.ray_scan import LOST, scan_on_ray
from genretag.scan import read_report, report_row


@pytest.fixture(scope="module")
def kill_orders(tmp_path_factory) -> Path:
    """Drop a file ``decode_batch`` or ``Infer`` here and the next worker to run that stage is SIGKILLed
    (:func:`faults.ray_kill_once`, every worker's setup hook)."""
    return tmp_path_factory.mktemp("ray_kill_orders")


@pytest.fixture(scope="module", autouse=True)
def local_ray(kill_orders):
    here = Path(__file__).resolve()  # workers import this checkout's genretag, and faults from tests/
    paths = [str(here.parents[1]), str(here.parent), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths).rstrip(os.pathsep)
    os.environ[faults.RAY_KILL_DIR] = str(kill_orders)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": "faults.ray_kill_once"})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """20 synthetic 4-s clips and one corrupt mp3."""
    root = tmp_path_factory.mktemp("ray_lib")
    for i in range(20):
        label = list(CLASS_BANDS)[i % len(CLASS_BANDS)]
        write_audio(root / f"{i:02d}-{label}.wav", tone_mix(label, seconds=4.0, seed=i))
    (root / "corrupt.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + os.urandom(4000))
    return root


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_same_predictions_as_local_engine(corpus, tmp_path):
    clips = sorted(corpus.glob("emotify/*/*.mp3"))[::40][:6]
    assert len(clips) == 6
    # writable copies: a local dry run says a read-only file (the corpus's) can't be written; Ray can't know
    clips = [Path(shutil.copyfile(c, tmp_path / f"{i}-{c.name}")) for i, c in enumerate(clips)]
    options = genretag.ScanOptions(jobs=1, top_k=2, dry_run=True)
    local = {str(r.path): r for r in genretag.tag(clips, options=options)}  # decided as 'scan --dry-run' does
    outputs = Outputs(json=tmp_path / "scan.jsonl", parquet=tmp_path / "scan.parquet")
    summary = scan_on_ray(clips, options=options, outputs=outputs)
    assert summary.total == 6 and summary.actors == 1 and summary.gpus == 0

    import pyarrow.parquet as pq

    table = pq.read_table(outputs.parquet)
    assert json.loads(table.schema.metadata[b"labels"]) == list(genretag.find_model().card.labels)
    assert sorted(table.column("path").to_pylist()) == sorted(local)
    for row in table.to_pylist():
        want = local[row["path"]].prediction
        np.testing.assert_allclose(row["probabilities"], want.probabilities, atol=1e-4)
        assert row["windows"] == want.windows
    # The JSON Lines are the rows 'scan --json' writes (genretag apply reads them).
    card = genretag.find_model().card
    for row in read_report(outputs.json):
        expected = report_row(local[row["path"]], top_k=2, model_id=card.model_id, styles=card.styles)
        assert row.keys() == expected.keys()
        numbers = ("probabilities", "top", "confidence", "music", "styles")
        assert {k: v for k, v in row.items() if k not in numbers} == \
            {k: v for k, v in expected.items() if k not in numbers}
        assert row["probabilities"] == pytest.approx(expected["probabilities"], abs=2e-4)
        assert row["music"] == pytest.approx(expected["music"], abs=2e-4)  # the default model's music score
        assert row["styles"] == pytest.approx(expected["styles"], abs=2e-4)  # and its styles' scores


def test_corrupt_file_is_an_error_row_and_the_report_applies(library, knn_bundle, tmp_path):
    from typer.testing import CliRunner

    from genretag.cli import app

    report = tmp_path / "out.jsonl"
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
    result = runner.invoke(app, ["scan", str(library), "--engine", "ray", "--model", str(knn_bundle),
                                 "--json", str(report), "--no-store", "-q"])
    assert result.exit_code == 1, result.output  # a file failed (an internal error would be 70)
    assert "writes no tags" in result.output and "internal error" not in result.output
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        next(line for line in result.stderr.splitlines() if "corrupt.mp3" in line)]
    rows = _rows(report)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in library.iterdir())
    bad = next(r for r in rows if r["path"].endswith("corrupt.mp3"))
    assert bad["status"] == "failed" and bad["error"]
    assert {r["status"] for r in rows if r is not bad} <= {"would-tag", "kept", "low-confidence"}
    assert all(r["model"] == "rel 1" for r in rows)
    applied = runner.invoke(app, ["apply", str(report), "--dry-run"])
    assert applied.exit_code == 1, applied.output  # the corrupt file's tags can't be read
    assert "21/21 files" in applied.output and "20 would be tagged" in applied.output
    assert f"error: {bad['error']} ({bad['path']})" in applied.stderr
    # The same command again scans nothing, and says so in its summary line (no Ray started).
    again = runner.invoke(app, ["scan", str(library), "--engine", "ray", "--model", str(knn_bundle),
                                "--json", str(report), "--no-store", "-q"])
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[0].endswith(
        f"0 failed; 21 already in {report} from an earlier run, not scanned again"), again.stdout
    assert again.stdout.startswith("0/0 files in ")


def test_progress_has_its_total_before_the_first_row(library, knn_bundle, tmp_path):
    """The bar shows done/total from the start, not 0/? until Ray's first rows come back."""
    heard: list[tuple[str, object]] = []
    clips = sorted(library.glob("*.wav"))[:3]
    scan_on_ray(clips, model=knn_bundle, outputs=Outputs(json=tmp_path / "out.jsonl"),
                on_progress=lambda done, total: heard.append(("progress", (done, total))),
                on_result=lambda result: heard.append(("result", result.path.name)))
    assert heard[0] == ("progress", (0, 3))
    assert [what for what, _ in heard].count("result") == 3 and heard[-1] == ("progress", (3, 3))


def test_engine_ray_in_the_config_file_runs_on_ray_and_writes_no_tags(library, knn_bundle, tmp_path):
    from typer.testing import CliRunner

    from genretag.cli import app
    from genretag.tags import read_tags

    lib = tmp_path / "lib"
    lib.mkdir()
    for src in sorted(library.glob("*.wav"))[:3]:
        shutil.copyfile(src, lib / src.name)
    before = {p: p.read_bytes() for p in lib.iterdir()}
    config, report = tmp_path / "config.toml", tmp_path / "out.jsonl"
    config.write_text('[scan]\nengine = "ray"\n', encoding="utf-8")
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
    result = runner.invoke(app, ["scan", str(lib), "--config", str(config), "--model", str(knn_bundle),
                                 "--json", str(report), "--no-store", "-q"])
    assert result.exit_code == 0, result.output
    assert "note: --engine ray writes no tags" in result.stderr and "3/3 files" in result.stdout
    assert {p: p.read_bytes() for p in lib.iterdir()} == before  # not one tag written
    assert all(read_tags(p).genres == () for p in lib.iterdir())
    assert sorted(r["status"] for r in _rows(report)) == ["would-tag"] * 3


def test_resume_after_an_interrupted_run(library, knn_bundle, tmp_path):
    outputs = Outputs(json=tmp_path / "out.jsonl", csv=tmp_path / "out.csv", parquet=tmp_path / "out.parquet")
    first = scan_on_ray([library], model=knn_bundle, options=genretag.ScanOptions(), outputs=outputs)
    assert first.resumed == 0 and sum(first.statuses.values()) == 21
    lines = outputs.json.read_text().splitlines(keepends=True)
    # An interrupted run: 5 rows in the JSON Lines and half of the sixth, 3 in the CSV.
    outputs.json.write_text("".join(lines[:5]) + lines[5][:40])
    csv_lines = outputs.csv.read_text().splitlines(keepends=True)
    outputs.csv.write_text("".join(csv_lines[:4]))
    again = scan_on_ray([library], model=knn_bundle, options=genretag.ScanOptions(), outputs=outputs)
    assert again.resumed == 3 and sum(again.statuses.values()) == 18
    _assert_once_in_each(outputs, 21)
    shutil.rmtree(outputs.parquet)  # one output lost: every file is scanned again, written only where missing
    third = scan_on_ray([library], model=knn_bundle, outputs=outputs)
    assert third.resumed == 0
    _assert_once_in_each(outputs, 21)
    done = scan_on_ray([library], model=knn_bundle, outputs=outputs)
    assert done.resumed == 21 and done.address is None  # nothing left: no cluster needed


def _assert_once_in_each(outputs: Outputs, n: int) -> None:
    import csv

    import pyarrow.parquet as pq

    paths = [r["path"] for r in _rows(outputs.json)]
    assert len(paths) == len(set(paths)) == n
    with open(outputs.csv, newline="") as fh:
        assert sorted(r["path"] for r in csv.DictReader(fh)) == sorted(paths)
    assert sorted(pq.read_table(outputs.parquet).column("path").to_pylist()) == sorted(paths)


def test_killed_workers_lose_and_duplicate_nothing(library, knn_bundle, kill_orders, tmp_path):
    for stage in ("decode_batch", "Infer"):  # the first decode task and the first inference call: SIGKILL
        (kill_orders / stage).write_text("")
    outputs = Outputs(json=tmp_path / "out.jsonl")
    summary = scan_on_ray([library], model=knn_bundle, outputs=outputs)
    assert not list(kill_orders.iterdir())  # both orders were carried out
    rows = _rows(outputs.json)
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)) == 21 and summary.total == 21
    assert [r["path"] for r in rows if r["status"] == "failed"] == [str(library / "corrupt.mp3")]
    assert all(r["error"] != LOST for r in rows)


def test_object_store_uri(library, knn_bundle, tmp_path):
    outputs = Outputs(json=tmp_path / "out.jsonl")
    summary = scan_on_ray([library.as_uri()], model=knn_bundle, outputs=outputs)
    rows = {r["path"]: r for r in _rows(outputs.json)}
    assert summary.total == 21 and all(p.startswith("file:///") for p in rows)
    wav = rows[(library / "00-Low.wav").as_uri()] if (library / "00-Low.wav").exists() else next(iter(rows.values()))
    assert wav["status"] != "failed" and wav["size"] > 0
    assert rows[(library / "corrupt.mp3").as_uri()]["status"] == "failed"


@pytest.mark.parametrize(("args", "message"), [
    (["--engine", "spark"], "unknown engine 'spark' (expected local, ray)"),
    (["--ray-address", "auto"], "--ray-address needs --engine ray"),
])
def test_engine_usage_errors(library, args, message):
    from typer.testing import CliRunner

    from genretag.cli import app

    result = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"}).invoke(app, ["scan", str(library), *args])
    assert result.exit_code == 2 and message in result.output


def test_import_genretag_does_not_import_ray():
    import subprocess
    import sys

    code = "import sys, genretag, genretag.cli.scan, genretag.engines; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"
