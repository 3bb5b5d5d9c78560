"""Checks shared by the tests of track-level experts: the local scan beside the Ray engine (a real local Ray),
and what a CLI scan imports."""

from __future__ import annotations

import os
from pathlib import Path


def local_and_ray(ray, clips: list[Path], model: Path, tmp_path: Path) -> tuple[dict, list[dict]]:
    """``(local, rows)``: each clip's prediction from the library's scan (dry run, no pool) by path, and the Ray
    engine's Parquet rows for the same clips (3 expected). ``ray``: the imported module (the caller skips without
    it)."""
    import pyarrow.parquet as pq

    import genretag
    from genretag.engines.outputs import Outputs
    from genretag.engines.ray_scan import scan_on_ray

    options = genretag.ScanOptions(jobs=0, dry_run=True)
    local = {str(r.path): r.prediction for r in genretag.predict(clips, model=model, options=options)}
    here = Path(__file__).resolve()
    paths = [str(here.parents[1]), str(here.parent), os.environ.get("PYTHONPATH", "")]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths).rstrip(os.pathsep)  # Ray's workers import genretag, synth
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outputs = Outputs(parquet=tmp_path / "scan.parquet")
        summary = scan_on_ray(clips, model=model, options=options, outputs=outputs)
    finally:
        ray.shutdown()
    assert summary.total == len(clips)
    rows = pq.read_table(outputs.parquet).to_pylist()
    assert sorted(r["path"] for r in rows) == sorted(local)
    return local, rows


def scan_modules(model: Path, tmp_path: Path) -> set[str]:
    """The top-level modules a CLI dry run of one synthetic clip with ``model`` imports (``-X importtime``, the
    default runtime); the run must succeed."""
    import subprocess
    import sys

    from synth import tone_mix, write_audio

    clip = write_audio(tmp_path / "clip.wav", tone_mix("Mid", seconds=8.0, seed=7))
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
               GENRETAG_HIDE_TF_STARTUP="0", COLUMNS="120")
    env.pop("GENRETAG_RUNTIME", None)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "genretag", "scan", str(clip), "--model",
                           str(model), "--dry-run", "--no-store"], check=False, capture_output=True, text=True,
                          cwd=repo, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1/1 files" in proc.stdout
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in proc.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}
