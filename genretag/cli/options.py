"""Options that several commands share (scan and apply), defined once; defaults from :class:`ScanOptions`."""

from __future__ import annotations

import typer

from genretag.cli.data import _choices
from genretag.cli.settings import load
from genretag.config import DEFAULT_MODEL, GROUPS, WRITE_TO, ScanOptions

DEFAULTS = ScanOptions()
Group = _choices("Group", GROUPS)
WriteTo = _choices("WriteTo", WRITE_TO)

MODEL = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Bundled model name or bundle folder.")
DRY_RUN = typer.Option(DEFAULTS.dry_run, "--dry-run", "-n",
                       help="Write nothing to audio files; show old -> new genre per file.")
CSV = typer.Option(None, "--csv", dir_okay=False, help="Write one row per file to this CSV.")
JSON = typer.Option(None, "--json", dir_okay=False,
                    help="Write one JSON object per file (JSON Lines; 'genretag apply' reads it back).")
TOP_K = typer.Option(DEFAULTS.top_k, "--top-k", min=1, help="Write up to this many genres per file.")
MIN_CONFIDENCE = typer.Option(DEFAULTS.min_confidence, "--min-confidence", min=0.0, max=1.0, show_default=False,
                              help="Write the top genre only at this calibrated probability or more (a file below "
                                   "gets none). Default: the model's own floor, from its card ('genretag models "
                                   "default' and 'genretag config' show it); 0 for models without one.")
NEXT_MIN_CONFIDENCE = typer.Option(DEFAULTS.next_min_confidence, "--next-min-confidence", min=0.0, max=1.0,
                                   show_default=False,
                                   help="With --top-k above 1: each further genre needs this probability. Default: "
                                        "the model's own, from its card; 0 for models without one.")
GENRE_MAP = typer.Option(None, "--genre-map", exists=True, dir_okay=False,
                         help="CSV of 'label,new name' rows to rename genres (e.g. Hip-Hop,Hip Hop; 'Spoken,' never "
                              "writes Spoken).")
OVERWRITE = typer.Option(DEFAULTS.overwrite, "--overwrite", help="Replace genre tags the files already have.")
ID3V23 = typer.Option(DEFAULTS.id3v23, "--id3v23", help="Write ID3v2.3 instead of v2.4 (for old players).")
KEEP_MTIME = typer.Option(DEFAULTS.keep_mtime, "--keep-mtime", help="Keep each file's modification time.")
GROUP = typer.Option(DEFAULTS.group, "--group",
                     help="Decide a genre per track, or per album / artist from the windows of all their tracks "
                          "(album artist + album tags, else the folder; compilations per track).")
WRITE_TO_FIELD = typer.Option(DEFAULTS.write_to, "--write-to",
                              help="genre: the file's genre field; genretag: genretag's own GENRETAG_GENRE field "
                                   "(your curated genres are never touched).")
MERGE = typer.Option(DEFAULTS.merge, "--merge", help="Add the predicted genres to the field's existing ones.")
ID3V23_SEP = typer.Option(DEFAULTS.id3v23_sep, "--id3v23-sep",
                          help="Joins several genres in ID3v2.3 (one text per frame).")
STYLES = typer.Option(DEFAULTS.styles, "--styles",
                      help="After each genre written, also write its best style (e.g. Rock; Metal) when the model "
                           "has styles and that style's score reaches the floor its card sets; --genre-map renames "
                           "styles too ('Metal,' never writes Metal). --top-k counts genres only. A model without "
                           "styles writes genres only (with a warning).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar and no per-file lines.")
VERBOSE = typer.Option(False, "--verbose", "-v", help="A line per file even when writing tags.")
STORE = typer.Option(None, "--store", dir_okay=False,
                     help="Prediction store (SQLite) to use; default ~/.cache/genretag/predictions.sqlite.")
NO_STORE = typer.Option(False, "--no-store", help="Neither read nor write the prediction store.")
CONFIG = typer.Option(None, "--config", dir_okay=False, is_eager=True, callback=load,
                      help="Settings file (TOML); default ~/.config/genretag/config.toml. Flags win.")
"""Read first (eager): the file's [scan] table fills the options the command line leaves out (Click's default map)."""


def choice(value: object) -> str:
    """A choice option's value as the library takes it (Typer gives an Enum member; a default may be the text)."""
    return str(getattr(value, "value", value))
