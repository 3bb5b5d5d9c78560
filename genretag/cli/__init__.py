"""The ``genretag`` command: one module per subcommand; parse -> call library -> render."""

from __future__ import annotations

import typer
import typer.core

from genretag.version import __version__

app = typer.Typer(
    name="genretag",
    help="Listen to a music library and tag every track with its genre.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    """``genretag VERSION (default model: MODEL ID)``; the model part only when one is bundled."""
    if value:
        from genretag.errors import ModelError
        from genretag.models.bundle import read_bundle
        from genretag.models.registry import BUNDLED_DIR, DEFAULT_MODEL

        try:  # the bundled one, whatever folder the command runs in
            model = f" (default model: {read_bundle(BUNDLED_DIR / DEFAULT_MODEL).card.model_id})"
        except ModelError:
            model = ""
        typer.echo(f"genretag {__version__}{model}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version (and the default model's) and exit."),
) -> None:
    """Listen to a music library and tag every track with its genre.

    Start with [bold]genretag scan ~/Music --dry-run[/bold] to see what would be written.
    """
    ctx.obj = {"debug": debug}


class _Command(typer.core.TyperCommand):
    """A subcommand whose usage line and help name arguments as a reader expects: ``scan [OPTIONS] PATH...``
    (Typer 0.29 writes ``{paths}...`` and a ``<list[Path]>`` type column)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.param_type_name == "argument":
                param.display_type_rich = lambda ctx: None  # the metavar says it

    def invoke(self, ctx):
        """Run the command inside the one top-level error handler (:func:`genretag.cli.common.handled`)."""
        from genretag.cli.common import handled

        with handled(ctx):
            return super().invoke(ctx)

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            name = param.metavar or param.name.upper()
            if param.nargs != 1 and not name.endswith("..."):
                name += "..."
            pieces.append(name if param.required else f"[{name}]")
        return pieces


def _register() -> None:
    from genretag.cli import apply, learn, models, scan, show, train, undo
    from genretag.cli import config as config_cmd
    from genretag.cli import eval as eval_cmd

    for name, fn in (("scan", scan.scan), ("apply", apply.apply), ("show", show.show), ("undo", undo.undo),
                     ("config", config_cmd.config), ("train", train.train), ("learn", learn.learn),
                     ("eval", eval_cmd.evaluate), ("models", models.models)):
        app.command(name, cls=_Command)(fn)


_register()


def main() -> None:
    import os

    from genretag.cli.common import keep_stderr
    from genretag.config import HIDE_TF_STARTUP

    keep_stderr()  # the command's own messages go through a copy of fd 2 ...
    os.environ.setdefault(HIDE_TF_STARTUP, "1")  # ... so TensorFlow's start-up lines may be hidden
    app()
