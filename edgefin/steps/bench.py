"""The bench step: every bundle of a run measured under one hardware profile, a variant recommended.

Writes ``report.json`` (into RUN_DIR/report, or ``Options.out``); the report step renders it as
Markdown and HTML. The measuring itself is :func:`edgefin.bench.harness.run_bench`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..reporter import Reporter
from . import matching

if TYPE_CHECKING:
    from ..bench.harness import BenchOptions
    from ..rundir import RunDir


@dataclass(frozen=True)
class Options:
    """The bench step: profile, repetitions, which variants, and the constraints to recommend by."""

    profile: str = "unconstrained"  # a built-in profile or one from profiles_file
    profiles_file: str | None = None  # TOML with [profiles.NAME] tables
    variants: str = "all"  # comma-separated bundle names, or all
    max_latency_us: float | None = None
    max_size_kb: float | None = None
    max_auc_drop: float | None = None
    latency_percentile: str = "p99"  # which percentile max_latency_us limits
    repeat: str = "default"  # repetition preset: quick, default, thorough
    keras: bool = True  # also time the source Keras model (for the ratios)
    slices: tuple[str, ...] = ()  # test-split columns to slice quality and flip rates by (edgefin.explain.slices)
    explain: bool = True  # validate the bundles' reason codes against exact float Shapley, global view
    devices: tuple[str, ...] = ()  # device results files (edgefin-run bench --output) merged into the report
    for_device: str | None = None  # recommend from this device's figures (a device name in ``devices``)
    out: str | None = None  # report folder; None: RUN_DIR/report


def resolve(options: Options) -> BenchOptions:
    """The harness's options: profile looked up, preset expanded (UsageError on unknown names)."""
    from ..bench.harness import BenchOptions
    from ..bench.profiles import get_profile
    from ..bench.recommend import Constraints
    from ..bench.settings import preset

    names = [v.strip() for v in options.variants.split(",") if v.strip()]
    return BenchOptions(
        profile=get_profile(options.profile, options.profiles_file),
        settings=preset(options.repeat),
        variants=None if names in ([], ["all"]) else names,
        constraints=Constraints(
            max_latency_us=options.max_latency_us,
            max_size_kb=options.max_size_kb,
            max_auc_drop=options.max_auc_drop,
            latency_percentile=options.latency_percentile,
        ),
        keras=options.keras,
    )


def check(options: Options) -> None:
    """Refuse an unknown profile or preset, or unreadable device results, before anything runs."""
    resolve(options)
    _devices(options)


def _devices(options: Options) -> list[dict[str, Any]]:
    """The device results files, read and validated; ``for_device`` must name one of them."""
    from ..bench.devices import load_devices
    from ..errors import UsageError

    docs = load_devices(options.devices)
    names = [d["device"]["name"] for d in docs]
    if options.for_device is not None and options.for_device not in names:
        raise UsageError(
            f"for_device: no device named {options.for_device!r} in the device results "
            f"(have: {', '.join(names) or 'none'})"
        )
    return docs


def summary(report: Mapping[str, Any], paths: Mapping[str, Any]) -> dict[str, Any]:
    """The short form of a report (what ``--json`` prints): paths, recommendation, one row per variant."""
    from ..bench.report import summary_rows

    return {
        "report": {k: str(v) for k, v in paths.items()},
        "recommendation": report.get("recommendation"),
        "variants": summary_rows(report),
        "profile": report.get("profile"),
        "machine": report.get("machine"),
        "source": {k: v for k, v in report.get("source", {}).items() if k != "keras"},
    }


@dataclass(frozen=True)
class Result:
    """The report (what report.json holds) and where it went."""

    report: dict[str, Any]
    paths: dict[str, Path]  # report.json, and where the report step puts report.md / report.html
    constrained: bool  # constraints were given

    @property
    def no_fit(self) -> bool:
        """Constraints were given and no variant meets them (a failed gate for `edgefin bench`)."""
        return self.constrained and self.report["recommendation"]["chosen"] is None

    def to_dict(self) -> dict[str, Any]:
        return summary(self.report, self.paths)


def inputs(run_dir: RunDir, options: Options) -> list[Path]:
    """The bundles and parity.json, the dense model and test rows (the Keras reference), what training
    recorded, and the profiles file the options name."""
    rd = run_dir
    return [
        *matching(rd.bundles_dir, "*.efb"),
        rd.parity_json,
        rd.model_path("dense"),
        rd.split_path("test"),
        rd.schema_json,
        rd.preprocess_json,
        rd.metrics_json,
        *([Path(options.profiles_file)] if options.profiles_file else []),
        *(Path(p) for p in options.devices),
    ]


def outputs(run_dir: RunDir) -> list[Path]:
    """report.json in the run's report folder."""
    return [run_dir.report_dir / "report.json"]


def run(run_dir: str | Path, options: Options, reporter: Reporter | None = None) -> Result:
    """Benchmark the run's bundles and write report.json."""
    from ..atomic import write_json
    from ..bench.harness import run_bench
    from ..bench.report import REPORT_FILES
    from ..explain.analysis import AnalysisOptions, analyse_run, check_slices
    from ..rundir import RunDir

    resolved = resolve(options)
    check_slices(run_dir, options.slices)  # a wrong column fails before minutes of timing
    devices = _devices(options)
    report = run_bench(run_dir, resolved, reporter)
    if devices:
        from ..bench.devices import merge

        merge(report, devices, for_device=options.for_device)
    # after the timing: the analysis loads the Keras models (TensorFlow) into this process
    report.update(analyse_run(run_dir, AnalysisOptions(slices=options.slices, explain=options.explain), reporter))
    out = Path(options.out) if options.out else RunDir.at(run_dir).report_dir
    write_json(out / "report.json", report)
    return Result(report, {name: out / name for name in REPORT_FILES}, resolved.constraints.any)


__all__ = ["Options", "Result", "check", "inputs", "outputs", "resolve", "run", "summary"]
