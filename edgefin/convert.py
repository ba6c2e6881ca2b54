"""`edgefin convert`: turn a run's model (or a user's own Keras model) into verified .efb bundles.

Run directory: the final stage compress recorded in compress.json unless ``stage`` is given (without a
compress record, the last model file present). With a QAT stage, ``tflite-int8`` is converted from the
QAT model and every other variant from the pruned model it descends from (dense for a run compress did
not prune; :meth:`~edgefin.rundir.RunDir.qat_float_stage`); parity always compares a variant with the
Keras model it was converted from. Calibration rows come from the training split, parity rows from the test
split. Bundles go to RUN_DIR/bundles/NAME.efb (or ``out``) with bundles/parity.json; all are written
before a failed gate raises :class:`~edgefin_converters.errors.ParityGateError` (exit code 3).

User model: ``MODEL.keras`` + a data file with a target column. Without a schema, every other column
is a numeric input in the model's input order (identity preprocessing: mean 0, scale 1, no
imputation, so rows with missing values are left out). With ``schema`` (an edgefin schema.json and
the preprocess.json beside it, or given with ``preprocess``) raw fields are encoded as edgefin does.
The data is split (seeded, stratified) into a calibration part and a held-out parity part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefin_converters.parity import Gates

from . import atomic
from .errors import DataError, RunDirError, UsageError
from .keras_io import load_model
from .rundir import STAGES, RunDir

USER_STAGE = "user"
USER_HELD_OUT = 0.3


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


@dataclass
class ConvertResult:
    """What a conversion wrote, and each variant's size, metrics and parity (for the table and --json)."""

    out_dir: Path
    parity_path: Path
    bundles: dict[str, Path]
    export: Any  # edgefin_converters.ExportResult
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
def convert_run(run_dir: str | Path, options: ConvertOptions | None = None, *, progress: Any = None) -> ConvertResult:
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
    run.require(run.model_path(stage), "compress" if stage != "dense" else "train")
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
    extra = {
        "run": str(run.root.resolve()),
        "run_fingerprint": record.get("steps", {}).get("train", {}).get("fingerprint"),
    }
    from .explain.analysis import card_at_convert

    card = card_at_convert(run.root, sources.float.model, sources.float.stage)
    return _export_and_write(sources, data, opts, out, stage, progress, source_extra=extra, model_card=card)


def _source(run: RunDir, stage: str) -> Any:
    from edgefin_converters import Source

    path = run.require(run.model_path(stage), "compress" if stage != "dense" else "train")
    return Source(model=load_model(path), stage=stage, sha256=_sha256(path), path=f"models/{path.name}")


# ---------------------------------------------------------------- a user's own model
def convert_user_model(
    model_path: str | Path,
    data_path: str | Path,
    target: str,
    *,
    positive: str | None = None,
    schema_path: str | Path | None = None,
    preprocess_path: str | Path | None = None,
    threshold: str | float = 0.5,
    na_values: tuple[str, ...] = (),
    options: ConvertOptions | None = None,
    progress: Any = None,
) -> ConvertResult:
    """Convert a user's Keras model, calibrating and checking parity on their data file."""
    from edgefin_converters import ConversionData, Source, Sources
    from edgefin_converters.keras_io import check_model, predict

    from .data.io import file_sha256, read_table
    from .data.schema import resolve_target, target_vector, to_columns
    from .data.split import split_indices
    from .metrics import choose_threshold, parse_threshold

    opts = options or ConvertOptions()
    if opts.stage not in (None, USER_STAGE):
        raise UsageError("--stage applies to run directories only; a user model is converted as given")
    mpath = Path(model_path)
    model = load_model(mpath)
    frame = read_table(data_path, na_values=na_values, role="data")
    src_label = str(data_path)
    tspec = resolve_target(frame, target, positive, src_label)
    y_all, has = target_vector(frame, tspec, src_label)
    frame, y_all = frame[has].reset_index(drop=True), y_all[has].astype(np.int64)
    if schema_path is not None:
        schema, spec = _user_schema(Path(schema_path), preprocess_path, tspec)
    else:
        if preprocess_path is not None:
            raise UsageError("--preprocess needs --schema (the fields it encodes)")
        schema, spec = _identity_schema(frame, tspec, model, src_label)
    info = check_model(model, n_features=spec.n_features, label=f"model {mpath}")
    idx = split_indices(y_all, seed=opts.seed, test_size=USER_HELD_OUT, validation_size=0.0, source=src_label)
    cols = to_columns(frame, schema, src_label)
    train = {k: v[idx.train] for k, v in cols.items()}
    test = {k: v[idx.test] for k, v in cols.items()}
    method, value = parse_threshold(threshold)
    if method == "fixed":
        t = float(value)  # type: ignore[arg-type]
    else:  # chosen on the calibration part with the user's own model, never on the held-out part
        from edgefin_runtime.preprocess import Preprocessor

        res = Preprocessor(schema, spec).columns(train)
        ok = np.ones(len(res.matrix), dtype=bool)
        ok[list(res.errors)] = False
        t = choose_threshold(y_all[idx.train][ok], predict(model, res.matrix[ok]), method, value)
    data = ConversionData(
        schema=schema,
        preprocessing=spec,
        train=train,
        test=test,
        y_test=y_all[idx.test],
        threshold=t,
        threshold_method=method,
        data_sha256=file_sha256(data_path),
        test_label=f"held-out {int(USER_HELD_OUT * 100)}% of {Path(data_path).name}",
    )
    stage = USER_STAGE
    source = Source(model=model, stage=stage, sha256=_sha256(mpath), path=mpath.name)
    out = Path(opts.out) if opts.out is not None else mpath.with_name(f"{mpath.stem}-bundles")
    notes = []
    if info.qat:
        notes.append(
            "the model is quantisation-aware: every variant is converted from it (its fake-quant "
            "ops stay in the float variants)"
        )
    return _export_and_write(
        Sources(float=source, quantized=source),
        data,
        opts,
        out,
        stage,
        progress,
        source_extra={"data_file": Path(data_path).name},
        notes=notes,
    )


def _identity_schema(frame: Any, tspec: Any, model: Any, source: str) -> tuple[Any, Any]:
    """Every non-target column as a numeric input, in file order, with identity scaling and no imputation."""
    import pandas as pd

    from edgefin_runtime.manifest import FieldSpec, NumericStep, PreprocessSpec, Schema

    from .data.schema import numeric_values, robust_range

    names = [c for c in frame.columns if c != tspec.name]
    k = _model_features(model)
    if k is not None and len(names) != k:
        raise DataError(
            f"{source} has {len(names)} feature columns besides the target '{tspec.name}' "
            f"({', '.join(names[:12])}{'...' if len(names) > 12 else ''}) but the model expects {k} "
            f"inputs; keep exactly the model's inputs in its input order, or pass --schema"
        )
    fields, steps = [], []
    for name in names:
        col = frame[name]
        if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            raise DataError(
                f"column '{name}' in {source} is not numeric ({col.dtype}); without --schema every "
                f"column except the target must be a numeric model input (in the model's input "
                f"order). Encode it first, or pass an edgefin --schema and preprocess spec"
            )
        values = numeric_values(col, name, source)
        lo, hi = robust_range(values)  # rounded robust quantiles: a bundle reveals no single row's value
        fields.append(
            FieldSpec(
                name=name,
                kind="numeric",
                allow_missing=False,
                min=lo,
                max=hi,
                missing_share=float(np.isnan(values).mean()),
            )
        )
        steps.append(NumericStep(field=name, fill=0.0, mean=0.0, scale=1.0))
    return (
        Schema(
            fields=tuple(fields),
            target=tspec.name,
            positive_label=tspec.positive_label,
            negative_label=tspec.negative_label,
        ),
        PreprocessSpec(steps=tuple(steps)),
    )


def _user_schema(schema_path: Path, preprocess_path: str | Path | None, tspec: Any) -> tuple[Any, Any]:
    """An edgefin schema.json plus its preprocess spec (beside it, or given), checked against each other."""
    import json
    from dataclasses import replace

    from edgefin_runtime.errors import ManifestError
    from edgefin_runtime.manifest import PreprocessSpec

    from .data.schema import schema_from_dict

    def read(p: Path, what: str) -> Any:
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{what} file {p} not found") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"{what} file {p} is not readable JSON ({exc})") from None

    schema = schema_from_dict(read(schema_path, "schema"))
    pre = Path(preprocess_path) if preprocess_path is not None else schema_path.with_name("preprocess.json")
    if not pre.exists():
        raise DataError(
            f"no preprocessing spec for {schema_path}: expected {pre} (an edgefin preprocess.json, as "
            f"in a run's data/ folder) or --preprocess FILE"
        )
    try:
        spec = PreprocessSpec.from_dict(read(pre, "preprocess spec"))
    except ManifestError as exc:
        raise DataError(f"preprocess spec {pre} is invalid: {exc}") from None
    if schema.target != tspec.name:
        raise DataError(f"schema {schema_path} is for target '{schema.target}', but --target is '{tspec.name}'")
    schema = replace(schema, positive_label=tspec.positive_label, negative_label=tspec.negative_label)
    missing = [s.field for s in spec.steps if s.field not in schema.names]
    if missing:
        raise DataError(f"preprocess spec {pre} encodes fields {missing} that schema {schema_path} does not have")
    return schema, spec


def _model_features(model: Any) -> int | None:
    try:
        return int(model.inputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


# ---------------------------------------------------------------- shared
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _export_and_write(
    sources: Any,
    data: Any,
    opts: ConvertOptions,
    out: Path,
    stage: str,
    progress: Any,
    *,
    source_extra: Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
    model_card: Mapping[str, Any] | None = None,
) -> ConvertResult:
    from edgefin_converters import BuildOptions, ExportOptions, Gates, ParityGateError, export_variants, write_bundle
    from edgefin_converters.bundle_writer import BUNDLE_SUFFIX

    from . import __version__
    from .metrics import evaluate

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
