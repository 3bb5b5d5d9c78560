"""What other readers show of a file's genre: values that mean "none", and which of several values shows.

Measured with ffprobe 5.1 (FFmpeg-based players show what it shows); used by
:mod:`genretag.tags.containers` to read the genre a player shows and to store
several genres so the first is the one shown.
"""

from __future__ import annotations

from typing import Any

PLACEHOLDER_GENRES = frozenset({"none", "unknown", "unknown genre", "other", "genre"})
"""Genre values that mean "no genre", compared case-insensitively and without brackets around them:
``(None)`` (a real game soundtrack), ``Unknown``, ``<Unknown>``, ``Other`` (ID3v1 genre 12, many
rippers' default), ``genre`` (a form field left as it was). A file holding only these has no genre:
it is tagged without ``--overwrite``, and they are not kept by ``--merge``."""


def is_placeholder(name: str) -> bool:
    """Whether genre value ``name`` is one of :data:`PLACEHOLDER_GENRES`."""
    return name.strip().strip("()[]<>").strip().casefold() in PLACEHOLDER_GENRES


def asf_shows_last(audio: Any) -> bool:
    """Whether FFmpeg shows the last of several values of an ASF attribute, not the first.

    mutagen stores the first value in the Extended Content Description object and
    the others in the Metadata Library (inside the Header Extension object); FFmpeg
    reads the header's objects in file order and shows the value it read last.
    Measured with ffprobe 5.1: ``[Rock, Pop]`` shows ``Rock`` when the Header
    Extension comes first (as FFmpeg writes WMA), ``Pop`` when it comes after (as
    other writers put it, and as mutagen appends a missing one).
    """
    names = [type(o).__name__ for o in audio._header.objects]
    if "HeaderExtensionObject" not in names:
        return True
    if "ExtendedContentDescriptionObject" not in names:
        return False  # mutagen appends it after the Header Extension
    return names.index("HeaderExtensionObject") > names.index("ExtendedContentDescriptionObject")
