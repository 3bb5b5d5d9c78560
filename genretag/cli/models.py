"""``genretag models``: list the bundled models (or describe one bundle)."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from genretag.cli.common import handles_errors, out
from genretag.models.registry import list_bundled, resolve_model


@handles_errors
def models(
    model: Optional[str] = typer.Argument(None, help="A bundled name or bundle folder to describe."),
    as_json: bool = typer.Option(False, "--json", help="Print the card(s) as JSON."),
) -> None:
    """List the bundled models, or show one model's card."""
    bundles = [resolve_model(model)] if model else list_bundled()
    console = out()
    if as_json:
        console.print_json(json.dumps([b.card.to_dict() for b in bundles]))
        return
    if not bundles:
        console.print("No models are bundled. Train one with [bold]genretag train[/bold] and use --model DIR.")
        return
    table = Table(title="genretag models")
    for col in ("name", "model id", "architecture", "classes", "test accuracy", "test macro-F1"):
        table.add_column(col, no_wrap=col in ("name", "model id"))
    for b in bundles:
        test = b.card.metrics.get("test", {})
        acc, f1 = test.get("track_accuracy"), test.get("track_macro_f1")
        table.add_row(b.path.name, b.card.model_id, b.card.architecture, str(len(b.card.labels)),
                      "" if acc is None else f"{acc:.1%}", "" if f1 is None else f"{f1:.3f}")
    console.print(table)
    for b in bundles:
        console.print(f"{b.path.name}: {', '.join(b.card.labels)} ({b.path})")
