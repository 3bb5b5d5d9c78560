"""The tag half: read a file's genre, and change it atomically (only the genre and provenance fields).

:mod:`~genretag.tags.containers` knows each container's fields,
:mod:`~genretag.tags.write` makes the change atomic, :mod:`~genretag.tags.id3check`
refuses damaged ID3 tags and keeps frames unparsed, :mod:`~genretag.tags.safefile` holds the
file-safety steps, :mod:`~genretag.tags.othertags` checks that no other tag changed,
:mod:`~genretag.tags.riffinfo` reads and writes a WAV's INFO chunk, :mod:`~genretag.tags.players`
says which genre players show.
Imports mutagen, never TensorFlow.
"""

from genretag.tags.containers import GENRE_FIELDS, ID3V23_SEPARATOR, OWN_KEY, TagState, read_tags, split_genres
from genretag.tags.write import TMP_SUFFIX, Plan, remove_stale_copies, write_genre

__all__ = ["GENRE_FIELDS", "ID3V23_SEPARATOR", "OWN_KEY", "Plan", "TMP_SUFFIX", "TagState", "read_tags", "remove_stale_copies",
           "split_genres", "write_genre"]
