"""``genretag learn``: learn the owner's genres from the files they tagged; write a bundle for ``scan --model``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from genretag.cli.common import EXIT_FAILURES, err, error_line, for_terminal, out
from genretag.cli.options import CONFIG, NO_STORE, STORE
from genretag.config import LearnConfig, default_jobs
from genretag.errors import UsageError

DEFAULTS = LearnConfig()
SHOW_LEFT_OUT = 12
"""Genres left out that are listed one by one; the rest are counted."""


def learn(
    paths: Optional[list[str]] = typer.Argument(None, help="The library: audio files and folders (walked "
                                                "recursively). With --update: default, the libraries learned before."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder for the learned model bundle (replaced as a whole)."),
    min_tracks: Optional[int] = typer.Option(None, "--min-tracks", min=2,
                                             help=f"Leave out genres on fewer files (default {DEFAULTS.min_tracks})."),
    min_precision: Optional[float] = typer.Option(None, "--min-precision", min=0.0, max=1.0,
                                                  help="Leave out genres whose cross-validated precision is lower "
                                                  f"(default {DEFAULTS.min_precision:g})."),
    field: Optional[str] = typer.Option(None, "--field", help="Read the genres from: genre (the file's genre "
                                        "field, default) or genretag (GENRETAG_GENRE)."),
    genre_map: Optional[Path] = typer.Option(None, "--genre-map", exists=True, dir_okay=False,
                                             help="CSV of 'genre as tagged,genre to learn' rows: merges spellings "
                                             "(Alt. Rock,Alternative Rock); 'Genre,' leaves a genre out."),
    update: bool = typer.Option(False, "--update", help="Learn again into --out's learned model, with the files "
                                "tagged since (only new or changed files are decoded), under its next version."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name written in the card and the files' "
                                       "provenance (default genretag-learned)."),
    export: bool = typer.Option(True, "--export/--no-export", help="Also write model.onnx, so scans need no "
                                "TensorFlow (needs tf2onnx, part of pip install 'genretag\\[train]')."),
    jobs: int = typer.Option(default_jobs(), "--jobs", "-j", min=0, help="Decode worker processes."),
    timeout: float = typer.Option(120.0, "--timeout", min=1.0, help="Seconds one file may take to decode."),
    store: Optional[Path] = STORE,
    no_store: bool = NO_STORE,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    config: Optional[Path] = CONFIG,
) -> None:
    """Learn your own genres from the files you tagged, to tag the rest with the same words.

    Then: [bold]genretag scan LIBRARY --model OUT[/bold] tags the files without a genre.

    The config file's \\[learn] table sets any option by its long name (min_tracks = 10); flags win.

    With --update, what the command line and the config file leave open is what the model was learned with.
    """
    from genretag.extras import require

    require("train", purpose="genretag learn")
    settings, version, libraries = _settings(paths, out_dir, update=update, min_tracks=min_tracks,
                                             min_precision=min_precision, field=field, genre_map=genre_map)
    stderr = err()
    mapping = _genre_map(settings.pop("genre_map_path"), settings.pop("genre_map"))
    config = LearnConfig(**settings)
    store_handle = _open_store(store, no_store, stderr)
    from genretag.learn import learn as run

    def on_event(event: str, info: dict) -> None:
        if quiet:
            return
        if event == "features" and info["to_decode"]:
            stderr.print(f"features: {info['known']} tracks from the store, {info['to_decode']} to decode")
        elif event == "fitting":
            stderr.print(f"fitting {info['genres']} genres on {info['tracks']} tracks")

    try:
        result = run([Path(p) for p in libraries], out=out_dir, config=config, genre_map=mapping, store=store_handle,
                     jobs=jobs, timeout=timeout, name=name or settings_name(update, out_dir), version=version,
                     export=export, command=shlex.join(["genretag", *sys.argv[1:]]),
                     extra_card={"genre_map_file": str(genre_map.resolve()) if genre_map else None},
                     on_event=on_event)
    finally:
        if store_handle is not None:
            store_handle.close()
    _render(result, stderr)
    if result.problems:
        raise typer.Exit(EXIT_FAILURES)


def settings_name(update: bool, out_dir: Path) -> str:
    if update:
        from genretag.learn import read_learned

        return read_learned(out_dir)["name"]
    return "genretag-learned"


def _settings(paths, out_dir: Path, *, update: bool, **given):
    """The learn settings: the command line's, over (with ``--update``) those the bundle was learned with."""
    values = {"min_tracks": given["min_tracks"], "min_precision": given["min_precision"], "field": given["field"]}
    if not update:
        if not paths:
            raise UsageError("name the library to learn from (or --update an existing learned model)")
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError("--out names a file; a bundle is a folder", out_dir)
        chosen = {k: v for k, v in values.items() if v is not None}
        return {**chosen, "genre_map_path": given["genre_map"], "genre_map": None}, "1", paths
    from genretag.learn import read_learned

    before = read_learned(out_dir)
    old = before.get("config", {})
    chosen = {k: (v if v is not None else old.get(k, getattr(DEFAULTS, k))) for k, v in values.items()}
    chosen["features"] = tuple(old.get("features", DEFAULTS.features))
    libraries = paths or before.get("libraries") or []
    version = str(int(before["version"]) + 1) if str(before["version"]).isdigit() else f"{before['version']}.1"
    return {**chosen, "genre_map_path": given["genre_map"], "genre_map": before.get("genre_map")}, version, libraries


def _genre_map(path: Optional[Path], stored: Optional[dict]) -> dict[str, str]:
    from genretag.genremap import read_genre_map

    if path is not None:
        return read_genre_map(path)
    return dict(stored or {})


def _open_store(store: Optional[Path], no_store: bool, stderr):
    from genretag.errors import StoreError
    from genretag.store import Store, default_store_path

    if no_store:
        return None
    try:
        return Store(Path(store).expanduser() if store else default_store_path())
    except StoreError as exc:
        stderr.print(error_line(exc.reason, exc.path))
        stderr.print("features are decoded again and not kept")
        return None


def _render(result, stderr) -> None:
    console = out()
    for path, reason in result.problems:
        stderr.print(error_line(reason, path))
    console.print(f"learned {len(result.genres)} genres from {result.trained_on} tagged tracks "
                  f"({result.decoded} decoded, {max(result.trained_on - result.decoded, 0)} from the store); cross-validated by album, {result.folds} folds:")
    width = max(len(s.genre) for s in result.genres)
    console.print(f"  {'genre':<{width}}  precision  recall  tracks")
    for s in result.genres:
        console.print(f"  {for_terminal(s.genre):<{width}}  {s.precision:9.2f}  {s.recall:6.2f}  {s.tracks:6d}")
    console.print(f"  accuracy {result.accuracy:.2f} (a track's predicted genre is one of its own)")
    if result.left_out:
        console.print(f"left out {len(result.left_out)} genres:")
        for g in result.left_out[:SHOW_LEFT_OUT]:
            console.print(f"  {for_terminal(g.genre)}: {for_terminal(g.reason)}")
        if len(result.left_out) > SHOW_LEFT_OUT:
            console.print(f"  ... and {len(result.left_out) - SHOW_LEFT_OUT} more (the card lists them all)")
    where = f" on {'OpenVINO' if result.feature_runtime == 'openvino' else 'Keras'}" if result.feature_runtime else ""
    console.print(f"features {result.seconds_features:.1f} s ({result.decoded} decoded{where}), "
                  f"fit {result.seconds_fit:.1f} s")
    console.print(f"model {for_terminal(result.bundle.card.model_id)} in {for_terminal(result.bundle.path)}: "
                  f"{result.export_note}")
    console.print(f"next: genretag scan {for_terminal(' '.join(result.bundle.card.training['learned']['libraries']))} "
                  f"--model {for_terminal(result.bundle.path)} --dry-run   "
                  f"({result.untagged} files without a learned genre)")
