"""Labelled audio for training and evaluation: FMA, a labels CSV, or a folder per genre.

Every loader returns a :class:`Dataset` of :class:`Track` (path, label,
split, artist), with the entries it left out and why. Loaders never print;
an unusable description raises :class:`~genretag.errors.DatasetError`.
"""

from genretag.datasets.core import MIN_SECONDS, SPLITS, Dataset, LoadOptions, Track
from genretag.datasets.fma import fma_audio_path, load_fma
from genretag.datasets.labelled import load_dataset, load_folder, load_labels_csv
from genretag.datasets.split import artist_split

__all__ = [
    "MIN_SECONDS",
    "SPLITS",
    "Dataset",
    "LoadOptions",
    "Track",
    "artist_split",
    "fma_audio_path",
    "load_dataset",
    "load_fma",
    "load_folder",
    "load_labels_csv",
]
