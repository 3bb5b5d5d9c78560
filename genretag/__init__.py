"""genretag: listen to a music library and tag every track with its genre.

The library API (see README "Use it from Python")::

    import genretag

    model = genretag.load_model()                   # the default model, resolved once (or a bundle folder)
    model.predict_file("song.mp3")                  # -> Prediction (.genre, .confidence, .ranked())
    for result in model.predict(["~/Music"]):       # -> ScanResult per file, failures as values
        decided = model.decide(result, genretag.ScanOptions(top_k=2))  # what it would get (pure; the card's floors)
        genretag.write(decided, model_id=model.model_id)                 # write it, atomically
    model.tag(["~/Music"], options=genretag.ScanOptions(dry_run=True))  # all three: genretag scan

The functions ``genretag.predict_file``, ``predict``, ``tag``, ``decide``... do the same with ``model=``
(a name, a folder or a loaded :class:`Model`; default: the default model).

Importing this package is cheap: nothing here loads TensorFlow, Keras, librosa
or mutagen; a model loads when a prediction needs it.
"""

from typing import Any

from genretag.version import __version__  # noqa: E402

from genretag.api import (
    Model, apply, apply_report, decide, find_model, load_model, predict, predict_file, tag, write,
)  # noqa: E402
from genretag.config import ScanOptions  # noqa: E402
from genretag.errors import DecodeError, GenretagError, ModelError, TagError, UsageError  # noqa: E402

_LAZY = {
    "Prediction": "genretag.scan", "ScanResult": "genretag.scan", "read_genre_map": "genretag.genremap",
    "read_tags": "genretag.tags", "write_genre": "genretag.tags", "TagState": "genretag.tags",
    "discover": "genretag.discover",
}


def __getattr__(name: str) -> Any:
    """Names whose modules import numpy or mutagen load on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genretag' has no attribute {name!r}")


__all__ = [
    "DecodeError", "GenretagError", "Model", "ModelError", "Prediction", "ScanOptions", "ScanResult", "TagError",
    "TagState", "UsageError", "__version__", "apply", "apply_report", "decide", "discover", "find_model", "load_model", "predict", "predict_file",
    "read_genre_map", "read_tags", "tag", "write", "write_genre",
]
