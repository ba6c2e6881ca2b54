"""Which columns a user's model takes, and how the bundle encodes them: the one behaviour for user models.

* **With a schema** (an edgefin ``schema.json`` and the ``preprocess.json`` beside it, or given): raw
  fields are encoded exactly as that spec says (a model trained on edgefin's encoded features).
* **Without one** (the default): the model takes the data's numeric columns as they are, in file order
  (``raw_features``): the bundle's spec is the identity (mean 0, scale 1). A non-numeric column is an
  error naming it, unless ``raw_features`` is set, which leaves such columns out. Preprocessing that
  lives inside the model (Normalization, Rescaling) is therefore respected as it is.
* **Missing values**: a column with missing values anywhere in the data may be missing on the device
  too, and is filled with its **training-split median** (the runtime flags the record ``imputed``); a
  column without any must be present. The median is what ``edgefin train`` does and what a user
  expects of a model that never saw a missing value: a typical value, not an arbitrary 0.0 that can sit
  far outside the column's range (income, age) and push a score anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgefin_runtime.manifest import NumericStep, PreprocessSpec, Schema

from ..errors import DataError


@dataclass(frozen=True)
class Columns:
    """The schema and spec the bundle gets, the inferred kinds, and the columns left out (with why)."""

    schema: Schema
    spec: PreprocessSpec
    kinds: dict[str, str]
    left_out: tuple[str, ...] = ()
    #: "raw" (numeric columns as they are), "schema" (an edgefin schema + spec) or "model" (one model input
    #: per column, each input's preprocessing lifted into the spec: :mod:`.inputs`)
    how: str = "raw"


def raw_columns(
    frames: dict[str, pd.DataFrame],
    frame: pd.DataFrame,
    tspec: Any,
    *,
    source: str,
    raw_features: bool,
    drop: tuple[str, ...] = (),
) -> Columns:
    """Numeric columns in file order, identity scaling, training medians for the columns that have gaps."""
    from ..data import fit_schema, infer_kinds
    from ..data.schema import missing_fields

    kinds = infer_kinds(frame, target=tspec.name, source=source, drop=drop)
    other = [n for n, k in kinds.items() if k != "numeric"]
    if other and not raw_features:
        raise DataError(
            f"column '{other[0]}' in {source} is not numeric ({len(other)} such: {', '.join(other[:8])}); a user "
            f"model without a schema takes the numeric columns as they are, in file order. Set raw_features to "
            f"leave non-numeric columns out, drop them, or give an edgefin schema (with its preprocess spec)"
        )
    kinds = {n: k for n, k in kinds.items() if k == "numeric"}
    if not kinds:
        raise DataError(f"{source} has no numeric feature columns besides the target '{tspec.name}'")
    schema = fit_schema(frames["train"], kinds, tspec, source=source, allow_missing=missing_fields([frame], kinds))
    steps = [
        NumericStep(field=f.name, fill=training_median(frames, f.name), mean=0.0, scale=1.0) for f in schema.fields
    ]
    return Columns(schema, PreprocessSpec(steps=tuple(steps)), kinds, tuple(other), "raw")


def training_median(frames: dict[str, pd.DataFrame], name: str) -> float:
    """The median of a numeric column's values in the training split (0.0 when it has none): the fill."""
    col = pd.to_numeric(frames["train"][name], errors="coerce").to_numpy(dtype=np.float64)
    seen = col[~np.isnan(col)]
    return float(np.median(seen)) if seen.size else 0.0


def schema_columns(schema_path: Path, preprocess_path: Path | None, tspec: Any) -> Columns:
    """An edgefin schema.json plus its preprocess spec (beside it, or given), checked against each other."""
    from edgefin_runtime.errors import ManifestError

    from ..data.schema import schema_from_dict

    schema = schema_from_dict(_read(schema_path, "schema"), str(schema_path))
    pre = preprocess_path if preprocess_path is not None else schema_path.with_name("preprocess.json")
    if not pre.exists():
        raise DataError(
            f"no preprocessing spec for {schema_path}: expected {pre} (an edgefin preprocess.json, as in a "
            f"run's data/ folder) or a preprocess spec given with the schema"
        )
    try:
        spec = PreprocessSpec.from_dict(_read(pre, "preprocess spec"))
    except ManifestError as exc:
        raise DataError(f"preprocess spec {pre} is invalid: {exc}") from None
    if schema.target != tspec.name:
        raise DataError(
            f"schema {schema_path} is for target '{schema.target}', but the target column is '{tspec.name}'"
        )
    schema = replace(schema, positive_label=tspec.positive_label, negative_label=tspec.negative_label)
    missing = [s.field for s in spec.steps if s.field not in schema.names]
    if missing:
        raise DataError(f"preprocess spec {pre} encodes fields {missing} that schema {schema_path} does not have")
    return Columns(schema, spec, {f.name: f.kind for f in schema.fields}, (), "schema")


def check_width(cols: Columns, width: int, model_label: str, source: str) -> None:
    """The model's input width must equal the features the spec produces; else a DataError naming both."""
    if cols.spec.n_features == width:
        return
    names = [f.name for f in cols.schema.fields]
    if cols.how == "schema":
        raise DataError(
            f"{model_label} takes {width} input features but the schema's preprocess spec produces "
            f"{cols.spec.n_features}; the model and the schema do not belong together"
        )
    shown = ", ".join(names[:12]) + ("..." if len(names) > 12 else "")
    left = f" (left out as non-numeric: {', '.join(cols.left_out)})" if cols.left_out else ""
    raise DataError(
        f"{model_label} takes {width} input features but {source} has {len(names)} numeric feature "
        f"columns besides the target: {shown}{left}. Keep exactly the model's inputs in its input order "
        f"(drop the others), or give an edgefin schema if the model takes edgefin's encoded features"
    )


def _read(p: Path, what: str) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{what} file {p} not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{what} file {p} is not readable JSON ({exc})") from None


__all__ = ["Columns", "check_width", "raw_columns", "schema_columns", "training_median"]
