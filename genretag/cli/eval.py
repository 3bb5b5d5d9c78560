"""``genretag eval``: accuracy, per-class P/R/F1 and a confusion matrix on a held-out part of a split."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.markup import escape
from rich.table import Table

from genretag.cli import data as data_options
from genretag.cli.common import err, out, progress_bar
from genretag.cli.data import Part, SplitMode, Subset, dataset_from_options, describe_dataset
from genretag.config import DEFAULT_MODEL, EVAL_PARTS, TrainConfig
from genretag.errors import DatasetError, UsageError

if TYPE_CHECKING:
    from genretag.evaluate import EvalReport

DEFAULTS = TrainConfig()


def evaluate(
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Bundled model name or bundle folder."),
    dataset: Optional[Path] = data_options.DATASET,
    fma_metadata: Optional[Path] = data_options.FMA_METADATA,
    fma_audio: Optional[Path] = data_options.FMA_AUDIO,
    subset: Subset = data_options.SUBSET,
    split_mode: SplitMode = data_options.SPLIT_MODE,
    part: Optional[Part] = typer.Option(None, "--part", show_default=False,
                                        help="Which part of the split to score (all: every track). Default: test "
                                             "when the dataset brings its own split or the model was trained on "
                                             "it, else all."),
    min_per_class: int = typer.Option(DEFAULTS.min_per_class, "--min-per-class", min=1),
    seed: int = typer.Option(DEFAULTS.seed, "--seed", help="Seed of the split (use the one training used)."),
    report: Optional[Path] = typer.Option(None, "--report", "-r", help="Write report.json, report.md, confusion.png here."),
    compare: bool = typer.Option(False, "--compare", help="Print the report folders given as arguments side by side (no evaluation)."),
    reports: Optional[list[Path]] = typer.Argument(None, metavar="REPORT_DIR", show_default=False,
                                                   help="Report folders (report.json) to compare, with --compare."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=0, help="Feature extraction workers."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache folder."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Evaluate a model on a dataset split, or compare saved reports ([bold]--compare DIR1 DIR2 ...[/bold])."""
    from genretag.evaluate import load_report, write_report

    if compare:
        if not reports:
            raise UsageError("--compare needs report folders: genretag eval --compare DIR1 DIR2 ...")
        _print_compare([load_report(p) for p in reports])
        return
    if reports:
        raise UsageError("report folders as arguments need --compare (to evaluate, give a dataset)")
    from genretag.extras import require

    require("train", purpose="evaluation")
    from genretag.evaluate import evaluate as run_eval
    from genretag.models.registry import resolve_model
    from genretag.models.runtime import load_classifier
    from genretag.train.featurecache import load_scan_windows

    stderr = err()
    bundle = resolve_model(model)
    data = dataset_from_options(dataset=dataset, fma_metadata=fma_metadata, fma_audio=fma_audio, subset=subset.value,
                                split_mode=split_mode.value, min_per_class=min_per_class, seed=seed)
    part_name = part.value if part is not None else default_part(data, bundle, dataset)
    if not quiet:
        describe_dataset(data, stderr)
    tracks = data.tracks if part_name == "all" else data.split(part_name)
    if not tracks:
        raise DatasetError(f"the {part_name} part of the split is empty")
    classifier = load_classifier(bundle)
    features = bundle.card.features
    with progress_bar(stderr, quiet=quiet) as progress:
        task = progress.add_task("features", total=len(tracks), rate="")
        clips = load_scan_windows([t.path for t in tracks], config=features, windows=DEFAULTS.eval_windows,
                                  cache_dir=cache_dir, jobs=jobs,
                                  on_progress=lambda d, n: progress.update(task, completed=d))
    kept = [(t, w) for t, w in zip(tracks, clips.windows) if w is not None]
    for path, reason in clips.errors.items():
        stderr.print(f"[yellow]left out[/yellow] {escape(str(path))}: {escape(reason)}")
    result = run_eval(classifier, model_id=bundle.card.model_id, dataset=f"{data.description}, {part_name} part",
                      windows=[k[1] for k in kept], labels=[k[0].label for k in kept],
                      sources=[k[0].source for k in kept] if any(k[0].source for k in kept) else None, config=features,
                      pooling=bundle.card.pooling)
    _print_report(result)
    if report is not None:
        written = write_report(result, report)
        out().print("wrote " + ", ".join(escape(str(p)) for p in written))


def _print_report(report: "EvalReport") -> None:
    console = out()
    console.print(f"[bold]{escape(report.model)}[/bold] on {escape(report.dataset)}: {report.track.n} tracks, "
                  f"{report.windows_per_track} windows per track")
    console.print(f"track accuracy {report.track.accuracy:.3f}, macro-F1 {report.track.macro_f1:.3f}, "
                  f"weighted-F1 {report.track.weighted_f1:.3f}; single window accuracy {report.single_window.accuracy:.3f}, "
                  f"macro-F1 {report.single_window.macro_f1:.3f}")
    table = Table(title="per class (track level)")
    for col in ("genre", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "genre" else "right")
    for c in report.track.per_class:
        table.add_row(escape(c.label), f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", str(c.support))
    m = report.track
    table.add_row("macro avg", f"{m.macro_precision:.3f}", f"{m.macro_recall:.3f}", f"{m.macro_f1:.3f}", str(m.n))
    table.add_row("weighted avg", f"{m.weighted_precision:.3f}", f"{m.weighted_recall:.3f}", f"{m.weighted_f1:.3f}", str(m.n))
    console.print(table)
    confusion = Table(title="confusion (rows: true, columns: predicted)")
    confusion.add_column("")
    for label in report.labels:
        confusion.add_column(escape(label[:6]), justify="right")
    for label, row in zip(report.labels, report.track.confusion):
        confusion.add_row(escape(label), *(str(v) for v in row))
    console.print(confusion)
    for source, metrics in report.by_source.items():
        console.print(f"source {escape(source or '(none)')}: accuracy {metrics.accuracy:.3f}, macro-F1 {metrics.macro_f1:.3f} ({metrics.n} tracks)")


def _print_compare(reports: list["EvalReport"]) -> None:
    from genretag.evaluate import compare_rows

    table = Table(title="model comparison")
    table.add_column("model", no_wrap=True)  # never cut the one column that says which row is which
    for col in ("dataset", "track acc", "track macro-F1", "window acc", "window macro-F1", "tracks"):
        table.add_column(col)
    for row in compare_rows(reports):
        table.add_row(escape(str(row["model"])), escape(str(row["dataset"])), f"{row['track_accuracy']:.3f}",
                      f"{row['track_macro_f1']:.3f}", f"{row['window_accuracy']:.3f}", f"{row['window_macro_f1']:.3f}",
                      str(row["n"]))
    out().print(table)


def default_part(data, bundle, dataset: Optional[Path]) -> str:
    """``test`` when the dataset brings its own split (FMA, a CSV's split column) or is the one the model's card
    says it was trained on (its held-out part is then the only fair one); else ``all``: a folder the model never
    saw is scored on every track, not on a 10% slice."""
    trained_on = str(bundle.card.training.get("dataset", ""))
    if data.own_split or (dataset is not None and trained_on.split(" (")[0] == Path(dataset).name):
        return EVAL_PARTS[0]
    return "all"
