"""The config file: TOML settings for the commands' options; flags on the command line win.

``$XDG_CONFIG_HOME/genretag/config.toml`` (``~/.config/genretag/config.toml``), or the
file ``--config FILE`` names. One table per command, keys spelled as the long option
without dashes (``--top-k`` is ``top_k``)::

    [scan]
    top_k = 2
    min_confidence = 0.3
    genre_map = "~/music/genres.csv"
    store = "~/music/.genretag.sqlite"   # or store = false for no store

``[scan]`` also serves ``genretag apply`` (the options the two share); ``[learn]`` serves
``genretag learn`` (``min_tracks = 10``, ``field = "genretag"``, ``out = "~/music-model"``...).
An unknown table or key, or a value an option would refuse, is a :class:`UsageError` naming it.
"""

from __future__ import annotations

import inspect
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from genretag.config import user_folder
from genretag.errors import UsageError

CONFIG_FILE = "config.toml"
SECTIONS = {"scan": ("scan", "apply"), "learn": ("learn",)}
"""Config tables, and the commands that read each."""
NOT_SETTABLE = {"paths", "sources", "config", "quiet", "verbose", "update"}
"""Parameters that only make sense on the command line (``learn --update`` is what to do, not a setting)."""


def default_config_path() -> Path:
    return user_folder("config") / CONFIG_FILE


@dataclass(frozen=True)
class Setting:
    """One option's effective value and where it came from."""

    name: str
    value: Any
    source: str
    """``default``, ``command line`` or the config file's path."""


def config_path(path: Path | None) -> Path:
    """The config file a command reads: the one ``--config`` names, else the default."""
    return Path(path).expanduser() if path is not None else default_config_path()


def read_config(path: Path | None) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The config file's tables (``{}`` when the default file does not exist).

    An explicitly named file must exist. Raises :class:`UsageError` for a file that
    isn't TOML, an unknown table, or a table that is not a table.
    """
    explicit = path is not None
    path = config_path(path)
    from genretag.config import MAX_CONFIG_BYTES
    from genretag.errors import os_reason
    from genretag.files import read_limited

    try:
        data = tomllib.loads(read_limited(path, limit=MAX_CONFIG_BYTES).decode("utf-8"))
    except FileNotFoundError as exc:
        if explicit:
            raise UsageError("config file not found", path) from exc
        return path, {}
    except OSError as exc:
        raise UsageError(f"cannot read config file: {os_reason(exc)}", path) from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read config file: not UTF-8 text (byte {exc.start})", path) from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file is not valid TOML: {exc}", path) from exc
    for table, values in data.items():
        if table not in SECTIONS and not isinstance(values, dict):  # `top_k = 2` above any [table]
            raise UsageError(f"'{table}' in config file is outside any table: settings go under "
                             f"{' or '.join(f'[{s}]' for s in SECTIONS)}", path)
        if table not in SECTIONS:
            raise UsageError(f"unknown table [{table}] in config file (known: {', '.join(f'[{s}]' for s in SECTIONS)})",
                             path)
        if not isinstance(values, dict):
            raise UsageError(f"'{table}' in config file must be a table ([{table}])", path)
    return path, data


def load(ctx: typer.Context, param: typer.CallbackParam, value: Optional[Path]) -> Optional[Path]:
    """``--config``'s callback (an eager option: it runs before the others): the config file's table for this
    command becomes the context's ``default_map``, so Click fills every option the command line leaves out from
    it, converted and checked as if typed; which one did is ``ctx.get_parameter_source(name)`` (``DEFAULT_MAP``).
    The file's path is kept in ``ctx.meta[CONFIG_META]``. A bad file or value is a usage error (exit 2); while
    ``genretag config`` parses a command without running it (``resilient_parsing``), the error is kept in
    ``ctx.meta[CONFIG_ERROR]`` for it to say."""
    from genretag.cli.common import fail

    try:
        path, data = read_config(value)
        ctx.meta[CONFIG_META] = path
        table = next((t for t, commands in SECTIONS.items() if ctx.command.name in commands), None)
        if table is not None:
            ctx.default_map = {**(ctx.default_map or {}), **_defaults(ctx, dict(data.get(table, {})), table, path)}
    except UsageError as exc:
        if not ctx.resilient_parsing:
            fail(ctx, exc)
        ctx.meta[CONFIG_ERROR] = exc
    return value


CONFIG_META = "genretag.config_file"
"""Where :func:`load` leaves the config file's path in ``ctx.meta``."""
CONFIG_ERROR = "genretag.config_error"
"""Where :func:`load` leaves what was wrong with the config file when parsing resiliently."""


def _defaults(ctx: Any, values: dict[str, Any], table: str, path: Path) -> dict[str, Any]:
    """The table's values by parameter name, each checked and converted as its option would (a value the
    option refuses is said with its key and the file's path, before Click sees it)."""
    settable = {key_of(p): p for p in ctx.command.params if p.name not in NOT_SETTABLE}
    shared = _options_of(table)
    for key in values:
        if key not in settable and key not in shared:
            raise UsageError(f"unknown setting '{key}' in [{table}] of config file", path)
    if values.get("store") is False and "no_store" in settable:  # store = false: no store
        values.pop("store")
        values["no_store"] = True
    defaults = {}
    for key, value in values.items():
        if key in settable:
            param = settable[key]
            where = f"'{key}' in [{table}] of config file"
            defaults[param.name] = _convert(param, value, ctx, where=where, path=path)
    return defaults


def settings(ctx: Any) -> list[Setting]:
    """Every settable option of a parsed command with its value and where it came from: ``command line``,
    the config file's path, or ``default``."""
    path = ctx.meta.get(CONFIG_META)
    found = []
    for param in ctx.command.params:
        if param.name in NOT_SETTABLE:
            continue
        source = ctx.get_parameter_source(param.name)
        name = getattr(source, "name", "DEFAULT")
        where = "command line" if name not in ("DEFAULT", "DEFAULT_MAP") else str(path) if name == "DEFAULT_MAP" \
            else "default"
        found.append(Setting(key_of(param), ctx.params.get(param.name), where))
    return found


def _options_of(table: str) -> set[str]:
    """Keys valid in ``table``: every settable option of every command that reads it."""
    from genretag.cli import app

    names: set[str] = set()
    for info in app.registered_commands:
        if info.name in SECTIONS[table]:
            params = inspect.signature(info.callback).parameters.values()
            names |= {key_of(p.default) for p in params if p.name not in NOT_SETTABLE and hasattr(p.default, "param_decls")}
    return names


def key_of(param: Any) -> str:
    """The config key of an option: its long flag without dashes (``--top-k`` -> ``top_k``)."""
    decls = getattr(param, "opts", None) or getattr(param, "param_decls", None) or [param.name]
    long = [d for d in decls if d.startswith("--")]
    return (long[0][2:] if long else param.name).replace("-", "_")


TOML_TYPES = {bool: "true or false", int: "a whole number", float: "a number", str: "a text"}
"""What a config value must be, by the option's Python type (anything else, a path or a choice, is a text)."""
_TOML_NAMES = {bool: "a boolean", int: "a whole number", float: "a decimal number", str: "a text", list: "an array",
               dict: "a table"}


def _expected(param: Any) -> type:
    """The TOML type an option's value must have: a flag takes a boolean, ``--top-k`` a whole number, ..."""
    if getattr(param, "is_flag", False):
        return bool
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", str)
    return annotation if annotation in (bool, int, float) else str


def _check_type(param: Any, value: Any, *, where: str, path: Path) -> None:
    """A value of the wrong TOML type is refused rather than coerced (``min_confidence = true`` is no 1.0,
    ``top_k = 2.0`` no 2, ``styles = "yes"`` no flag): the command line takes only texts, so only the
    config file can give a wrong type. A whole number is a number (``min_confidence = 1``)."""
    expected = _expected(param)
    ok = type(value) is expected or (expected is float and type(value) is int)
    if not ok:
        got = next((name for kind, name in _TOML_NAMES.items() if type(value) is kind), type(value).__name__)
        raise UsageError(f"bad value for {where}: expected {TOML_TYPES[expected]}, got {got} ({_toml(value)})", path)


def _toml(value: Any) -> str:
    """A value as the config file spells it, cut short."""
    import json

    text = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value, ensure_ascii=True,
                                                                                   default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _convert(param: Any, value: Any, ctx: Any, *, where: str, path: Path) -> Any:
    _check_type(param, value, where=where, path=path)
    if isinstance(value, str) and value.startswith("~"):
        value = os.path.expanduser(value)
    try:
        param.process_value(ctx, value)  # refused here, with the key and the file named
        return value
    except Exception as exc:  # noqa: BLE001 - Click raises BadParameter and friends
        message = getattr(exc, "message", None) or str(exc)
        raise UsageError(f"bad value for {where}: {' '.join(message.split())}", path) from exc


def run_inputs(*, config: Path | None, genre_map: Path | None, store: Path | None, model: Any = None
               ) -> dict[str, Path | None]:
    """What a run reads besides the audio, for :func:`~genretag.scan.check_report_paths`: a report
    may not be written over any of them (the config file even when absent: a report there would
    become the next run's broken config). ``store``: :func:`store_path`'s."""
    from genretag.scan.report import STORE_INPUT

    return {"the config file": config_path(config), "the genre map": genre_map, STORE_INPUT: store,
            "the model bundle": model.bundle.path if model is not None else None}
