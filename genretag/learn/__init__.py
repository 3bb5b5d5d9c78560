"""``genretag learn``: learn the owner's own genres from the files they tagged, to tag the rest.

:func:`learn` (in :mod:`genretag.learn.core`) returns a :class:`LearnResult`; the bundle it writes runs
in ``genretag scan --model DIR`` like any other. Importing this package loads no Keras.
"""

from genretag.learn.core import LearnResult, learn, read_learned

__all__ = ["LearnResult", "learn", "read_learned"]
