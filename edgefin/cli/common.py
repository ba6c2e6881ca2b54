"""Shared CLI plumbing: TOML config as click defaults, --json/-q, rich output on stderr, errors."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, TypeVar

import click
from rich.console import Console

from ..errors import UsageError
from ..tomlfile import read_toml
from .exit_codes import ExitStatus, exit_status_for

F = TypeVar("F", bound=Callable[..., Any])

stderr = Console(stderr=True, highlight=False)


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """Read a TOML file into ctx.default_map so file values become defaults and flags win.

    Keys may be at the top level or in a table named after the command (``[train]``);
    dashes and underscores are interchangeable.
    """
    if not value:
        return value
    path = Path(value)
    try:
        data = read_toml(path)
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from None
    name = ctx.info_name or ""
    section = {k: v for k, v in data.items() if not isinstance(v, dict)}
    section.update(data.get(name, {}) if isinstance(data.get(name), dict) else {})
    known = {p.name for p in ctx.command.params if p.name}
    multiple = {p.name for p in ctx.command.params if getattr(p, "multiple", False)}
    defaults: dict[str, Any] = dict(ctx.default_map or {})
    for key, val in section.items():
        k = key.replace("-", "_")
        if k not in known:
            if isinstance(data.get(key), dict):
                continue
            raise click.BadParameter(f"config file {path}: unknown option '{key}' for 'edgefin {name}' "
                                     f"(known: {', '.join(sorted(known))})", param_hint="--config")
        if k in multiple and isinstance(val, str):
            val = [val]  # `drop = "Id"` means one value for a repeatable option
        defaults[k] = val
    ctx.default_map = defaults
    return value


def config_option(f: F) -> F:
    return click.option("--config", type=click.Path(dir_okay=False), callback=_load_config, is_eager=True,
                        expose_value=False,
                        help="TOML file whose keys are defaults for this command's options; flags win.")(f)


def output_options(f: F) -> F:
    f = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(f)
    f = click.option("-q", "--quiet", is_flag=True, help="No progress or logs on stderr.")(f)
    return f


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_json_default))


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def handle_errors(f: F) -> F:
    """Turn edgefin and runtime errors into a one-line message on stderr and a documented exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from edgefin_converters.errors import ConverterError
        from edgefin_runtime.errors import EdgefinRuntimeError

        from ..errors import EdgefinError

        try:
            return f(*args, **kwargs)
        except (EdgefinError, EdgefinRuntimeError, ConverterError) as exc:
            status = exit_status_for(exc)
            label = "quality gate failed" if status == ExitStatus.GATE_FAILED else "error"
            stderr.print(f"[bold red]{label}:[/] {exc}", markup=True, soft_wrap=True)
            sys.exit(int(status))
        except KeyboardInterrupt:
            stderr.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def quiet_tf() -> None:
    """Keep TensorFlow's C++ and Python logging off the user's terminal; force Keras 2 (TFMOT)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
