"""Run every variant of a run directory in its own fresh worker process, under one hardware profile.

The parent never imports an engine or TensorFlow: it prepares the test split once (a JSON file of
columns the workers read with the standard library and NumPy), spawns the runtime's measuring worker
(``edgefin_runtime.benchmark.worker``, the code ``edgefin-run bench`` runs on a device) per variant,
and once for the source Keras model (``edgefin.bench.keras_timing``), then computes the
quality figures (AUC, Gini, KS, Brier, flip rate) from the scores the workers return.

A worker that dies without a result under a memory cap is started once more without the cap, only
to load and score one record: if that works, the variant is reported as "does not fit" the profile;
if it fails too, as an error (a crash is never disguised as a memory verdict).
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefin_runtime.benchmark.launch import spawn_worker  # the runtime's worker, as edgefin-run bench

from ..atomic import write_json
from ..errors import RunDirError, UsageError
from ..reporter import SILENT, Reporter
from ..rundir import RunDir
from . import quality
from .machine import library_versions, load_average, machine_info
from .profiles import Profile
from .recommend import Constraints, recommend
from .settings import Settings

REPORT_SCHEMA_VERSION = 1


@dataclass
class BenchOptions:
    profile: Profile
    settings: Settings = field(default_factory=Settings)
    variants: Sequence[str] | None = None
    constraints: Constraints = field(default_factory=Constraints)
    keras: bool = True  # measure the source Keras model for the ratios


def list_variants(rd: RunDir) -> dict[str, Path]:
    """Variant name -> bundle path, from RUN_DIR/bundles/*.efb."""
    if not rd.bundles_dir.is_dir():
        raise RunDirError(f"run directory {rd.root}: bundles/ is missing; run 'edgefin convert {rd.root}' first")
    found = {p.stem: p for p in sorted(rd.bundles_dir.glob("*.efb"))}
    if not found:
        raise RunDirError(
            f"run directory {rd.root}: no bundles (*.efb) under bundles/; run 'edgefin convert {rd.root}' first"
        )
    return found


def select_variants(available: dict[str, Path], wanted: Sequence[str] | None) -> dict[str, Path]:
    if not wanted or list(wanted) == ["all"]:
        return available
    unknown = [w for w in wanted if w not in available]
    if unknown:
        raise UsageError(
            f"variant(s) {', '.join(unknown)} not in {next(iter(available.values())).parent} "
            f"(available: {', '.join(available)})"
        )
    return {w: available[w] for w in wanted}


# ---------------------------------------------------------------- test data
def write_inputs(rd: RunDir, path: Path) -> tuple[list[int], dict[str, Any]]:
    """Write the test split's feature columns for the workers; return (labels 0/1, the schema dict)."""
    from ..data.io import read_table
    from ..data.schema import TargetSpec, schema_from_dict, target_vector, to_columns

    schema_d = rd.read_json(rd.schema_json, "train")
    schema = schema_from_dict(schema_d)
    test = rd.require(rd.split_path("test"), "train")
    frame = read_table(test, role="test data")
    spec = TargetSpec(schema.target, schema.positive_label, schema.negative_label)
    y, present = target_vector(frame, spec, str(test))
    frame = frame[present]
    y = y[present]
    if len(frame) == 0:
        raise RunDirError(f"run directory {rd.root}: the test split has no rows with a target; re-run 'edgefin train'")
    cols = to_columns(frame, schema, str(test))
    out: dict[str, list[Any]] = {}
    for f in schema.fields:
        values = cols[f.name].tolist()
        if f.kind == "numeric":
            out[f.name] = [None if v != v else float(v) for v in values]
        else:
            out[f.name] = [None if v is None else (v.item() if hasattr(v, "item") else v) for v in values]
    write_json(path, {"fields": list(schema.names), "kinds": {f.name: f.kind for f in schema.fields}, "columns": out})
    return [int(v) for v in y], schema_d


# ---------------------------------------------------------------- workers
def measure_variant(
    name: str, bundle: Path, inputs: Path, profile: Profile, settings: Settings, workdir: Path
) -> dict[str, Any]:
    base = {
        "mode": "variant",
        "variant": name,
        "bundle": str(bundle),
        "input": str(inputs),
        "cpus": profile.cpus(),
        "threads": profile.threads,
        "memory_mib": profile.memory_mib,
        "settings": settings.to_dict(),
    }
    res = spawn_worker(base, workdir, name, settings.timeout_s)
    if res["status"] == "crashed":
        if profile.memory_mib:
            probe = spawn_worker(
                {**base, "memory_mib": None, "probe_only": True}, workdir, f"{name}.probe", settings.timeout_s
            )
            if probe["status"] == "ok":
                res = {
                    "status": "does_not_fit",
                    "error": f"{res['error']}; the same variant loads and scores "
                    f"without the {profile.memory_mib} MiB cap, so it does not fit the profile",
                }
            else:
                res["status"] = "error"
        else:
            res["status"] = "error"
    return res


def run_bench(
    run_dir: str | os.PathLike[str], options: BenchOptions, reporter: Reporter | None = None
) -> dict[str, Any]:
    """Benchmark the run's bundles; return the report dict (what report.json holds).

    Progress is the counted task "bench" (one unit per variant, and one for the Keras model)."""
    rep = reporter or SILENT
    rd = RunDir.at(run_dir)
    variants = select_variants(list_variants(rd), options.variants)
    profile, settings = options.profile, options.settings
    profile.cpus()  # fail early on a profile that wants more cores than we have
    total = len(variants) + (1 if options.keras else 0)
    done = 0
    started = time.time()
    load_at_start = load_average()
    rep.started("bench", total)
    try:
        with tempfile.TemporaryDirectory(prefix="edgefin-bench-") as tmp:
            work = Path(tmp)
            inputs = work / "inputs.json"
            labels, schema_d = write_inputs(rd, inputs)
            keras_res: dict[str, Any] | None = None
            if options.keras:
                rep.advanced("bench", done, total, "keras (source model)")
                keras_res = measure_keras(rd, inputs, profile, settings, work)
                done += 1
            raw: dict[str, dict[str, Any]] = {}
            for name, path in variants.items():
                rep.advanced("bench", done, total, name)
                raw[name] = measure_variant(name, path, inputs, profile, settings, work)
                done += 1
            rep.advanced("bench", done, total, "done")
    finally:
        rep.done("bench")
    parity = _read_optional(rd.parity_json)
    metrics = _read_optional(rd.metrics_json)
    dense_scores = keras_res.get("scores") if keras_res and keras_res.get("status") == "ok" else None
    rows = [
        assemble_variant(name, path, raw[name], labels, dense_scores, metrics, parity)
        for name, path in variants.items()
    ]
    source = quality.source_summary(labels, dense_scores, metrics)
    keras_summary = _keras_summary(keras_res)
    for row in rows:
        row["ratios"] = quality.ratios(row, keras_summary)
    rec = recommend(rows, options.constraints, source_auc=source.get("auc"))
    curves = quality.curves(rows, labels, dense_scores)
    return {
        "report_schema_version": REPORT_SCHEMA_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run_dir": str(rd.root),
        "duration_s": round(time.time() - started, 2),
        "machine": {**machine_info(), "load_average_at_start": load_at_start},
        "versions": library_versions(),
        "profile": profile.to_dict(),
        "settings": settings.to_dict(),
        "constraints": options.constraints.to_dict(),
        "test_rows": len(labels),
        "source": {**source, "keras": keras_summary},
        "variants": rows,
        "recommendation": rec,
        "curves": curves,
        "compression": _read_optional(rd.compress_json),
        "data_quality": _read_optional(rd.quality_json),
        "schema_target": {"target": schema_d.get("target"), "positive_label": schema_d.get("positive_label")},
    }


def measure_keras(rd: RunDir, inputs: Path, profile: Profile, settings: Settings, work: Path) -> dict[str, Any]:
    model = rd.model_path("dense")
    if not model.exists():
        return {"status": "error", "error": f"{model} is missing; the Keras ratios need the dense model"}
    spec = {
        "mode": "keras",
        "measure": "edgefin.bench.keras_timing:run_keras",
        "model": str(model),
        "schema": str(rd.schema_json),
        "preprocess": str(rd.preprocess_json),
        "input": str(inputs),
        "cpus": profile.cpus(),
        "threads": profile.threads,
        "memory_mib": None,
        "settings": settings.to_dict(),
    }
    res = spawn_worker(spec, work, "keras", max(settings.timeout_s, 180.0))
    if res["status"] == "crashed":
        res["status"] = "error"
    return res


def _keras_summary(res: dict[str, Any] | None) -> dict[str, Any]:
    if not res:
        return {"status": "skipped"}
    if res.get("status") != "ok":
        return {"status": res.get("status", "error"), "error": res.get("error")}
    return {
        k: res[k]
        for k in (
            "status",
            "latency",
            "throughput",
            "cold_start",
            "memory",
            "versions",
            "profile_applied",
            "memory_cap_note",
        )
        if k in res
    }


def assemble_variant(
    name: str,
    bundle: Path,
    res: dict[str, Any],
    labels: list[int],
    dense_scores: list[float] | None,
    metrics: object,  # metrics.json and parity.json as parsed (None when absent); checked where read
    parity: object,
) -> dict[str, Any]:
    """One row of the report: sizes, quality on the test split, parity and the measurements."""
    row: dict[str, Any] = {"name": name, "bundle": str(bundle), "status": res.get("status", "error")}
    row.update(sizes(bundle))
    row["parity"] = quality.parity_for(parity, name)
    if res.get("error"):
        row["error"] = res["error"]
    if row["status"] != "ok":
        row["memory"] = res.get("memory")
        return row
    scores = res.pop("scores")
    threshold = quality.threshold_of(row, metrics)
    row["quality"] = quality.variant_quality(labels, scores, dense_scores, threshold)
    for key in (
        "engine",
        "cold_start",
        "memory",
        "memory_after_first_score",
        "latency",
        "throughput",
        "profile_applied",
        "versions",
        "rejected",
        "heavy_modules_loaded",
    ):
        if key in res:
            row[key] = res[key]
    row["_scores"] = scores  # used for the curves, dropped before writing
    return row


def sizes(bundle: Path) -> dict[str, Any]:
    """Raw and gzip sizes of the bundle file and of the model inside it."""
    from edgefin_runtime.bundle import read_bundle

    data = bundle.read_bytes()
    out: dict[str, Any] = {"bundle_bytes": len(data), "bundle_gzip_bytes": len(gzip.compress(data, 9, mtime=0))}
    try:
        b = read_bundle(data)
    except Exception as exc:  # a bundle that does not verify still gets its file size reported
        out["bundle_error"] = str(exc)
        return out
    out["engine_name"] = b.manifest.model.engine
    out["model_bytes"] = len(b.model_bytes)
    out["model_gzip_bytes"] = len(gzip.compress(b.model_bytes, 9, mtime=0))
    out["weights"] = b.manifest.model.weights
    out["activations"] = b.manifest.model.activations
    out["source_stage"] = b.manifest.model.source_stage
    out["threshold"] = b.manifest.decision.threshold
    return out


def _read_optional(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
