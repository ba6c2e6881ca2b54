"""The one rich rendering of :class:`edgefin.reporter.Reporter`: lines and progress bars on stderr.

Every text that comes from the library (messages, variant names, file paths) is printed with rich
markup escaped, so square brackets in it show as they are; options the library names by field
(`` `drop=Id` ``) show as the command's flags (``--drop Id``). Use it as a context manager: an open
progress bar is closed however the command ends.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape

from .common import stderr


class RichReporter:
    """Notes and warnings as lines, counted tasks (epochs, variants) as one transient progress bar.

    Bars are drawn only on a terminal: in a log they would leave nothing but blank lines.
    """

    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or stderr
        self._bar: Any = None
        self._task: Any = None
        self._name: str | None = None
        self._step: str | None = None  # the pipeline step running (for its flag names)

    # ------------------------------------------------------------ lines
    def note(self, message: str) -> None:
        self._close()
        self._line(f"[dim]-[/] {escape(self._text(message))}")

    def warn(self, message: str) -> None:
        self._line(f"[yellow]warning:[/] {escape(self._text(message))}", soft_wrap=True)

    def checked(self, name: str, passed: bool, detail: str) -> None:
        mark = "[green]pass[/]" if passed else "[red]FAIL[/]"
        self._line(f"  {mark} {escape(name)}: {escape(detail)}")

    def step_started(self, step: str, index: int, total: int) -> None:
        self._step = step
        self._line(f"[bold]{escape(f'[{index + 1}/{total}] {step}')}[/]")

    def step_skipped(self, step: str, reason: str) -> None:
        self._line(f"[dim]{escape(f'skipped {step}: {reason}')}[/]")

    def step_done(self, step: str, seconds: float) -> None:
        self._close()
        self._line(f"[green]done {escape(step)}[/] in {seconds:.1f} s")

    # ------------------------------------------------------------ counted tasks
    def started(self, task: str, total: int | None) -> None:
        self._close()
        if self.quiet or not self.console.is_terminal:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn(f"  {escape(task)}"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("{task.fields[info]}", markup=False),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._task = self._bar.add_task(task, total=total, info="")
        self._name = task
        self._bar.start()

    def advanced(self, task: str, done: int, total: int | None = None, info: str = "") -> None:
        if self._bar is None or task != self._name:
            return
        update: dict[str, Any] = {"completed": done, "info": info}
        if total is not None:
            update["total"] = total
        self._bar.update(self._task, **update)

    def done(self, task: str) -> None:
        if task == self._name:
            self._close()

    # ------------------------------------------------------------ plumbing
    def _text(self, message: str) -> str:
        """The library's option names (`` `drop=Id` ``) as this command's flags (``--drop Id``)."""
        from .options import cli_text

        return cli_text(message, self._step)

    def _line(self, markup: str, *, soft_wrap: bool = False) -> None:
        if not self.quiet:
            self.console.print(markup, soft_wrap=soft_wrap, highlight=False)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = self._name = None

    def __enter__(self) -> RichReporter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close()


__all__ = ["RichReporter"]
