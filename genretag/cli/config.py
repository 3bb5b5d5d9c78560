"""``genretag config``: the effective settings, and where each comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from genretag.cli import options as O
from genretag.cli.common import handles_errors, out, shown


@handles_errors
def config(
    ctx: typer.Context,
    config: Optional[Path] = O.CONFIG,
) -> None:
    """Print the effective value of every setting the config file can hold, and where it comes from
    (default or the file). The file is TOML: a [scan] table (read by scan and apply), keys spelled as
    the long options without dashes, e.g. [bold]top_k = 2[/bold]. An unknown key or a bad value is an
    error (exit 2)."""
    from rich.table import Table

    from genretag.cli.settings import read_config, resolve

    path, _ = read_config(config)
    root = ctx.find_root().command
    table = Table("setting", "value", "from", title=f"config file: {shown(path)}"
                  + ("" if path.is_file() else " (not present)"), title_justify="left")
    seen = set()
    for name in ("scan", "apply"):
        command = root.get_command(ctx, name)
        sub = command.make_context(name, [], parent=ctx, resilient_parsing=True)
        params = dict(sub.params)
        for setting in resolve(sub, params, config=config):
            if setting.name not in seen:
                seen.add(setting.name)
                value = "" if setting.value is None else str(getattr(setting.value, "value", setting.value))
                table.add_row(shown(f"[scan] {setting.name}"), shown(value), shown(setting.source))
    out().print(table)
