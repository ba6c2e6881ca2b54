"""Shared CLI plumbing: TOML config as click defaults, --json/-q, rich output on stderr, errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from ..errors import UsageError
from ..tomlfile import read_toml
from .exit_codes import ExitStatus, exit_status_for

F = TypeVar("F", bound=Callable[..., Any])

stderr = Console(stderr=True, highlight=False)


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Read a TOML file into ctx.default_map so file values become defaults and flags win.

    Keys may be at the top level or in a table named after the command (``[train]``); a key is an
    option's flag or its parameter name, dashes and underscores interchangeable
    (:func:`edgefin.cli.options.config_keys`).
    """
    if not value:
        return value
    from .options import config_defaults, config_keys

    path = Path(value)
    try:
        data = read_toml(path)
        name = ctx.info_name or ""
        section = {k: v for k, v in data.items() if not isinstance(v, dict)}
        section.update(data.get(name, {}) if isinstance(data.get(name), dict) else {})
        multiple = {p.name for p in ctx.command.params if getattr(p, "multiple", False) and p.name}
        defaults = config_defaults(
            config_keys(ctx.command.params), section, f"config file {path}: for 'edgefin {name}'", multiple
        )
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def config_option(f: F) -> F:
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        callback=_load_config,
        is_eager=True,
        expose_value=False,
        help="TOML file whose keys are defaults for this command's options; flags win.",
    )(f)


def output_options(f: F) -> F:
    f = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(f)
    f = click.option("-q", "--quiet", is_flag=True, help="No progress or logs on stderr.")(f)
    return f


def emit_json(obj: object) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_json_default))


def _json_default(o: object) -> object:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def handle_errors(f: F) -> F:
    """Turn edgefin and runtime errors into a one-line message on stderr and a documented exit code."""

    @functools.wraps(f)
    def wrapper(*args: object, **kwargs: object) -> object:
        from edgefin_converters.errors import ConverterError
        from edgefin_runtime.errors import EdgefinRuntimeError

        from ..errors import EdgefinError

        try:
            return f(*args, **kwargs)
        except (EdgefinError, EdgefinRuntimeError, ConverterError) as exc:
            status = exit_status_for(exc)
            label = "quality gate failed" if status == ExitStatus.GATE_FAILED else "error"
            from .options import cli_text

            # options named by field become this command's flags; the message is plain text (it may
            # quote data, paths, TOML tables, pip extras): never markup
            message = cli_text(str(exc), getattr(exc, "step", None))
            stderr.print(f"[bold red]{label}:[/] {escape(message)}", soft_wrap=True)
            sys.exit(int(status))
        except KeyboardInterrupt:
            stderr.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
