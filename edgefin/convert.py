"""`edgefin convert`: turn a run's model (or a user's own Keras model) into verified .efb bundles.

Run directory: the final stage compress recorded in compress.json unless ``stage`` is given (without a
compress record, the last model file present). With a QAT stage, ``tflite-int8`` is converted from the
QAT model and every other variant from the pruned model it descends from (dense for a run compress did
not prune; :meth:`~edgefin.rundir.RunDir.qat_float_stage`); parity always compares a variant with the
Keras model it was converted from. Calibration rows come from the training split, parity rows from the test
split. Bundles go to RUN_DIR/bundles/NAME.efb (or ``out``) with bundles/parity.json; all are written
before a failed gate raises :class:`~edgefin_converters.errors.ParityGateError` (exit code 3).

User model: any model :mod:`edgefin.ingest` reads (Keras 3 or tf_keras ``.keras``, ``.h5``, a SavedModel
directory, an ONNX file) + a data file with a target column. :func:`convert_user_model` ingests it into a
run directory (splits, schema, threshold, lineage: the one behaviour for user models) and converts that
run. An ONNX model gives the ONNX variants only (``edgefin_converters.sources.ONNX_NO_TFLITE`` says why).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefin_converters.parity import Gates

from . import atomic
from .errors import RunDirError, UsageError
from .keras_io import load_model
from .rundir import STAGES, RunDir

if TYPE_CHECKING:
    from edgefin_converters.export import ConversionData, ExportResult, Progress, Source, Sources

    from .ingest.run import Options as IngestOptions
    from .reporter import Reporter


@dataclass(frozen=True)
class ConvertOptions:
    """Everything that decides a conversion (the CLI maps its flags onto these)."""

    variants: str = "all"
    stage: str | None = None
    out: str | Path | None = None
    gate: bool = True
    opset: int = 17
    int8_io: bool = False
    per_channel: bool = False
    calibration_rows: int = 500
    seed: int = 0
    max_auc_drop: float = Gates.max_auc_drop  # the parity gates: defaults from edgefin_converters.Gates
    max_flip_rate: float = Gates.max_flip_rate
    exact_max_delta: float = Gates.exact_max_delta
    fp16_max_delta: float = Gates.fp16_max_delta
    #: a post-training int8 variant that fails its gate gets accuracy repair (per-channel weights, more
    #: calibration rows, then the fewest sensitive layers kept in float; edgefin_converters.repair)
    repair: bool = True
    #: fields never given as a reason code (added to the run's own, recorded by train), and a TOML file of
    #: reason texts (edgefin.reason_texts)
    protected: tuple[str, ...] = ()
    reasons: str | None = None
    #: the bundles' default explanation method (edgefin_runtime.explain: auto, exact, paired, stratified, sampled)
    explain_method: str = "auto"


@dataclass
class ConvertResult:
    """What a conversion wrote, and each variant's size, metrics and parity (for the table and --json)."""

    out_dir: Path
    parity_path: Path
    bundles: dict[str, Path]
    export: ExportResult
    stage: str
    gated: bool
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.export.passed)

    def rows(self) -> list[dict[str, Any]]:
        return [{**r.summary(), "bundle": str(self.bundles[r.name])} for r in self.export.results]

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "parity": str(self.parity_path),
            "stage": self.stage,
            "passed": self.passed,
            "gated": self.gated,
            "failures": self.export.failures,
            "variants": self.rows(),
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- run directory
def convert_run(
    run_dir: str | Path, options: ConvertOptions | None = None, *, progress: Progress | None = None
) -> ConvertResult:
    """Convert a run directory's model into every requested variant; write bundles and parity.json."""
    from edgefin_converters import ConversionData, Sources

    from .data.rundata import load_split, run_schema, run_spec
    from .data.schema import to_columns

    opts = options or ConvertOptions()
    run = RunDir.at(run_dir)
    if not run.root.is_dir():
        raise RunDirError(f"run directory {run.root} does not exist; create it with 'edgefin train'")
    record = run.read_json(run.run_json, "train")
    metrics = run.read_json(run.metrics_json, "train")
    stage = opts.stage or run.latest_stage()
    if stage not in STAGES:
        raise UsageError(f"`stage`: expected one of {', '.join(STAGES)}, got {stage!r}")
    run.require(run.stored_model(stage), "compress" if stage != "dense" else "train")
    if stage == "qat":
        sources = Sources(float=_source(run, run.qat_float_stage()), quantized=_source(run, "qat"))
    else:
        sources = Sources(float=_source(run, stage))
    schema, spec = run_schema(run), run_spec(run)
    train_frame, _ = load_split(run, "train")
    test_frame, y_test = load_split(run, "test")
    threshold = metrics.get("threshold")
    if not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
        raise RunDirError(
            f"run directory {run.root}: metrics.json has no valid 'threshold' (got {threshold!r}); "
            f"re-run 'edgefin train'"
        )
    val_path = run.split_path("validation")  # no acceptance record may equal one of its rows either
    validation = (to_columns(load_split(run, "validation")[0], schema, str(val_path)),) if val_path.exists() else ()
    data = ConversionData(
        schema=schema,
        preprocessing=spec,
        train=to_columns(train_frame, schema, f"{run.root}/data/train.parquet"),
        test=to_columns(test_frame, schema, f"{run.root}/data/test.parquet"),
        y_test=y_test,
        threshold=float(threshold),
        threshold_method=str(metrics.get("threshold_method", "fixed")),
        data_sha256=record.get("data_sha256"),
        test_label="test",
        other=validation,
    )
    out = Path(opts.out) if opts.out is not None else run.bundles_dir
    extra: dict[str, Any] = {
        "run": str(run.root.resolve()),
        "run_fingerprint": record.get("steps", {}).get("train", {}).get("fingerprint"),
    }
    variants, notes = _variants_for(sources.float.model, opts.variants)
    lineage = record.get("lineage") if isinstance(record, dict) else None
    if isinstance(lineage, dict):  # a user's model brought by edgefin.ingest
        src = lineage.get("source") or {}
        extra.update(
            {
                "source_format": src.get("format"),
                "keras_flavour": src.get("keras_flavour"),
                "source_file": src.get("file"),
                "source_sha256": src.get("sha256"),
                "model_preprocessing": _inside_text(
                    lineage.get("model_preprocessing"), lineage.get("columns"), lineage.get("lifted")
                ),
                "field_preprocessing": lineage.get("field_preprocessing"),
            }
        )
    opts = replace(opts, variants=variants)
    import dataclasses

    from .explain.analysis import card_at_convert

    trained_protected = record.get("options", {}).get("protected") or []
    opts = dataclasses.replace(opts, protected=tuple(dict.fromkeys([*trained_protected, *opts.protected])))
    card = card_at_convert(run.root, sources.float.model, sources.float.stage, protected=opts.protected)
    return _export_and_write(
        sources, data, opts, out, stage, progress, source_extra=extra, notes=notes, model_card=card
    )


def _source(run: RunDir, stage: str) -> Source:
    from edgefin_converters import Source

    path = run.require(run.stored_model(stage), "compress" if stage != "dense" else "train")
    if stage == "dense" and (path.suffix != ".keras" or _keras3_file(path)):
        from .ingest.formats import detect, load_for_conversion

        mf = detect(path)  # a user's Keras 3 model, ONNX model or SavedModel: converted as it is
        return Source(model=load_for_conversion(mf), stage=stage, sha256=mf.sha256, path=f"models/{path.name}")
    return Source(model=load_model(path), stage=stage, sha256=_sha256(path), path=f"models/{path.name}")


def _clear_default_run(target: Path, model: Path, ingest_options: IngestOptions) -> None:
    """The default run directory (MODEL-run) is convert's own: an earlier ingest of the same model file
    with other data or options is replaced. Anything else there is left alone (ingest refuses it)."""
    import json
    import shutil

    from .ingest.formats import detect
    from .ingest.run import STEP, _fingerprint

    try:
        record = json.loads((target / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    lineage = record.get("lineage") if isinstance(record, dict) else None
    ingested = isinstance(lineage, dict) and (lineage.get("source") or {}).get("file") == model.name
    if not ingested or STEP not in record.get("steps", {}):
        return
    if record["steps"][STEP].get("fingerprint") != _fingerprint(
        detect(model), Path(ingest_options.data), ingest_options
    ):
        shutil.rmtree(target)


def _keras3_file(path: Path) -> bool:
    from .keras_io import _is_keras3

    return _is_keras3(path)


def _variants_for(model: Any, requested: str) -> tuple[str, list[str]]:
    """The variants a source model can give: an ONNX model only the ONNX ones (a note says why when
    "all" was asked for; naming a TFLite variant is a UsageError)."""
    from edgefin_converters.registry import REGISTRY, resolve_variants
    from edgefin_converters.sources import ONNX_NO_TFLITE, OnnxModel

    if not isinstance(model, OnnxModel):
        return requested, []
    chosen = resolve_variants(requested)
    tflite = [v.name for v in chosen if v.engine == "litert"]
    names = [s.strip() for s in requested.split(",")] if isinstance(requested, str) else []
    if tflite and "all" not in names:
        raise UsageError(f"variants {', '.join(tflite)}: the model is an ONNX model. {ONNX_NO_TFLITE}")
    onnx = [v.name for v in chosen if v.engine == "onnx"] or [v.name for v in REGISTRY.values() if v.engine == "onnx"]
    notes = [ONNX_NO_TFLITE] if tflite else []
    return ",".join(onnx), notes


def _inside_text(layers: Any, columns: Any, lifted: Any = None) -> str | None:
    """What ``edgefin inspect`` says about preprocessing that lives inside the user's model."""
    if isinstance(lifted, dict) and isinstance(lifted.get("fields"), dict):  # one model input per column
        return (
            f"lifted into the bundle's spec: each input's preprocessing up to {lifted.get('layer')} (lookups as "
            f"one-hot with the model's vocabulary and OOV slot, Normalization as (x - mean) / scale), so the runtime "
            f"validates and encodes the raw fields; the model keeps the layers after it"
            + (f" (lookup encodings folded into {', '.join(folded)})" if (folded := lifted.get("folded_into")) else "")
            + f" (proven on {lifted.get('rows')} training rows, max |dp| {float(lifted.get('max_abs_delta') or 0):.1e})"
        )
    if isinstance(lifted, dict):
        return (
            f"lifted into the bundle's spec: layer {lifted.get('layer')} ({lifted.get('class')}) is the "
            f"(x - mean) / scale of each column, so the runtime validates and standardises the raw columns; the "
            f"model keeps the layers after it (proven on {lifted.get('rows')} training rows, max |dp| "
            f"{float(lifted.get('max_abs_delta') or 0.0):.1e})"
        )
    if not isinstance(layers, list):
        return None
    if not layers:
        return "none inside the model" if columns != "schema" else "edgefin schema and preprocess spec"
    names = ", ".join(f"{d.get('layer')} ({d.get('class')})" for d in layers if isinstance(d, dict))
    return (
        f"inside the model: {names}; the bundle's spec passes the raw columns to it unchanged "
        f"(identity scaling, missing values filled with the training median)"
    )


# ---------------------------------------------------------------- a user's own model
def convert_user_model(
    model_path: str | Path,
    ingest_options: IngestOptions,
    *,
    run_dir: str | Path | None = None,
    options: ConvertOptions | None = None,
    progress: Progress | None = None,
    reporter: Reporter | None = None,
) -> ConvertResult:
    """Ingest a user's model and data (:func:`edgefin.ingest.ingest`) into ``run_dir`` (default:
    ``MODEL-run`` beside the model), then convert that run; bundles go to ``options.out`` or RUN/bundles."""
    from .ingest import ingest

    opts = options or ConvertOptions()
    if opts.stage not in (None, "dense"):
        raise UsageError("convert stage: a user model is converted as given (its run's dense stage)")
    mpath = Path(model_path)
    target = Path(run_dir) if run_dir is not None else mpath.with_name(f"{mpath.stem or mpath.name}-run")
    if run_dir is None:
        _clear_default_run(target, mpath, ingest_options)
    done = ingest(mpath, target, ingest_options, reporter)
    result = convert_run(done.run.root, replace(opts, stage="dense"), progress=progress)
    result.notes[:0] = done.notes
    return result


# ---------------------------------------------------------------- shared
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _export_and_write(
    sources: Sources,
    data: ConversionData,
    opts: ConvertOptions,
    out: Path,
    stage: str,
    progress: Progress | None,
    *,
    source_extra: Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
    model_card: Mapping[str, Any] | None = None,
) -> ConvertResult:
    from edgefin_converters import BuildOptions, ExportOptions, Gates, ParityGateError, export_variants, write_bundle
    from edgefin_converters.bundle_writer import BUNDLE_SUFFIX

    from . import __version__
    from .metrics import evaluate
    from .reason_texts import load_reason_texts

    export_opts = ExportOptions(
        build=BuildOptions(opset=opts.opset, int8_io=opts.int8_io, per_channel=opts.per_channel),
        gates=Gates(
            max_auc_drop=opts.max_auc_drop,
            max_flip_rate=opts.max_flip_rate,
            exact_max_delta=opts.exact_max_delta,
            fp16_max_delta=opts.fp16_max_delta,
        ),
        calibration_rows=opts.calibration_rows,
        seed=opts.seed,
        repair=opts.repair,
        model_card=model_card,
        protected=tuple(opts.protected),
        reasons=load_reason_texts(opts.reasons) if opts.reasons else None,
        explain_method=opts.explain_method,
    )
    result = export_variants(
        sources,
        data,
        opts.variants,
        export_opts,
        evaluate=evaluate,
        gated=opts.gate,
        producer_extra={"edgefin": __version__},
        source_extra=source_extra,
        progress=progress,
    )
    out.mkdir(parents=True, exist_ok=True)
    bundles = {r.name: write_bundle(out / f"{r.name}{BUNDLE_SUFFIX}", r.bundle) for r in result.results}
    report = result.parity_report(
        gated=opts.gate, extra={"stage": stage, "bundles": {k: v.name for k, v in bundles.items()}}
    )
    from .explain.validation import parity_top4

    report["explain_top4"] = parity_top4(bundles, data.test, data.schema)  # explanations after quantisation
    parity_path = atomic.write_json(out / "parity.json", report)
    repaired = [_repair_note(r.repair, r.name) for r in result.results if r.repair is not None]
    done = ConvertResult(
        out_dir=out,
        parity_path=parity_path,
        bundles=bundles,
        export=result,
        stage=stage,
        gated=opts.gate,
        notes=list(notes or []) + repaired,
    )
    if not result.passed and opts.gate:
        raise ParityGateError(result.failures, result=done)
    return done


def _repair_note(record: Mapping[str, Any], name: str) -> str:
    """One line per variant accuracy repair ran on (see edgefin_converters.repair)."""
    attempts = [a for a in record.get("attempts", []) if a.get("step") != "original" and not a.get("note")]
    if not record.get("passed"):
        return (
            f"{name}: failed its gate; accuracy repair tried {len(attempts)} setting(s) and none passed "
            f"(see 'repair' in parity.json)"
        )
    last = attempts[-1] if attempts else {}
    kept = ", ".join(record.get("kept_float") or []) or "none"
    labels: dict[Any, str] = {True: "per-channel weights, ", False: "per-tensor weights, "}
    weights = labels.get(record.get("per_channel"), "")
    return (
        f"{name}: repaired after failing its gate: {weights}{record.get('calibration_rows')} calibration rows, "
        f"layers kept in float: {kept} "
        f"(AUC delta {_signed(last.get('auc_delta'))}, flips {last.get('flip_rate') or 0.0:.2%}; "
        f"{len(attempts)} attempt(s); layers ranked on training rows, the test split only stops the search)"
    )


def _signed(v: Any) -> str:
    return "-" if v is None else f"{v:+.4f}"


__all__ = ["ConvertOptions", "ConvertResult", "convert_run", "convert_user_model"]
