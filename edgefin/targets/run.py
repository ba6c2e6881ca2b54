"""`edgefin targets`: re-check every bundle of a run on several CPU targets; write bundles/targets.json.

For each target one probe process (``probe.py``, TF-free) loads every bundle and scores two record
sets: the bundle's reference set (acceptance set, else golden vectors) and the run's test split.
The host then judges each bundle x target cell (:mod:`edgefin.targets.compare`): loads or not, the
runtime's acceptance gates against the build machine and the source model, and convert's parity gate
against the source Keras model on the test split. Latency is not measured: time under emulation is
not device time. A probe process that dies (e.g. SIGILL: an instruction the target lacks) is re-run
one bundle at a time so the grid says which bundle it was.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import atomic
from ..errors import RunDirError
from ..reporter import SILENT, Reporter
from . import compare as cmp
from .errors import TargetGateError
from .launch import ProbeRun, run_probe
from .registry import DEFAULT_TARGETS, Target, check_tools, resolve_targets

if TYPE_CHECKING:
    from ..rundir import RunDir

TARGETS_JSON = "targets.json"
FORMAT = 1
NOTE = (
    "Scores only: latency under emulation is not device latency, so none is reported. x86-64 levels run "
    "the host's Python under qemu-x86_64 -cpu MODEL; arm64 runs Debian's Python in an emulated root."
)


@dataclass(frozen=True)
class BundleCase:
    """One bundle to check and what it is judged against."""

    name: str
    path: Path
    variant: str
    gate: dict[str, Any]
    source_stage: str
    ref: cmp.ReferenceSet


@dataclass(frozen=True)
class TestSplit:
    """The run's test split as raw records, with labels and each source stage's scores on them."""

    records: list[dict[str, Any]]
    y: np.ndarray
    threshold: float
    source: dict[str, np.ndarray]
    excluded_rows: int = 0


@dataclass
class TargetsResult:
    """What `edgefin targets` found (the content of targets.json) and where it was written."""

    data: dict[str, Any]
    path: Path | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


# ---------------------------------------------------------------- a run directory
def run_targets(
    run_dir: str | Path,
    targets: str | Sequence[str] = DEFAULT_TARGETS,
    *,
    rows: int | None = None,
    reporter: Reporter | None = None,
    timeout: float = 3600.0,
    gate: bool = True,
) -> TargetsResult:
    """Check every bundle in RUN_DIR/bundles on ``targets``; write RUN_DIR/bundles/targets.json.

    ``rows`` limits the test split to its first N scorable rows (default: all). Raises
    TargetGateError (exit 3) after writing when any cell fails and ``gate`` is set.
    """
    from ..rundir import RunDir

    chosen = resolve_targets(targets if isinstance(targets, str) else list(targets))
    run = RunDir.at(run_dir)
    if not run.root.is_dir():
        raise RunDirError(f"run directory {run.root} does not exist; create it with 'edgefin train' (or 'make demo')")
    paths = sorted(run.bundles_dir.glob("*.efb")) if run.bundles_dir.is_dir() else []
    if not paths:
        raise RunDirError(
            f"run directory {run.root}: no .efb bundles in bundles/; run 'edgefin convert {run.root}' first"
        )
    check_tools(chosen)
    rep = reporter or SILENT
    _prepare(chosen, rep)
    cases = [bundle_case(p) for p in paths]
    rep.note(
        f"scoring the test split with the source Keras model(s) ({', '.join(sorted({c.source_stage for c in cases}))})"
    )
    test = load_test_split(run, cases, rows)
    result = check_bundles(cases, chosen, test=test, reporter=rep, timeout=timeout)
    result.data["run"] = str(run.root.resolve())
    result.path = atomic.write_json(run.bundles_dir / TARGETS_JSON, result.data)
    _update_report(run, result.data, rep)
    if gate and result.failures:
        raise TargetGateError(result.failures, result=result)
    return result


def _prepare(chosen: list[Target], rep: Reporter) -> None:
    """Build (or refresh) the ARM64 root when arm64 is asked for and the cached one is missing."""
    if any(t.kind == "arm64" for t in chosen):
        from . import arm64root

        if arm64root.read_ready() is None:
            rep.note(
                f"building the emulated ARM64 root once (debootstrap, a few minutes; cached in {arm64root.cache_dir()})"
            )
        arm64root.ensure_root(log=rep.note)


def bundle_case(path: Path) -> BundleCase:
    """Read a bundle on the host (hashes checked) and collect what its cells are judged against."""
    from edgefin_converters.registry import resolve_variants
    from edgefin_runtime.bundle import read_bundle

    m = read_bundle(path).manifest
    gate = m.parity.get("gate") if isinstance(m.parity, dict) else None
    if not isinstance(gate, dict) or "kind" not in gate:
        gate = {"kind": resolve_variants(m.model.variant)[0].gate}
    return BundleCase(
        name=path.stem,
        path=path.resolve(),
        variant=m.model.variant,
        gate=dict(gate),
        source_stage=m.model.source_stage,
        ref=cmp.reference_set(m),
    )


def load_test_split(run: RunDir, cases: Sequence[BundleCase], rows: int | None) -> TestSplit:
    """Raw test records (as convert scores them) and each needed source model's scores on them."""
    from edgefin_converters.export import row_record
    from edgefin_converters.keras_io import predict
    from edgefin_runtime.bundle import read_bundle
    from edgefin_runtime.preprocess import Preprocessor

    from ..data.rundata import load_split, run_schema, run_spec
    from ..data.schema import to_columns
    from ..keras_io import load_model

    schema, spec = run_schema(run), run_spec(run)
    frame, y_all = load_split(run, "test")
    cols = to_columns(frame, schema, f"{run.root}/data/test.parquet")
    fields = {f.name: cols[f.name] for f in schema.fields}
    res = Preprocessor(schema, spec).columns(fields)
    usable = np.ones(len(res.matrix), dtype=bool)
    usable[list(res.errors)] = False
    idx = np.flatnonzero(usable)
    if rows is not None:
        idx = idx[:rows]
    x = res.matrix[idx]
    source: dict[str, np.ndarray] = {}
    for case in cases:
        stage = case.source_stage
        if stage in source:
            continue
        try:
            model_path = run.require(run.model_path(stage), "compress" if stage != "dense" else "train")
        except ValueError:
            raise RunDirError(
                f"bundle {case.path.name}: source stage {stage!r} is not a stage of a run directory; "
                f"'edgefin targets' checks the bundles of a run"
            ) from None
        want = read_bundle(case.path).manifest.source.get("model_sha256")
        if want and _sha256(model_path) != want:
            raise RunDirError(
                f"run directory {run.root}: {model_path.name} changed after the bundles were made "
                f"(bundle {case.path.name} names another model); re-run 'edgefin convert {run.root}'"
            )
        source[stage] = np.asarray(predict(load_model(model_path), x), dtype=np.float64).ravel()
    metrics = run.read_json(run.metrics_json, "train")
    threshold = float(cases[0].ref.threshold if cases else metrics.get("threshold", 0.5))
    return TestSplit(
        records=[row_record(fields, schema, int(i)) for i in idx],
        y=np.asarray(y_all)[idx],
        threshold=threshold,
        source=source,
        excluded_rows=int((~usable).sum()),
    )


# ---------------------------------------------------------------- the check itself
def check_bundles(
    cases: Sequence[BundleCase],
    targets: Sequence[Target],
    *,
    test: TestSplit | None = None,
    reporter: Reporter | None = None,
    timeout: float = 3600.0,
) -> TargetsResult:
    """Probe every target (one process each) and judge every bundle x target cell; no file is written."""
    rep = reporter or SILENT
    job = _job(cases, test)
    runs: dict[str, dict[str, Any]] = {}
    for t in targets:
        runs[t.name] = _probe_target(t, job, cases, rep, timeout)
    native = runs.get("native")
    bundles: dict[str, Any] = {}
    cells: list[dict[str, Any]] = []
    for case in cases:
        row: dict[str, Any] = {}
        for t in targets:
            r = runs[t.name]
            probe = r["bundles"].get(case.name)
            died = r["died"].get(case.name)
            reference = test_part = None
            if probe is not None:
                sets = probe.get("sets", {})
                if "ref" in sets:
                    reference = cmp.judge_reference(case.ref, sets["ref"])
                if test is not None and "test" in sets:
                    build = None
                    if native is not None and case.name in native["bundles"]:
                        build = native["bundles"][case.name].get("sets", {}).get("test")
                    test_part = cmp.judge_test(
                        case.variant,
                        case.gate,
                        case.source_stage,
                        test.source[case.source_stage],
                        test.y,
                        case.ref.threshold,
                        sets["test"],
                        build,
                        excluded_rows=test.excluded_rows,
                    )
            c = cmp.cell(case.name, t.name, probe, died, reference, test_part)
            row[t.name] = c
            cells.append(c)
        bundles[case.name] = {
            "variant": case.variant,
            "gate": case.gate,
            "source_stage": case.source_stage,
            "reference_set": case.ref.kind,
            "reference_records": len(case.ref.records),
            "cells": row,
        }
    failures = cmp.summarise(cells)
    data = {
        "format": FORMAT,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": NOTE,
        "passed": not failures,
        "failures": failures,
        "test_rows": None if test is None else len(test.records),
        "targets": {
            t.name: {
                **t.to_dict(),
                "seconds": round(runs[t.name]["seconds"], 1),
                "platform": runs[t.name]["platform"],
                "probe_runs": runs[t.name]["processes"],
            }
            for t in targets
        },
        "bundles": bundles,
    }
    return TargetsResult(data=data, failures=failures)


def _job(cases: Sequence[BundleCase], test: TestSplit | None) -> dict[str, Any]:
    sets: dict[str, list[dict[str, Any]]] = {}
    specs = []
    for c in cases:
        sets[f"ref:{c.name}"] = list(c.ref.records)
        specs.append({"name": c.name, "path": str(c.path), "sets": ["ref:" + c.name] + (["test"] if test else [])})
    if test is not None:
        sets["test"] = test.records
    return {"sets": sets, "bundles": specs}


def _probe_target(
    t: Target, job: dict[str, Any], cases: Sequence[BundleCase], rep: Reporter, timeout: float
) -> dict[str, Any]:
    """Run the probe once for all bundles; if the process dies, once per bundle to find the culprit."""
    total = len(job["bundles"])
    rep.started(t.name, total)
    t0 = time.perf_counter()
    done = [0]

    def on_line(text: str) -> None:
        if text != "done":
            rep.advanced(t.name, done[0], total, info=text)
            done[0] += 1

    try:
        first = run_probe(t, job, on_line=on_line, timeout=timeout)
        runs = [first]
        processes = 1
        if first.output is None:
            rep.note(f"{t.name}: {first.died}; re-running one bundle at a time to find which")
            runs = [run_probe(t, {"sets": job["sets"], "bundles": [spec]}, timeout=timeout) for spec in job["bundles"]]
            processes += len(runs)
    finally:
        rep.done(t.name)
    bundles: dict[str, Any] = {}
    died: dict[str, str] = {}
    platform: dict[str, Any] = {}
    for r, specs in _pairs(runs, job["bundles"]):
        if r.output is not None:
            platform = platform or r.output.get("platform", {})
            bundles.update({k: _sets_renamed(v) for k, v in r.output["bundles"].items()})
        else:
            why = r.died or "the probe failed"
            tail = "; ".join(r.stderr_tail[-2:])
            for spec in specs:
                died[spec["name"]] = f"{why}{' (' + tail[:300] + ')' if tail else ''}"
    seconds = time.perf_counter() - t0
    rep.checked(
        t.name,
        not died and all(b.get("loaded") for b in bundles.values()),
        f"{len(bundles)} of {total} bundles probed in {seconds:.0f} s",
    )
    return {"bundles": bundles, "died": died, "platform": platform, "seconds": seconds, "processes": processes}


def _pairs(runs: list[ProbeRun], specs: list[dict[str, Any]]) -> list[tuple[ProbeRun, list[dict[str, Any]]]]:
    if len(runs) == 1:
        return [(runs[0], specs)]
    return [(r, [s]) for r, s in zip(runs, specs)]


def _sets_renamed(entry: dict[str, Any]) -> dict[str, Any]:
    """The probe's per-bundle set names ("ref:NAME") as the judges read them ("ref")."""
    sets = {("ref" if k.startswith("ref:") else k): v for k, v in entry.get("sets", {}).items()}
    return {**entry, "sets": sets}


# ---------------------------------------------------------------- report
def report_summary(data: dict[str, Any]) -> dict[str, Any]:
    """The part of targets.json a report shows: the bundle x target grid, without score lists."""
    grid = {}
    for b, info in data.get("bundles", {}).items():
        grid[b] = {
            t: {k: c.get(k) for k in ("passed", "loaded", "max_abs_delta", "flips", "test_flips_vs_source")}
            | {"failures": c.get("failures", [])[:3]}
            for t, c in info.get("cells", {}).items()
        }
    return {
        "created_at": data.get("created_at"),
        "passed": data.get("passed"),
        "note": data.get("note"),
        "order": list(data.get("targets", {})),
        "test_rows": data.get("test_rows"),
        "targets": {
            k: {"cpu": v.get("cpu"), "isa": v.get("isa"), "seconds": v.get("seconds")}
            for k, v in data.get("targets", {}).items()
        },
        "grid": grid,
    }


def _update_report(run: RunDir, data: dict[str, Any], rep: Reporter) -> None:
    """Add the grid to the run's report (report.json/md/html) when a bench report exists."""
    from ..bench.report import write_report

    path = run.report_dir / "report.json"
    if not path.is_file():
        return
    import json

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        rep.warn(f"{path} is unreadable; the targets grid was not added to the report")
        return
    report["targets"] = report_summary(data)
    write_report(report, run.report_dir)
    rep.note(f"report updated: {run.report_dir}/report.html")


# ---------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
