"""Dataset loaders: FMA metadata, labels CSV, folder per genre, and the artist-aware split."""

from __future__ import annotations

import csv
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from fmagen import BROKEN, make_fma

from genretag.datasets import (
    SPLITS,
    Dataset,
    Track,
    artist_split,
    fma_audio_path,
    load_dataset,
    load_fma,
    load_folder,
    load_labels_csv,
)
from genretag.errors import DatasetError

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
PER_CLASS = 12
CLASSES = ("Low", "Mid", "High")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def fma(tmp_path_factory) -> tuple[Path, Path]:
    return make_fma(tmp_path_factory.mktemp("fma"), per_class=PER_CLASS, classes=CLASSES, seed=0)


def fma_table(metadata_dir: Path) -> pd.DataFrame:
    return pd.read_csv(metadata_dir / "tracks.csv", index_col=0, header=[0, 1])


def write_clip(path: Path, seconds: float = 0.5, sr: int = 8_000) -> Path:
    """A tiny WAV of noise (the loaders only look at the file, or its header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * sr))).astype(np.float32), sr)
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    return path


def parts_per_artist(tracks) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = defaultdict(set)
    for t in tracks:
        parts[t.artist.casefold()].add(t.split)
    return parts


def synthetic_items(seed: int = 0) -> list[tuple[str, str]]:
    """(label, artist) pairs: 4 classes of 15-30 artists with 1-6 tracks each, plus mixed artists."""
    rng = np.random.default_rng(seed)
    items = []
    for c, label in enumerate("ABCD"):
        for a in range(15 + 5 * c):
            items += [(label, f"{label}-artist-{a}")] * int(rng.integers(1, 7))
    for a in range(6):  # artists with tracks in two classes
        items += [("A", f"mixed-{a}")] * 3 + [("B", f"mixed-{a}")] * 2
    order = rng.permutation(len(items))
    return [items[i] for i in order]


# --------------------------------------------------------------------------- FMA


def test_fma_small_official_split(fma):
    metadata_dir, audio_dir = fma
    data = load_fma(metadata_dir, audio_dir, subset="small")
    assert isinstance(data, Dataset)
    assert data.labels == ("High", "Low", "Mid")
    assert len(data.tracks) == PER_CLASS * len(CLASSES)
    assert data.description == "fma small (official split)"
    # make_fma: per class 4 training artists, 1 validation, 1 test, 2 tracks each.
    assert data.counts() == {
        "train": {c: 8 for c in data.labels},
        "val": {c: 2 for c in data.labels},
        "test": {c: 2 for c in data.labels},
    }
    table = fma_table(metadata_dir)
    official = {"training": "train", "validation": "val", "test": "test"}
    for t in data.tracks:
        track_id = int(t.path.stem)
        assert t.path.is_absolute() and t.path.is_file()
        assert t.path == fma_audio_path(audio_dir, track_id).absolute()
        assert t.split == official[table.loc[track_id, ("set", "split")]]
        assert t.artist == str(table.loc[track_id, ("artist", "id")])
        assert t.label == table.loc[track_id, ("track", "genre_top")]
        assert t.source == "fma"
    assert all(len(p) == 1 for p in parts_per_artist(data.tracks).values())


def test_fma_skips_broken_files_with_reasons(fma):
    data = load_fma(*fma)
    assert len(data.skipped) == len(BROKEN) == 3
    reasons = sorted(reason for _, reason in data.skipped)
    assert reasons[0] == "empty file (0 bytes)"
    assert reasons[1] == "missing file"
    assert reasons[2].startswith("too short (1.0 s")
    assert not any(path in {t.path for t in data.tracks} for path, _ in data.skipped)
    # Without the header check only the stat-level problems are caught.
    quick = load_fma(*fma, check_audio=False)
    assert sorted(r for _, r in quick.skipped) == ["empty file (0 bytes)", "missing file"]
    assert len(quick.tracks) == len(data.tracks) + 1


def test_fma_subset_filtering(fma):
    metadata_dir, audio_dir = fma
    table = fma_table(metadata_dir)
    subset, genre = table[("set", "subset")], table[("track", "genre_top")]
    small = load_fma(metadata_dir, audio_dir, subset="small")
    medium = load_fma(metadata_dir, audio_dir, subset="medium")
    large = load_fma(metadata_dir, audio_dir, subset="large")

    ids = {name: {int(t.path.stem) for t in d.tracks} for name, d in
           (("small", small), ("medium", medium), ("large", large))}
    broken = {int(p.stem) for p, _ in small.skipped}
    assert ids["small"] == set(table.index[(subset == "small") & genre.notna()]) - broken
    assert ids["small"] < ids["medium"] < ids["large"]
    assert ids["medium"] - ids["small"] == set(table.index[subset == "medium"])
    assert len(ids["large"]) == len(ids["medium"]) + len(CLASSES)
    # The row without a top genre is neither a track nor a skipped entry.
    no_genre = set(table.index[genre.isna()])
    assert len(no_genre) == 1
    assert not no_genre & (ids["large"] | broken)


def test_fma_random_split_is_stratified_and_seeded(fma):
    data = load_fma(*fma, split_mode="random", seed=0)
    assert data.description == "fma small (stratified random 80/10/10, seed 0)"
    # 12 tracks a class: 9.6 / 1.2 / 1.2 rounds to 10 / 1 / 1, ignoring artists.
    assert data.counts() == {
        "train": {c: 10 for c in data.labels},
        "val": {c: 1 for c in data.labels},
        "test": {c: 1 for c in data.labels},
    }
    again = load_fma(*fma, split_mode="random", seed=0)
    assert [t.split for t in again.tracks] == [t.split for t in data.tracks]
    held_out = {
        seed: {t.path for t in load_fma(*fma, split_mode="random", seed=seed).tracks if t.split != "train"}
        for seed in (0, 1, 2)
    }
    assert len({frozenset(v) for v in held_out.values()}) > 1


def test_fma_errors_name_the_path(tmp_path, fma):
    metadata_dir, audio_dir = fma
    with pytest.raises(DatasetError) as err:
        load_fma(tmp_path, audio_dir)
    assert err.value.path == tmp_path and "tracks.csv" in err.value.reason
    with pytest.raises(DatasetError, match="unknown FMA subset 'tiny'"):
        load_fma(metadata_dir, audio_dir, subset="tiny")
    with pytest.raises(DatasetError, match="audio folder not found"):
        load_fma(metadata_dir, tmp_path / "nope")
    bad = tmp_path / "tracks.csv"
    bad.write_text("track_id,title\n2,x\n")
    with pytest.raises(DatasetError) as err:
        load_fma(bad, audio_dir)
    assert err.value.path == bad


def test_fma_audio_path_layout(tmp_path):
    assert fma_audio_path(tmp_path, 2) == tmp_path / "000" / "000002.mp3"
    assert fma_audio_path(tmp_path, 155066) == tmp_path / "155" / "155066.mp3"


# --------------------------------------------------------------------------- artist_split


def test_artist_split_keeps_artists_whole_and_stratifies():
    items = synthetic_items()
    parts = artist_split(items, seed=0, val_fraction=0.1, test_fraction=0.1)
    assert len(parts) == len(items) and set(parts) == set(SPLITS)

    per_artist = defaultdict(set)
    for (_, artist), part in zip(items, parts):
        per_artist[artist].add(part)
    assert all(len(p) == 1 for p in per_artist.values())

    share = Counter(parts)
    n = len(items)
    assert share["train"] / n == pytest.approx(0.8, abs=0.03)
    assert share["val"] / n == pytest.approx(0.1, abs=0.03)
    assert share["test"] / n == pytest.approx(0.1, abs=0.03)
    for label in "ABCD":
        mine = Counter(p for (lab, _), p in zip(items, parts) if lab == label)
        total = sum(mine.values())
        assert mine["val"] / total == pytest.approx(0.1, abs=0.05), (label, mine)
        assert mine["test"] / total == pytest.approx(0.1, abs=0.05), (label, mine)


def test_artist_split_is_deterministic_per_seed():
    items = synthetic_items()
    first = artist_split(items, seed=3, val_fraction=0.1, test_fraction=0.1)
    assert artist_split(items, seed=3, val_fraction=0.1, test_fraction=0.1) == first
    other = artist_split(items, seed=4, val_fraction=0.1, test_fraction=0.1)
    assert other != first
    # The same artists, with their case or spacing changed, are still one artist.
    noisy = [(label, f"  {artist.upper()} ") for label, artist in items]
    assert artist_split(noisy, seed=3, val_fraction=0.1, test_fraction=0.1) == first


def test_artist_split_one_track_per_artist_is_exact():
    items = [(label, f"{label}{i}") for label in "XY" for i in range(50)]
    parts = artist_split(items, seed=0, val_fraction=0.1, test_fraction=0.2)
    for label in "XY":
        mine = Counter(p for (lab, _), p in zip(items, parts) if lab == label)
        assert mine == {"train": 35, "val": 5, "test": 10}


def test_artist_split_gives_small_classes_val_and_test():
    # Three artists of a rare class: the greedy fill alone would put all in train.
    items = [("rare", f"r{i}") for i in range(3)] + [("big", f"b{i}") for i in range(40)]
    for seed in range(5):
        parts = artist_split(items, seed=seed, val_fraction=0.1, test_fraction=0.1)
        assert Counter(p for (lab, _), p in zip(items, parts) if lab == "rare") == {
            "train": 1, "val": 1, "test": 1}
    # Two artists cannot fill three parts; a zero fraction stays empty.
    parts = artist_split([("x", "a"), ("x", "b")] * 3, seed=0, val_fraction=0.0, test_fraction=0.5)
    assert "val" not in parts
    assert artist_split([], seed=0, val_fraction=0.1, test_fraction=0.1) == []
    with pytest.raises(ValueError):
        artist_split(items, seed=0, val_fraction=0.6, test_fraction=0.5)


@pytest.mark.skipif(not (CORPUS / "labels.csv").is_file(), reason="shared corpus not present")
def test_corpus_split_keeps_artists_whole():
    data = load_labels_csv(CORPUS / "labels.csv", seed=0)
    assert not data.skipped
    assert len(data.tracks) == len(pd.read_csv(CORPUS / "labels.csv"))
    assert {t.source for t in data.tracks} == {"emotify", "4q"}
    assert all(len(p) == 1 for p in parts_per_artist(data.tracks).values())
    counts = data.counts()
    sizes = Counter(t.label for t in data.tracks)
    big = [label for label, n in sizes.items() if n >= 20]
    assert len(big) >= 5
    for label in big:
        assert all(counts[s][label] > 0 for s in SPLITS), (label, [counts[s][label] for s in SPLITS])
    n = len(data.tracks)
    assert len(data.split("train")) / n == pytest.approx(0.8, abs=0.04)
    assert len(data.split("test")) / n == pytest.approx(0.1, abs=0.03)


# --------------------------------------------------------------------------- labels CSV


def labelled_tree(tmp_path: Path) -> Path:
    """clips/<label>/<n>.wav for 3 labels x 10 files, 2 files per artist, and labels.csv beside clips/."""
    rows = []
    for label in ("rock", "jazz", "pop"):
        for i in range(10):
            rel = f"clips/{label}/{i}.wav"
            write_clip(tmp_path / rel)
            rows.append([rel, label, f"{label}-artist-{i // 2}", "synthetic"])
    return write_csv(tmp_path / "labels.csv", ["path", "genre", "artist", "source"], rows)


def test_labels_csv_relative_paths_and_artist_split(tmp_path):
    csv_path = labelled_tree(tmp_path)
    data = load_labels_csv(csv_path, seed=0)
    assert len(data.tracks) == 30 and not data.skipped
    assert data.labels == ("jazz", "pop", "rock")
    assert data.description == "labels.csv (artist-stratified 80/10/10, seed 0)"
    assert all(t.path.is_absolute() and t.path.is_file() for t in data.tracks)
    assert data.tracks[0].path == (tmp_path / "clips/rock/0.wav").absolute()
    assert {t.source for t in data.tracks} == {"synthetic"}
    assert all(len(p) == 1 for p in parts_per_artist(data.tracks).values())
    counts = data.counts()
    for label in data.labels:  # 5 artists a class: each part gets one at least
        assert all(counts[s][label] > 0 for s in SPLITS)
    assert [t.split for t in load_labels_csv(csv_path, seed=0).tracks] == [t.split for t in data.tracks]


def test_labels_csv_root_absolute_and_missing(tmp_path):
    labelled_tree(tmp_path)
    outside = write_clip(tmp_path / "elsewhere" / "abs.wav")
    rows = [
        ["rock/0.wav", "rock"],
        ["rock/1.wav", "rock"],
        ["jazz/0.wav", "jazz"],
        ["jazz/404.wav", "jazz"],     # missing
        [str(outside), "jazz"],       # absolute
        ["rock/0.wav", "rock"],       # listed twice
        ["pop/0.wav", ""],            # no genre
    ]
    (tmp_path / "meta").mkdir()
    csv_path = write_csv(tmp_path / "meta" / "list.csv", ["path", "genre"], rows)
    data = load_labels_csv(csv_path, root=tmp_path / "clips", seed=0)
    assert [t.path for t in data.tracks] == [
        tmp_path / "clips/rock/0.wav", tmp_path / "clips/rock/1.wav",
        tmp_path / "clips/jazz/0.wav", outside,
    ]
    assert sorted(data.skipped) == sorted([
        (tmp_path / "clips/jazz/404.wav", "missing file"),
        (tmp_path / "clips/rock/0.wav", "listed twice (line 7)"),
        (tmp_path / "clips/pop/0.wav", "no genre (line 8)"),
    ])
    # No artist column: every file is its own artist.
    assert all(t.artist == str(t.path) for t in data.tracks)
    assert "stratified by file" in data.description
    # Without root, paths are relative to the CSV's folder (meta/), where only the absolute one is.
    alone = load_labels_csv(csv_path)
    assert [t.path for t in alone.tracks] == [outside]
    assert (tmp_path / "meta/rock/0.wav", "missing file") in alone.skipped


def test_labels_csv_split_column_is_used(tmp_path):
    rows = [[str(write_clip(tmp_path / f"{i}.wav")), "a" if i % 2 else "b", s]
            for i, s in enumerate(["training", "validation", "test", "train", "val", "TEST"])]
    data = load_labels_csv(write_csv(tmp_path / "s.csv", ["path", "genre", "split"], rows))
    assert [t.split for t in data.tracks] == ["train", "val", "test", "train", "val", "test"]
    assert data.description == "s.csv (split column)"
    rows[2][2] = "holdout"
    bad = write_csv(tmp_path / "bad.csv", ["path", "genre", "split"], rows)
    with pytest.raises(DatasetError) as err:
        load_labels_csv(bad)
    assert err.value.path == bad and "holdout" in err.value.reason


def test_labels_csv_without_genre_column_names_the_file(tmp_path):
    bad = write_csv(tmp_path / "labels.csv", ["path", "artist"], [["a.wav", "x"]])
    with pytest.raises(DatasetError) as err:
        load_labels_csv(bad)
    assert err.value.path == bad
    assert "'genre'" in err.value.reason
    assert str(bad) in str(err.value)
    with pytest.raises(DatasetError, match="not found"):
        load_labels_csv(tmp_path / "absent.csv")


def test_min_per_class_drops_and_reports(tmp_path):
    rows = [[str(write_clip(tmp_path / f"{label}{i}.wav")), label]
            for label, n in (("big", 12), ("mid", 5), ("tiny", 2)) for i in range(n)]
    csv_path = write_csv(tmp_path / "l.csv", ["path", "genre"], rows)
    data = load_labels_csv(csv_path, min_per_class=5)
    assert data.labels == ("big", "mid")
    assert data.dropped_classes == (("tiny", 2),)
    assert len(data.tracks) == 17
    assert not data.skipped
    assert load_labels_csv(csv_path, min_per_class=1).dropped_classes == ()
    strict = load_labels_csv(csv_path, min_per_class=6)
    assert strict.labels == ("big",) and strict.dropped_classes == (("mid", 5), ("tiny", 2))


def test_check_audio_skips_short_and_unreadable(tmp_path):
    good = [write_clip(tmp_path / f"g{i}.wav", seconds=6.0) for i in range(3)]
    short = write_clip(tmp_path / "short.wav", seconds=1.0)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 10)
    rows = [[str(p), "x"] for p in (*good, short, junk)]
    csv_path = write_csv(tmp_path / "l.csv", ["path", "genre"], rows)
    assert len(load_labels_csv(csv_path).tracks) == 5  # by default only existence is checked
    data = load_labels_csv(csv_path, check_audio=True)
    assert [t.path for t in data.tracks] == good
    reasons = dict(data.skipped)
    assert reasons[short] == "too short (1.0 s < 5 s)"
    assert reasons[junk].startswith("unreadable audio")


# --------------------------------------------------------------------------- folder


def test_folder_loader(tmp_path):
    root = tmp_path / "music"
    for label in ("Low", "High"):
        for i in range(10):
            write_clip(root / label / f"{i:02d}.wav")
    write_clip(root / "Low" / "album" / "deep.wav")     # nested: counts
    write_clip(root / "Low" / ".hidden.wav")             # hidden file
    write_clip(root / "High" / ".cache" / "x.wav")       # hidden folder
    (root / "High" / "notes.txt").write_text("not audio")
    write_clip(root / "stray.wav")                       # outside any genre folder
    (root / "Empty").mkdir()

    data = load_folder(root, seed=0)
    assert data.labels == ("High", "Low")
    counts = Counter(t.label for t in data.tracks)
    assert counts == {"Low": 11, "High": 10}
    assert (root / "Low" / "album" / "deep.wav") in {t.path for t in data.tracks}
    assert not any(part.startswith(".") for t in data.tracks for part in t.path.parts)
    assert data.skipped == ((root / "stray.wav", "not inside a genre folder"),)
    paths = [t.path for t in data.tracks if t.label == "High"]
    assert paths == sorted(paths)
    assert all(t.artist == str(t.path) for t in data.tracks)
    split_counts = data.counts()
    assert all(split_counts[s][label] > 0 for s in SPLITS for label in data.labels)
    assert data.description == "folder music (stratified by file 80/10/10, seed 0)"

    assert load_dataset(root).tracks == data.tracks
    with pytest.raises(DatasetError, match="no audio files"):
        load_folder(root / "Empty")


def test_load_dataset_dispatch(tmp_path, fma):
    csv_path = labelled_tree(tmp_path)
    via = load_dataset(str(csv_path), seed=1, min_per_class=2)
    assert via == load_labels_csv(csv_path, seed=1, min_per_class=2)
    with pytest.raises(DatasetError, match="not found") as err:
        load_dataset(tmp_path / "nothing")
    assert err.value.path == tmp_path / "nothing"
    with pytest.raises(DatasetError, match="labels .csv"):
        load_dataset(next((tmp_path / "clips" / "rock").iterdir()))
    with pytest.raises(DatasetError, match="FMA"):
        load_dataset(fma[0])


def test_dataset_accessors():
    tracks = (
        Track(Path("/a.wav"), "x", "train", "p"),
        Track(Path("/b.wav"), "y", "test", "q", source="s"),
    )
    data = Dataset(tracks=tracks, labels=("x", "y"), skipped=(), dropped_classes=(), description="d")
    assert data.split("train") == tracks[:1]
    assert data.split("val") == ()
    assert data.counts() == {
        "train": {"x": 1, "y": 0}, "val": {"x": 0, "y": 0}, "test": {"x": 0, "y": 1},
    }
    with pytest.raises(ValueError):
        data.split("training")
