"""``genretag config``: the effective settings, and where each comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from genretag.cli.common import for_terminal, out
from genretag.cli.options import CONFIG
from genretag.cli.settings import Setting


def config(
    ctx: typer.Context,
    config: Optional[Path] = CONFIG,
) -> None:
    """Print the effective value of every setting the config file can hold, and where it comes from
    (default or the file). The file is TOML: a \\[scan] table (read by scan and apply) and a \\[learn]
    table (read by learn), keys spelled as the long options without dashes, e.g. [bold]top_k = 2[/bold].
    An unknown key or a bad value is an error (exit 2)."""
    from rich.table import Table

    from genretag.cli.settings import CONFIG_ERROR, CONFIG_META, SECTIONS, settings

    path = ctx.meta[CONFIG_META]  # --config's callback read the file
    root = ctx.find_root().command
    table = Table("setting", "value", "from", title=f"config file: {for_terminal(path)}"
                  + ("" if path.is_file() else " (not present)"), title_justify="left")
    seen = set()
    for section, name in ((section, name) for section, names in SECTIONS.items() for name in names):
        command = root.get_command(ctx, name)
        # parsed as the command would parse it, without running it: the file fills Click's default map
        sub = command.make_context(name, [] if config is None else ["--config", str(config)], parent=ctx,
                                   resilient_parsing=True)
        if CONFIG_ERROR in sub.meta:
            raise sub.meta[CONFIG_ERROR]
        for setting in filled_in(in_effect(settings(sub))):
            if (section, setting.name) not in seen:
                seen.add((section, setting.name))
                value = "" if setting.value is None else str(getattr(setting.value, "value", setting.value))
                table.add_row(for_terminal(f"[{section}] {setting.name}"), for_terminal(value),
                              for_terminal(setting.source))
    out().print(table)


def filled_in(settings: list[Setting]) -> list[Setting]:
    """Settings left open (None) shown with the value a scan then uses: the confidence floors from the model's
    card, the prediction store's default path."""
    from genretag.errors import GenretagError
    from genretag.store import default_store_path

    values = {s.name: s.value for s in settings}
    calibration = None
    shown_settings = []
    for s in settings:
        if s.value is None and s.name in ("min_confidence", "next_min_confidence"):
            if calibration is None:
                from genretag.models.registry import resolve_model

                try:
                    calibration = resolve_model(values.get("model") or "default").card.calibration
                except GenretagError:
                    calibration = {}
            floor = float(calibration.get(s.name, 0.0))
            s = Setting(s.name, f"{floor:g}", f"{s.source}: the model's card")
        elif s.value is None and s.name == "store" and not values.get("no_store"):
            s = Setting(s.name, str(default_store_path()), s.source)
        shown_settings.append(s)
    return shown_settings


def in_effect(settings: list[Setting]) -> list[Setting]:
    """The settings as a scan runs with them: on the Ray engine (``engine = "ray"``), which writes no
    tags, ``dry_run`` is on whatever it is set to."""
    engine = next((s for s in settings if s.name == "engine"), None)
    if engine is None or engine.value == "local":
        return settings
    return [Setting(s.name, True, f"engine = {engine.value}: scan writes no tags")
            if s.name == "dry_run" else s for s in settings]
