"""Group-aware stratified train/val/test assignment.

Every artist lands in one part, and each class's tracks are shared out
between the parts as close to the requested fractions as whole artists allow.
With one track per artist this is a plain stratified random split.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence

PARTS: tuple[str, ...] = ("train", "val", "test")


def artist_split(
    items: Sequence[tuple[str, str]],
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> list[str]:
    """The part (``train``, ``val`` or ``test``) of each ``(label, artist)`` item, in input order.

    Artists are compared case- and space-insensitively. Artists are placed one
    by one, largest first (ties in a seeded random order), each in the part
    where its tracks most reduce the squared gap between every class's share
    of tracks and the target fractions. Afterwards, a class with at least
    three artists (counted by the class most of an artist's tracks have) that
    got no track in val or test is given its smallest artist from the part
    holding most of its artists. Deterministic for a given ``seed``.
    """
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0
            and val_fraction + test_fraction < 1.0):
        raise ValueError(f"bad fractions: val {val_fraction}, test {test_fraction}")
    if not items:
        return []
    fractions = {
        "train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction,
    }

    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for label, artist in items:
        groups[artist_key(artist)][label] += 1
    totals = Counter(label for label, _ in items)

    order = sorted(groups)
    random.Random(seed).shuffle(order)
    rank = {artist: i for i, artist in enumerate(order)}
    order.sort(key=lambda a: -sum(groups[a].values()))  # stable: the shuffle breaks ties

    assigned: dict[str, dict[str, int]] = {p: Counter() for p in PARTS}
    part_of: dict[str, str] = {}
    for artist in order:
        counts = groups[artist]

        def cost(part: str) -> float:
            # Change in sum_c ((a_c - f * T_c) / T_c)^2 from adding n_c tracks to `part`.
            return sum(
                n * (2.0 * (assigned[part][c] - fractions[part] * totals[c]) + n) / totals[c] ** 2
                for c, n in counts.items()
            )

        best = min((p for p in PARTS if fractions[p] > 0), key=cost)  # ties: train, val, test
        part_of[artist] = best
        assigned[best].update(counts)

    _ensure_held_out(groups, part_of, rank, fractions)
    return [part_of[artist_key(artist)] for _, artist in items]


def _ensure_held_out(
    groups: dict[str, Counter[str]],
    part_of: dict[str, str],
    rank: dict[str, int],
    fractions: dict[str, float],
) -> None:
    """Give each class with >= 3 artists at least one artist in every part with a non-zero fraction."""
    by_class: dict[str, list[str]] = defaultdict(list)
    for artist, counts in groups.items():
        majority = min(counts, key=lambda c: (-counts[c], c))
        by_class[majority].append(artist)

    for label in sorted(by_class):
        artists = by_class[label]
        if len(artists) < 3:
            continue
        for part in ("test", "val"):
            if fractions[part] <= 0:
                continue
            if any(groups[a][label] for a, p in part_of.items() if p == part):
                continue
            members = Counter(part_of[a] for a in artists)
            donor = max(members, key=lambda p: (members[p], p == "train"))
            if members[donor] < 2:
                continue
            # Smallest artist first, single-genre ones before mixed ones, then the seeded order.
            candidates = sorted(
                (a for a in artists if part_of[a] == donor),
                key=lambda a: (sum(groups[a].values()), len(groups[a]), rank[a]),
            )
            part_of[candidates[0]] = part


def artist_key(artist: str) -> str:
    """How artists are compared: case- and space-insensitively."""
    return " ".join(str(artist).split()).casefold()
