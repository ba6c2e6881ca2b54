"""The compress step: prune -> (cluster) -> QAT the run's dense model (:func:`edgefin.compress.run.compress_run`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compress.options import CompressOptions
from ..reporter import Reporter
from . import trained_files

if TYPE_CHECKING:
    from ..rundir import RunDir


@dataclass(frozen=True)
class Options:
    """The compress step: how to compress, and whether a missed quality bar fails the step."""

    compression: CompressOptions = field(default_factory=CompressOptions)
    gate: bool = False  # True: a missed quality bar raises QualityGateError (compress.json is still written)


@dataclass(frozen=True)
class Result:
    """What compress.json holds: every stage measured, the quality bar."""

    run_dir: Path
    report: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.report["quality_bar"]["passed"])

    def to_dict(self) -> dict[str, Any]:
        return self.report


def check(options: Options) -> None:
    """Refuse bad compression options (UsageError naming the option) before anything runs."""
    options.compression.validated()


def inputs(run_dir: RunDir, options: Options) -> list[Path]:
    """The dense model and what training recorded."""
    return [run_dir.model_path("dense"), *trained_files(run_dir)]


def outputs(run_dir: RunDir) -> list[Path]:
    """compress.json (it holds the SHA-256 of every model it wrote)."""
    return [run_dir.compress_json]


def run(run_dir: str | Path, options: Options, reporter: Reporter | None = None) -> Result:
    """Compress the trained run ``run_dir`` in place; writes the models and compress.json."""
    from ..compress.run import compress_run

    report = compress_run(run_dir, options.compression, reporter=reporter, gate=options.gate)
    return Result(Path(run_dir), report)


__all__ = ["CompressOptions", "Options", "Result", "check", "inputs", "outputs", "run"]
