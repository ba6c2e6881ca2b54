"""Where the steps and the pipeline tell their progress: one protocol, a silent default.

The library only calls these methods with plain text; how they look is the caller's business (the
CLI renders them with rich on stderr, :mod:`edgefin.cli.reporter`; tests and library use stay silent).
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Progress of a step (notes, warnings, counted tasks) and of the pipeline (steps)."""

    def note(self, message: str) -> None:
        """What is happening now ("pruning to 80% sparsity")."""

    def warn(self, message: str) -> None:
        """Something the user should know (a data-quality warning, a removed stale artefact)."""

    def checked(self, name: str, passed: bool, detail: str) -> None:
        """One item passed or failed a check (a converted variant against its parity gate)."""

    def started(self, task: str, total: int | None) -> None:
        """A counted task begins ("epoch" of at most ``total``, "bench" over ``total`` variants)."""

    def advanced(self, task: str, done: int, total: int | None = None, info: str = "") -> None:
        """``done`` of the task's units are finished; ``info`` says what is current (loss, variant)."""

    def done(self, task: str) -> None:
        """The counted task ended (also after an error)."""

    def step_started(self, step: str, index: int, total: int) -> None:
        """The pipeline begins step ``index`` (0-based) of ``total``."""

    def step_skipped(self, step: str, reason: str) -> None:
        """The pipeline skips a step (inputs unchanged and outputs present, or disabled)."""

    def step_done(self, step: str, seconds: float) -> None:
        """The pipeline finished a step."""


class Silent:
    """A Reporter that says nothing: the default of every step; subclass it to hear only some events."""

    def note(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def checked(self, name: str, passed: bool, detail: str) -> None:
        pass

    def started(self, task: str, total: int | None) -> None:
        pass

    def advanced(self, task: str, done: int, total: int | None = None, info: str = "") -> None:
        pass

    def done(self, task: str) -> None:
        pass

    def step_started(self, step: str, index: int, total: int) -> None:
        pass

    def step_skipped(self, step: str, reason: str) -> None:
        pass

    def step_done(self, step: str, seconds: float) -> None:
        pass


SILENT: Reporter = Silent()

__all__ = ["Reporter", "Silent", "SILENT"]
