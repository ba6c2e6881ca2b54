"""The report step: report.md and report.html rendered from a run's report.json (no measuring)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..reporter import Reporter

if TYPE_CHECKING:
    from ..rundir import RunDir


@dataclass(frozen=True)
class Options:
    """The report step: which report.json to render (a file, its folder or a run directory)."""

    source: str | None = None  # None: the run directory's report/report.json
    slices: tuple[str, ...] = ()  # recompute the slices of these test-split columns into report.json first
    devices: tuple[str, ...] = ()  # device results files (edgefin-run bench --output) merged into report.json first
    for_device: str | None = None  # make this device's recommendation the report's


@dataclass(frozen=True)
class Result:
    report: dict[str, Any]
    paths: dict[str, Path]  # report.json, report.md, report.html

    def to_dict(self) -> dict[str, Any]:
        from .bench import summary

        return summary(self.report, self.paths)


def check(options: Options) -> None:
    """Device results must be readable and ``for_device`` must name a device (here or in report.json)."""
    if options.devices:
        from ..bench.devices import load_devices

        load_devices(options.devices)


def inputs(run_dir: RunDir, options: Options) -> list[Path]:
    """The run's report.json."""
    return [run_dir.report_dir / "report.json"]


def outputs(run_dir: RunDir) -> list[Path]:
    """report.md and report.html beside it."""
    return [run_dir.report_dir / "report.md", run_dir.report_dir / "report.html"]


def run(run_dir: str | Path, options: Options, reporter: Reporter | None = None) -> Result:
    """Render report.md and report.html beside report.json."""
    from ..bench.report import load_report, rebuild

    if options.slices:
        from ..explain.analysis import refresh_slices

        refresh_slices(options.source or run_dir, options.slices, reporter)
    if options.devices or options.for_device:
        from ..bench.devices import load_devices, merge_into_file

        merge_into_file(options.source or run_dir, load_devices(options.devices), for_device=options.for_device)
    paths = rebuild(options.source or run_dir)
    return Result(load_report(paths["report.json"]), paths)


__all__ = ["Options", "Result", "check", "inputs", "outputs", "run"]
