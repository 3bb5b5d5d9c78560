"""What a command needs beyond ``pip install genretag``: pyproject.toml's extras, checked before any work.

``pip install genretag`` is what scan, apply, show, config and models run on (OpenVINO runs the shipped
model). Training, evaluation and running a model on Keras need ``genretag[train]``; a command that needs it
says so in one line (a :class:`~genretag.errors.UsageError`: exit 2) instead of failing on an import.
"""

from __future__ import annotations

import importlib.util

from genretag.errors import UsageError

EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "train": ("keras", "tensorflow", "librosa", "sklearn", "pandas", "matplotlib"),
}
"""The top-level modules each extra installs (pyproject.toml ``[project.optional-dependencies]``); tf2onnx is
left out: without it ``genretag train`` still trains and says the bundle runs on Keras."""


def install_hint(extra: str) -> str:
    """``pip install 'genretag[train]'``."""
    return f"pip install 'genretag[{extra}]'"


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that can't be found (none are imported: this takes microseconds)."""
    missing = []
    for name in EXTRA_MODULES[extra]:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a module set to None in sys.modules, or a finder that refuses it
            found = False
        if not found:
            missing.append(name)
    return missing


def require(extra: str, *, purpose: str) -> None:
    """UsageError ``<purpose> needs: pip install 'genretag[<extra>]'`` when any module of ``extra`` is missing."""
    if missing_modules(extra):
        raise UsageError(f"{purpose} needs: {install_hint(extra)}")
