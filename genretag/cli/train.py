"""``genretag train``: train a model on FMA or a labelled collection; write a bundle."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from genretag.cli import data as data_options
from genretag.cli.common import err, out, progress_bar
from genretag.cli.data import (
    Architecture,
    Head,
    SplitMode,
    Subset,
    dataset_from_options,
    describe_dataset,
    parse_augment,
)
from genretag.config import AUGMENTATIONS, TrainConfig

DEFAULTS = TrainConfig()


def train(
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for the model bundle, training log and curves."),
    model: Architecture = typer.Option(DEFAULTS.model, "--model",
                                       help="musicnn (the shipped default model's) trains a genre "
                                       "layer on a network pretrained on the Million Song Dataset: best on small data, "
                                       "and trains in seconds once features are extracted; cnn1d, cnn, crnn and "
                                       "cnn-rnn train from scratch; knn and svm are baselines."),
    dataset: Optional[Path] = data_options.DATASET,
    fma_metadata: Optional[Path] = data_options.FMA_METADATA,
    fma_audio: Optional[Path] = data_options.FMA_AUDIO,
    subset: Subset = data_options.SUBSET,
    split_mode: SplitMode = data_options.SPLIT_MODE,
    min_per_class: int = typer.Option(DEFAULTS.min_per_class, "--min-per-class", min=1,
                                      help="Drop classes with fewer tracks."),
    epochs: int = typer.Option(DEFAULTS.epochs, "--epochs", min=1),
    batch_size: int = typer.Option(DEFAULTS.batch_size, "--batch-size", min=1),
    lr: float = typer.Option(DEFAULTS.lr, "--lr", min=0.0, help="AdamW peak learning rate (cosine decay)."),
    patience: int = typer.Option(DEFAULTS.patience, "--patience", min=1,
                                 help="Stop after this many epochs without a better validation accuracy."),
    seed: int = typer.Option(DEFAULTS.seed, "--seed", help="Seed for the split, sampling and weights."),
    augment: str = typer.Option(",".join(DEFAULTS.augment), "--augment", callback=parse_augment,
                                help=f"Comma list of {', '.join(AUGMENTATIONS)} ('none' for none). "
                                     "musicnn uses only mixup, balance and gain; gain applies to musicnn only."),
    mixup_alpha: float = typer.Option(DEFAULTS.mixup_alpha, "--mixup-alpha", min=0.01,
                                      help="mixup: pairs mixed with a weight drawn from Beta(alpha, alpha)."),
    crops_per_track: int = typer.Option(DEFAULTS.crops_per_track, "--crops-per-track", min=1,
                                        help="Training windows per track per epoch."),
    dropout: float = typer.Option(DEFAULTS.dropout, "--dropout", min=0.0, max=0.9,
                                  help="Dropout before the classifier layer."),
    weight_decay: float = typer.Option(DEFAULTS.weight_decay, "--weight-decay", min=0.0, help="AdamW weight decay."),
    ensemble: int = typer.Option(DEFAULTS.ensemble, "--ensemble", min=1,
                                 help="Train N networks (seeds seed..seed+N-1) and average them in one bundle."),
    l2: float = typer.Option(DEFAULTS.l2, "--l2", min=0.0,
                             help="--model musicnn: L2 penalty on the genre layer's weights."),
    head: Head = typer.Option(DEFAULTS.head, "--head", help="--model musicnn: train the genre layer on single windows "
                              "(window) or on each track's mean features (track; scan then averages the windows' "
                              "log-probabilities, the same decision)."),
    partial_labels: Optional[Path] = typer.Option(None, "--partial-labels", exists=True, dir_okay=False,
                                                  help="--model musicnn: also train on a CSV of tracks with partial "
                                                  "labels (path, genres = the set a track may be, ';'-separated, "
                                                  "artist), e.g. ../shared/corpus/labels-multi.csv; its held-out "
                                                  "artists give the card's cross-source check."),
    partial_weight: float = typer.Option(DEFAULTS.partial_weight, "--partial-weight", min=0.0,
                                         help="Sample weight of a partially labelled track (single-label tracks "
                                         "weigh their class's balanced weight)."),
    fmax: Optional[float] = typer.Option(None, "--fmax", min=1000.0,
                                         help="Highest mel frequency in Hz (default: half the sample rate)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint in --out."),
    export: bool = typer.Option(True, "--export/--no-export", help="Also write model.onnx beside model.keras, "
                                "checked against Keras, so that scans run without TensorFlow (needs tf2onnx, "
                                "part of pip install 'genretag\\[train]'; without it the bundle runs on Keras)."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name recorded in the bundle (default genretag-MODEL)."),
    version: str = typer.Option("1.0", "--version", help="Model version recorded in the bundle."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=0, help="Feature extraction workers (default: all cores)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache (default ~/.cache/genretag/features)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Train a genre model and write a bundle that [bold]genretag scan --model DIR[/bold] uses."""
    from genretag.extras import require

    require("train", purpose="training")
    from genretag.train import model_features
    from genretag.train import train as run_training

    config = TrainConfig(model=model.value, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed,
                         crops_per_track=crops_per_track, min_per_class=min_per_class, dropout=dropout,
                         weight_decay=weight_decay, ensemble=ensemble, augment=augment, mixup_alpha=mixup_alpha,
                         l2=l2, head=head.value, partial_labels=str(partial_labels) if partial_labels else None,
                         partial_weight=partial_weight)
    stderr = err()
    data = dataset_from_options(dataset=dataset, fma_metadata=fma_metadata, fma_audio=fma_audio, subset=subset.value,
                                split_mode=split_mode.value, min_per_class=min_per_class, seed=seed)
    if not quiet:
        describe_dataset(data, stderr)
    command = "genretag train " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    with progress_bar(stderr, quiet=quiet, unit="files") as progress:
        task = progress.add_task("features", total=len(data.tracks), rate="-")
        started = time.perf_counter()

        def on_event(kind: str, info: dict) -> None:
            rate = f"{info.get('done', 0) / max(time.perf_counter() - started, 1e-9):.1f}"
            if kind == "features":
                progress.update(task, completed=info["done"], rate=rate)
            elif kind == "embedding":
                progress.update(task, description="pretrained features", completed=info["done"], total=info["total"],
                                rate=rate)
            elif kind == "stage" and not quiet:
                progress.console.print(f"{info['name']}...")
            elif kind == "epoch" and not quiet:
                progress.console.print(
                    f"epoch {info['epoch']}/{info['epochs']}: loss {info.get('loss', 0):.3f} "
                    + (f"acc {info['accuracy']:.3f} " if "accuracy" in info else "")
                    + f"val track acc {info['val_track_accuracy']:.3f} "
                    f"(best epoch {info['best_epoch']})")

        result = run_training(data, out_dir, config=config, features=model_features(config.model, fmax=fmax), name=name, version=version, cache_dir=cache_dir,
                              jobs=jobs, resume=resume, command=command, on_event=on_event, export=export)
    for path, reason in list(result.failed.items())[:10]:
        stderr.print(f"[yellow]left out[/yellow] {escape(str(path))}: {escape(reason)}")
    console = out()
    console.print(f"model bundle: {escape(str(result.bundle.path))} ({result.bundle.card.model_id}, "
                  f"{result.bundle.card.params:,} parameters)")
    console.print(f"epochs {result.epochs_run} (best {result.best_epoch}), {result.seconds:.0f} s, "
                  f"{result.seconds_per_epoch:.1f} s/epoch, {result.train_windows_per_second:.0f} training windows/s")
    for split_name, report in (("val", result.val), ("test", result.test)):
        if report is not None:
            console.print(f"{split_name}: track accuracy {report.track.accuracy:.3f}, macro-F1 {report.track.macro_f1:.3f}; "
                          f"single window accuracy {report.single_window.accuracy:.3f}, macro-F1 {report.single_window.macro_f1:.3f}")
    for part, check in result.bundle.card.metrics.get("cross_source", {}).items():
        console.print(f"{part} partial labels: {check['in_set']:.3f} of {check['tracks']} tracks predicted inside their set")
    if result.runtime:
        console.print(escape(result.runtime))
