"""The shipped default model's output on one seeded synthetic clip, within a tolerance.

Catches an accidental change to the features, the window placement or the weights.
Regenerate with ``python tools/golden.py`` after deliberately retraining.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden_default.json"


@pytest.mark.skipif(not (ROOT / "genretag" / "bundled" / "default" / "card.json").is_file(),
                    reason="no default model bundled")
def test_default_model_matches_golden_output():
    sys.path.insert(0, str(ROOT / "tools"))
    from golden import golden_prediction

    expected = json.loads(GOLDEN.read_text())
    actual = golden_prediction()
    assert actual["model"] == expected["model"]
    assert actual["sha256"] == expected["sha256"]
    assert actual["windows"] == expected["windows"]
    assert actual["probabilities"].keys() == expected["probabilities"].keys()
    for label, p in expected["probabilities"].items():
        assert actual["probabilities"][label] == pytest.approx(p, abs=2e-3), label
    assert actual["style_scores"].keys() == expected.get("style_scores", {}).keys()
    for name, score in actual["style_scores"].items():
        assert score == pytest.approx(expected["style_scores"][name], abs=2e-3), name
    assert ("music" in actual) == ("music" in expected)
    if "music" in expected:  # the model's music score (the card's ``music``)
        assert actual["music"] == pytest.approx(expected["music"], abs=2e-3)
