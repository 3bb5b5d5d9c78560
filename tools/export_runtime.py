"""Export a Keras bundle's model to ``model.onnx`` beside ``model.keras``, so that a scan
runs it with OpenVINO and never imports TensorFlow, and list it in the card:

    python tools/export_runtime.py [BUNDLE] [--clips ../shared/corpus] [--limit 40]

BUNDLE defaults to the shipped ``genretag/bundled/default``. Needs ``tf2onnx`` (Keras'
``model.export(..., format="onnx")`` uses it) and ``openvino``. The artifact is checked
against Keras on the windows of the first ``--limit`` audio files under ``--clips``
(real clips; seeded synthetic tones when there are none): the export is refused when
the largest difference in a probability exceeds ``--tolerance`` or any window's top
genre differs. The card's ``runtime`` entry records the file, its sha256, the sha256
of the weights it came from, and that check. ``model.keras`` stays the source of
truth: export again whenever it changes (a stale artifact is refused at load).
``genretag train`` exports its bundles the same way (:mod:`genretag.models.export`).
A fused musicnn + EfficientAT model (the default) also gets a second output, each window's
``genretag learn`` features (``--no-features`` leaves it out), checked against Keras the same way,
so that learn's feature pass runs on OpenVINO as a scan does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

def check_windows(bundle, clips: Path, limit: int) -> tuple[np.ndarray, str]:
    """``float32 [n, n_mels, n_frames]`` windows to compare the runtimes on, and where they came from."""
    from genretag.config import WindowPolicy
    from genretag.discover import discover
    from genretag.scan import extract_track

    found = sorted(discover([clips]).files) if clips.is_dir() else []
    files = found[:: max(1, len(found) // limit)][:limit]
    source = f"{len(files)} audio files spread evenly over the {len(found)} under {clips.name}/ (sorted), 8 windows each"
    if not files:
        from synth import CLASS_BANDS, tone_mix, write_audio

        tmp = Path(tempfile.mkdtemp(prefix="genretag-export-"))
        files = [write_audio(tmp / f"{i}.wav", tone_mix(label, seconds=8.0, seed=i), sr=22_050)
                 for i, label in enumerate(list(CLASS_BANDS) * 4)]
        source = f"{len(files)} seeded synthetic tone mixes (no clips under {clips})"
    windows = []
    for path in files:
        track = extract_track(Path(path), config=bundle.card.features, policy=WindowPolicy())
        if track.status == "ok":
            windows.append(track.windows)
    return np.concatenate(windows).astype(np.float32), source


def export(folder: Path, *, clips: Path, limit: int, tolerance: float, features: bool | None = None) -> dict:
    from genretag.errors import ModelError
    from genretag.models.bundle import read_bundle
    from genretag.models.export import export_runtime

    windows, source = check_windows(read_bundle(folder), clips, limit)
    try:
        command = "python tools/export_runtime.py" + ("" if folder == default_bundle() else f" {folder}")
        command += "" if features is None else (" --features" if features else " --no-features")
        return export_runtime(folder, windows, checked_on=source, tolerance=tolerance, command=command,
                              features=features)
    except ModelError as exc:
        raise SystemExit(str(exc)) from exc


def default_bundle() -> Path:
    return ROOT / "genretag" / "bundled" / "default"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", nargs="?", type=Path, default=default_bundle())
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "corpus",
                        help="audio files to compare Keras and OpenVINO on (default ../shared/corpus)")
    parser.add_argument("--limit", type=int, default=40, help="files under --clips to use (default 40)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest allowed difference in a window's probability (default 1e-4)")
    parser.add_argument("--features", action=argparse.BooleanOptionalAction, default=None,
                        help="also output each window's learn features (default: when the model is a fused "
                        "musicnn + EfficientAT one)")
    args = parser.parse_args()
    runtime = export(args.bundle.resolve(), clips=args.clips, limit=args.limit, tolerance=args.tolerance,
                     features=args.features)
    print(json.dumps(runtime, indent=2))


if __name__ == "__main__":
    main()
