"""train -> compress -> convert -> bench -> report in one call, resuming from the steps already done.

The pipeline composes the steps of :mod:`edgefin.steps` from one :class:`PipelineOptions` (a typed
``Options`` per step). After a step succeeds, run.json records under ``steps.NAME``:
``inputs_sha256`` (a hash of ``dataclasses.asdict`` of the step's options and of every input file it
reads) and ``outputs_sha256`` (a hash of what it wrote). A later run skips a step when both still
match: its inputs are unchanged and nobody replaced its outputs (for example by running ``edgefin
compress`` by hand with other options). Any change reruns that step, and the changed outputs then
rerun the steps that read them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import __version__
from .errors import EdgefinError, QualityGateError
from .reporter import SILENT, Reporter
from .rundir import RunDir
from .steps import STEPS
from .steps import bench as bench_step
from .steps import compress as compress_step
from .steps import convert as convert_step
from .steps import report as report_step
from .steps import train as train_step

StepOptions = (
    train_step.Options | compress_step.Options | convert_step.Options | bench_step.Options | report_step.Options
)


class StepResult(Protocol):
    """What every step's ``run`` returns."""

    def to_dict(self) -> dict[str, Any]: ...


class Step(Protocol):
    """What a module of :mod:`edgefin.steps` provides (each takes its own ``Options``)."""

    def check(self, options: Any, /) -> None: ...
    def inputs(self, run_dir: RunDir, options: Any, /) -> list[Path]: ...
    def outputs(self, run_dir: RunDir, /) -> list[Path]: ...
    def run(self, run_dir: str | Path, options: Any, reporter: Reporter | None = None, /) -> StepResult: ...


STEP_MODULES: dict[str, Step] = {
    "train": train_step,
    "compress": compress_step,
    "convert": convert_step,
    "bench": bench_step,
    "report": report_step,
}


@dataclass(frozen=True)
class PipelineOptions:
    """Every step's options; ``compress`` None: no compression step (convert the dense model)."""

    train: train_step.Options
    compress: compress_step.Options | None = field(default_factory=compress_step.Options)
    convert: convert_step.Options = field(default_factory=convert_step.Options)
    bench: bench_step.Options = field(default_factory=bench_step.Options)
    report: report_step.Options = field(default_factory=report_step.Options)

    def of(self, step: str) -> StepOptions | None:
        """The options of one step (None for a disabled compression)."""
        return getattr(self, step)

    def steps(self) -> tuple[str, ...]:
        """The steps this pipeline runs, in order."""
        return tuple(s for s in STEPS if self.of(s) is not None)

    def check(self) -> None:
        """Every step's options checked before anything runs: a typo must not cost a training run."""
        for step in self.steps():
            with raised_by(step):
                STEP_MODULES[step].check(self.of(step))


# ---------------------------------------------------------------- hashing
def _hash_file(h: hashlib._Hash, path: Path, root: Path) -> None:
    h.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode())
    if path.is_dir():
        for p in sorted(q for q in path.rglob("*") if q.is_file()):
            h.update(str(p.relative_to(path)).encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    elif path.is_file():
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    else:
        h.update(b"<absent>")


def files_sha256(paths: Iterable[Path], root: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        _hash_file(h, Path(p), root)
    return h.hexdigest()


def _json_sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _bundles(rd: RunDir) -> list[Path]:
    return sorted(rd.bundles_dir.glob("*.efb"))


def step_inputs(step: str, rd: RunDir, options: PipelineOptions) -> list[Path]:
    """The files a step reads besides its options, as the step declares them (``inputs``)."""
    return list(STEP_MODULES[step].inputs(rd, options.of(step)))


def step_outputs(step: str, rd: RunDir) -> list[Path]:
    """The files a step writes, as it declares them (``outputs``); all must exist for the step to count
    as done (run.json too, which is not hashed: it holds these records)."""
    return list(STEP_MODULES[step].outputs(rd))


def fingerprint(step: str, rd: RunDir, options: PipelineOptions) -> str:
    """A hash of the step's options (``dataclasses.asdict``) and of every file it reads."""
    opts = options.of(step)
    if opts is None:
        raise ValueError(f"the {step} step is disabled in these options")
    return _json_sha(
        {
            "step": step,
            "edgefin": __version__,
            "options": asdict(opts),
            "files": files_sha256(step_inputs(step, rd, options), rd.root),
        }
    )


def _read_run(rd: RunDir) -> dict[str, Any]:
    try:
        return json.loads(rd.run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def is_done(step: str, rd: RunDir, inputs_sha: str) -> tuple[bool, str]:
    """(skip?, why not) for a step whose inputs hash to ``inputs_sha``."""
    rec = _read_run(rd).get("steps", {}).get(step, {})
    if not isinstance(rec, dict) or rec.get("inputs_sha256") is None:
        return False, "never run by the pipeline here"
    if rec["inputs_sha256"] != inputs_sha:
        return False, "its options or input files changed"
    outs = step_outputs(step, rd)
    missing = [p for p in [*outs, rd.run_json] if not p.exists()]
    if missing:
        return False, f"output {missing[0].relative_to(rd.root)} is missing"
    if rec.get("outputs_sha256") != files_sha256(outs, rd.root):
        return False, "its outputs were replaced since"
    return True, "inputs unchanged and outputs present"


def record(step: str, rd: RunDir, inputs_sha: str, seconds: float) -> None:
    """Add this step's fingerprints to run.json (read-modify-write; train rewrites run.json itself)."""
    run = _read_run(rd)
    steps = run.setdefault("steps", {})
    entry = steps.get(step) if isinstance(steps.get(step), dict) else {}
    entry.update(
        {
            "inputs_sha256": inputs_sha,
            "outputs_sha256": files_sha256(step_outputs(step, rd), rd.root),
            "seconds": round(seconds, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "by": "pipeline",
        }
    )
    steps[step] = entry
    rd.write_record(run)


# ---------------------------------------------------------------- the steps
# step name -> run(run_dir, options, reporter) -> Result (a table, so tests can swap in fast stand-ins)
RUNNERS: dict[str, Callable[[Path, Any, Reporter], StepResult]] = {
    name: module.run for name, module in STEP_MODULES.items()
}


def run_pipeline(
    out: str | os.PathLike[str], options: PipelineOptions, *, reporter: Reporter | None = None, force: bool = False
) -> dict[str, Any]:
    """Run (or resume) every step into the run directory ``out``; return what each step did.

    ``options.train.data`` may be None when ``out`` already holds a trained run whose train step is
    to be skipped. A failed parity gate raises :class:`PipelineGateError` after bench and report ran.
    """
    rd = RunDir.at(out)
    rep = reporter or SILENT
    steps = options.steps()
    options.check()
    done: dict[str, Any] = {}
    gate_error: BaseException | None = None
    if options.compress is None:
        rep.step_skipped("compress", "disabled")
        done["compress"] = {"status": "disabled"}
    started = time.perf_counter()
    for i, step in enumerate(steps):
        if step == "train" and options.train.data is None and rd.run_json.exists():
            rep.step_skipped(step, "no data given; using the trained run in place")
            done[step] = {"status": "skipped", "reason": "no data given"}
            continue
        inputs = fingerprint(step, rd, options)
        skip, why = is_done(step, rd, inputs)
        if skip and not force:
            rep.step_skipped(step, why)
            done[step] = {"status": "skipped", "reason": why}
            continue
        rep.step_started(step, i, len(steps))
        t0 = time.perf_counter()
        try:
            with raised_by(step):
                RUNNERS[step](rd.root, options.of(step), rep)
        except Exception as exc:
            if not (step == "convert" and _is_gate_failure(exc) and _bundles_written(rd)):
                raise
            # like `edgefin convert`, a failed parity gate still leaves every bundle and parity.json (marked
            # failed): bench and report them, then fail. The step is not recorded, so a rerun converts again.
            gate_error = exc
            seconds = time.perf_counter() - t0
            rep.step_done(step, seconds)
            done[step] = {"status": "gate_failed", "seconds": round(seconds, 3), "error": str(exc)}
            continue
        seconds = time.perf_counter() - t0
        record(step, rd, inputs, seconds)
        rep.step_done(step, seconds)
        done[step] = {"status": "ran", "seconds": round(seconds, 3), "reason": why if not force else "forced"}
    result = {
        "run_dir": str(rd.root),
        "steps": done,
        "seconds": round(time.perf_counter() - started, 3),
        "report": {n: str(rd.report_dir / n) for n in ("report.json", "report.md", "report.html")},
    }
    if gate_error is not None:
        raise PipelineGateError(str(gate_error), result) from gate_error
    return result


class PipelineGateError(QualityGateError):
    """A parity gate failed during convert; every later step still ran. ``result`` says what each did."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(
            f"{message}\nThe pipeline still benchmarked every bundle; the report marks the failed "
            f"variant(s), and they are never recommended."
        )
        self.result = result


@contextlib.contextmanager
def raised_by(step: str) -> Iterator[None]:
    """Mark an edgefin error raised inside with the step it belongs to (the CLI names that step's flags)."""
    try:
        yield
    except EdgefinError as exc:
        if exc.step is None:
            exc.step = step
        raise


def _is_gate_failure(exc: BaseException) -> bool:
    if isinstance(exc, QualityGateError):
        return True
    try:
        from edgefin_converters.errors import ParityGateError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, ParityGateError)


def _bundles_written(rd: RunDir) -> bool:
    return rd.parity_json.exists() and bool(_bundles(rd))
