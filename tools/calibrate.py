"""Calibrate a bundle's confidence: temperature scaling of its track probabilities, fitted on validation.

    python tools/calibrate.py [BUNDLE] [--dataset ../shared/corpus/labels.csv --min-per-class 20 --seed 0]

Predicts the dataset's validation and test tracks with the bundle exactly as a scan
does (8 windows, averaged), finds the temperature T that minimises the negative
log-likelihood of ``p ** (1/T)`` (renormalised) on validation only, and writes into
the bundle's ``card.json`` (the weights, and their sha256, are untouched):

- ``calibration.temperature``: T (scan applies it to every track's distribution);
- NLL and expected calibration error before and after, on validation and test;
- the precision / coverage of the top genre at confidence floors 0.3-0.8, and of a
  second genre at floors 0.1-0.3, on both splits (the model card's table);
- ``min_confidence`` / ``next_min_confidence``: the floors scan uses for this model by default,
  chosen on validation (the lowest floor where 80% of tagged tracks are right; the second-genre
  floor where a second genre is right most often).

Run with no BUNDLE to calibrate the shipped default model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLOORS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SECOND_FLOORS = (0.1, 0.15, 0.2, 0.25, 0.3)
PRECISION = 0.8
"""The precision the default floor must reach on validation."""


def calibrated(p: np.ndarray, temperature: float) -> np.ndarray:
    q = np.power(np.clip(p, 1e-12, 1.0), 1.0 / temperature)
    return q / q.sum(axis=-1, keepdims=True)


def nll(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))


def ece(p: np.ndarray, y: np.ndarray, bins: int = 5) -> float:
    """Expected calibration error of the top genre, ``bins`` equal-width confidence bins."""
    conf, pred, total = p.max(1), p.argmax(1), 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    return float(total)


def tables(p: np.ndarray, y: np.ndarray) -> dict:
    """Precision and coverage of the top genre per floor, and of the second genre (right when it is the label)."""
    top = []
    for floor in FLOORS:
        m = p.max(1) >= floor
        top.append({"floor": floor, "coverage": round(float(m.mean()), 3), "tracks": int(m.sum()),
                    "precision": round(float((p.argmax(1)[m] == y[m]).mean()), 3) if m.any() else None})
    order = np.argsort(-p, axis=1)
    second_p = p[np.arange(len(y)), order[:, 1]]
    second = []
    for floor in SECOND_FLOORS:
        m = second_p >= floor
        second.append({"floor": floor, "written": round(float(m.mean()), 3), "tracks": int(m.sum()),
                       "precision": round(float((order[m, 1] == y[m]).mean()), 3) if m.any() else None})
    return {"top": top, "second": second}


def main() -> None:
    import genretag
    from genretag.datasets import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", default="default")
    parser.add_argument("--dataset", default=str(ROOT.parent / "shared" / "corpus" / "labels.csv"))
    parser.add_argument("--min-per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = genretag.load_model(args.bundle)
    data = load_dataset(args.dataset, min_per_class=args.min_per_class, seed=args.seed)
    options = genretag.ScanOptions(force=True)
    split = {}
    for part in ("val", "test"):
        tracks = data.split(part)
        found = {r.path: r for r in genretag.predict([t.path for t in tracks], model=model, options=options)}
        raw = np.array([found[t.path].prediction.probabilities for t in tracks], np.float64)
        raw = raw ** model.bundle.card.temperature  # undo the calibration the bundle may have already
        split[part] = (raw / raw.sum(1, keepdims=True), np.array([model.labels.index(t.label) for t in tracks]))
    p_val, y_val = split["val"]
    grid = np.exp(np.linspace(np.log(0.25), np.log(4.0), 400))
    temperature = float(min(grid, key=lambda t: nll(calibrated(p_val, t), y_val)))
    report = {"temperature": round(temperature, 4),
              "method": (f"temperature scaling of track probabilities, T fitted by NLL on the validation split "
                         f"({len(y_val)} tracks, {data.description}, split seed {args.seed}); the test split is "
                         "only reported"),
              "command": "python tools/calibrate.py"}
    for part, (p, y) in split.items():
        after = calibrated(p, temperature)
        report[part] = {"tracks": len(y), "nll": [round(nll(p, y), 4), round(nll(after, y), 4)],
                        "ece": [round(ece(p, y), 4), round(ece(after, y), 4)], **tables(after, y)}
    # The floors scan uses for this model unless told otherwise, chosen on validation only: the lowest
    # top-genre floor at which at least PRECISION of the tracks it tags are right, and the second-genre
    # floor at which a second genre is right most often.
    report["min_confidence"] = next(t["floor"] for t in report["val"]["top"]
                                    if t["precision"] is not None and t["precision"] >= PRECISION)
    report["next_min_confidence"] = max(report["val"]["second"], key=lambda t: t["precision"] or 0.0)["floor"]
    card_path = model.bundle.path / "card.json"
    card = json.loads(card_path.read_text())
    card["calibration"] = report
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
