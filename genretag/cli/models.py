"""``genretag models``: list the bundled models (or describe one bundle)."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.table import Table

from genretag.cli.common import for_terminal, out
from genretag.errors import ModelError, UsageError
from genretag.models.registry import list_bundled, resolve_model


def models(
    model: Optional[str] = typer.Argument(None, help="A bundled name or bundle folder to describe."),
    as_json: bool = typer.Option(False, "--json", help="Print the card(s) as JSON."),
) -> None:
    """List the bundled models, or show one model's card (labels, test figures, confidence floors, training)."""
    try:
        bundles = [resolve_model(model)] if model else list_bundled()
    except ModelError as exc:
        if exc.path is None:  # no bundle there and no bundled model of that name: the argument is wrong
            raise UsageError(exc.reason) from exc
        raise
    console = out()
    if as_json:
        console.print_json(json.dumps([b.card.to_dict() for b in bundles]))
        return
    if model:
        for key, value in card_lines(bundles[0]):
            console.print(f"[bold]{key}:[/bold] {for_terminal(value)}" if key else for_terminal(value))
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


def card_lines(bundle) -> list[tuple[str, str]]:
    """A model card as ``(field, text)`` lines for the terminal; every figure is the card's own."""
    card = bundle.card
    lines = [("", f"{card.model_id} ({card.architecture}, {card.params:,} parameters)")]
    if card.description:
        lines.append(("", card.description))
    lines.append(("labels", ", ".join(card.labels)))
    if card.styles:
        lines.append(("styles", ", ".join(f"{s.name} ({s.parent}, floor {s.floor:g})" for s in card.styles)))
    for part in ("test", "val"):
        m = card.metrics.get(part)
        if m and m.get("track_accuracy") is not None:
            lines.append((f"{part} split", f"{m.get('tracks', '?')} tracks: {m['track_accuracy']:.1%} right, "
                                           f"macro-F1 {m.get('track_macro_f1', float('nan')):.3f}"))
    calibration = card.calibration
    if "min_confidence" in calibration:
        floor = float(calibration["min_confidence"])
        at = next((r for r in calibration.get("val", {}).get("top", []) if r.get("floor") == floor), None)
        said = f" (validation: {at['precision']:.0%} of the tracks it tags are right, it tags {at['coverage']:.0%})" \
            if at else ""
        lines.append(("min_confidence", f"{floor:g}{said}"))
    else:
        lines.append(("min_confidence", "0 (the card sets no floor)"))
    if "next_min_confidence" in calibration:
        lines.append(("next_min_confidence", f"{float(calibration['next_min_confidence']):g}"))
    training = card.training
    trained = ", ".join(str(v) for v in (training.get("dataset"), training.get("trained_at"), training.get("machine"))
                        if v)
    if trained:
        lines.append(("trained on", trained))
    lines.append(("bundle", str(bundle.path)))
    return lines
