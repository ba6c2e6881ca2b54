"""The run-directory step: prune -> (cluster) -> QAT/PQAT, measure every stage, write compress.json.

Reads the dense model, the splits and the threshold the train step wrote; writes
``models/pruned.keras``, ``models/clustered.keras`` (with ``cluster``), ``models/qat.keras`` (with
``qat``) and ``compress.json`` last, so a run with a compress.json is complete. Artefacts of an
earlier compression that the new one makes stale (a qat.keras from an earlier QAT run, bundles
converted from old models) are removed and said so.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, atomic
from ..errors import QualityGateError, UsageError
from ..reporter import SILENT, Reporter
from ..rundir import STAGES, RunDir
from ..tftypes import KerasModel
from .finetune import FitData
from .options import AUC_TOLERANCE, CompressOptions

SPARSITY_SLACK = 0.01  # measured kernel sparsity may fall this far below the target
STALE_AFTER_COMPRESS = ("bundles", "report")


def make_options(options: CompressOptions | None = None, **overrides: object) -> CompressOptions:
    """Validated options from a CompressOptions and/or keyword overrides (CompressOptions field names)."""
    known = {f.name for f in fields(CompressOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise UsageError(f"unknown compress option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    opts = replace(options, **kw) if options is not None else CompressOptions(**kw)
    return opts.validated()


def compress_run(
    run: str | Path | RunDir,
    options: CompressOptions | None = None,
    *,
    reporter: Reporter | None = None,
    gate: bool = False,
    **overrides: object,
) -> dict[str, Any]:
    """Compress a trained run in place and return the compress.json dict.

    With ``gate``, a missed quality bar raises QualityGateError after compress.json is written.
    """
    from ..data import encoded_split
    from ..keras_io import load_model, save_model
    from .support import check_model

    opts = make_options(options, **overrides)
    rd = run if isinstance(run, RunDir) else RunDir.at(run)
    rep = reporter or SILENT
    on_epoch = _EpochTasks(rep)
    started = time.perf_counter()
    if not rd.root.is_dir():
        raise UsageError(
            f"{rd.root} is not a run directory: train into it first, or compress a Keras model of "
            f"your own (MODEL.keras) with its `data` and `target`"
        )

    # ------------------------------------------------------------ read the run
    rep.note("reading the run directory")
    metrics = rd.read_json(rd.metrics_json, "train")
    if "threshold" not in metrics:
        from ..errors import RunDirError

        raise RunDirError(f"run directory {rd.root}: metrics.json has no 'threshold'; re-run 'edgefin train'")
    threshold = float(metrics["threshold"])
    run_opts = _run_options(rd)
    seed = int(opts.seed if opts.seed is not None else run_opts.get("seed", 42))
    data = _fit_data(rd, opts, run_opts, seed, rep)
    x_test, y_test = encoded_split(rd, "test")
    dense_path = rd.require(rd.model_path("dense"), "train")
    dense = load_model(dense_path)
    check_model(dense, label=str(dense_path), n_features=int(data.x_train.shape[1]))

    _preflight(dense, opts, data)  # refuse before anything of the previous compression is removed
    _start(rd, opts, rep)
    models: dict[str, KerasModel] = {"dense": dense}
    details: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------ prune
    from .prune import prune

    rep.note(f"pruning to {opts.sparsity:.0%} sparsity ({opts.block}) over {opts.epochs} epochs")
    models["pruned"], details["pruned"] = prune(dense, data, opts, seed=seed, on_epoch=on_epoch)
    on_epoch.close()
    save_model(models["pruned"], rd.model_path("pruned"))
    last = "pruned"

    # ------------------------------------------------------------ cluster
    if opts.cluster:
        from .cluster import cluster

        rep.note(f"clustering kernels to {opts.cluster} values over {opts.cluster_epochs} epochs")
        models["clustered"], details["clustered"] = cluster(
            models[last],
            data,
            clusters=opts.cluster,
            epochs=opts.cluster_epochs,
            learning_rate=opts.cluster_learning_rate,
            seed=seed,
            skip_layers=opts.skip_layers,
            include_output=opts.prune_output,
            on_epoch=on_epoch,
        )
        on_epoch.close()
        save_model(models["clustered"], rd.model_path("clustered"))
        last = "clustered"

    # ------------------------------------------------------------ QAT
    if opts.qat:
        from .qat import quantize_aware, scheme_for

        scheme = scheme_for(models[last], clustered=last == "clustered")
        rep.note(f"quantisation-aware training ({scheme.upper()}) over {opts.qat_epochs} epochs")
        models["qat"], details["qat"] = quantize_aware(
            models[last],
            data,
            scheme=scheme,
            epochs=opts.qat_epochs,
            learning_rate=opts.qat_learning_rate,
            seed=seed,
            skip_layers=opts.skip_layers,
            on_epoch=on_epoch,
        )
        on_epoch.close()
        details["qat"]["source_stage"] = last
        save_model(models["qat"], rd.model_path("qat"))

    # ------------------------------------------------------------ measure and write
    rep.note("measuring every stage on the test split")
    report = _report(rd, opts, models, details, data, x_test, y_test, threshold, seed, started)
    atomic.write_json(rd.compress_json, report)
    _record_step(rd, report)
    failed = [c for c in report["quality_bar"]["checks"] if not c["passed"]]
    if gate and failed:
        raise QualityGateError(
            "compression missed the quality bar: "
            + "; ".join(f"{c['name']} ({c['detail']})" for c in failed)
            + f". The models and {rd.compress_json} were written"
        )
    return report


# ---------------------------------------------------------------- helpers
class _EpochTasks:
    """The fine-tuning epoch hook (stage, epoch, total, logs) as one counted task per stage."""

    def __init__(self, rep: Reporter) -> None:
        self.rep = rep
        self.task: str | None = None

    def __call__(self, stage: str, epoch: int, total: int, logs: dict[str, float]) -> None:
        task = f"{stage} epoch"
        if task != self.task:
            self.close()
            self.task = task
            self.rep.started(task, total)
        info = f"loss {logs.get('loss', float('nan')):.4f}  val AUC {logs.get('val_auc', float('nan')):.4f}"
        self.rep.advanced(task, epoch, total, info)

    def close(self) -> None:
        if self.task is not None:
            self.rep.done(self.task)
            self.task = None


def _run_options(rd: RunDir) -> dict[str, Any]:
    if not rd.run_json.exists():
        return {}
    rec = rd.read_json(rd.run_json, "train")
    opts = dict(rec.get("options") or {})
    opts.setdefault("seed", rec.get("seed", 42))
    return opts


def _fit_data(rd: RunDir, opts: CompressOptions, run_opts: dict[str, Any], seed: int, rep: Reporter) -> FitData:
    """Training rows exactly as the dense model saw them (augmented the same way), and validation rows."""
    from ..data import encode, encoded_split, load_split

    method = str(run_opts.get("augment", "none") or "none")
    if method != "none":
        from ..data.augment import augment
        from ..data.rundata import run_schema

        frame, y = load_split(rd, "train")
        rep.note(f"re-applying the training augmentation ({method}) for fine-tuning")
        frame, y = augment(frame, y, method=method, schema=run_schema(rd), seed=int(run_opts.get("seed", seed)))
        x = encode(rd, frame, source=f"training split augmented with {method}")
    else:
        x, y = encoded_split(rd, "train")
    xv, yv = encoded_split(rd, "validation")
    cw = opts.class_weight if opts.class_weight is not None else bool(run_opts.get("class_weight", True))
    bs = int(opts.batch_size or run_opts.get("batch_size", 64))
    return FitData(
        np.asarray(x, np.float32),
        np.asarray(y, np.int64),
        np.asarray(xv, np.float32),
        np.asarray(yv, np.int64),
        batch_size=bs,
        class_weight=cw,
    )


def _preflight(dense: KerasModel, opts: CompressOptions, data: FitData) -> None:
    """Every check the strategies will make, made up front: layers, skips, schedule."""
    from .prune import schedule
    from .qat import _scheme
    from .support import check_prunable, check_quantizable, check_skip, output_layer_name

    check_skip(dense, opts.skip_layers)
    skip = set(opts.skip_layers) | (set() if opts.prune_output else {output_layer_name(dense)})
    check_prunable(dense, skip)
    schedule(opts, data.steps_per_epoch())
    if opts.qat:
        check_quantizable(dense, opts.skip_layers, _scheme("cqat" if opts.cluster else "pqat").get_quantize_registry())


def _start(rd: RunDir, opts: CompressOptions, rep: Reporter) -> None:
    """compress.json goes first (written again last); drop stage files and bundles the new run makes stale."""
    removed = []
    if rd.compress_json.exists():
        rd.compress_json.unlink()
    stale = [] if opts.cluster else [rd.model_path("clustered")]
    if not opts.qat:
        stale.append(rd.model_path("qat"))
    for p in stale:
        if p.exists():
            p.unlink()
            removed.append(str(p.relative_to(rd.root)))
    for rel in STALE_AFTER_COMPRESS:
        p = rd.root / rel
        if p.is_dir():
            shutil.rmtree(p)
            removed.append(rel)
    if removed:
        rep.warn(f"removed artefacts that the new compression makes stale: {', '.join(removed)}")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _report(
    rd: RunDir,
    opts: CompressOptions,
    models: dict[str, KerasModel],
    details: dict[str, dict[str, Any]],
    data: FitData,
    x_test: np.ndarray,
    y_test: np.ndarray,
    threshold: float,
    seed: int,
    started: float,
) -> dict[str, Any]:
    from ..metrics import auc, evaluate, flip_rate
    from .report import sizes
    from .sparsity import measure, pruned_kernel_sparsity
    from .support import predict

    dense_test = predict(models["dense"], x_test)
    dense_val = predict(models["dense"], data.x_val)
    stages: dict[str, Any] = {}
    for name, model in models.items():
        path = rd.model_path(name)
        p_test = dense_test if name == "dense" else predict(model, x_test)
        p_val = dense_val if name == "dense" else predict(model, data.x_val)
        sp = measure(model)
        entry: dict[str, Any] = {
            "model": str(path.relative_to(rd.root)),
            "sha256": _sha256(path),
            "test": evaluate(y_test, p_test, threshold),
            "validation_auc": auc(data.y_val, p_val),
            "flip_rate_vs_dense": flip_rate(dense_test, p_test, threshold),
            "validation_flip_rate_vs_dense": flip_rate(dense_val, p_val, threshold),
            "max_abs_score_change_vs_dense": float(np.max(np.abs(p_test - dense_test))),
            "sparsity": sp,
            "size": sizes(model, path),
        }
        if name in details:
            entry["details"] = details[name]
        if name != "dense":
            entry["sparsity"]["pruned_layers_kernel_sparsity"] = pruned_kernel_sparsity(
                sp, details["pruned"]["pruned_layers"]
            )
        stages[name] = entry
    report: dict[str, Any] = {
        "format_version": 1,
        "edgefin_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": str(rd.root),
        "options": opts.to_dict(),
        "seed": seed,
        "threshold": threshold,
        "fine_tune_rows": {
            "train": int(len(data.y_train)),
            "validation": int(len(data.y_val)),
            "test": int(len(y_test)),
        },
        "versions": _versions(),
        "stages": stages,
        "final_stage": list(models)[-1],
        "seconds": round(time.perf_counter() - started, 3),
    }
    report["quality_bar"] = quality_bar(report)
    report["notes"] = _notes(report)
    return report


def quality_bar(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's bar, checked on what was measured: AUC, sparsity reached and kept, gzip size."""
    st = report["stages"]
    dense, pruned = st["dense"], st["pruned"]
    target = float(report["options"]["sparsity"])
    checks = []
    for name in [s for s in st if s != "dense"]:
        drop = dense["test"]["auc"] - st[name]["test"]["auc"]
        checks.append(
            {
                "name": f"{name} test AUC within {AUC_TOLERANCE} of dense",
                "passed": drop <= AUC_TOLERANCE,
                "detail": f"dense {dense['test']['auc']:.4f}, {name} {st[name]['test']['auc']:.4f} (drop {drop:+.4f})",
            }
        )
    reached = pruned["sparsity"].get("pruned_layers_kernel_sparsity", pruned["sparsity"]["kernel_sparsity"])
    checks.append(
        {
            "name": f"pruned kernels reach the target sparsity (>= {target - SPARSITY_SLACK:.0%})",
            "passed": reached >= target - SPARSITY_SLACK,
            "detail": f"{reached:.2%} of the pruned layers' kernel weights are zero; "
            f"{pruned['sparsity']['kernel_sparsity']:.2%} of all kernels",
        }
    )
    for name in [s for s in st if s not in ("dense", "pruned")]:
        keep = st[name]["sparsity"]["kernel_sparsity"]
        q = st[name]["sparsity"].get("quantized_kernel_sparsity")
        ok = keep >= pruned["sparsity"]["kernel_sparsity"] - 1e-9 and (q is None or q >= keep - 1e-9)
        checks.append(
            {
                "name": f"{name} keeps the pruned zeros",
                "passed": bool(ok),
                "detail": f"kernel sparsity {keep:.2%}" + (f", after int8 fake-quant {q:.2%}" if q is not None else ""),
            }
        )
    ratio = pruned["size"]["weights_gzip_bytes"] / dense["size"]["weights_gzip_bytes"]
    if target >= 0.8 - 1e-9:
        checks.append(
            {
                "name": "gzip size of the pruned weights below half the dense model's",
                "passed": ratio < 0.5,
                "detail": f"{pruned['size']['weights_gzip_bytes']} vs {dense['size']['weights_gzip_bytes']} "
                f"bytes (ratio {ratio:.3f})",
            }
        )
    return {
        "auc_tolerance": AUC_TOLERANCE,
        "weights_gzip_ratio_pruned_vs_dense": ratio,
        "passed": all(c["passed"] for c in checks),
        "checks": checks,
    }


def _notes(report: dict[str, Any]) -> list[str]:
    notes = [
        "pruning keeps tensors dense: the raw float32 size is unchanged and only the gzip (or a sparse "
        "format) shrinks; QAT sizes shrink for real after int8 conversion (edgefin convert)"
    ]
    qat = report["stages"].get("qat")
    if qat and qat.get("details", {}).get("scheme") == "cqat":
        notes.append(
            "the CQAT model was baked into an equivalent prune-preserving QAT model so that it can be "
            "saved and reloaded as .keras"
        )
    return notes


def _record_step(rd: RunDir, report: dict[str, Any]) -> None:
    """Add the compress step to run.json (when the run has one), so the run says what produced it."""
    stages = [s for s in STAGES if s in report["stages"]]

    def change(rec: dict[str, Any]) -> None:
        rec.setdefault("steps", {})["compress"] = {
            "options": report["options"],
            "final_stage": report["final_stage"],
            "seconds": report["seconds"],
            "models": {k: v["sha256"] for k, v in report["stages"].items()},
        }
        lineage = rec.get("lineage")
        if isinstance(lineage, dict):  # a user's model (edgefin.ingest): which stage each model came from
            lineage.setdefault("stages", {}).update(
                {s: {"from": p, "file": f"models/{s}.keras", "by": "compress"} for p, s in zip(stages, stages[1:])}
            )

    rd.update_record(change)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("tensorflow", "tf-keras", "tensorflow-model-optimization", "imbalanced-learn"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out
