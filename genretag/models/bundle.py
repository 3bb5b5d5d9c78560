"""Model bundles: a folder holding a weights file and ``card.json``.

The card carries everything inference needs (labels, feature parameters,
window length, architecture) plus version, training data and metrics, and the
sha256 of the weights file. Loading checks the sha256 before any weights are
read; Keras models load with ``safe_mode=True`` and classic models from an
``.npz`` with ``allow_pickle=False``: nothing is ever unpickled.

A Keras bundle may also carry an inference artifact derived from its weights
(``model.onnx``, written by ``tools/export_runtime.py``) that a light runtime
runs without importing TensorFlow. The card lists it under ``runtime`` with its
own sha256 and the sha256 of the weights it was exported from; the weights stay
the source of truth, and an artifact that fails either check is refused.

A card may list ``styles``: finer genres beneath its labels (``{"name": "Metal", "parent":
"Rock", "floor": 0.35, ...}``). Such a model emits, per window, the genre probabilities
followed by one independent score in [0, 1] per style (see :class:`Style`).

A card may also have ``music``: the model then emits, last, a score in [0, 1] of how much each window
sounds like music (the fused default's AudioSet ``Music`` class), and a track whose pooled score is below
``floor`` is ``not-music``: no genre is written (see :class:`MusicScore`). A card without it never says
``not-music``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Self

from genretag.config import MAX_CARD_BYTES, FeatureConfig
from genretag.errors import ModelError, describe, os_reason
from genretag.files import RefusedFile, open_limited, read_limited, replace_atomically

CARD_FILE = "card.json"
BUNDLE_FORMAT = "genretag-bundle"
FORMAT_VERSION = 1
RUNTIME_KEYS = ("format", "file", "sha256", "exported_from_sha256")
"""What a card's ``runtime`` entry must say."""


class CardEntry:
    """An object of the card read into a value (:meth:`from_dict`); a subclass, a frozen dataclass, ends with
    ``raw``, the entry as written (other keys such as ``precision``, ``classes`` or ``evidence`` kept)."""

    raw: dict[str, Any]
    what: ClassVar[str] = "an entry"
    """What the entry is called in an error."""

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """The card's entry; TypeError or ValueError for anything that is not one."""
        if not isinstance(data, dict):
            raise TypeError(f"{cls.what} must be an object, got {data!r}")
        return cls(**cls._values(data), raw=dict(data))

    @classmethod
    def _values(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The fields' values read from the entry ``data``; ValueError for a bad one."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The entry as the card holds it: ``raw`` with the fields' values."""
        return {**self.raw, **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "raw"}}


@dataclass(frozen=True)
class Style(CardEntry):
    """A style beneath a genre: the model scores it on its own (a sigmoid, not part of the softmax),
    and it is written after its parent genre when its track score reaches ``floor``."""

    name: str
    parent: str
    """The genre label (one of the card's ``labels``) it belongs to."""
    floor: float
    """The track score in [0, 1] the style needs to be written."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    what: ClassVar[str] = "a style"

    @classmethod
    def _values(cls, data: dict[str, Any]) -> dict[str, Any]:
        missing = [key for key in ("name", "parent", "floor") if key not in data]
        if missing:
            raise ValueError(f"style {data.get('name', data)!r} lacks {', '.join(missing)}")
        name, parent, floor = data["name"], data["parent"], data["floor"]
        if not isinstance(name, str) or not name.strip() or not isinstance(parent, str):
            raise ValueError(f"style name and parent must be text, got {name!r} and {parent!r}")
        return {"name": name, "parent": parent, "floor": _unit_floor(floor, f"style {name!r}: floor")}


@dataclass(frozen=True)
class MusicScore(CardEntry):
    """How a model says a track is not music: its last output per window is a music score in [0, 1];
    a track whose mean score over its windows is below ``floor`` gets status ``not-music``."""

    floor: float
    """The track's mean music score below which it is not music."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    what: ClassVar[str] = "'music'"

    @classmethod
    def _values(cls, data: dict[str, Any]) -> dict[str, Any]:
        return {"floor": _unit_floor(data.get("floor"), "music floor")}


def _unit_floor(value: Any, what: str) -> float:
    """``value`` as a float from 0 to 1; ValueError naming ``what`` for anything else (a bool is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} {value!r} is not a number from 0 to 1")
    return float(value)


def check_styles(styles: tuple[Style, ...], labels: tuple[str, ...]) -> None:
    """ValueError unless every style's parent is a label and the names are unique and no label's."""
    seen: set[str] = set()
    for style in styles:
        if style.parent not in labels:
            raise ValueError(f"style {style.name!r} has parent {style.parent!r}, which is not one of the labels")
        if style.name in labels:
            raise ValueError(f"style {style.name!r} has the name of a genre label")
        if style.name in seen:
            raise ValueError(f"style {style.name!r} is listed twice")
        seen.add(style.name)


@dataclass(frozen=True)
class ModelCard:
    """What ``card.json`` says about a model."""

    name: str
    version: str
    kind: str
    """``keras`` (weights in ``model.keras``) or ``classic`` (``model.npz``)."""
    architecture: str
    labels: tuple[str, ...]
    features: FeatureConfig
    weights: str
    """File name of the weights inside the bundle."""
    sha256: str
    params: int = 0
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    calibration: dict[str, Any] = field(default_factory=dict)
    """How the track probabilities are calibrated (``temperature``: see :func:`~genretag.models.runtime.track_mean`),
    and the precision / coverage it was judged by (``tools/calibrate.py`` writes it)."""
    pooling: str = "mean"
    """How a track's windows are combined: ``mean`` of probabilities, or ``geometric`` (the softmax of
    their mean logits, for a head trained on whole-track features); see
    :func:`~genretag.models.runtime.track_mean`."""
    runtime: dict[str, Any] = field(default_factory=dict)
    """The inference artifact exported from the weights (``tools/export_runtime.py`` writes it):
    ``format`` (``onnx``), ``file``, ``sha256``, ``exported_from_sha256`` (the weights' sha256 at
    export), and how it was checked against Keras (``max_abs_diff_vs_keras``, ...). Empty: Keras only."""
    styles: tuple[Style, ...] = ()
    """Styles beneath the labels, in the order the model emits their scores (after the labels'
    probabilities). Empty: the model emits genre probabilities only."""
    music: MusicScore | None = None
    """The model's music score (its last output) and the floor below which a track is ``not-music``.
    None: the model has no such output and never says ``not-music``."""

    @property
    def style_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.styles)

    @property
    def n_outputs(self) -> int:
        """Values the model emits per window: one per label, then one per style, then the music score
        (when the card has ``music``); one per label only with ``features.audioset_windows`` (a track-level
        EfficientAT scores the styles and music, :mod:`genretag.models.track_experts`)."""
        if self.features.audioset_windows:
            return len(self.labels)
        return len(self.labels) + len(self.styles) + (self.music is not None)

    @property
    def temperature(self) -> float:
        """The calibration temperature of track probabilities; 1.0 when the bundle has none."""
        return float(self.calibration.get("temperature", 1.0))

    @property
    def model_id(self) -> str:
        """What the provenance tag records: ``name version``."""
        return f"{self.name} {self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT, "format_version": FORMAT_VERSION,
            "name": self.name, "version": self.version, "kind": self.kind,
            "architecture": self.architecture, "labels": list(self.labels),
            "features": self.features.to_dict(), "weights": self.weights, "sha256": self.sha256,
            "params": self.params, "description": self.description,
            "training": self.training, "metrics": self.metrics,
            **({"calibration": self.calibration} if self.calibration else {}),
            **({"pooling": self.pooling} if self.pooling != "mean" else {}),
            **({"runtime": self.runtime} if self.runtime else {}),
            **({"styles": [s.to_dict() for s in self.styles]}
               if self.styles else {}),
            **({"music": self.music.to_dict()} if self.music is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path) -> "ModelCard":
        if data.get("format") != BUNDLE_FORMAT:
            raise ModelError("not a genretag model bundle (card.json has no 'format': 'genretag-bundle')", path)
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise ModelError("bundle was written by a newer genretag; upgrade genretag", path)
        try:
            card = cls(
                name=str(data["name"]), version=str(data["version"]), kind=str(data["kind"]),
                architecture=str(data["architecture"]), labels=tuple(str(x) for x in data["labels"]),
                features=FeatureConfig.from_dict(data["features"]), weights=str(data["weights"]),
                sha256=str(data["sha256"]), params=int(data.get("params", 0)),
                training=dict(data.get("training", {})), metrics=dict(data.get("metrics", {})),
                description=str(data.get("description", "")),
                calibration=dict(data.get("calibration", {})),
                runtime=dict(data.get("runtime", {})),
                pooling=str(data.get("pooling", "mean")),
                styles=_styles(data.get("styles", [])),
                music=MusicScore.from_dict(data["music"]) if data.get("music") is not None else None,
            )
            check_styles(card.styles, card.labels)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed card.json: {exc}", path) from exc
        if not 0.05 <= card.temperature <= 20:
            raise ModelError(f"malformed card.json: calibration temperature {card.temperature} out of range", path)
        if card.pooling not in ("mean", "geometric"):
            raise ModelError(f"malformed card.json: unknown pooling {card.pooling!r} (mean or geometric)", path)
        if card.runtime:
            missing = [key for key in RUNTIME_KEYS if not isinstance(card.runtime.get(key), str)]
            if missing:
                raise ModelError(f"malformed card.json: runtime lacks {', '.join(missing)}", path)
            if card.runtime["format"] != "onnx":
                raise ModelError(f"malformed card.json: unknown runtime format {card.runtime['format']!r}", path)
            for name, needed in (("yamnet", card.features.yamnet_windows),
                                 ("efficientat", card.features.audioset_windows)):
                _check_expert_entry(card.runtime.get(name), name, bool(needed), path)
            learn = card.runtime.get("features")
            if isinstance(learn, dict) and "file" in learn and (
                    not isinstance(learn["file"], str) or Path(learn["file"]).name != learn["file"]):
                raise ModelError("malformed card.json: runtime.features names a file outside the bundle", path)
        return card


def _check_expert_entry(extra: Any, name: str, needed: bool, path: Path) -> None:
    """A track-level expert's ``runtime[name]`` entry (features ``yamnet_windows`` / ``audioset_windows``)."""
    if needed and not isinstance(extra, dict):
        option = "yamnet_windows" if name == "yamnet" else "audioset_windows"
        raise ModelError(f"malformed card.json: features have {option} but the runtime lists no {name} artifact",
                         path)
    if extra is None:
        return
    missing = list(RUNTIME_KEYS) if not isinstance(extra, dict) else [
        k for k in RUNTIME_KEYS if not isinstance(extra.get(k), str)]
    if missing:
        raise ModelError(f"malformed card.json: runtime.{name} lacks " + ", ".join(missing), path)
    if Path(extra["file"]).name != extra["file"]:
        raise ModelError(f"malformed card.json: runtime.{name} names a file outside the bundle", path)


def _styles(data: Any) -> tuple[Style, ...]:
    if not isinstance(data, list):
        raise TypeError(f"'styles' must be a list, got {type(data).__name__}")
    return tuple(Style.from_dict(entry) for entry in data)


@dataclass(frozen=True)
class Bundle:
    """A model bundle on disk: its folder and its card."""

    path: Path
    card: ModelCard

    @property
    def weights_path(self) -> Path:
        return self.path / self.card.weights

    @property
    def runtime_path(self) -> Path | None:
        """The exported inference artifact the card lists (``model.onnx``), or None."""
        return self.path / self.card.runtime["file"] if self.card.runtime else None


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return _sha256_of(fh)


def _sha256_of(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def load_pretrained(path: Path, sha256: str, what: str) -> dict[str, Any]:
    """The arrays of a shipped pretrained ``.npz`` (``what``: its network's name), sha256-checked and
    never unpickled; ModelError when missing or damaged."""
    import numpy as np

    if not path.is_file():
        raise ModelError(f"pretrained {what} weights are missing from the installation", path)
    if sha256_file(path) != sha256:
        raise ModelError(f"pretrained {what} weights are damaged (sha256 mismatch)", path)
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle's card (no weights are loaded, no Keras import)."""
    path = Path(path)
    if path.is_file() and path.name != CARD_FILE:
        raise ModelError("not a model bundle: a bundle is a folder holding card.json and the weights, "
                         "and this is a file", path)
    card_path = path / CARD_FILE if path.is_dir() else path
    folder = card_path.parent
    try:
        data = json.loads(read_limited(card_path, limit=MAX_CARD_BYTES, follow_symlinks=False).decode("utf-8"))
    except FileNotFoundError as exc:
        raise ModelError("not a model bundle: no card.json", path) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"not a model bundle: unreadable card.json ({describe(exc)})", card_path) from exc
    if not isinstance(data, dict):
        raise ModelError("malformed card.json: not a JSON object", card_path)
    card = ModelCard.from_dict(data, card_path)
    if Path(card.weights).name != card.weights:
        raise ModelError("card.json names a weights file outside the bundle", card_path)
    if card.runtime and Path(card.runtime["file"]).name != card.runtime["file"]:
        raise ModelError("card.json names a runtime file outside the bundle", card_path)
    return Bundle(folder, card)


def verify_bundle(bundle: Bundle) -> None:
    """Raise :class:`ModelError` unless the weights file, and the runtime artifact the card
    lists if any, match the card's sha256s, and the artifact was exported from these weights."""
    card = bundle.card
    _check_file(bundle.weights_path, card.sha256, f"weights file {card.weights}", bundle.path)
    if card.runtime:
        _check_file(bundle.path / card.runtime["file"], card.runtime["sha256"], f"runtime file {card.runtime['file']}",
                    bundle.path)
        if card.runtime["exported_from_sha256"] != card.sha256:
            raise ModelError(f"runtime file {card.runtime['file']} was exported from other weights than "
                             f"{card.weights}; export it again (tools/export_runtime.py)", bundle.path)
        from genretag.models import efficientat, yamnet

        for name, weights, what in (("yamnet", yamnet.WEIGHTS_SHA256, "YAMNet"),
                                    ("efficientat", efficientat.WEIGHTS_SHA256, "EfficientAT")):
            extra = card.runtime.get(name)
            if extra is None:  # a track-level expert's own artifact (features.yamnet_windows, audioset_windows)
                continue
            _check_file(bundle.path / extra["file"], extra["sha256"], f"runtime file {extra['file']}", bundle.path)
            if extra["exported_from_sha256"] != weights:
                raise ModelError(f"runtime file {extra['file']} was exported from other {what} weights than the "
                                 "shipped ones; export it again (tools/export_runtime.py)", bundle.path)
        learn = card.runtime.get("features")
        if isinstance(learn, dict) and "file" in learn:  # learn's own network (features.onnx; audioset_windows)
            _check_file(bundle.path / learn["file"], learn.get("sha256", ""), f"runtime file {learn['file']}",
                        bundle.path)
            if learn.get("exported_from_sha256") != features_source():
                raise ModelError(f"runtime file {learn['file']} was exported from other musicnn or EfficientAT "
                                 "weights than the shipped ones; export it again (tools/export_runtime.py)",
                                 bundle.path)


def features_source() -> str:
    """What a bundle's own ``features.onnx`` (``runtime.features.file``) is exported from: the shipped musicnn and
    EfficientAT weights' sha256s."""
    from genretag.models import efficientat, musicnn

    return f"{musicnn.WEIGHTS_SHA256} {efficientat.WEIGHTS_SHA256}"


def _check_file(path: Path, expected: str, what: str, bundle_path: Path) -> None:
    """The file's sha256 must be ``expected``; it must be a regular file in the bundle's folder (not a
    symbolic link to weights elsewhere, a named pipe that would block, or ``/dev/zero`` that never ends)."""
    try:
        with open_limited(path, limit=None, follow_symlinks=False) as fh:
            actual = _sha256_of(fh)
    except FileNotFoundError as exc:
        raise ModelError(f"{what} missing from bundle", bundle_path) from exc
    except RefusedFile as exc:
        raise ModelError(f"{what} is {exc}: a bundle's files must be regular files inside it", path) from exc
    except OSError as exc:
        raise ModelError(f"cannot read {what}: {os_reason(exc)}", path) from exc
    if actual != expected:
        noun = "weights do" if what.startswith("weights") else f"{what} does"
        raise ModelError(
            f"{noun} not match card.json sha256 (expected {expected[:12]}..., got {actual[:12]}...): "
            "the bundle is corrupt or was modified", path)


def write_card(folder: Path, card: ModelCard) -> Bundle:
    """Write ``card.json`` atomically into ``folder`` (weights already there)."""
    text = json.dumps(card.to_dict(), indent=2, sort_keys=False) + "\n"
    replace_atomically(folder / CARD_FILE, lambda fh: fh.write(text.encode("utf-8")))
    return Bundle(folder, card)
