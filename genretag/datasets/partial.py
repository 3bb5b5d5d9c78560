"""Tracks with partial labels: the set of genres each may belong to.

A CSV with ``path`` (relative to the CSV), ``genres`` (``;``-separated, e.g.
``Pop;Rock``) and ``artist`` columns, like ``../shared/corpus/labels-multi.csv``:
the true genre is one of the set, which is all a source such as AllMusic's
artist-level genres can say. Trained with a loss on the summed probability of the
set (:mod:`genretag.train.transferfit`), and held-out artists give a check of the
model on music recorded elsewhere than the single-label data (the share of tracks
whose predicted genre is inside their set).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genretag.datasets.core import Dataset, absolute
from genretag.datasets.split import artist_key, artist_split
from genretag.errors import DatasetError


@dataclass(frozen=True)
class PartialSet:
    """Partially labelled tracks, in the CSV's order."""

    paths: tuple[Path, ...]
    masks: np.ndarray
    """``float32 [n, n_labels]``: 1 for each genre (of the dataset's labels) the track may be."""
    parts: tuple[str, ...]
    """``train``, ``val`` or ``test`` of each track."""
    skipped: int
    """Rows left out: no genre the dataset knows, missing file, repeated path."""

    def part(self, name: str) -> np.ndarray:
        return np.flatnonzero(np.array(self.parts) == name)


def load_partial(path: str | Path, *, dataset: Dataset, seed: int, val_fraction: float,
                 test_fraction: float) -> PartialSet:
    """Read a partial-label CSV for ``dataset``'s labels and split its artists.

    An artist the single-label ``dataset`` already has stays in that artist's part;
    the others are shared out by :func:`~genretag.datasets.split.artist_split` over
    their genre sets (same ``seed``), with the given held-out fractions.
    """
    import pandas as pd

    csv_path = absolute(path)
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read partial labels: {exc}", csv_path) from exc
    missing = {"path", "genres", "artist"} - set(table.columns)
    if missing:
        raise DatasetError(f"partial labels need columns path, genres, artist (missing {', '.join(sorted(missing))})",
                           csv_path)
    index = {label: i for i, label in enumerate(dataset.labels)}
    known = {t.path for t in dataset.tracks}
    rows, seen, skipped = [], set(), 0
    for row in table.to_dict("records"):
        track = absolute(row["path"], csv_path.parent)
        genres = [g.strip() for g in row["genres"].split(";") if g.strip() in index]
        if not genres or track in seen or track in known or not track.is_file():
            skipped += 1
            continue
        seen.add(track)
        rows.append((track, genres, row["artist"] or str(track)))
    if not rows:
        raise DatasetError("no partial-label row names a genre of the dataset and an existing file", csv_path)
    masks = np.zeros((len(rows), len(dataset.labels)), np.float32)
    for i, (_, genres, _) in enumerate(rows):
        masks[i, [index[g] for g in genres]] = 1.0
    part_of_artist = {artist_key(t.artist): t.split for t in dataset.tracks}
    drawn = artist_split([(";".join(sorted(g)), a) for _, g, a in rows], seed=seed, val_fraction=val_fraction,
                         test_fraction=test_fraction)
    parts = tuple(part_of_artist.get(artist_key(a), d) for (_, _, a), d in zip(rows, drawn))
    return PartialSet(tuple(r[0] for r in rows), masks, parts, skipped)
