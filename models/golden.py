"""Regenerate tests/golden_default.json: the shipped default model's output on one
seeded synthetic clip. Run after retraining the default model:

    python models/golden.py

The golden test (tests/test_golden.py) fails when features or weights change by accident.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

GOLDEN = ROOT / "tests" / "golden_default.json"


def golden_prediction() -> dict:
    """Predict the golden clip with the bundled default model, through the scan stages."""
    from synth import tone_mix, write_audio

    from genretag.config import WindowPolicy
    from genretag.scan.extract import extract_track
    from genretag.models.registry import resolve_model
    from genretag.models.runtime import load_classifier

    bundle = resolve_model("default")
    classifier = load_classifier(bundle)
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_audio(Path(tmp) / "golden.wav", tone_mix("Mid", seconds=8.0, seed=1234), sr=22_050)
        track = extract_track(clip, config=bundle.card.features, policy=WindowPolicy())
    probs = classifier.predict(track.windows).mean(axis=0)
    return {"model": bundle.card.model_id, "sha256": bundle.card.sha256, "windows": len(track.windows),
            "probabilities": {label: round(float(p), 6) for label, p in zip(bundle.card.labels, probs)}}


if __name__ == "__main__":
    result = golden_prediction()
    GOLDEN.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
