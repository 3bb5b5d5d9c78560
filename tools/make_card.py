"""Write docs/model-card.md, the default model's card, from training runs.

    python tools/make_card.py --default genretag/bundled/default RUN_DIR [RUN_DIR ...]

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
    x = np.random.default_rng(0).standard_normal((64, *f.patch_shape)).astype(np.float32)
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

    enrich_card(args.default)
    default = read_bundle(args.default)
    card = default.card
    rows = [run_row(r) for r in args.runs]
    (ROOT / "docs" / "default-confusion.png").write_bytes((args.default / "report-test" / "confusion.png").read_bytes()) \
        if (args.default / "report-test" / "confusion.png").is_file() else None
    test_md = (args.default / "report-test" / "report.md").read_text() if (args.default / "report-test" / "report.md").is_file() else ""
    text = render(card, rows, test_md, args.notes.read_text() if args.notes else "")
    (ROOT / "docs" / "model-card.md").write_text(text)
    print(text)


def enrich_card(folder: Path) -> None:
    """Add what the model card asks for to the bundle's card.json: machine, sources,
    the test confusion matrix and the per-source scores (from report-test/report.json)."""
    import keras
    import tensorflow as tf

    path = folder / "card.json"
    card = json.loads(path.read_text())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpus = len(tf.config.list_physical_devices("GPU"))
    card["training"]["machine"] = (f"{cpu_name()}, {os.cpu_count()} cores, {mem:.1f} GiB, "
                                   f"{f'{gpus} GPU(s) visible' if gpus else 'no GPU'}; "
                                   f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    card["training"]["sources"] = {"emotify": "Classical, Electronic, Pop, Rock (18-s clips)",
                                   "4q": "the other classes (30-s clips, AllMusic labels)"}
    report_file = folder / "report-test" / "report.json"
    if report_file.is_file():
        report = json.loads(report_file.read_text())
        card["metrics"]["test"]["confusion"] = {"labels": report["labels"],
                                                "rows_true_cols_predicted": report["track"]["confusion"]}
        card["metrics"]["test"]["by_source"] = {
            name: {"tracks": int(sum(sum(r) for r in s["confusion"])), "accuracy": s["accuracy"], "macro_f1": s["macro_f1"]}
            for name, s in (report.get("by_source") or {}).items()}
    path.write_text(json.dumps(card, indent=2) + "\n")


def describe_features(card) -> str:
    f = card.features
    grid = (f"{f.sample_rate} Hz mono, n_fft {f.n_fft}, hop {f.hop_length}, {f.n_mels} mel bands up to "
            f"{f.fmax or f.sample_rate / 2:.0f} Hz, {f.window_seconds:g}-s windows of {f.n_frames} frames")
    if f.scale == "logc":
        level = ("each recording first brought to one level (the gain that makes the mean compressed value of its "
                 "windows 2.198, musicnn's training mean)" if f.normalize == "level" else "the recording's own level")
        return (f"{grid}, `log10(1 + 10000 * power)`: musicnn's own input, which its pretrained weights fix "
                f"(not genretag's 22,050 Hz / 128-band default); {level}")
    return (f"{grid}, log power (dB) floored {f.top_db:g} dB below the track's peak and normalised per track "
            "(mean 0, std 1 over all its windows)")


def describe_architecture(card) -> str:
    cfg = card.training.get("config", {})
    if card.architecture == "musicnn":
        head = ("one softmax layer trained on each track's mean features (`--head track`; the card's `pooling: "
                "geometric` makes scan average the windows' log-probabilities, the same decision)"
                if card.pooling == "geometric" else "one softmax layer trained on the corpus's windows")
        return (f"`musicnn` ({card.params:,} parameters): the front and mid end of musicnn pretrained on the Million "
                "Song Dataset (Pons & Serra 2019, ISC licence; frozen, dead filters pruned; "
                f"`genretag/models/musicnn.py`), its max and mean over time of each channel (514 features), then {head}")
    ensemble = cfg.get("ensemble", 1)
    tail = f"; an average of {ensemble} networks trained with consecutive seeds" if ensemble > 1 else ""
    return f"`{card.architecture}` ({card.params:,} parameters{tail})"


def partial_line(card) -> str:
    """The partial-label data line of the Data section, when the model trained on some."""
    cfg = card.training.get("config", {})
    if not cfg.get("partial_labels"):
        return ""
    cross = card.metrics.get("cross_source", {})
    parts = ", ".join(f"{p} {c['tracks']}" for p, c in cross.items())
    return (f"\n- `{Path(cfg['partial_labels']).name}`: partial labels (the set of genres a clip may belong to), "
            f"artists split {1 - cfg['partial_val_fraction'] - cfg['partial_test_fraction']:.0%} train / "
            f"{cfg['partial_val_fraction']:.0%} val / {cfg['partial_test_fraction']:.0%} test (an artist that "
            f"labels.csv has stays on its side); held out: {parts} clips.")


def calibration_section(card) -> str:
    """The confidence section, from what ``tools/calibrate.py`` wrote into the card."""
    cal = card.calibration
    if not cal:
        return ""
    val, test = cal["val"], cal["test"]
    top = {r["floor"]: r for r in test["top"]}
    second = {r["floor"]: r for r in test["second"]}
    rows_top = "".join(f"| {r['floor']:.1f} | {r['coverage']:.2f} | {r['precision']:.3f} | {top[r['floor']]['coverage']:.2f} | "
                       f"{top[r['floor']]['precision']:.3f} |\n" for r in val["top"])
    rows_second = "".join(f"| {r['floor']:.2f} | {r['written']:.2f} | {r['precision']:.3f} | "
                          f"{second[r['floor']]['written']:.2f} | {second[r['floor']]['precision']:.3f} |\n"
                          for r in val["second"])
    return f"""## Confidence (calibration; written by `python tools/calibrate.py`)

Scan scales each track's distribution by a temperature (T = {cal['temperature']}, fitted by negative log-likelihood on the
validation split only, {val['tracks']} tracks; the order of the genres never changes, so accuracy does not either).

| split | NLL before -> after | expected calibration error before -> after |
|:---|---:|---:|
| val ({val['tracks']} tracks) | {val['nll'][0]} -> {val['nll'][1]} | {val['ece'][0]} -> {val['ece'][1]} |
| test ({test['tracks']} tracks) | {test['nll'][0]} -> {test['nll'][1]} | {test['ece'][0]} -> {test['ece'][1]} |

Top genre, by confidence floor (`--min-confidence`): the share of tracks that get a genre, and the share of those
that are right. The default floor, {cal['min_confidence']}, was chosen on validation (the lowest floor at which 80% of
tagged tracks are right).

| floor | val coverage | val precision | test coverage | test precision |
|---:|---:|---:|---:|---:|
{rows_top}
A second genre (`--top-k 2`), by its own floor (`--next-min-confidence`, default {cal['next_min_confidence']}, the
validation floor where a second genre was right most often): how often one is written, and how often it is the
track's label (one label a track here, so this is the chance that it rescues a wrong first one).

| floor | val written | val right | test written | test right |
|---:|---:|---:|---:|---:|
{rows_second}"""


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
- `../shared/corpus/labels.csv`: {t.get('dataset')}; classes with at least 20 clips.{partial_line(card)}
- Sources: Emotify (Classical, Electronic, Pop, Rock; 18-s clips) and 4Q (AllMusic-labelled, 30-s clips; the other classes).
  The split keeps every artist in one part.

| genre | train | val | test |
|---|---:|---:|---:|
{count_rows}
## Model
- Architecture: {describe_architecture(card)}.
- Features: {describe_features(card)}.
- A track is judged by the 8 windows scan cuts from it ({"log-probabilities" if card.pooling == "geometric" else "probabilities"} averaged).
- Training config: `{json.dumps(t.get('config', {}))}`
- Trained in {t.get('seconds', 0):.0f} s ({t.get('epochs_run')} epochs in all, after feature extraction) on {t.get('machine', cpu_name())}.
- Reproduce from a clean checkout:

```bash
{t.get('command', '')}
```

## Test split (held out; never used for choosing)
{test_section}
{calibration_section(card)}

## Models compared (chosen on validation, never on test; see the notes below the table)
{comparison_table(rows)}
{notes}
"""


if __name__ == "__main__":
    main()
