"""What ``train`` and ``eval`` share: the choice options, and the dataset options.

A choice option's values are an Enum, so Typer refuses anything else as a usage
error (exit 2, the valid values listed) before any work starts.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from genretag.config import AUGMENTATIONS, EVAL_PARTS, FMA_SUBSETS, HEADS, MODEL_CHOICES, SPLIT_MODES
from genretag.errors import DatasetError

if TYPE_CHECKING:
    from genretag.datasets import Dataset


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    return Enum(name, [(v, v) for v in values], type=str)


Architecture = _choices("Architecture", MODEL_CHOICES)
Head = _choices("Head", HEADS)
Subset = _choices("Subset", FMA_SUBSETS)
SplitMode = _choices("SplitMode", SPLIT_MODES)
Part = _choices("Part", EVAL_PARTS)


# Dataset options, the same in ``train`` and ``eval``.
DATASET = typer.Option(None, "--dataset", "-d",
                       help="labels.csv (path, genre[, artist, split, source]) or a folder per genre.")
FMA_METADATA = typer.Option(None, "--fma-metadata", help="FMA fma_metadata folder (tracks.csv).")
FMA_AUDIO = typer.Option(None, "--fma-audio", help="FMA audio folder (fma_small, fma_medium...).")
SUBSET = typer.Option(FMA_SUBSETS[0], "--subset", help="FMA subset (medium includes small).")
SPLIT_MODE = typer.Option(SPLIT_MODES[0], "--split-mode",
                          help="FMA split: official (artist-filtered) or random (80/10/10).")


def parse_augment(value: str) -> tuple[str, ...]:
    """``--augment``: a comma list of :data:`~genretag.config.AUGMENTATIONS` (``none`` for none);
    anything else is a usage error."""
    names = tuple(a.strip() for a in value.split(",") if a.strip() and a.strip() != "none")
    unknown = sorted(set(names) - set(AUGMENTATIONS))
    if unknown:
        raise typer.BadParameter(f"unknown augmentation(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(AUGMENTATIONS)} or none")
    return names


def dataset_from_options(*, dataset: Path | None, fma_metadata: Path | None, fma_audio: Path | None, subset: str,
                         split_mode: str, min_per_class: int, seed: int) -> "Dataset":
    """Load FMA (both --fma-* options) or a labels CSV / folder (--dataset)."""
    from genretag.datasets import load_dataset, load_fma

    if dataset is not None and (fma_metadata or fma_audio):
        raise DatasetError("give either --dataset or --fma-metadata/--fma-audio, not both")
    if fma_metadata or fma_audio:
        if not (fma_metadata and fma_audio):
            raise DatasetError("FMA needs both --fma-metadata (tracks.csv folder) and --fma-audio (e.g. fma_small)")
        return load_fma(fma_metadata, fma_audio, subset=subset, split_mode=split_mode, seed=seed,
                        min_per_class=min_per_class)
    if dataset is None:
        raise DatasetError("no data: give --dataset LABELS.csv|DIR or --fma-metadata DIR --fma-audio DIR")
    return load_dataset(dataset, seed=seed, min_per_class=min_per_class)


def describe_dataset(data: "Dataset", console: Console) -> None:
    """Counts per split, and what was left out, on stderr."""
    counts = data.counts()
    total = {s: sum(c.values()) for s, c in counts.items()}
    console.print(f"{escape(data.description)}: {len(data.tracks)} tracks, {len(data.labels)} classes "
                  f"(train {total.get('train', 0)}, val {total.get('val', 0)}, test {total.get('test', 0)})")
    for label, n in data.dropped_classes:
        console.print(f"[yellow]dropped class[/yellow] {escape(label)} ({n} tracks, below --min-per-class)")
    if data.skipped:
        console.print(f"[yellow]skipped {len(data.skipped)} files[/yellow]")
        for path, reason in data.skipped[:10]:
            console.print(f"  {escape(str(path))}: {escape(reason)}")
        if len(data.skipped) > 10:
            console.print(f"  ... and {len(data.skipped) - 10} more")
