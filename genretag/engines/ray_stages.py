"""The scan's stages as Ray Data transforms: listing object-store URIs, decode + features
(:func:`~genretag.scan.extract.extract_track`, in CPU tasks) and batched inference (an actor
holding the model). Imported only inside Ray workers and by :mod:`genretag.engines.ray_scan`.

A track travels between the stages as one row: its path, its extract status, and its
windows as the bytes of a ``float32 [k, n_mels, n_frames]`` array (``k`` in ``windows``,
about 72 KB a window for the default model), with the tags it had and its identity.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from genretag.config import FeatureConfig, WindowPolicy
from genretag.discover import is_audio
from genretag.errors import describe

_TRACK_FIELDS = ("path", "status", "windows", "n_windows", "previous", "provenance", "error", "size", "mtime_ns")


def is_uri(path: str | os.PathLike) -> bool:
    """``s3://bucket/key``, ``gs://...``, ``file:///...``: read through pyarrow's file systems."""
    return "://" in str(path)


def list_uri(uri: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The audio files under a URI (a file, or a prefix walked recursively; hidden names skipped),
    sorted, as URIs with the same scheme; and ``(uri, reason)`` when it can't be listed."""
    import pyarrow.fs as pafs

    scheme = uri.split("://", 1)[0]
    try:
        fs, root = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            return [], [(uri, "file not found")]
        if info.type == pafs.FileType.File:
            infos = [info]
        else:
            infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    except (OSError, ValueError) as exc:
        return [], [(uri, f"cannot list: {describe(exc)}")]
    files = []
    for found in infos:
        rel = found.path.removeprefix(root)
        if found.type != pafs.FileType.File or any(part.startswith(".") for part in rel.split("/") if part):
            continue
        if is_audio(Path(found.path)):
            files.append(f"{scheme}://{found.path}")
    return sorted(files), []


def decode_batch(batch: dict[str, np.ndarray], *, features: dict[str, Any], windows: int,
                 skip_if_tagged_by: str | None) -> dict[str, Any]:
    """The decode stage: :func:`extract_track` on every path of a batch (``{"path": [...]}``) ->
    one row per track (see the module docstring). Never raises for a file: a bad one is a row
    with status ``error`` and its reason."""
    config, policy = FeatureConfig.from_dict(features), WindowPolicy(windows=windows)
    rows = {name: [] for name in _TRACK_FIELDS}
    for path in (str(p) for p in batch["path"]):
        track, identity = _extract(path, config=config, policy=policy, skip_if_tagged_by=skip_if_tagged_by)
        win = track.windows if track.status == "ok" and track.windows is not None else None
        values = {"path": path, "status": track.status,
                  "windows": b"" if win is None else np.ascontiguousarray(win, np.float32).tobytes(),
                  "n_windows": 0 if win is None else len(win), "previous": list(track.genres),
                  "provenance": track.provenance, "error": track.error,
                  "size": identity.size if identity else None, "mtime_ns": identity.mtime_ns if identity else None}
        for name in _TRACK_FIELDS:
            rows[name].append(values[name])
    return _table(rows, windows_binary=True)


def _extract(path: str, **kwargs):
    """``extract_track`` on a local path, or on a temporary copy of an object-store file (fetched
    through pyarrow.fs); the identity is the file's own (size, mtime) either way."""
    from genretag.files import Identity
    from genretag.scan.extract import TrackFeatures, extract_track

    if not is_uri(path):
        track = extract_track(Path(path), **kwargs)
        return track, track.identity
    import pyarrow.fs as pafs

    try:
        fs, where = pafs.FileSystem.from_uri(path)
        info = fs.get_file_info(where)
        identity = Identity(int(info.size), int(info.mtime_ns)) if info.mtime_ns is not None else None
        with tempfile.TemporaryDirectory(prefix="genretag-") as tmp:
            local = Path(tmp) / ("audio" + Path(where).suffix)
            with fs.open_input_stream(where) as src, open(local, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            track = extract_track(local, **kwargs)
    except (OSError, ValueError) as exc:
        return TrackFeatures(Path(path), "error", error=f"cannot fetch: {describe(exc)}"), None
    return track, identity


def _table(rows: dict[str, list], *, windows_binary: bool):
    import pyarrow as pa

    strings = pa.list_(pa.string())
    fields = [("path", pa.string()), ("status", pa.string())]
    fields += [("windows", pa.large_binary()), ("n_windows", pa.int32())] if windows_binary else [
        ("probabilities", pa.list_(pa.float32())), ("style_scores", pa.list_(pa.float32())),
        ("music", pa.float32()), ("n_windows", pa.int32())]
    fields += [("previous", strings), ("provenance", pa.string()), ("error", pa.string()),
               ("size", pa.int64()), ("mtime_ns", pa.int64())]
    schema = pa.schema(fields)
    return pa.table({name: pa.array(rows[name], type=schema.field(name).type) for name in schema.names},
                    schema=schema)


class Infer:
    """The inference stage, one per actor: the model is loaded once, in ``__init__``; each call
    runs every window of a batch of tracks through it (in model batches of ``batch_size``, the last
    padded as the local pool pads it) and averages each track's windows with
    :func:`~genretag.models.runtime.track_mean` (with the bundle's calibration temperature, on the genre
    block only); a model with styles adds each track's ``style_scores``, one with a music score its ``music``
    (:func:`~genretag.scan.batching.from_windows`). Rows that are not ``ok`` pass through."""

    def __init__(self, model: str, *, batch_size: int) -> None:
        import genretag

        loaded = genretag.load_model(model, batch_size=batch_size)
        self.classifier = loaded.classifier
        card = loaded.bundle.card
        self.shape = card.features.patch_shape
        self.temperature = card.temperature  # the bundle's calibration, as the local scan applies it
        self.pooling = card.pooling
        self.labels, self.styles, self.music = card.labels, card.style_names, card.music is not None

    def __call__(self, batch) -> Any:
        from genretag.models.track_experts import track_opinions
        from genretag.scan.batching import from_windows

        counts = batch.column("n_windows").to_pylist()
        statuses = batch.column("status").to_pylist()
        blobs = batch.column("windows").to_pylist()
        arrays = [np.frombuffer(b, np.float32).reshape((n, *self.shape))
                  for b, n, s in zip(blobs, counts, statuses) if s == "ok" and n]
        probs = self.classifier.predict(np.concatenate(arrays)) if arrays else None
        logs = iter(track_opinions(self.classifier, arrays))  # the track-level experts' opinion (None without)
        rows = {name: batch.column(name).to_pylist() for name in _TRACK_FIELDS if name != "windows"}
        rows["probabilities"], rows["style_scores"], rows["music"], offset = [], [], [], 0
        for n, status in zip(counts, statuses):
            if status == "ok" and n:
                track = from_windows(Path(), probs[offset : offset + n], labels=self.labels, styles=self.styles,
                                     temperature=self.temperature, pooling=self.pooling, music=self.music,
                                     expert=next(logs))
                rows["probabilities"].append(track.probabilities.tolist())
                rows["style_scores"].append(track.style_scores.tolist() if track.style_scores is not None else None)
                rows["music"].append(track.music)
                offset += n
            else:
                rows["probabilities"].append(None)
                rows["style_scores"].append(None)
                rows["music"].append(None)
        return _table(rows, windows_binary=False)


def model_argument(bundle_path: Path) -> str:
    """What each actor passes to :func:`genretag.load_model`: a bundled model's name (each node
    resolves it in its own install), or the bundle folder's absolute path (on a shared filesystem)."""
    from genretag.models.registry import BUNDLED_DIR

    path = Path(bundle_path).resolve()
    if path.parent == BUNDLED_DIR.resolve():  # a bundled model, however it was named
        return path.name
    return str(path)
