"""Write models/README.md, the default model's card, from training runs.

    python models/make_card.py --default genretag/bundled/default RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a folder `genretag train --out` wrote (card.json, report-val/, report-test/).
The comparison table lists every run; inference speed is measured here, on this machine,
on random input (windows/s, batches of 64, after a warm-up batch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def windows_per_second(bundle, seconds: float = 3.0) -> float:
    from genretag.models.runtime import load_classifier

    classifier = load_classifier(bundle)
    f = bundle.card.features
    x = np.random.default_rng(0).standard_normal((64, f.n_mels, f.n_frames)).astype(np.float32)
    classifier.predict(x)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        classifier.predict(x)
        n += len(x)
    return n / (time.perf_counter() - start)


def run_row(run: Path) -> dict:
    from genretag.models.bundle import read_bundle

    bundle = read_bundle(run)
    card = bundle.card
    m = card.metrics
    t = card.training
    cfg = t.get("config", {})
    return {
        "run": run.name, "architecture": card.architecture, "ensemble": cfg.get("ensemble", 1), "params": card.params,
        "fmax": card.features.fmax, "epochs": t.get("epochs_run"), "seconds": t.get("seconds"),
        "val_acc": m["val"]["track_accuracy"], "val_f1": m["val"]["track_macro_f1"],
        "test_acc": m["test"]["track_accuracy"], "test_f1": m["test"]["track_macro_f1"],
        "test_win_acc": m["test"]["window_accuracy"], "test_win_f1": m["test"]["window_macro_f1"],
        "windows_per_s": windows_per_second(bundle),
    }


def comparison_table(rows: list[dict]) -> str:
    head = ("| run | model | params | epochs | train s | val acc | val macro-F1 | test acc | test macro-F1 | "
            "test 1-window acc | test 1-window F1 | inference windows/s |\n" + "|---" * 12 + "|\n")
    body = ""
    for r in rows:
        model = r["architecture"] + (f" x{r['ensemble']}" if r["ensemble"] > 1 else "")
        model += f", fmax {r['fmax']:.0f} Hz" if r["fmax"] else ""
        body += (f"| {r['run']} | {model} | {r['params']:,} | {r['epochs']} | {r['seconds']:.0f} | {r['val_acc']:.3f} | "
                 f"{r['val_f1']:.3f} | {r['test_acc']:.3f} | {r['test_f1']:.3f} | {r['test_win_acc']:.3f} | "
                 f"{r['test_win_f1']:.3f} | {r['windows_per_s']:.0f} |\n")
    return head + body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--default", type=Path, required=True, help="the bundled default model folder")
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="training output folders to compare")
    parser.add_argument("--notes", type=Path, help="Markdown to include verbatim (method notes)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from genretag.models.bundle import read_bundle

    default = read_bundle(args.default)
    card = default.card
    rows = [run_row(r) for r in args.runs]
    (ROOT / "models" / "default-confusion.png").write_bytes((args.default / "report-test" / "confusion.png").read_bytes()) \
        if (args.default / "report-test" / "confusion.png").is_file() else None
    test_md = (args.default / "report-test" / "report.md").read_text() if (args.default / "report-test" / "report.md").is_file() else ""
    text = render(card, rows, test_md, args.notes.read_text() if args.notes else "")
    (ROOT / "models" / "README.md").write_text(text)
    print(text)


def render(card, rows: list[dict], test_md: str, notes: str) -> str:
    t = card.training
    counts = t.get("counts", {})
    labels = list(card.labels)
    count_rows = "".join(f"| {lab} | " + " | ".join(str(counts.get(s, {}).get(lab, 0)) for s in ("train", "val", "test"))
                         + " |\n" for lab in labels)
    test_section = test_md.split("\n", 1)[1] if test_md else "(no test report)"
    test_section = test_section.replace("![confusion](confusion.png)", "![confusion](default-confusion.png)")
    return f"""# Default model card: {card.model_id}

Shipped in the package at `genretag/bundled/default/` (`card.json` + `model.keras`, sha256 `{card.sha256[:16]}...`),
used by `genretag scan` when no `--model` is given; loaded offline and checked against the card's sha256.

## Data
- `../shared/corpus/labels.csv`: {t.get('dataset')}; classes with at least 20 clips.
- Sources: Emotify (Classical, Electronic, Pop, Rock; 18-s clips) and 4Q (AllMusic-labelled, 30-s clips; the other classes).
  The split keeps every artist in one part.

| genre | train | val | test |
|---|---:|---:|---:|
{count_rows}
## Model
- Architecture: `{card.architecture}` ({card.params:,} parameters{'; an average of ' + str(t.get('config', {}).get('ensemble', 1)) + ' networks trained with consecutive seeds' if t.get('config', {}).get('ensemble', 1) > 1 else ''}).
- Features: {card.features.sample_rate} Hz mono, n_fft {card.features.n_fft}, hop {card.features.hop_length}, {card.features.n_mels} mel bands
  up to {card.features.fmax or card.features.sample_rate / 2:.0f} Hz, {card.features.window_seconds:g}-s windows of {card.features.n_frames} frames, log power (dB) floored
  {card.features.top_db:g} dB below the track's peak and normalised per track (mean 0, std 1 over all its windows).
- A track is judged by 8 windows spread over it (probabilities averaged).
- Training config: `{json.dumps(t.get('config', {}))}`
- Trained in {t.get('seconds', 0):.0f} s ({t.get('epochs_run')} epochs in all) on {cpu_name()}, {os.cpu_count()} cores, no GPU (shared with other jobs).
- Reproduce from a clean checkout:

```bash
{t.get('command', '')}
```

## Test split (held out; never used for choosing)
{test_section}

## Models compared (chosen by validation macro-F1)
{comparison_table(rows)}
{notes}
"""


if __name__ == "__main__":
    main()
