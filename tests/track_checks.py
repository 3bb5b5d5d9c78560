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


def changing_clips(root: Path) -> list[Path]:
    """30 s (8 windows; a different tone mix every 3.75 s, so that which windows a track-level expert hears
    matters), 8 s (4) and 2 s (1, looped) of seeded tone mixes."""
    import numpy as np
    from synth import tone_mix, write_audio

    root.mkdir(parents=True, exist_ok=True)
    bands = ("Low", "Mid", "High")
    changing = np.concatenate([tone_mix(bands[i % 3], seconds=3.75, seed=10 + i) for i in range(8)])
    return [write_audio(root / "0-changing.wav", changing, sr=22_050),
            write_audio(root / "1-Mid.wav", tone_mix("Mid", seconds=8.0, seed=1), sr=22_050),
            write_audio(root / "2-High.wav", tone_mix("High", seconds=2.0, seed=2), sr=22_050)]


def scan_windows(path: Path, config):
    """The windows a scan cuts from ``path`` with the features ``config`` (8 at most); the file must decode."""
    from genretag.config import WindowPolicy
    from genretag.scan import extract_track

    track = extract_track(path, config=config, policy=WindowPolicy())
    assert track.status == "ok", track.error
    return track.windows


def tiny_head(config, labels: tuple[str, ...]):
    """A random (seeded) genre head on musicnn's log-mel, ``[b, n_mels, n_frames] -> [b, n_labels]``, named
    ``tiny_head``: what the tiny fused bundles are built on."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((config.n_mels, config.n_frames))
    x = keras.layers.AveragePooling1D(11)(keras.layers.Permute((2, 1))(inputs))
    return keras.Model(inputs, keras.layers.Dense(len(labels), activation="softmax")(keras.layers.Flatten()(x)),
                       name="tiny_head")


def saved_bundle(folder: Path, model, clips_root: Path, *, name: str, config, labels: tuple[str, ...],
                 temperature: float, **card) -> Path:
    """``model`` saved in ``folder`` with its card (``card``: further ModelCard fields, e.g. ``music``, ``styles``)
    and exported, checked on :func:`changing_clips`' windows."""
    import numpy as np

    from genretag.models.bundle import ModelCard, sha256_file, write_card
    from genretag.models.export import export_runtime

    model.save(folder / "model.keras")
    write_card(folder, ModelCard(name=name, version="1", kind="keras", architecture="musicnn+efficientat+yamnet",
                                 labels=labels, features=config, weights="model.keras",
                                 sha256=sha256_file(folder / "model.keras"), calibration={"temperature": temperature},
                                 **card))
    windows = np.concatenate([scan_windows(c, config) for c in changing_clips(clips_root)])
    export_runtime(folder, windows, checked_on="seeded synthetic tone mixes")
    return folder
