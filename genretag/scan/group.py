"""Deciding per album or artist (``--group``): one distribution for a group of tracks, from all their windows.

A group's distribution is the mean of its tracks' window probabilities, that is the
tracks' own distributions weighted by their window counts, so a long track counts
for more than a short one as it would if the album were one long track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from genretag.scan.batching import Prediction
from genretag.scan.decide import ScanResult

VARIOUS_ARTISTS = frozenset({"various artists", "various", "va", "v.a.", "verschiedene interpreten", "artistes divers"})
"""Album artists that mark a compilation (decided per track, like a compilation flag)."""


def group_key(result: ScanResult, mode: str) -> str | None:
    """The group a predicted file belongs to under ``mode`` (``track``, ``album``, ``artist``); None: on its own.

    ``album``: the album artist (else the artist) and the album tag; a file without an
    album tag is grouped with the others in its folder. ``artist``: the album artist (else
    the artist); a file without either is on its own. Compilations (a compilation flag,
    or an album artist such as "Various Artists") are decided per track in either mode.
    """
    tags = result.tags
    if mode == "track" or result.status != "predicted" or result.prediction is None:
        return None  # only files still to decide vote (one this model tagged already is skipped)
    album_artist = tags.album_artist if tags is not None else None
    if tags is not None and (tags.compilation or (album_artist or "").casefold() in VARIOUS_ARTISTS):
        return None
    artist = album_artist or (tags.artist if tags is not None else None)
    if mode == "artist":
        return f"artist: {artist}" if artist else None
    if tags is not None and tags.album:
        return f"album: {artist or '(no artist)'} - {tags.album}"
    return f"folder: {result.path.parent}"


def pooled(predictions: Sequence[Prediction], *, pooling: str = "mean") -> Prediction:
    """One distribution for several tracks: their probabilities weighted by their window counts (the
    mean over all their windows), renormalised; path and labels are the first track's. With the
    model's ``pooling`` ``geometric``, the weighted mean of their log-probabilities, renormalised: the
    softmax of the mean logits of all their windows, as for one track. Style scores are pooled as a
    window-weighted mean (not renormalised) when every track has them."""
    from genretag.models.runtime import pool

    first = predictions[0]
    weights = np.array([max(p.windows, 1) for p in predictions], np.float64)
    total = pool(np.stack([p.probabilities for p in predictions]), pooling=pooling, weights=weights)
    scores = None
    if first.styles and all(p.style_scores is not None and p.styles == first.styles for p in predictions):
        stacked = np.stack([p.style_scores for p in predictions]).astype(np.float64)
        scores = ((stacked * weights[:, None]).sum(axis=0) / weights.sum()).astype(np.float32)
    return Prediction(first.path, first.labels, total.astype(np.float32), int(weights.sum()),
                      first.styles if scores is not None else (), scores)


def with_groups(results: Sequence[ScanResult], mode: str, *, pooling: str = "mean") -> list[ScanResult]:
    """``results`` with ``group`` and ``group_prediction`` set for every predicted file that has a group.

    Groups match case-insensitively; each result keeps its own ``prediction``.
    """
    keys = [group_key(r, mode) for r in results]
    members: dict[str, list[Prediction]] = {}
    names: dict[str, str] = {}
    for result, key in zip(results, keys):
        if key is not None:
            names.setdefault(key.casefold(), key)
            members.setdefault(key.casefold(), []).append(result.prediction)
    groups = {match: pooled(preds, pooling=pooling) for match, preds in members.items()}
    out = []
    for result, key in zip(results, keys):
        if key is None:
            out.append(result)
            continue
        group = groups[key.casefold()]
        group = replace(group, path=result.path)
        out.append(replace(result, group=names[key.casefold()], group_prediction=group))
    return out
