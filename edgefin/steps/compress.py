"""The compress step: prune -> (cluster) -> QAT the run's dense model (:func:`edgefin.compress.run.compress_run`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compress.options import CompressOptions
from ..reporter import Reporter


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


def run(run_dir: str | Path, options: Options, reporter: Reporter | None = None) -> Result:
    """Compress the trained run ``run_dir`` in place; writes the models and compress.json."""
    from ..compress.run import compress_run

    report = compress_run(run_dir, options.compression, reporter=reporter, gate=options.gate)
    return Result(Path(run_dir), report)


__all__ = ["CompressOptions", "Options", "Result", "check", "run"]
