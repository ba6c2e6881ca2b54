"""Typed errors of `edgefin targets` (all inside the toolkit's one exception tree, edgefin.errors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EdgefinError, QualityGateError, UsageError

if TYPE_CHECKING:
    from .run import TargetsResult


class UnknownTargetError(UsageError):
    """A target name that is not in the registry; the message lists the valid ones (exit code 2)."""


class TargetUnavailableError(UsageError):
    """A known target that cannot run on this machine: emulator missing, no root, no emulation of its ISA.

    The message says what is missing and what to run (exit code 2).
    """


class TargetBuildError(EdgefinError):
    """Building a target's environment (the ARM64 root) failed; the message names the step (exit code 1)."""


class ProbeError(EdgefinError):
    """The probe's output on a target is missing or malformed (exit code 1)."""


class TargetGateError(QualityGateError):
    """At least one bundle fails on at least one target; targets.json was still written (exit code 3)."""

    def __init__(self, failures: list[str], result: TargetsResult | None = None) -> None:
        head = failures[0] if failures else "a target check failed"
        more = f" (and {len(failures) - 1} more; see targets.json)" if len(failures) > 1 else ""
        super().__init__(head + more)
        self.failures = failures
        self.result = result
