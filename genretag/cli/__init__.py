"""The ``genretag`` command: one module per subcommand; parse -> call library -> render."""

from __future__ import annotations

import typer

from genretag import __version__

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
    """``genretag 0.4.0 (default model: genretag-default 3.0)``; the model part only when one is bundled."""
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


def _register() -> None:
    from genretag.cli import apply, learn, models, scan, show, train, undo
    from genretag.cli import config as config_cmd
    from genretag.cli import eval as eval_cmd

    app.command("scan")(scan.scan)
    app.command("apply")(apply.apply)
    app.command("show")(show.show)
    app.command("undo")(undo.undo)
    app.command("config")(config_cmd.config)
    app.command("train")(train.train)
    app.command("learn")(learn.learn)
    app.command("eval")(eval_cmd.evaluate)
    app.command("models")(models.models)


_register()


def main() -> None:
    import os

    from genretag.cli.common import keep_stderr
    from genretag.config import HIDE_TF_STARTUP

    keep_stderr()  # the command's own messages go through a copy of fd 2 ...
    os.environ.setdefault(HIDE_TF_STARTUP, "1")  # ... so TensorFlow's start-up lines may be hidden
    app()
