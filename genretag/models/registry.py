"""Find models: bundled ones by name, any bundle by path."""

from __future__ import annotations

from pathlib import Path

from genretag.errors import ModelError
from genretag.models.bundle import CARD_FILE, Bundle, read_bundle

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "bundled"
"""Bundles shipped inside the package, one folder each (``bundled/<name>/``)."""

from genretag.config import DEFAULT_MODEL  # noqa: E402 - re-exported: where the default's name lives

NO_MODEL_HINT = (
    "train one with 'genretag train --dataset LABELS.csv --out DIR' and pass '--model DIR'"
)


def list_bundled() -> list[Bundle]:
    """The bundles shipped in the package, sorted by folder name."""
    if not BUNDLED_DIR.is_dir():
        return []
    return [read_bundle(p) for p in sorted(BUNDLED_DIR.iterdir()) if (p / CARD_FILE).is_file()]


def resolve_model(name_or_path: str) -> Bundle:
    """A bundle from a bundled name (``default``) or a bundle folder path."""
    candidate = Path(name_or_path).expanduser()
    if candidate.exists():
        return read_bundle(candidate)
    bundled = BUNDLED_DIR / name_or_path
    if "/" not in name_or_path and (bundled / CARD_FILE).is_file():
        return read_bundle(bundled)
    names = [b.path.name for b in list_bundled()]
    if name_or_path == DEFAULT_MODEL and DEFAULT_MODEL not in names:
        raise ModelError(f"no default model is installed; {NO_MODEL_HINT}")
    available = f"bundled models: {', '.join(names)}" if names else "no models are bundled"
    raise ModelError(f"no model named {name_or_path!r} and no bundle at that path ({available})")
