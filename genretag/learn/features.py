"""Each tagged track's features, once: decoded by the scan's pool, kept in the prediction store.

A track is heard as the default model hears it (its scan windows, its patch) and becomes the mean of
its windows' feature vectors (:func:`genretag.learn.network.build_features`: musicnn pooled, EfficientAT
embedding, AudioSet logits; 1,425 floats). The store keeps that mean as float16 (2,850 bytes a track,
about 290 MB for 100,000 tracks) under the file's path and identity (size, mtime, ctime, inode) and
:func:`extractor_key`, so a second ``learn`` decodes only files that are new or changed.

The windows run where a scan runs them (:func:`feature_network`): the default bundle's ``model.onnx``
on OpenVINO, whose second output is that vector (or, for a base whose windows' network has no EfficientAT,
its ``features.onnx``) (:func:`genretag.learn.network.with_features`; the
export checked it against Keras), so the feature pass costs what a scan costs and imports no
TensorFlow. Keras runs :func:`~genretag.learn.network.build_features` instead when the card lists no
such output, OpenVINO is missing, or ``GENRETAG_RUNTIME=keras``; both give the same vectors within the
export's check (:data:`genretag.models.export.FEATURE_TOLERANCE`), so the store's rows and models
learned on either fit the other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from genretag.config import FeatureConfig, WindowPolicy
from genretag.files import Identity
from genretag.models.bundle import Bundle
from genretag.store import Store

Progress = Callable[[str, dict], None]


@dataclass(frozen=True)
class TrackVectors:
    """The mean window features of the tracks that have them."""

    paths: tuple[Path, ...]
    vectors: np.ndarray
    """``float32 [len(paths), d]``, rows in ``paths`` order."""
    decoded: int
    """Tracks decoded this time (the rest came from the store)."""
    failed: tuple[tuple[Path, str], ...]
    """Tracks that could not be decoded: ``(path, reason)``."""
    silent: tuple[Path, ...]
    runtime: str = ""
    """What ran the feature network this time: ``openvino``, ``keras``, or empty when nothing was decoded."""


def pass_features(features: FeatureConfig) -> FeatureConfig:
    """The windows the feature pass cuts: the base's, with EfficientAT's log-mel in every one (a base with a
    track-level EfficientAT, ``audioset_windows``, cuts it in a few only; learn's vector needs it in each)."""
    return replace(features, audioset_windows=0, audioset_weight=0.0) if features.audioset_windows else features


def extractor_key(bundle: Bundle, windows: int) -> str:
    """What the store files features under: the pretrained weights, the feature parameters and the windows,
    e.g. ``learn 9edbddb7 555fa2e2 c1a2b3c4d w8``."""
    from genretag.models import efficientat, musicnn

    heard = pass_features(bundle.card.features).to_dict()  # a base without audioset_windows: its own features
    shape = hashlib.sha256(json.dumps(heard, sort_keys=True).encode()).hexdigest()
    return f"learn {musicnn.WEIGHTS_SHA256[:8]} {efficientat.WEIGHTS_SHA256[:8]} c{shape[:9]} w{windows}"


def track_features(files: Sequence[Path], *, bundle: Bundle, store: Store | None, windows: int, jobs: int,
                   timeout: float, batch_size: int = 64, on_event: Progress | None = None) -> TrackVectors:
    """The features of ``files``: from the store where it knows the file as it is, else decoded (in a pool
    of ``jobs`` workers) and run through the feature network, and recorded. Never raises for a file."""
    key = extractor_key(bundle, windows)
    found: dict[Path, np.ndarray] = {}
    failed: list[tuple[Path, str]] = []
    silent: list[Path] = []
    todo = []
    for path in files:
        row = store.features(path, key) if store is not None else None
        if row is None:
            todo.append(path)
        elif row.status == "ok":
            found[path] = row.vector
        elif row.status == "silent":
            silent.append(path)
        else:
            todo.append(path)  # a failure is tried again, as scan does
    tell = on_event or (lambda event, info: None)
    tell("features", {"known": len(found) + len(silent), "to_decode": len(todo)})
    ran: list[str] = []
    if todo:
        for path, status, vector, n, error in _decode_and_embed(todo, bundle=bundle, windows=windows, jobs=jobs,
                                                                  timeout=timeout, batch_size=batch_size, ran=ran):
            identity = Identity.of(path)
            if store is not None and identity is not None:
                store.put_features(path, key, identity=identity, status=status, vector=vector, windows=n,
                                   error=error)
            if status == "ok":
                found[path] = vector.astype(np.float16).astype(np.float32)  # as the store gives it back
            elif status == "silent":
                silent.append(path)
            else:
                failed.append((path, error or "decode failed"))
            tell("decoded", {"path": path, "status": status})
    paths = tuple(p for p in files if p in found)
    vectors = np.stack([found[p] for p in paths]) if paths else np.zeros((0, 0), np.float32)
    return TrackVectors(paths, vectors, len(todo), tuple(failed), tuple(silent), ran[0] if ran else "")


@dataclass
class FeatureNetwork:
    """Windows ``float32 [n, *patch]`` -> their feature vectors ``float32 [n, d]``, in padded batches."""

    run: Callable[[np.ndarray], np.ndarray]
    """One batch through the network: the features of each window."""
    runtime: str
    """``openvino`` or ``keras``."""
    width: int
    batch_size: int = 64

    def predict(self, windows: np.ndarray) -> np.ndarray:
        from genretag.models.batches import batched

        return batched(self.run, windows, batch_size=self.batch_size, n_out=self.width, on_batch=None)


def feature_network(bundle: Bundle, *, batch_size: int = 64) -> FeatureNetwork:
    """The default ``bundle``'s feature network on the runtime a scan would use (:mod:`genretag.models.runtime`,
    ``GENRETAG_RUNTIME``): its ``model.onnx``'s features output on OpenVINO when the card lists one, else
    :func:`~genretag.learn.network.build_features` on Keras (UsageError when Keras is not installed)."""
    from genretag.errors import ModelError
    from genretag.models.batches import OPENVINO_CONFIG
    from genretag.models.bundle import verify_bundle
    from genretag.models.runtime import RUNTIME_ENV, _load_openvino, chosen_runtime, import_keras, import_openvino

    choice, spec = chosen_runtime(), (bundle.card.runtime or {}).get("features")
    if choice != "keras" and spec:
        openvino = import_openvino()
        if openvino is not None:
            verify_bundle(bundle)
            if "file" in spec:  # a network of its own (features.onnx: a base whose windows lack EfficientAT)
                core = openvino.Core()
                compiled = core.compile_model(core.read_model(str(bundle.path / spec["file"])), "CPU",
                                              OPENVINO_CONFIG)
            else:
                compiled = _load_openvino(openvino, bundle, batch_size).model
            output = compiled.output(int(spec["output"]))
            if output.get_partial_shape().to_string() != f"[?,{int(spec['width'])}]":
                raise ModelError(f"{spec.get('file', bundle.card.runtime['file'])} features output "
                                 f"{output.get_partial_shape()} does not match card.json", bundle.path)
            return FeatureNetwork(lambda x: compiled(x)[output], "openvino", int(spec["width"]), batch_size)
    if choice == "openvino":
        raise ModelError(f"{RUNTIME_ENV}=openvino, but " + ("OpenVINO cannot be imported" if spec else
                         "card.json lists no features output (tools/export_runtime.py)"), bundle.path)
    import_keras("genretag learn's feature pass on Keras")
    from genretag.learn.network import build_features

    network = build_features(pass_features(bundle.card.features))
    return FeatureNetwork(network.predict_on_batch, "keras", int(network.output.shape[-1]), batch_size)


def _decode_and_embed(files: Iterable[Path], *, bundle: Bundle, windows: int, jobs: int, timeout: float,
                      batch_size: int, ran: list[str]):
    """``(path, status, mean features float32 [d] | None, windows, error)`` per file, as each finishes;
    ``ran`` gets the runtime of the feature network once it is loaded."""
    from genretag.scan.extract import extract_track
    from genretag.scan.pool import run_pool

    kwargs = {"config": pass_features(bundle.card.features), "policy": WindowPolicy(windows=windows)}
    network = None
    pending: list = []  # decoded tracks not yet emitted, in order
    done: list[np.ndarray] = []  # features of their first windows, already run

    def run(final: bool):
        """Run the network on the pending windows in full batches only (the remainder waits for more tracks,
        as the scan's stream does; ``final``: all of it), then emit the tracks whose windows have all run."""
        have = sum(len(d) for d in done)
        total = sum(len(t.windows) for t in pending)
        upto = total if final else have + (total - have) // batch_size * batch_size
        if upto > have:
            x = np.concatenate([t.windows for t in pending])[have:upto]
            done.append(network.predict(x))
        out = np.concatenate(done) if done else np.zeros((0, 0), np.float32)
        offset = 0
        while pending and offset + len(pending[0].windows) <= len(out):
            t = pending.pop(0)
            n = len(t.windows)
            yield t.path, "ok", out[offset : offset + n].mean(axis=0), n, None
            offset += n
        done[:] = [out[offset:]] if offset < len(out) else []

    for outcome in run_pool(extract_track, files, jobs=jobs, timeout=timeout, max_pending=4 * max(jobs, 1) + 8,
                            kwargs=kwargs):
        if not outcome.ok:
            yield Path(outcome.item), "failed", None, 0, outcome.error
            continue
        track = outcome.value
        if track.status != "ok":
            yield track.path, "silent" if track.status == "silent" else "failed", None, 0, track.error
            continue
        if network is None:
            network = feature_network(bundle, batch_size=batch_size)
            ran.append(network.runtime)
        pending.append(track)
        if sum(len(t.windows) for t in pending) - sum(len(d) for d in done) >= batch_size:
            yield from run(final=False)
    if pending:
        yield from run(final=True)
