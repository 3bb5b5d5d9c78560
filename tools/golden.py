"""Regenerate tests/golden_default.json: the shipped default model's output on one
seeded synthetic clip. Run after retraining the default model:

    python tools/golden.py

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
    """Predict the golden clip with the bundled default model, through the library API."""
    from synth import tone_mix, write_audio

    import genretag

    model = genretag.load_model("default")
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_audio(Path(tmp) / "golden.wav", tone_mix("Mid", seconds=8.0, seed=1234), sr=22_050)
        prediction = genretag.predict_file(clip, model=model)
    return {"model": model.model_id, "sha256": model.bundle.card.sha256, "windows": prediction.windows,
            "probabilities": {label: round(float(p), 6) for label, p in zip(prediction.labels, prediction.probabilities)},
            "style_scores": {name: round(prediction.style_score(name), 6) for name in prediction.styles},
            **({"music": round(prediction.music, 6)} if prediction.music is not None else {})}


if __name__ == "__main__":
    result = golden_prediction()
    GOLDEN.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
