"""Smoke test of the slim install (`pip install .`, no extras), run by .ci/run with that venv's Python.

Scans one synthetic clip through the CLI in this process, checks that the shipped model ran (OpenVINO) and
that no module of the genretag[train] extra was imported. Exits non-zero with one line saying what failed.
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

import genretag
from genretag.cli import app

TRAIN_EXTRA = ("tensorflow", "keras", "librosa", "sklearn", "pandas", "matplotlib", "scipy", "numba", "tf2onnx")


def main() -> int:
    if "site-packages" not in genretag.__file__:
        return fail(f"genretag imported from {genretag.__file__}, not from the install")
    with tempfile.TemporaryDirectory() as tmp:
        clip, report = Path(tmp, "clip.wav"), Path(tmp, "scan.jsonl")
        t = np.arange(5 * 22_050) / 22_050
        sf.write(clip, (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32),
                 22_050)
        try:
            app(["scan", "--dry-run", "--no-store", "--jobs", "0", "--json", str(report), str(clip)])
        except SystemExit as exc:
            if exc.code:
                return fail(f"genretag scan exited {exc.code}")
        row = json.loads(report.read_text())
    heavy = sorted({m.split(".")[0] for m in sys.modules} & set(TRAIN_EXTRA))
    if heavy:
        return fail(f"the scan imported {', '.join(heavy)}")
    if "openvino" not in sys.modules or len(row.get("probabilities") or {}) < 2:
        return fail(f"the model did not run: {row}")
    print(f"slim smoke: {row['model']} -> {row['status']} {row['genre']} ({row['confidence']:.2f}), "
          f"genretag {genretag.__version__}, nothing of genretag[train] imported")
    return 0


def fail(reason: str) -> int:
    print(f"slim smoke: FAILED: {reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
