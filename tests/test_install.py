"""What ``pip install genretag`` gives without its extras, and what the package says it is.

The commands run in a subprocess where the ``genretag[train]`` extra's modules can't be imported (a
meta-path finder refuses them, as if they were not installed), so each test sees what a user of the
slim install sees.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import genretag
import synth
from genretag.cli import app

REPO = Path(__file__).resolve().parents[1]
TRAIN_EXTRA = ("tensorflow", "keras", "librosa", "sklearn", "pandas", "matplotlib", "scipy", "numba", "tf2onnx")
"""What ``genretag[train]`` installs (and what it pulls in: scipy, numba), refused in the slim process."""

SLIM = """
import json, sys
blocked, attempts = set({blocked!r}), []

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
sys.argv = ["genretag", *{args!r}]
from genretag.cli import main
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
with open({attempts_file!r}, "w") as f:
    json.dump(attempts, f)
sys.exit(code)
"""


def slim_genretag(tmp_path: Path, *args: object,
                  env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, list[str] | None]:
    """Run ``genretag ARGS`` with the train extra's modules uninstallable; (result, imports it attempted)."""
    attempts_file = tmp_path / "attempts.json"
    code = SLIM.format(blocked=TRAIN_EXTRA, args=[str(a) for a in args], attempts_file=str(attempts_file))
    run_env = {k: v for k, v in os.environ.items() if k != "GENRETAG_RUNTIME"}
    run_env.update(PYTHONPATH=str(REPO), HOME=str(tmp_path), COLUMNS="200", **(env or {}))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=run_env,
                            cwd=tmp_path, timeout=300)
    attempts = json.loads(attempts_file.read_text()) if attempts_file.exists() else None
    return result, attempts


def test_train_without_the_train_extra_says_which_extra_to_install(tmp_path):
    result, _ = slim_genretag(tmp_path, "train", "--out", tmp_path / "model", "--dataset", tmp_path / "labels.csv")
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", "error: training needs: pip install 'genretag[train]'\n")
    assert not (tmp_path / "model").exists()


def test_eval_without_the_train_extra_says_which_extra_to_install(tmp_path):
    result, _ = slim_genretag(tmp_path, "eval", "--model", "default", "--dataset", tmp_path / "labels.csv")
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", "error: evaluation needs: pip install 'genretag[train]'\n")


def test_keras_runtime_without_keras_says_which_extra_to_install(tmp_path):
    clip = synth.write_audio(tmp_path / "clip.flac", synth.tone_mix("Mid", seconds=5.0, seed=3))
    result, _ = slim_genretag(tmp_path, "scan", "--dry-run", "--no-store", "--jobs", 0, clip,
                              env={"GENRETAG_RUNTIME": "keras"})
    assert result.returncode == 2, result.stderr
    assert result.stderr == "error: GENRETAG_RUNTIME=keras needs: pip install 'genretag[train]'\n"


def test_scan_runs_the_shipped_model_without_trying_the_train_extra(tmp_path):
    """The slim install's promise: a scan (and apply, models, --help) never even tries to import a
    module of the train extra, and the shipped model runs (OpenVINO)."""
    clip = synth.write_audio(tmp_path / "clip.flac", synth.tone_mix("Mid", seconds=5.0, seed=3))
    report = tmp_path / "scan.jsonl"
    result, attempts = slim_genretag(tmp_path, "scan", "--dry-run", "--no-store", "--jobs", 0, "--json", report, clip)
    assert result.returncode == 0, result.stderr
    assert attempts == []
    row = json.loads(report.read_text())
    assert row["status"] == "not-music" and row["music"] < 0.2, row  # a tone mix: the model ran, and says so
    assert len(row["probabilities"]) == 10 and abs(sum(row["probabilities"].values()) - 1) < 1e-4
    for args in (["apply", report, "--dry-run"], ["models"], ["--help"], ["config"]):
        result, attempts = slim_genretag(tmp_path, *args)
        assert (result.returncode, attempts) == (0, []), (args, result.stderr)


def test_version_names_the_package_and_the_default_model():
    card = json.loads((REPO / "genretag" / "bundled" / "default" / "card.json").read_text())
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"genretag {genretag.__version__} (default model: {card['name']} {card['version']})\n"


def test_version_without_a_bundled_model(tmp_path, monkeypatch):
    import genretag.models.registry as registry

    monkeypatch.setattr(registry, "BUNDLED_DIR", tmp_path)
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"genretag {genretag.__version__}\n")


def test_the_version_is_the_changelogs_latest_release():
    releases = re.findall(r"^## (\d+\.\d+\.\d+)", (REPO / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert releases and releases[0] == genretag.__version__ != "0.1.0"


def test_train_help_names_the_extra_that_brings_tf2onnx():
    result = CliRunner(env={"COLUMNS": "300", "NO_COLOR": "1"}).invoke(app, ["train", "--help"])
    assert result.exit_code == 0, result.output
    assert "part of pip install 'genretag[train]'" in " ".join(result.stdout.replace("│", " ").split())
