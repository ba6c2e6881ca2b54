"""The one exception tree of the converters.

Every error the converters raise derives from :class:`ConverterError`. The converters never import
the toolkit (dependency direction: runtime <- converters <- edgefin), so the toolkit's CLI maps these
classes to exit codes itself (``edgefin.cli.exit_codes``): bad input and unsupported layers or ops
are usage errors (2), a failed parity gate is exit code 3, anything else a failure (1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class ConverterError(Exception):
    """Base of every error raised by edgefin_converters."""


class UnknownVariantError(ConverterError, ValueError):
    """A variant name is not in the registry; the message lists the valid names."""


class ModelInputError(ConverterError, ValueError):
    """The source model or its data does not fit a bundle (e.g. not one 2-D float input, not one
    probability output, a feature count that differs from the preprocessing spec)."""


class UnsupportedOpError(ConverterError):
    """A layer or op cannot be converted for a target. ``op`` and ``layer`` name it (either may be None)."""

    def __init__(self, message: str, *, target: str, op: str | None = None, layer: str | None = None) -> None:
        self.target = target
        self.op = op
        self.layer = layer
        super().__init__(message)


class ConversionFailedError(ConverterError):
    """A converter or quantiser failed for a reason that is not an unsupported op (exit code 1)."""


class DependencyError(ConverterError):
    """An installed library lacks an API the converters rely on, or is a version they were not written
    for; the message names the library, the version and what to install (exit code 1)."""


class ParityGateError(ConverterError):
    """One or more variants failed their parity gate; ``failures`` lists every one of them.

    Raised only after every report and bundle was written (the bundles are marked failed).
    """

    def __init__(self, failures: Sequence[str], result: Any = None) -> None:
        self.failures = tuple(failures)
        self.result = result
        lines = "\n  - ".join(self.failures)
        super().__init__(
            f"{len(self.failures)} parity check(s) failed:\n  - {lines}\n"
            f"The bundles and parity.json were written and marked failed; inspect parity.json, "
            f"or pass `gate=False` to accept them anyway."
        )


__all__ = [
    "ConverterError",
    "DependencyError",
    "UnknownVariantError",
    "ModelInputError",
    "UnsupportedOpError",
    "ConversionFailedError",
    "ParityGateError",
]
