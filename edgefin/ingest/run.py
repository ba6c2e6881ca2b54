"""The ingest step: a user's own model + their labelled data -> a run directory every later step reads.

``edgefin convert MODEL`` and ``edgefin compress MODEL`` are this step followed by the usual one. It
writes what ``edgefin train`` writes, so the run is treated exactly like a trained one:

* ``data/``: the schema and preprocess spec (:mod:`.columns`), the quality report, and the raw rows of
  a seeded, stratified **60/20/20** train/validation/test split - the split ``edgefin train`` makes:
  static int8 variants calibrate on training rows, the threshold is chosen on validation rows, parity
  and every reported metric use test rows only;
* ``models/dense.keras`` (a tf_keras or Keras 3 model as given; a tf_keras ``.h5`` or SavedModel is
  re-saved as ``.keras`` after its scores are proven equal), ``models/dense.onnx`` (an ONNX model, as
  given) or ``models/dense.savedmodel/`` (a SavedModel without Keras layers, as given);
* ``metrics.json``: the user's model scored on every split, the threshold (**max-KS on validation** by
  default, as ``edgefin train``; a probability such as 0.5 or ``rate:R`` when given);
* ``run.json`` (through :meth:`~edgefin.rundir.RunDir.write_record`, its only writer) with the lineage:
  the source file's format, Keras flavour and SHA-256, what is stored as the dense stage, whether and
  how the model can be compressed (a Keras 3 model: its tf_keras rebuild, proven on the training rows),
  and, as later steps add them, which stage each model came from.

Ingesting the same model, data and options into the same directory again reuses it (fingerprint in
run.json); a directory that holds anything else is refused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, atomic
from ..errors import ModelFormatError, UnsupportedLayerError, UsageError
from ..reporter import SILENT, Reporter
from ..rundir import SPLITS, RunDir
from .columns import Columns, check_width, raw_columns, schema_columns
from .formats import ModelFile, detect, load_for_conversion, load_tf_keras
from .lift import Lifted, lift_keras, lift_onnx

STEP = "ingest"
#: the tf_keras re-save of an .h5 or SavedModel must score like the original within this
RESAVE_MAX_DELTA = 1e-6
#: preprocessing layers that may live inside a user's model (reported by ``edgefin inspect``)
PREPROCESSING_LAYERS = (
    "Normalization",
    "Rescaling",
    "Discretization",
    "CategoryEncoding",
    "StringLookup",
    "IntegerLookup",
    "Hashing",
)


@dataclass(frozen=True)
class Options:
    """Everything that decides an ingest (recorded, with the model's and data's hashes, in run.json)."""

    data: str | Path
    target: str
    positive: str | None = None
    schema: str | Path | None = None  # an edgefin schema.json (preprocess.json beside it, or ``preprocess``)
    preprocess: str | Path | None = None
    raw_features: bool = False  # leave non-numeric columns out (without a schema)
    drop: tuple[str, ...] = ()
    threshold: str = "max-ks"
    seed: int = 42
    test_size: float = 0.2
    validation_size: float = 0.2
    na_values: tuple[str, ...] = ()
    #: the run will be compressed: refuse now, naming the layer, a model TFMOT cannot work on
    for_compression: bool = False


@dataclass
class Result:
    """The run directory and what ingest found (``lineage`` is what run.json records)."""

    run: RunDir
    reused: bool
    model: ModelFile
    lineage: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run.root), "reused": self.reused, "lineage": self.lineage, "notes": self.notes}


def ingest(model_path: str | Path, out: str | Path, options: Options, reporter: Reporter | None = None) -> Result:
    """Build (or reuse) the run directory ``out`` for the user's model at ``model_path``."""
    from ..data import (
        encode_frame,
        make_preprocessor,
        quality_report,
        read_table,
        resolve_target,
        split_indices,
        target_vector,
    )
    from ..data.io import file_sha256, write_parquet
    from ..data.schema import schema_to_dict
    from ..metrics import choose_threshold, evaluate, parse_threshold

    rep = reporter or SILENT
    rd = RunDir.at(out)
    mf = detect(model_path)
    data_path = Path(options.data)
    method, value = parse_threshold(options.threshold)
    fingerprint = _fingerprint(mf, data_path, options)
    if _reusable(rd, fingerprint, options):
        record = rd.read_json(rd.run_json, STEP)
        return Result(rd, True, mf, record.get("lineage", {}), [f"{rd.root} already holds this model and data"])
    if rd.root.exists() and any(rd.root.iterdir()):
        raise UsageError(
            f"run directory {rd.root} already holds something else (another run, or an ingest of another "
            f"model, data or options); choose a new run directory or remove it"
        )

    rep.note(f"reading {mf.path.name}: {mf.format}" + (f" ({mf.flavour} {mf.keras_version})" if mf.flavour else ""))
    k3, model, by_input = _load(mf)
    label = f"model {mf.path.name}"
    width = _width(model, label) if by_input is None else 0

    src = str(data_path)
    frame = read_table(data_path, na_values=options.na_values, role="data")
    tspec = resolve_target(frame, options.target, options.positive, src)
    y_all, has = target_vector(frame, tspec, src)
    frame, y_all = frame[has].reset_index(drop=True), y_all[has].astype(np.int64)
    idx = split_indices(
        y_all, seed=options.seed, test_size=options.test_size, validation_size=options.validation_size, source=src
    )
    frames = {s: frame.iloc[getattr(idx, s)] for s in SPLITS}
    ys = {s: y_all[getattr(idx, s)] for s in SPLITS}
    lifted: dict[str, Any] | None = None
    lift: Lifted | None = None
    if by_input is not None:  # one input per column, lookups inside: each input's preprocessing lifted
        if options.schema is not None:
            raise UsageError(
                f"{label} takes one input per data column (named after it): the columns come from its inputs, "
                f"so it takes no schema"
            )
        cols, model, lift, lifted = _lift_inputs(mf, by_input, frames, frame, tspec, src, label, options.drop)
        k3 = lift.rest if k3 is not None else None
        width = cols.spec.n_features
    elif options.schema is not None:
        cols = schema_columns(
            Path(options.schema), Path(options.preprocess) if options.preprocess is not None else None, tspec
        )
    else:
        if options.preprocess is not None:
            raise UsageError("a preprocess spec needs a schema (the fields it encodes)")
        cols = raw_columns(frames, frame, tspec, source=src, raw_features=options.raw_features, drop=options.drop)
    if cols.how != "model":
        check_width(cols, width, label, src)
    if cols.how == "raw":
        found = _lift(mf, k3, model, cols, frames["train"], src, label)
        if found is not None:
            cols, k3_rest, model, lift, lifted = found
            k3 = k3_rest if k3 is not None else None
    from edgefin_converters.keras_io import check_model, predict

    try:
        check_model(model, n_features=width, label=label)
    except Exception as exc:  # noqa: BLE001 - ModelInputError: the message names what is wrong
        from edgefin_converters.errors import ModelInputError

        if isinstance(exc, ModelInputError):
            raise UsageError(str(exc)) from None
        raise
    pre = make_preprocessor(cols.schema, cols.spec)
    x = {s: encode_frame(frames[s], cols.schema, pre, source=src) for s in SPLITS}
    scores = {s: predict(model, x[s]) for s in SPLITS}
    for s in SPLITS:
        if not np.isfinite(scores[s]).all() or scores[s].min() < 0 or scores[s].max() > 1:
            raise UsageError(
                f"{label}: its outputs on the {s} rows are not probabilities in [0, 1] (range "
                f"{np.nanmin(scores[s]):.3g} to {np.nanmax(scores[s]):.3g}, or NaN); end the model with a sigmoid unit"
            )
    thr = choose_threshold(ys["validation"], scores["validation"], method, value)

    notes: list[str] = []
    if cols.left_out and cols.how == "model":
        notes.append(f"columns the model has no input for, left out: {', '.join(cols.left_out)}")
    elif cols.left_out:
        notes.append(f"non-numeric columns left out (raw_features): {', '.join(cols.left_out)}")
    inside = _preprocessing_inside(k3 if k3 is not None else model)
    lineage: dict[str, Any] = {
        "source": mf.to_dict(),
        "columns": cols.how,
        "model_preprocessing": inside,
        "lifted": lifted,
        "field_preprocessing": _field_preprocessing(cols, lifted),
        "stages": {"dense": {"from": "source", "file": ""}},
    }
    # the dense stage as stored, and whether compression can work on it
    compress_info = _compressibility(mf, k3, x["train"], label)
    lineage["compress"] = compress_info
    if options.for_compression and not compress_info["possible"]:
        raise UnsupportedLayerError(compress_info["reason"])

    rd.root.mkdir(parents=True, exist_ok=True)
    (rd.root / "models").mkdir(exist_ok=True)
    stored = _store(mf, rd, model, x["test"], lift)
    lineage["stages"]["dense"] = stored
    metrics: dict[str, Any] = {s: evaluate(ys[s], scores[s], thr) for s in ("test", "validation", "train")}
    metrics.update(
        {
            "threshold": thr,
            "threshold_method": method,
            "threshold_value": value,
            "positive_label": tspec.positive_label,
            "negative_label": tspec.negative_label,
            "model": {
                "source": mf.path.name,
                "format": mf.format,
                "keras_flavour": mf.flavour,
                "n_features": width,
                "imported": True,
                "columns": cols.how,
            },
            "splits": {s: int(len(ys[s])) for s in SPLITS},
        }
    )
    atomic.write_json(rd.schema_json, schema_to_dict(cols.schema))
    atomic.write_json(rd.preprocess_json, cols.spec.to_dict())
    atomic.write_json(
        rd.quality_json,
        quality_report(
            frame, y_all, cols.kinds, target=tspec.name, dropped=list(options.drop), splits=metrics["splits"]
        ),
    )
    for s in SPLITS:
        write_parquet(rd.split_path(s), frames[s])
    atomic.write_json(rd.metrics_json, metrics)
    data_sha = file_sha256(data_path)
    rd.write_record(
        {
            "edgefin_version": __version__,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data": {"path": str(data_path.resolve()), "sha256": data_sha, "rows": int(len(frame))},
            "data_sha256": data_sha,
            "target": tspec.name,
            "positive_label": tspec.positive_label,
            "negative_label": tspec.negative_label,
            "seed": int(options.seed),
            # fine-tuning defaults for a model edgefin did not train: no class weights (keeps its calibration)
            "options": {
                **_options_dict(options),
                "model": str(mf.path.resolve()),
                "model_sha256": mf.sha256,
                "augment": "none",
                "class_weight": False,
                "batch_size": 64,
            },
            "lineage": lineage,
            "steps": {STEP: {"fingerprint": fingerprint}},
        }
    )
    return Result(rd, False, mf, lineage, notes)


# ---------------------------------------------------------------- pieces
def _options_dict(options: Options) -> dict[str, Any]:
    d = asdict(options)
    for k in ("data", "schema", "preprocess"):
        if d[k] is not None:
            d[k] = str(Path(d[k]).resolve())
    d["drop"], d["na_values"] = list(options.drop), list(options.na_values)
    d.pop("for_compression")
    return d


def _fingerprint(mf: ModelFile, data_path: Path, options: Options) -> str:
    from ..data.io import file_sha256

    doc = {
        "model_sha256": mf.sha256,
        "data_sha256": file_sha256(data_path) if data_path.is_file() else None,
        "options": _options_dict(options),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _reusable(rd: RunDir, fingerprint: str, options: Options) -> bool:
    if not rd.run_json.exists():
        return False
    rec = rd.read_json(rd.run_json, STEP)
    if not isinstance(rec, dict) or rec.get("steps", {}).get(STEP, {}).get("fingerprint") != fingerprint:
        return False
    if not rd.stored_model("dense").exists():
        return False
    compress = rec.get("lineage", {}).get("compress", {})
    if options.for_compression and not compress.get("possible", False):
        raise UnsupportedLayerError(str(compress.get("reason") or "this run's model cannot be compressed"))
    return True


def _lift(
    mf: ModelFile, k3: Any, model: Any, cols: Columns, train: Any, source: str, label: str
) -> tuple[Columns, Any, Any, Lifted, dict[str, Any]] | None:
    """Lift the model's leading per-column affine map (Normalization, Rescaling, BatchNormalization; in an
    ONNX graph the nodes such a layer became: :mod:`.lift`) into the spec, so the runtime validates and
    standardises the columns and int8 input quantisation sees standardised values; used only when the
    rest of the model, on spec-encoded rows, scores the training rows within EQUAL_MAX_DELTA of the model
    itself. Returns (columns, the rest as Keras 3 model or None, the rest to convert, the lift, record)."""
    from dataclasses import replace

    from edgefin_converters.keras_io import predict
    from edgefin_runtime.manifest import NumericStep

    from ..data import encode_frame, make_preprocessor
    from . import keras3

    found = _leading_map(mf, k3, model, label)
    if found is None:
        return None
    lifted, rest = found
    if not (np.all(lifted.scale > 0) and np.all(np.isfinite(lifted.scale)) and np.all(np.isfinite(lifted.mean))):
        return None
    numeric = [step for step in cols.spec.steps if isinstance(step, NumericStep)]
    if len(numeric) != len(cols.spec.steps) or len(numeric) != len(lifted.mean):
        return None
    steps = tuple(
        replace(step, mean=float(m), scale=float(sc))
        for step, m, sc in zip(numeric, lifted.mean, lifted.scale, strict=True)
    )
    spec = replace(cols.spec, steps=steps)
    try:
        spec_check = make_preprocessor(cols.schema, spec)
    except Exception:  # noqa: BLE001 - e.g. a fill too far from the lifted mean for the runtime's limits
        return None
    raw = encode_frame(train, cols.schema, make_preprocessor(cols.schema, cols.spec), source=source)
    enc = encode_frame(train, cols.schema, spec_check, source=source)
    delta = float(np.max(np.abs(predict(model, raw).astype(np.float64) - predict(rest, enc)))) if len(raw) else 0.0
    if not delta <= keras3.EQUAL_MAX_DELTA:
        return None
    record = {"layer": lifted.layer, "class": lifted.kind, "max_abs_delta": delta, "rows": int(len(raw))}
    return replace(cols, spec=spec), (lifted.rest if k3 is not None else None), rest, lifted, record


def _leading_map(mf: ModelFile, k3: Any, model: Any, label: str) -> tuple[Lifted, Any] | None:
    """The model's leading affine map and the rest as the converters take it, or None."""
    from edgefin_converters.sources import OnnxModel, from_keras3, from_onnx

    if k3 is not None:
        from . import keras3

        lifted = keras3.lift_leading(k3)
        return (lifted, from_keras3(lifted.rest, label=label)) if lifted is not None else None
    if isinstance(model, OnnxModel):
        lifted = lift_onnx(model.model_bytes)
        return (lifted, from_onnx(lifted.rest, label=label)) if lifted is not None else None
    if mf.flavour == "tf_keras":
        from ..tfcompat import keras as tfk

        keras_model = model if mf.format in ("keras", "h5") else load_tf_keras(mf)
        lifted = lift_keras(keras_model, tfk, float(tfk.backend.epsilon()))
        return (lifted, lifted.rest) if lifted is not None else None
    return None


def _load(mf: ModelFile) -> tuple[Any, Any, Any]:
    """(the Keras 3 model or None, the model the converters take, the Keras model whose inputs are to be
    lifted or None). A Keras model with one input per column or string/integer inputs is not converted as
    it is (:mod:`.inputs` lifts its inputs first); everything else loads as the converters take it."""
    from edgefin_converters.sources import from_keras3

    from .inputs import needs_input_lift

    if mf.flavour == "keras3":
        from . import keras3

        k3 = keras3.load(mf.path)
        if needs_input_lift(k3):
            return k3, None, k3
        return k3, from_keras3(k3, label=f"model {mf.path}"), None
    if mf.flavour == "tf_keras" and mf.format == "saved_model":
        try:
            return None, load_for_conversion(mf), None
        except ModelFormatError:  # e.g. several inputs in the serving signature: is it a per-column model?
            keras_model = load_tf_keras(mf)
            if not needs_input_lift(keras_model):
                raise
            return None, None, keras_model
    model = load_for_conversion(mf)
    return None, (None if needs_input_lift(model) else model), (model if needs_input_lift(model) else None)


def _lift_inputs(
    mf: ModelFile,
    keras_model: Any,
    frames: dict[str, Any],
    frame: Any,
    tspec: Any,
    src: str,
    label: str,
    drop: tuple[str, ...],
) -> tuple[Columns, Any, Lifted, dict[str, Any]]:
    """Lift every input's preprocessing (:mod:`.inputs`) into the spec and prove, on the training rows, that
    the model left on spec-encoded rows scores as the user's model on the raw ones (within EQUAL_MAX_DELTA).
    Returns (columns, the model left as the converters take it, the lift for storing, the lineage record)."""
    from edgefin_converters.keras_io import predict
    from edgefin_converters.sources import from_keras3

    from ..data import encode_frame, make_preprocessor
    from . import keras3
    from .inputs import input_columns, lift_inputs, predict_raw, raw_inputs

    if mf.flavour == "keras3":
        import keras  # type: ignore[import-untyped]

        module, eps = keras, float(keras.backend.epsilon())
    else:
        from ..tfcompat import keras as module

        eps = float(module.backend.epsilon())
    lifted = lift_inputs(keras_model, module, eps, label=label)
    cols = input_columns(lifted, frames, frame, tspec, source=src, drop=drop)
    rest = from_keras3(lifted.rest, label=label) if mf.flavour == "keras3" else lifted.rest
    train = frames["train"]
    enc = encode_frame(train, cols.schema, make_preprocessor(cols.schema, cols.spec), source=src)
    ref = predict_raw(keras_model, raw_inputs(lifted, keras_model, train, cols.spec), len(train))
    delta = float(np.max(np.abs(ref - predict(rest, enc).astype(np.float64)))) if len(train) else 0.0
    if not delta <= keras3.EQUAL_MAX_DELTA:
        raise UnsupportedLayerError(
            f"{label}: with its inputs' preprocessing lifted into the bundle's spec, the model scores the "
            f"{len(train)} training rows up to {delta:.2e} apart from the model itself (allowed "
            f"{keras3.EQUAL_MAX_DELTA:g}); it is not converted. Layers lifted: "
            + "; ".join(f"{f.name}: {f.how}" for f in lifted.fields)
        )
    record = {**lifted.record(), "max_abs_delta": delta, "rows": int(len(train))}
    empty = np.zeros(0)
    return cols, rest, Lifted(lifted.join, "per-input preprocessing", empty, empty, lifted.rest), record


def _field_preprocessing(cols: Columns, lifted: dict[str, Any] | None) -> dict[str, str] | None:
    """Per field, what became of its preprocessing (``edgefin inspect`` prints it beside the field)."""
    if cols.how == "schema":
        return None
    if lifted is not None and isinstance(lifted.get("fields"), dict):
        return {str(k): str(v) for k, v in lifted["fields"].items()}
    if lifted is not None:
        how = f"lifted from the model: {lifted.get('layer')} ({lifted.get('class')}) -> (x - mean) / scale"
        return {f.name: how for f in cols.schema.fields}
    return {f.name: "identity on the raw column (the model takes it as it is)" for f in cols.schema.fields}


def _width(model: Any, label: str) -> int:
    try:
        return int(model.inputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError, ValueError):
        raise UsageError(f"{label}: it has no defined (batch, n_features) input") from None


def _preprocessing_inside(model: Any) -> list[dict[str, str]]:
    """The preprocessing layers inside the model (their name and class), in graph order."""
    from edgefin_converters.keras_io import _walk_layers

    return [
        {"layer": str(layer.name), "class": type(layer).__name__}
        for layer in _walk_layers(model)
        if type(layer).__name__ in PREPROCESSING_LAYERS
    ]


def _compressibility(mf: ModelFile, k3: Any, x_train: np.ndarray, label: str) -> dict[str, Any]:
    """Can TFMOT compress this model? tf_keras: yes; Keras 3 (``k3``, as stored): if its rebuild maps and
    is proven equal on the training rows."""
    if mf.flavour == "tf_keras":
        return {"possible": True, "via": "tf_keras model"}
    if k3 is not None:
        from . import keras3

        try:
            rebuilt = keras3.rebuild_in_tf_keras(k3)
            delta = keras3.prove_equal(k3, rebuilt, x_train, label=label)
        except UnsupportedLayerError as exc:
            return {"possible": False, "via": "tf_keras rebuild", "reason": str(exc)}
        return {
            "possible": True,
            "via": "tf_keras rebuild of the Keras 3 graph, same weights",
            "rebuild_max_abs_delta": delta,
            "rebuild_rows": int(len(x_train)),
        }
    what = "an ONNX model" if mf.format == "onnx" else "a SavedModel without Keras layers (no keras_metadata.pb)"
    return {
        "possible": False,
        "via": None,
        "reason": (
            f"model {mf.path.name} is {what}: compression (TFMOT pruning and quantisation-aware training) "
            f"needs Keras layers. It converts as it is (edgefin convert)"
        ),
    }


def _store(mf: ModelFile, rd: RunDir, model: Any, x_check: np.ndarray, lift: Lifted | None) -> dict[str, Any]:
    """Put the user's model into models/ as the dense stage (after ``lift``, its leading preprocessing
    lifted into the spec, when given); returns its lineage entry."""
    from ..keras_io import save_model

    dense = rd.model_path("dense")
    if lift is not None:
        what = f"the model after its leading {lift.kind} ({lift.layer}), lifted into data/preprocess.json"
        if mf.format == "onnx":
            dest = dense.with_suffix(".onnx")
            atomic.write_bytes(dest, lift.rest)
            return {"from": "source", "file": f"models/{dest.name}", "stored": f"ONNX: {what}"}
        if mf.flavour == "keras3":
            from . import keras3

            keras3.save(lift.rest, dense)
            return {"from": "source", "file": f"models/{dense.name}", "stored": f"Keras 3: {what}"}
        save_model(lift.rest, dense)
        return {"from": "source", "file": f"models/{dense.name}", "stored": f"tf_keras (.keras): {what}"}
    if mf.format == "onnx":
        dest = dense.with_suffix(".onnx")
        atomic.write_bytes(dest, mf.path.read_bytes())
        return {"from": "source", "file": f"models/{dest.name}", "stored": "as given"}
    if mf.flavour == "keras3" and mf.format == "keras":
        atomic.write_bytes(dense, mf.path.read_bytes())
        return {"from": "source", "file": f"models/{dense.name}", "stored": "as given (Keras 3)"}
    if mf.flavour == "keras3":  # a Keras 3 legacy .h5: re-saved by Keras 3 in its native format
        from . import keras3

        keras3.save(keras3.load(mf.path), dense)
        return {"from": "source", "file": f"models/{dense.name}", "stored": "re-saved by Keras 3 as .keras from h5"}
    if mf.format == "keras":
        save_model(model, dense)
        return {"from": "source", "file": f"models/{dense.name}", "stored": "re-saved by tf_keras (no optimizer)"}
    # .h5 or a SavedModel: a tf_keras model is re-saved as .keras once proven equal; otherwise kept as given
    from edgefin_converters.keras_io import predict

    if mf.flavour == "tf_keras":
        keras_model = model if mf.format == "h5" else load_tf_keras(mf)
        delta = float(np.max(np.abs(predict(keras_model, x_check) - predict(model, x_check)))) if len(x_check) else 0.0
        if delta <= RESAVE_MAX_DELTA:
            save_model(keras_model, dense)
            return {
                "from": "source",
                "file": f"models/{dense.name}",
                "stored": f"re-saved by tf_keras as .keras from {mf.format} (max |dp| {delta:.1e} on the test rows)",
            }
    dest = dense.with_suffix(".savedmodel")
    tmp = dest.with_name(".dense.savedmodel.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(mf.path, tmp)
    tmp.rename(dest)
    return {"from": "source", "file": f"models/{dest.name}/", "stored": "as given (SavedModel)"}


__all__ = ["Options", "PREPROCESSING_LAYERS", "Result", "STEP", "ingest"]
