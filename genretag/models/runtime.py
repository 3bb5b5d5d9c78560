"""Run a bundle's model on windows.

A Keras bundle whose card lists an exported ``model.onnx`` runs it with OpenVINO
(f32), which imports in ~0.1 s where TensorFlow takes ~4 s, and whose process
stays near 200 MiB where Keras's reaches ~1.3 GiB (benchmarks/README.md, "Start-up
and memory"). Keras, imported here and only here, runs the bundle otherwise: when
the card lists no artifact, when OpenVINO is not installed, or when
``GENRETAG_RUNTIME=keras`` asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from genretag.config import HIDE_TF_STARTUP
from genretag.errors import ModelError, UsageError, describe
from genretag.models.batches import OPENVINO_CONFIG, batched
from genretag.models.bundle import Bundle, verify_bundle

if TYPE_CHECKING:
    from genretag.models.track_experts import TrackExpert, TrackOpinion

RUNTIME_ENV = "GENRETAG_RUNTIME"
"""Environment variable choosing what runs a Keras bundle: ``auto`` (the default: OpenVINO
when the card lists an artifact and OpenVINO imports, else Keras), ``keras`` or ``openvino``
(an error when that is not possible)."""
RUNTIMES = ("auto", "keras", "openvino")


class Classifier(Protocol):
    """Anything that maps windows to class probabilities (and, for a model with styles, style scores).

    A classifier may also have ``styles`` (the card's style names; none when it lacks the attribute):
    its output then has ``len(labels) + len(styles)`` columns per window, the genre probabilities
    first (a softmax) and one independent score in [0, 1] per style after them. One with ``music``
    true (False when it lacks the attribute) emits one more column last: the window's music score.
    """

    labels: tuple[str, ...]

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """``float32 [n, n_mels, n_frames]`` -> ``float32 [n, n_classes (+ n_styles)]``."""
        ...


POOLINGS = ("mean", "geometric")
"""How a track's windows are combined (:attr:`ModelCard.pooling`)."""


def track_mean(window_probs: np.ndarray, *, temperature: float = 1.0, pooling: str = "mean",
               n_genres: int | None = None, expert: TrackOpinion | None = None) -> np.ndarray:
    """A track's class probabilities from its windows': ``float32 [k, n_classes]`` ->
    ``float32 [n_classes]`` summing to 1 (scan, evaluation, training and the golden test
    all judge a track this one way).

    ``pooling`` (the bundle's :attr:`ModelCard.pooling`): ``mean`` averages the windows'
    probabilities; ``geometric`` averages their log-probabilities and renormalises, which
    for a softmax layer is the softmax of the windows' mean logits: the decision of a head
    trained on whole-track features (``genretag train --head track``).
    ``temperature`` (the bundle's calibration, :attr:`ModelCard.temperature`): the result
    becomes ``p ** (1 / T)`` renormalised, which is temperature scaling of the track's
    log-probabilities; it never changes which genre ranks first.

    ``n_genres``: for a model with styles (``float32 [k, n_genres + n_styles]``), the genre block's
    width. Only that block is pooled as above; the style scores after it are their plain mean over
    the windows (each in [0, 1]). None: every column is a genre.

    ``expert``: what a bundle's track-level experts say of the track (:mod:`genretag.models.track_experts`): its
    ``log`` (``float [n_genres]``, e.g. ``w_e log q_e + w_y log q_y``) is added to the log of the pooled genres,
    the sum renormalised (a softmax) before the temperature, so the result is ``softmax((log pooled + log) / T)``;
    its ``columns`` (a track-level EfficientAT's styles and music score), when not None, follow the genres in
    place of the windows' mean of theirs (such a model's windows have genre columns only).
    """
    window_probs = np.asarray(window_probs, np.float64)
    n = window_probs.shape[-1] if n_genres is None else n_genres
    styles = np.clip(window_probs[:, n:].mean(axis=0), 0.0, 1.0)
    mean = pool(window_probs[:, :n], pooling=pooling)
    if expert is not None and expert.columns is not None:
        styles = np.asarray(expert.columns, np.float64)
    if expert is not None:
        z = np.log(np.clip(mean, 1e-30, 1.0)) + np.asarray(expert.log, np.float64)
        mean = np.exp(z - z.max())
        mean /= mean.sum()
    if temperature != 1.0:  # for geometric pooling the same as dividing the mean log-probabilities by T
        mean = np.power(np.clip(mean, 1e-12, 1.0), 1.0 / temperature)
        mean /= mean.sum()
    return np.concatenate([mean, styles]).astype(np.float32)


def pool(probs: np.ndarray, *, pooling: str = "mean", weights: np.ndarray | None = None) -> np.ndarray:
    """Several distributions as one: ``float [k, n]`` -> ``float64 [n]`` summing to 1. ``mean``: their mean
    (weighted by ``weights``, ``[k]``: e.g. the window counts of the tracks of an album); ``geometric``: the
    (weighted) mean of their log-probabilities, renormalised (for softmax outputs, the softmax of the mean
    logits). The one pooling of windows into a track (:func:`track_mean`) and of tracks into a group."""
    probs = np.asarray(probs, np.float64)
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, np.float64)
    if pooling == "geometric":
        log_p = (np.log(np.clip(probs, 1e-30, 1.0)) * w[:, None]).sum(axis=0) / w.sum()
        out = np.exp(log_p - log_p.max())
    elif pooling == "mean":
        out = (probs * w[:, None]).sum(axis=0)
    else:
        raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
    return out / max(float(out.sum()), 1e-12)


def quiet_tensorflow() -> None:
    """Silence TensorFlow's C++ start-up chatter before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def import_keras(purpose: str = "running a model on Keras"):
    """Import Keras; if it can't be, UsageError ``<purpose> needs: pip install 'genretag[train]'``
    (Keras and TensorFlow come with that extra, not with ``pip install genretag``).

    TensorFlow's C++ logger prints a few lines to fd 2 while importing, whatever
    TF_CPP_MIN_LOG_LEVEL says ("oneDNN custom operations are on ..."). They are
    hidden only when :data:`HIDE_TF_STARTUP` is set: a library must not silence
    a process's stderr, in which its host may be writing at the same moment.
    """
    quiet_tensorflow()
    import sys

    if "keras" in sys.modules:
        return sys.modules["keras"]
    hide = os.environ.get(HIDE_TF_STARTUP) == "1"
    saved = os.dup(2) if hide else None
    try:
        if saved is not None:
            sys.stderr.flush()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        import keras
    except ImportError as exc:
        from genretag.extras import install_hint

        detail = "" if exc.name == "keras" else f" (Keras: {describe(exc)})"  # e.g. its backend is missing
        raise UsageError(f"{purpose} needs: {install_hint('train')}{detail}") from exc
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    return keras


@dataclass
class KerasClassifier:
    """A Keras model run in fixed-size batches (one trace, no re-tracing)."""

    model: object
    labels: tuple[str, ...]
    batch_size: int = 64
    styles: tuple[str, ...] = ()
    """The card's style names: the model's outputs after the labels' probabilities."""
    music: bool = False
    """The model emits a music score last (the card has ``music``)."""
    experts: tuple[TrackExpert, ...] = ()
    """Track-level experts (:class:`~genretag.models.track_experts.TrackExpert`; the card's ``audioset_windows``,
    ``yamnet_windows``)."""
    window_outputs: int | None = None
    """Columns per window (the card's ``n_outputs``); None: labels, styles and music."""
    runtime = "keras"

    def predict(self, windows: np.ndarray, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Outputs for ``windows`` (class probabilities then style scores, or whatever the model returns
        per window); ``on_batch(done)`` hears the number of windows finished after each batch."""
        return batched(lambda x: self.model.predict_on_batch(x), windows, batch_size=self.batch_size,
                        n_out=self.window_outputs or len(self.labels) + len(self.styles) + self.music,
                        on_batch=on_batch)


@dataclass
class OpenVINOClassifier:
    """A bundle's exported ``model.onnx`` compiled by OpenVINO for the CPU (f32), run in
    the same padded batches as :class:`KerasClassifier` (a few shapes, each compiled once)."""

    model: object
    """An ``openvino.CompiledModel`` taking ``float32 [n, n_mels, n_frames]``."""
    labels: tuple[str, ...]
    batch_size: int = 64
    styles: tuple[str, ...] = ()
    """The card's style names: the model's outputs after the labels' probabilities."""
    music: bool = False
    """The model emits a music score last (the card has ``music``)."""
    experts: tuple[TrackExpert, ...] = ()
    """Track-level experts (:class:`~genretag.models.track_experts.TrackExpert`; the card's ``audioset_windows``,
    ``yamnet_windows``)."""
    window_outputs: int | None = None
    """Columns per window (the card's ``n_outputs``); None: labels, styles and music."""
    runtime = "openvino"

    def predict(self, windows: np.ndarray, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """``float32 [n, n_mels, n_frames]`` -> ``float32 [n, n_classes + n_styles (+ 1)]``: class
        probabilities, then style scores, then the music score (``music``)."""
        return batched(lambda x: self.model(x)[0], windows, batch_size=self.batch_size,
                        n_out=self.window_outputs or len(self.labels) + len(self.styles) + self.music,
                        on_batch=on_batch)


class DeferredClassifier:
    """A classifier that loads in a background thread.

    Importing Keras and loading the model take seconds; the scan starts its
    decode workers meanwhile and only waits here on the first batch. Labels
    come from the card, so they are known at once.
    """

    def __init__(self, bundle: Bundle, *, batch_size: int = 64, start: bool = True) -> None:
        verify_bundle(bundle)  # a bad bundle is refused before any file is decoded
        self.labels = bundle.card.labels
        self.styles = bundle.card.style_names
        self.music = bundle.card.music is not None
        self.window_outputs = bundle.card.n_outputs
        self._bundle, self._batch_size = bundle, batch_size
        self._future = None
        if start:
            self.start()

    def start(self) -> None:
        """Begin loading, once (``start=False`` leaves it to this, or to the first prediction: a scan
        whose files all keep their genre then loads nothing)."""
        import threading
        from concurrent.futures import Future

        if self._future is not None:
            return
        future: Future = Future()

        def load() -> None:
            future.set_running_or_notify_cancel()
            try:
                future.set_result(_load_verified(self._bundle, self._batch_size))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the result
                future.set_exception(exc)

        # A daemon thread, not an executor's: the interpreter joins those at exit, and a Ctrl-C that lands while
        # the main thread imports a module the loader is importing too can leave the loader waiting for that
        # module's lock for ever (`beet genretag` then hung after "interrupted", about 1 run in 8).
        self._future = future
        threading.Thread(target=load, name="genretag-model", daemon=True).start()

    def result(self) -> Classifier:
        """The loaded classifier (waits for it; re-raises a loading error)."""
        self.start()
        return self._future.result()

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return self.result().predict(windows)

    @property
    def experts(self):
        """The loaded classifier's track-level experts (waits for them), or none at once when the card has none."""
        from genretag.models.track_experts import expert_names

        return self.result().experts if expert_names(self._bundle.card.features) else ()


def load_classifier(bundle: Bundle, *, batch_size: int = 64) -> Classifier:
    """Verify the bundle's sha256, then load its model for inference."""
    verify_bundle(bundle)
    return _load_verified(bundle, batch_size)


def chosen_runtime() -> str:
    """What :data:`RUNTIME_ENV` asks for: ``auto``, ``keras`` or ``openvino``; ModelError otherwise."""
    choice = os.environ.get(RUNTIME_ENV, "").strip().lower() or "auto"
    if choice not in RUNTIMES:
        raise ModelError(f"{RUNTIME_ENV}={choice} is not one of {', '.join(RUNTIMES)}")
    return choice


_OVC = "openvino.tools.ovc"
"""OpenVINO's model-conversion tools: ``import openvino`` imports them, and importing them starts OpenVINO's
usage telemetry, which sends an event from a forked process (on by default when the user never answered its
consent question). A scan only runs a model it already has, so they are kept out of the import."""


def import_openvino():
    """The ``openvino`` runtime module, or None when it is not installed (or fails to import).

    Imported without its conversion tools (:data:`_OVC`), so genretag never sends OpenVINO's telemetry: in a
    process with threads the fork it uses can also deadlock (a scan's model loads in a background thread).
    A later explicit ``import openvino.tools.ovc`` (tools/export_runtime.py) still works.
    """
    import sys

    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    blocked = _OVC not in sys.modules
    if blocked:
        sys.modules[_OVC] = None  # type: ignore[assignment]  # makes its import an ImportError, which openvino skips
    try:
        import openvino
    except ImportError:
        return None
    finally:
        if blocked:
            sys.modules.pop(_OVC, None)
    return openvino


def _load_openvino(openvino, bundle: Bundle, batch_size: int, *, expert: bool = True) -> OpenVINOClassifier:
    """Compile the bundle's verified ``model.onnx`` for the CPU and check its shapes against the card; with
    ``expert``, its track-level experts' artifacts too (the card's ``audioset_windows``, ``yamnet_windows``)."""
    card, path = bundle.card, bundle.runtime_path
    try:
        core = openvino.Core()
        model = core.read_model(str(path))
        compiled = core.compile_model(model, "CPU", OPENVINO_CONFIG)
        in_shape, out_shape = compiled.input(0).get_partial_shape(), compiled.output(0).get_partial_shape()
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError and its own types for a bad file
        raise ModelError(f"cannot load {card.runtime['file']} with OpenVINO: {describe(exc)}", path) from exc
    rows, frames = card.features.patch_shape
    expected_in, expected_out = f"[?,{rows},{frames}]", f"[?,{card.n_outputs}]"
    if in_shape.to_string() != expected_in or out_shape.to_string() != expected_out:
        raise ModelError(f"{card.runtime['file']} shape {in_shape}->{out_shape} does not match card.json", path)
    experts = ()
    if expert:
        from genretag.models import track_experts

        experts = tuple(track_experts.load_openvino(core, bundle, batch_size, name)
                        for name in track_experts.expert_names(card.features))
    return OpenVINOClassifier(compiled, card.labels, batch_size, card.style_names, card.music is not None, experts,
                              card.n_outputs)


def _load_verified(bundle: Bundle, batch_size: int) -> Classifier:
    card = bundle.card
    if card.kind == "keras":
        choice = chosen_runtime()
        if choice == "keras":
            purpose = f"{RUNTIME_ENV}=keras"
        elif card.runtime:
            openvino = import_openvino()
            if openvino is not None:
                return _load_openvino(openvino, bundle, batch_size)
            if choice == "openvino":
                raise ModelError(f"{RUNTIME_ENV}=openvino, but OpenVINO cannot be imported (pip install openvino)")
            purpose = "OpenVINO cannot be imported; running the model on Keras instead"
        elif choice == "openvino":
            raise ModelError(f"{RUNTIME_ENV}=openvino, but card.json lists no exported runtime file "
                             "(tools/export_runtime.py)", bundle.path)
        else:
            purpose = "running this model on Keras (its card lists no exported model.onnx)"
        keras = import_keras(purpose)
        if card.features.audioset_rate:
            from genretag.models.fusion import register_layers

            register_layers()
        try:
            model = keras.saving.load_model(bundle.weights_path, compile=False, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - keras raises many types for a bad file
            raise ModelError(f"cannot load Keras model: {describe(exc)}", bundle.weights_path) from exc
        expected = (None, *card.features.patch_shape)
        if tuple(model.input_shape) != expected or model.output_shape[-1] != card.n_outputs:
            raise ModelError(f"model shape {model.input_shape}->{model.output_shape} does not match card.json"
                             + (f" ({len(card.labels)} labels + {len(card.styles)} styles)" if card.styles else "")
                             + (" (+ 1 music score)" if card.music is not None else ""),
                             bundle.path)
        from genretag.models import track_experts

        experts = tuple(track_experts.load_keras(card, batch_size, name)
                        for name in track_experts.expert_names(card.features))
        return KerasClassifier(model, card.labels, batch_size, card.style_names, card.music is not None, experts,
                               card.n_outputs)
    if card.kind == "classic":
        if card.styles or card.music is not None:
            raise ModelError("a classic (k-NN/SVM) model has no style or music outputs, but card.json lists "
                             + ("styles" if card.styles else "a music score"), bundle.path)
        from genretag.models.classic import ClassicClassifier

        return ClassicClassifier.load(bundle.weights_path, card.labels)
    raise ModelError(f"unknown model kind {card.kind!r} in card.json", bundle.path)
