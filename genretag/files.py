"""Write a file so that readers see the old one or the new one, never half of one.

Reports, plots, model cards and the feature cache are written through
:func:`replace_atomically`. Audio files have their own, stricter path
(:mod:`genretag.tags.write`: copy, tag, read back, check, rename).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def replace_atomically(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Create or replace ``path`` with what ``write(fh)`` puts into a binary file handle.

    The bytes go to a hidden temporary file in the same folder (created if
    missing), which is renamed over ``path`` once ``write`` returns; if ``write``
    raises, the temporary file is removed and ``path`` is untouched. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(name, 0o666 & ~_umask())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process umask (mkstemp makes files 0600; a report should get the usual mode)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
