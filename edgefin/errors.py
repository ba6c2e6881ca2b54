"""The one exception tree of the edgefin toolkit.

Messages follow the four-part rule: what happened, where (file, column, row), what was expected,
what to do. ``edgefin.cli.main`` maps these classes to exit codes in one place.
Runtime errors (``edgefin_runtime.errors``) keep their own tree; the CLI maps both.

A message names an option by its ``Options`` field in backticks, never by a command-line flag:
`` `sparsity` `` for the option, `` `drop=Id` `` for advice to set it (`` `qat=False` `` for a
switch). The CLI shows each as its flag (``--sparsity``, ``--drop Id``, ``--no-qat``):
:func:`edgefin.cli.options.cli_text`. :func:`option` spells one.
"""

from __future__ import annotations


def option(name: str, value: object = None) -> str:
    """How a message names the option ``name`` (an ``Options`` field), with the value to set it to."""
    return f"`{name}`" if value is None else f"`{name}={value}`"


class EdgefinError(Exception):
    """Base of every error raised by the edgefin toolkit."""

    step: str | None = None  # the pipeline step that raised it (set by edgefin.pipeline), for the CLI's flag names


class UsageError(EdgefinError):
    """An option or argument is invalid (exit code 2)."""


class DataError(EdgefinError):
    """Input data cannot be used: missing or unreadable file, bad target, mixed types (exit code 2)."""


class ModelFormatError(UsageError):
    """A user's model file or directory is not a model edgefin can read, or not in a form the step
    needs; the message names the path and what was expected (exit code 2)."""


class RunDirError(EdgefinError):
    """A run directory is missing a step's outputs or is inconsistent (exit code 2)."""


class ModelError(EdgefinError):
    """A model cannot be built, loaded, trained, compressed or converted (exit code 1)."""


class UnsupportedLayerError(ModelError):
    """A layer or op cannot be handled; the message names it and says what to do (exit code 2)."""


class DependencyError(EdgefinError):
    """An installed library is a version edgefin's code was not written for (exit code 1)."""


class QualityGateError(EdgefinError):
    """A quality gate (e.g. parity) failed; reports were still written (exit code 3)."""
