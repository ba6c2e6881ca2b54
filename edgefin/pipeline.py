"""train -> compress -> convert -> bench -> report in one call, resuming from the steps already done.

Each step calls the same library function as its single command, with the same options. After a
step succeeds, run.json records under ``steps.NAME``: ``inputs_sha256`` (a hash of the step's
options and of every input file it reads) and ``outputs_sha256`` (a hash of what it wrote). A later
run skips a step when both still match: its inputs are unchanged and nobody replaced its outputs
(for example by running ``edgefin compress`` by hand with other options). Any change reruns that
step, and the changed outputs then rerun the steps that read them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from . import __version__
from .atomic import write_json
from .errors import QualityGateError, UsageError
from .rundir import SPLITS, RunDir
from .tomlfile import read_toml

STEPS = ("train", "compress", "convert", "bench", "report")


@dataclass
class PipelineConfig:
    """Options per step, as the single commands take them (keys as the CLI flags, underscores)."""

    train: dict[str, Any] = field(default_factory=dict)           # edgefin.train.TrainOptions
    compress: dict[str, Any] | None = field(default_factory=dict)  # None: no compression step
    convert: dict[str, Any] = field(default_factory=dict)
    bench: dict[str, Any] = field(default_factory=dict)           # edgefin.bench.harness.bench_options_from

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], **overrides: Mapping[str, Any]) -> "PipelineConfig":
        """[train], [compress], [convert], [bench] tables of a TOML file; ``overrides`` win per key."""
        p = Path(path)
        data = read_toml(p)
        cfg = cls()
        for step in ("train", "compress", "convert", "bench"):
            table = data.get(step, {})
            if step == "compress" and table is False:  # compress = false: no compression step
                continue
            if not isinstance(table, dict):
                raise UsageError(f"config file {p}: '{step}' must be a table ([{step}])")
            setattr(cfg, step, {k.replace("-", "_"): v for k, v in table.items()})
        if data.get("compress") is False:
            cfg.compress = None
        return cfg.merged(**overrides)

    def merged(self, **overrides: Mapping[str, Any] | None) -> "PipelineConfig":
        out = PipelineConfig(dict(self.train), None if self.compress is None else dict(self.compress),
                             dict(self.convert), dict(self.bench))
        for step, values in overrides.items():
            if step == "compress" and values is None:
                out.compress = None
                continue
            cur = getattr(out, step)
            if cur is None:
                continue
            cur.update({k: v for k, v in (values or {}).items() if v is not None})
        return out


class PipelineReporter:
    """Where the pipeline tells its progress; the CLI renders it, tests stay silent."""

    def step_started(self, step: str, index: int, total: int) -> None:
        """A step begins."""

    def step_skipped(self, step: str, reason: str) -> None:
        """A step was skipped (inputs unchanged and outputs present, or disabled)."""

    def step_done(self, step: str, seconds: float) -> None:
        """A step finished."""

    def train_reporter(self) -> Any:
        """The edgefin.train.Reporter for the training step (None: silent)."""
        return None

    def compress_reporter(self) -> Any:
        """The edgefin.compress reporter (stage, warn, epoch); None: silent."""
        return None

    def convert_progress(self) -> Any:
        """The converters' progress (started, done); None: silent."""
        return None

    def bench_progress(self) -> Callable[[str, int, int], None] | None:
        return None


# ---------------------------------------------------------------- hashing
def _hash_file(h: "hashlib._Hash", path: Path, root: Path) -> None:
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


def _models(rd: RunDir) -> list[Path]:
    return sorted((rd.root / "models").glob("*.keras"))


def _bundles(rd: RunDir) -> list[Path]:
    return sorted(rd.bundles_dir.glob("*.efb"))


def step_inputs(step: str, rd: RunDir, data: str | None, cfg: PipelineConfig) -> list[Path]:
    """The files a step reads (besides its options)."""
    data_files = [Path(p) for p in (data, cfg.train.get("test_data"), cfg.train.get("validation_data")) if p]
    splits = [rd.split_path(s) for s in SPLITS]
    meta = [rd.schema_json, rd.preprocess_json, rd.metrics_json]
    return {
        "train": data_files,
        "compress": [rd.model_path("dense"), *splits, *meta],
        "convert": [*_models(rd), *splits, *meta],
        "bench": [*_bundles(rd), rd.parity_json, rd.model_path("dense"), rd.split_path("test"), *meta],
        "report": [rd.report_dir / "report.json"],
    }[step]


def step_outputs(step: str, rd: RunDir) -> list[Path]:
    """The files a step writes; all must exist for the step to count as done (run.json too, which is
    not hashed: it holds these records)."""
    return {
        "train": [rd.metrics_json, rd.schema_json, rd.preprocess_json, rd.model_path("dense"),
                  *[rd.split_path(s) for s in SPLITS]],
        "compress": [rd.compress_json],
        "convert": [rd.parity_json, *_bundles(rd)],
        "bench": [rd.report_dir / "report.json"],
        "report": [rd.report_dir / "report.md", rd.report_dir / "report.html"],
    }[step]


def _options_of(step: str, cfg: PipelineConfig) -> Any:
    """A step's options resolved to the library's full option object, so equal effect = equal hash
    (``--epochs 200`` given or left at its default hash the same)."""
    from dataclasses import asdict

    if step == "train":
        return asdict(train_options(cfg.train))
    if step == "compress":
        from .compress.run import make_options

        opts = dict(cfg.compress or {})
        gate = bool(opts.pop("gate", False))
        return {**asdict(make_options(**opts)), "gate": gate}
    if step == "convert":
        return asdict(convert_options(cfg.convert))
    if step == "bench":
        from .bench.harness import bench_options_from

        b = bench_options_from(**cfg.bench)
        return {"profile": b.profile.to_dict(), "settings": b.settings.to_dict(), "variants": b.variants,
                "constraints": b.constraints.to_dict(), "keras": b.keras}
    return {}


def fingerprint(step: str, rd: RunDir, data: str | None, cfg: PipelineConfig) -> str:
    return _json_sha({"step": step, "edgefin": __version__, "options": _options_of(step, cfg),
                      "files": files_sha256(step_inputs(step, rd, data, cfg), rd.root)})


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
    if missing or (step == "convert" and not _bundles(rd)):
        return False, f"output {missing[0].relative_to(rd.root) if missing else 'bundles/*.efb'} is missing"
    if rec.get("outputs_sha256") != files_sha256(outs, rd.root):
        return False, "its outputs were replaced since"
    return True, "inputs unchanged and outputs present"


def record(step: str, rd: RunDir, inputs_sha: str, seconds: float) -> None:
    """Add this step's fingerprints to run.json (read-modify-write; train rewrites run.json itself)."""
    run = _read_run(rd)
    steps = run.setdefault("steps", {})
    entry = steps.get(step) if isinstance(steps.get(step), dict) else {}
    entry.update({"inputs_sha256": inputs_sha, "outputs_sha256": files_sha256(step_outputs(step, rd), rd.root),
                  "seconds": round(seconds, 3), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "by": "pipeline"})
    steps[step] = entry
    write_json(rd.run_json, run)


# ---------------------------------------------------------------- the steps
def _train(rd: RunDir, data: str | None, cfg: PipelineConfig, rep: PipelineReporter) -> Any:
    from .train import train

    if data is None:
        raise UsageError("the pipeline's train step needs a data file")
    return train(data, rd.root, train_options(cfg.train), reporter=rep.train_reporter())


def train_options(values: Mapping[str, Any]) -> Any:
    from .train import TrainOptions

    known = {f.name for f in fields(TrainOptions)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"train options {', '.join(unknown)} are unknown (known: {', '.join(sorted(known))})")
    if "target" not in values:
        raise UsageError("the pipeline needs --target (the column to predict)")
    return TrainOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _compress(rd: RunDir, data: str | None, cfg: PipelineConfig, rep: PipelineReporter) -> Any:
    from .compress import compress_run

    opts = dict(cfg.compress or {})
    gate = bool(opts.pop("gate", False))
    return compress_run(rd.root, reporter=rep.compress_reporter(), gate=gate, **opts)


# convert's CLI spells two things differently from ConvertOptions; its user-model-only options have no
# meaning for a run directory
CONVERT_USER_ONLY = ("data", "target", "positive", "schema", "preprocess", "threshold")
CONVERT_RENAMED = {"max_delta": "exact_max_delta", "max_fp16_delta": "fp16_max_delta"}  # as edgefin/cli/convert.py maps them


def convert_options(values: Mapping[str, Any]) -> Any:
    """ConvertOptions from the convert command's option names (``no_gate`` -> ``gate``)."""
    from .convert import ConvertOptions

    known = {f.name for f in fields(ConvertOptions)}
    kw: dict[str, Any] = {}
    for key, value in values.items():
        if key in CONVERT_USER_ONLY:
            if value not in (None, "0.5"):
                raise UsageError(f"convert option '{key}' is for converting your own MODEL.keras, not for a pipeline")
            continue
        key = CONVERT_RENAMED.get(key, key)
        if key == "no_gate":
            kw["gate"] = not value
        elif key in known:
            kw[key] = value
        else:
            raise UsageError(f"unknown convert option '{key}' (known: "
                             f"{', '.join(sorted(known | {'no_gate', *CONVERT_RENAMED}))})")
    return ConvertOptions(**kw)


def _convert(rd: RunDir, data: str | None, cfg: PipelineConfig, rep: PipelineReporter) -> Any:
    from .convert import convert_run

    return convert_run(rd.root, convert_options(cfg.convert), progress=rep.convert_progress())


def _bench(rd: RunDir, data: str | None, cfg: PipelineConfig, rep: PipelineReporter) -> Any:
    from .bench.harness import bench_options_from, run_bench

    report = run_bench(rd.root, bench_options_from(**cfg.bench), progress=rep.bench_progress())
    write_json(rd.report_dir / "report.json", report)
    return report


def _report(rd: RunDir, data: str | None, cfg: PipelineConfig, rep: PipelineReporter) -> Any:
    from .bench.report import rebuild

    return rebuild(rd.report_dir)


RUNNERS: dict[str, Callable[[RunDir, str | None, PipelineConfig, PipelineReporter], Any]] = {
    "train": _train, "compress": _compress, "convert": _convert, "bench": _bench, "report": _report}


def run_pipeline(data: str | os.PathLike[str] | None, out: str | os.PathLike[str], config: PipelineConfig | None = None,
                 *, reporter: PipelineReporter | None = None, force: bool = False, **train: Any) -> dict[str, Any]:
    """Run (or resume) every step into the run directory ``out``; return what each step did.

    ``run_pipeline("credit.csv", "runs/credit", target="Status", positive="bad")``: keyword arguments
    are train options on top of ``config.train``. ``data`` may be None when ``out`` already holds a
    trained run whose train step is to be skipped. A failed parity gate raises
    :class:`PipelineGateError` after bench and report ran.
    """
    config = (config or PipelineConfig()).merged(train=train) if train else (config or PipelineConfig())
    rd = RunDir.at(out)
    rep = reporter or PipelineReporter()
    data_s = None if data is None else str(data)
    steps = [s for s in STEPS if not (s == "compress" and config.compress is None)]
    for step in steps:  # every option is checked before anything runs: a typo must not cost a training run
        _options_of(step, config)
    done: dict[str, Any] = {}
    gate_error: BaseException | None = None
    if config.compress is None:
        rep.step_skipped("compress", "disabled")
        done["compress"] = {"status": "disabled"}
    started = time.perf_counter()
    for i, step in enumerate(steps):
        if step == "train" and data_s is None and rd.run_json.exists():
            rep.step_skipped(step, "no data given; using the trained run in place")
            done[step] = {"status": "skipped", "reason": "no data given"}
            continue
        inputs = fingerprint(step, rd, data_s, config)
        skip, why = is_done(step, rd, inputs)
        if skip and not force:
            rep.step_skipped(step, why)
            done[step] = {"status": "skipped", "reason": why}
            continue
        rep.step_started(step, i, len(steps))
        t0 = time.perf_counter()
        try:
            RUNNERS[step](rd, data_s, config, rep)
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
    result = {"run_dir": str(rd.root), "steps": done, "seconds": round(time.perf_counter() - started, 3),
              "report": {n: str(rd.report_dir / n) for n in ("report.json", "report.md", "report.html")}}
    if gate_error is not None:
        raise PipelineGateError(str(gate_error), result) from gate_error
    return result


class PipelineGateError(QualityGateError):
    """A parity gate failed during convert; every later step still ran. ``result`` says what each did."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(f"{message}\nThe pipeline still benchmarked every bundle; the report marks the failed "
                         f"variant(s), and they are never recommended.")
        self.result = result


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
