"""The convert step: the run's model to TFLite/ONNX variants, parity-checked, one .efb bundle each.

A thin step over :func:`edgefin.convert.convert_run`: its :class:`~edgefin.convert.ConvertOptions` are
this step's ``Options`` and its :class:`~edgefin.convert.ConvertResult` the ``Result``. The
converters report progress through their own small protocol (``started(variant, index, total)``,
``repairing(variant, attempt)`` for each accuracy-repair attempt, ``done(result)``);
:func:`progress_for` tells it to a :class:`~edgefin.reporter.Reporter`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..convert import ConvertOptions, ConvertResult
from ..errors import UsageError
from ..reporter import SILENT, Reporter
from . import at_least_one, matching, trained_files

if TYPE_CHECKING:
    from edgefin_converters.export import VariantResult
    from edgefin_converters.repair import Attempt

    from ..rundir import RunDir

Options = ConvertOptions
Result = ConvertResult


class _Progress:
    """The converters' progress protocol, told to a Reporter: a note per variant, then its verdict."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def started(self, variant: str, index: int, total: int) -> None:
        self.reporter.note(f"converting {variant} ({index + 1}/{total})")

    def repairing(self, variant: str, attempt: Attempt) -> None:
        self.reporter.note(f"repairing {variant}: {repair_text(attempt)}")

    def done(self, result: VariantResult) -> None:
        self.reporter.checked(
            result.name, bool(result.passed), f"{result.size / 1024:.1f} KB, parity on {result.parity.n} rows"
        )


def repair_text(attempt: Attempt) -> str:
    """One accuracy-repair attempt in a line: what it tried, and what the held-out gate said."""
    tried = [
        "per-channel weights" if attempt.per_channel else "per-tensor weights",
        f"{attempt.calibration_rows} calibration rows",
    ]
    if attempt.kept_float:
        tried.append(f"float: {', '.join(attempt.kept_float)}")
    if attempt.passed is None:
        verdict = attempt.note or "not gated"
    else:
        auc = "n/a" if attempt.auc_delta is None else f"{attempt.auc_delta:+.4f}"
        flips = "n/a" if attempt.flip_rate is None else f"{attempt.flip_rate:.2%}"
        figures = f"AUC {auc}, {flips} flipped"
        verdict = f"passes ({figures})" if attempt.passed else f"fails ({figures})"
    return f"{attempt.step} ({', '.join(tried)}) -> {verdict}"


def progress_for(reporter: Reporter | None) -> _Progress:
    """The converters' progress object for ``reporter`` (also used for a user's own model)."""
    return _Progress(reporter or SILENT)


def check(options: Options) -> None:
    """Refuse unknown variants and stages (UsageError) before TensorFlow loads."""
    from edgefin_converters.registry import resolve_variants

    from ..rundir import STAGES

    resolve_variants(options.variants)
    if options.stage is not None and options.stage not in STAGES:
        raise UsageError(f"convert stage: expected one of {', '.join(STAGES)}, got {options.stage!r}")


def inputs(run_dir: RunDir, options: Options) -> list[Path]:
    """Every model of the run (the stage converted is one of them) and what training recorded."""
    return [*matching(run_dir.root / "models", "*.keras"), *trained_files(run_dir)]


def outputs(run_dir: RunDir) -> list[Path]:
    """parity.json and the bundles (at least one)."""
    return [run_dir.parity_json, *at_least_one(run_dir.bundles_dir, "*.efb")]


def run(run_dir: str | Path, options: Options, reporter: Reporter | None = None) -> Result:
    """Convert the run's model; bundles and parity.json are written before a failed gate raises."""
    from ..convert import convert_run

    return convert_run(run_dir, options, progress=progress_for(reporter))


__all__ = ["Options", "Result", "check", "inputs", "outputs", "run", "progress_for"]
