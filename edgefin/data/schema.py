"""Infer the input schema and the binary target, and turn frames into typed columns.

The schema is :class:`edgefin_runtime.manifest.Schema` (the device contract), so the toolkit and the
runtime agree on field kinds, vocabularies, training ranges and which fields may be missing.
Kinds are inferred from the whole file (so a mixed-type column is caught wherever it is); the
statistics (ranges, vocabularies, missing shares) are fitted on the training split only.

A schema travels in every bundle, so its numeric ranges must reveal no single applicant: they are
the 0.5% and 99.5% training quantiles rounded outward to 2 significant digits (:func:`robust_range`),
never the exact training extremes. The runtime flags values outside them (``out_of_range:F``); about
1% of typical rows lie there, which is what such a flag should mean ("unusual"), not "unseen".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from edgefin_runtime.errors import ManifestError
from edgefin_runtime.manifest import FieldSpec, Schema
from edgefin_runtime.plan import canonical_category

from ..errors import DataError, UsageError
from .io import describe_row

NUMERIC = "numeric"
CATEGORICAL = "categorical"
MAX_CATEGORIES = 64  # the most frequent categories kept per field; rarer ones share the OOV slot
_SHOW = 8
#: the training quantiles a numeric field's published range is taken at, and its significant digits
RANGE_QUANTILES = (0.005, 0.995)
RANGE_DIGITS = 2


@dataclass(frozen=True)
class TargetSpec:
    """The target column and which of its two classes is the positive (risk) class (y = 1)."""

    name: str
    positive_label: str
    negative_label: str


# ---------------------------------------------------------------- target
def resolve_target(frame: pd.DataFrame, target: str, positive: str | None, source: str) -> TargetSpec:
    """Find the target column, check it has exactly two classes, and decide which one is positive.

    Without ``positive``, a 0/1 target uses 1 and a boolean target uses true; other labels must be
    named with ``positive``.
    """
    if target not in frame.columns:
        raise DataError(
            f"target column '{target}' is not in {source} (columns: {_names(frame.columns)}); pick one with `target`"
        )
    labels = _target_labels(frame[target], target, source)
    if not labels:
        raise DataError(
            f"target column '{target}' in {source} has no values (every row is missing); "
            f"pick another column with `target`"
        )
    if len(labels) == 1:
        raise DataError(
            f"target column '{target}' in {source} has only one class ({labels[0]!r}); "
            f"a classifier needs rows of both classes"
        )
    if len(labels) > 2:
        raise DataError(
            f"target column '{target}' in {source} has {len(labels)} classes "
            f"({_names(labels)}); edgefin trains binary classifiers: map it to two classes "
            f"first or pick another `target`"
        )
    if positive is None:
        if set(labels) == {"0", "1"}:
            positive = "1"
        elif set(labels) == {"false", "true"}:
            positive = "true"
        else:
            raise DataError(
                f"target column '{target}' has classes {labels[0]!r} and {labels[1]!r}; say which one "
                f"is the positive (risk) class with `positive`, e.g. `positive={labels[0]}`"
            )
    else:
        positive = _match_label(str(positive), labels, target)
    negative = labels[1] if labels[0] == positive else labels[0]
    return TargetSpec(name=target, positive_label=positive, negative_label=negative)


def target_vector(frame: pd.DataFrame, spec: TargetSpec, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(y as int8 0/1, mask of rows that have a target). Rows without a target are for the caller to drop."""
    if spec.name not in frame.columns:
        raise DataError(
            f"target column '{spec.name}' is not in {source} (columns: {_names(frame.columns)}); "
            f"every data file needs the target column"
        )
    col = frame[spec.name]
    present = col.notna().to_numpy().copy()
    canon = np.empty(len(col), dtype=object)
    for i, v in enumerate(col.tolist()):
        canon[i] = _canon_target(v, spec.name, source, i) if present[i] else None
    present &= canon != None  # noqa: E711 - '' counts as missing too
    ok = (canon == spec.positive_label) | (canon == spec.negative_label)
    bad = np.flatnonzero(present & ~ok)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"target column '{spec.name}' in {describe_row(source, _row(col.index[i]))} has the value "
            f"{canon[i]!r}, expected {spec.positive_label!r} or {spec.negative_label!r} "
            f"(the classes of the training data)"
        )
    return (canon == spec.positive_label).astype(np.int8), present


def _target_labels(col: pd.Series, target: str, source: str) -> list[str]:
    labels: set[str] = set()
    for v in pd.unique(col.dropna()):
        c = _canon_target(v, target, source, None)
        if c is not None:
            labels.add(c)
        if len(labels) > 50:
            break
    return sorted(labels)


def _canon_target(v: Any, target: str, source: str, row: int | None) -> str | None:
    try:
        return canonical_category(v)
    except TypeError:
        where = f" ({describe_row(source, row)})" if row is not None else f" in {source}"
        raise DataError(
            f"target column '{target}'{where} holds {v!r}; expected two class labels "
            f"(text, 0/1 or true/false), not continuous numbers"
        ) from None


def _match_label(positive: str, labels: Sequence[str], target: str) -> str:
    candidates = [positive, positive.strip(), positive.strip().lower()]
    try:
        candidates.append(canonical_category(float(positive)) or "")
    except (TypeError, ValueError):
        pass
    for c in candidates:
        if c in labels:
            return c
    lower = {lab.lower(): lab for lab in labels}
    if positive.strip().lower() in lower:
        return lower[positive.strip().lower()]
    raise DataError(
        f"`positive={positive!r}` is not a class of target column '{target}' "
        f"(classes: {_names(labels)}); pass one of them"
    )


# ---------------------------------------------------------------- kinds
def infer_kinds(
    frame: pd.DataFrame,
    *,
    target: str,
    source: str,
    categorical: Iterable[str] = (),
    numeric: Iterable[str] = (),
    drop: Iterable[str] = (),
) -> dict[str, str]:
    """Decide numeric vs categorical for every feature column (file order); overrides win.

    Strings and booleans are categorical, numbers numeric (integers too, unless ``categorical``
    names them). A text column whose values are mostly numbers is a mixed-type column and an error.
    """
    categorical, numeric, drop = list(categorical), list(numeric), list(drop)
    cols = list(frame.columns)
    for opt, names in (("`categorical`", categorical), ("`numeric`", numeric), ("`drop`", drop)):
        for n in names:
            if n not in cols:
                raise DataError(f"column '{n}' given to {opt} is not in {source} (columns: {_names(cols)})")
            if n == target:
                raise UsageError(f"column '{n}' is the target; it cannot also be given to {opt}")
    both = sorted(set(categorical) & set(numeric))
    if both:
        raise UsageError(f"column '{both[0]}' is given to both `categorical` and `numeric`; pick one")
    kinds: dict[str, str] = {}
    for name in cols:
        if name == target or name in drop:
            continue
        col = frame[name]
        if name in categorical:
            _check_categorical(col, name, source)
            kinds[name] = CATEGORICAL
        elif name in numeric:
            numeric_values(col, name, source)  # raises on the first value that is not a number
            kinds[name] = NUMERIC
        else:
            kinds[name] = _infer_kind(col, name, source)
    if not kinds:
        raise DataError(
            f"{source} has no feature columns left besides the target '{target}' "
            f"(dropped: {_names(drop)}); keep at least one"
        )
    return kinds


def _infer_kind(col: pd.Series, name: str, source: str) -> str:
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return CATEGORICAL
    if pd.api.types.is_numeric_dtype(dtype):
        return NUMERIC
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise DataError(
            f"column '{name}' in {source} holds dates or times; turn it into a number "
            f"(e.g. days since an event) or leave it out with `drop={name}`"
        )
    if isinstance(dtype, pd.CategoricalDtype):
        return CATEGORICAL
    values = col.dropna()
    if values.empty:
        return NUMERIC  # all missing: a constant column, flagged by the quality report
    kinds = values.map(_value_kind)
    present = set(kinds.unique())
    if "other" in present:
        pos = kinds[kinds == "other"].index[0]
        raise DataError(
            f"column '{name}' in {describe_row(source, _row(pos))} holds "
            f"{type(values.loc[pos]).__name__} {values.loc[pos]!r}; expected numbers or text; "
            f"convert it or leave the column out with `drop={name}`"
        )
    if present == {"number"}:
        return NUMERIC
    if present == {"bool"}:
        return CATEGORICAL
    if present == {"text"}:
        looks_numeric = pd.to_numeric(values, errors="coerce").notna()
        if 0.5 <= float(looks_numeric.mean()) < 1.0:  # numbers with a few words in between
            pos = looks_numeric[~looks_numeric].index[0]
            raise DataError(
                f"column '{name}' is mixed: mostly numbers, but {describe_row(source, _row(pos))} holds "
                f"{values.loc[pos]!r}. If that means missing, add `na_values={values.loc[pos]!r}`; if the column "
                f"is a category, declare it with `categorical={name}`; otherwise clean the file"
            )
        return CATEGORICAL
    # numbers, text and booleans mixed in one object column: name the first odd one out
    counts = kinds.value_counts()
    minority = counts.index[-1]
    pos = kinds[kinds == minority].index[0]
    raise DataError(
        f"column '{name}' is mixed: mostly {_plural(counts.index[0])}, but "
        f"{describe_row(source, _row(pos))} holds {values.loc[pos]!r}. Declare the column "
        f"with `categorical={name}` or `numeric={name}`, or clean the file"
    )


def _value_kind(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(v, str):
        return "text"
    return "other"


def _plural(kind: str) -> str:
    return {"number": "numbers", "text": "text", "bool": "booleans"}.get(kind, kind)


def _check_categorical(col: pd.Series, name: str, source: str) -> None:
    for pos, v in col.dropna().items():
        try:
            canonical_category(v)
        except TypeError:
            raise DataError(
                f"column '{name}' is declared categorical, but {describe_row(source, _row(pos))} "
                f"holds {v!r}, which is not a category (text, an integer or a boolean); "
                f"treat it as numeric or round it"
            ) from None


# ---------------------------------------------------------------- typed columns
def numeric_values(col: pd.Series, name: str, source: str) -> np.ndarray:
    """A column as float64 with NaN for missing; text that is not a number or infinity is an error."""
    if pd.api.types.is_bool_dtype(col.dtype):
        raise DataError(
            f"column '{name}' in {source} holds true/false values but is numeric; declare it with `categorical={name}`"
        )
    if pd.api.types.is_numeric_dtype(col.dtype):
        out = col.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        text = col.map(lambda v: None if isinstance(v, str) and v.strip() == "" else v)
        if text.map(lambda v: isinstance(v, (bool, np.bool_))).any():
            pos = text[text.map(lambda v: isinstance(v, (bool, np.bool_)))].index[0]
            raise DataError(
                f"column '{name}' is numeric, but {describe_row(source, _row(pos))} holds "
                f"a boolean ({text.loc[pos]!r}); clean the file or declare `categorical={name}`"
            )
        conv = pd.to_numeric(text, errors="coerce")
        bad = conv.isna() & text.notna()
        if bad.any():
            pos = bad[bad].index[0]
            raise DataError(
                f"column '{name}' is numeric, but {describe_row(source, _row(pos))} holds "
                f"{text.loc[pos]!r}, not a number. If that means missing, add "
                f"`na_values={text.loc[pos]!r}`; otherwise clean the file or declare `categorical={name}`"
            )
        out = conv.to_numpy(dtype=np.float64, na_value=np.nan)
    inf = np.isinf(out)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise DataError(
            f"column '{name}' in {describe_row(source, _row(col.index[i]))} is infinite ({out[i]}); "
            f"replace it with a finite number or leave it empty (missing)"
        )
    return out


def category_values(col: pd.Series) -> np.ndarray:
    """A column as an object array of raw category values, None for missing (the runtime canonicalises)."""
    arr = col.astype(object).to_numpy()
    return np.where(pd.isna(arr), None, arr)  # type: ignore[return-value]  # numpy's stubs lack where(c, None, x)


def to_columns(frame: pd.DataFrame, kinds: Mapping[str, str] | Schema, source: str) -> dict[str, np.ndarray]:
    """Typed columns ready for :meth:`edgefin_runtime.preprocess.Preprocessor.columns`."""
    if isinstance(kinds, Schema):
        kinds = {f.name: f.kind for f in kinds.fields}
    missing = [n for n in kinds if n not in frame.columns]
    if missing:
        raise DataError(
            f"{source} lacks the column(s) {_names(missing)} that the model was trained on; "
            f"every data file needs the same feature columns"
        )
    out: dict[str, np.ndarray] = {}
    for name, kind in kinds.items():
        col = frame[name]
        out[name] = numeric_values(col, name, source) if kind == NUMERIC else category_values(col)
    return out


# ---------------------------------------------------------------- fitting
def fit_schema(
    train: pd.DataFrame,
    kinds: Mapping[str, str],
    target: TargetSpec,
    *,
    source: str,
    allow_missing: Iterable[str] = (),
    max_categories: int = MAX_CATEGORIES,
) -> Schema:
    """Fit ranges, vocabularies and missing shares on the training split.

    ``allow_missing`` names the fields that had missing values anywhere in the data given; they may
    be missing on the device too (the preprocessing imputes them). Other fields must be present.
    """
    allowed = set(allow_missing)
    cols = to_columns(train, kinds, source)
    fields: list[FieldSpec] = []
    for name, kind in kinds.items():
        values = cols[name]
        if kind == NUMERIC:
            miss = np.isnan(values)
            lo, hi = robust_range(values[~miss])
            fields.append(
                FieldSpec(
                    name=name,
                    kind="numeric",
                    allow_missing=bool(name in allowed or miss.any()),
                    min=lo,
                    max=hi,
                    missing_share=float(miss.mean()),
                )
            )
        else:
            canon = pd.Series([canonical_category(v) for v in values], dtype=object)
            miss = canon.isna().to_numpy()
            counts = canon.dropna().value_counts()
            if counts.empty:
                raise DataError(
                    f"categorical column '{name}' has no values in the training split of {source}; "
                    f"leave it out with `drop={name}`"
                )
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_categories]
            fields.append(
                FieldSpec(
                    name=name,
                    kind="categorical",
                    allow_missing=bool(name in allowed or miss.any()),
                    categories=tuple(sorted(c for c, _ in ranked)),
                    missing_share=float(miss.mean()),
                )
            )
    return Schema(
        fields=tuple(fields),
        target=target.name,
        positive_label=target.positive_label,
        negative_label=target.negative_label,
    )


def robust_range(seen: np.ndarray) -> tuple[float | None, float | None]:
    """A numeric field's published range: the RANGE_QUANTILES of the seen values, rounded outward to
    RANGE_DIGITS significant digits, so it reveals no single applicant's value (None, None when empty)."""
    seen = np.asarray(seen, dtype=np.float64)
    seen = seen[np.isfinite(seen)]
    if not seen.size:
        return None, None
    lo, hi = np.quantile(seen, RANGE_QUANTILES)
    return round_outward(float(lo), down=True), round_outward(float(hi), down=False)


def round_outward(value: float, *, down: bool, digits: int = RANGE_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits towards -inf (``down``) or +inf: 18.3 -> 18
    down, 459.2 -> 460 up, -0.0123 -> -0.013 down."""
    if value == 0.0 or not math.isfinite(value):
        return float(value) + 0.0
    exp = math.floor(math.log10(abs(value))) - (digits - 1)
    k = (math.floor if down else math.ceil)(round(value / 10.0**exp, 9))  # 28.999999999999996 is 29
    return float(f"{k}e{exp}") + 0.0


def round_significant(value: float, digits: int) -> float:
    """``value`` rounded to the nearest number with ``digits`` significant digits (0 and non-finite as given)."""
    if value == 0.0 or not math.isfinite(value):
        return float(value) + 0.0
    return float(f"{value:.{digits - 1}e}") + 0.0


def missing_fields(frames: Iterable[pd.DataFrame], names: Iterable[str]) -> set[str]:
    """Fields with at least one missing value (None, NaN or blank text) in any of ``frames``."""
    names = list(names)
    out: set[str] = set()
    for f in frames:
        for n in names:
            if n in out or n not in f.columns:
                continue
            col = f[n]
            if col.isna().any() or col.map(lambda v: isinstance(v, str) and not v.strip()).any():
                out.add(n)
    return out


# ---------------------------------------------------------------- JSON
def schema_to_dict(schema: Schema) -> dict[str, Any]:
    """The same shape as ``Manifest.to_dict()['schema']``."""
    fields = []
    for f in schema.fields:
        d = asdict(f)
        d["categories"] = list(f.categories)
        fields.append(d)
    return {
        "fields": fields,
        "target": schema.target,
        "positive_label": schema.positive_label,
        "negative_label": schema.negative_label,
    }


def schema_from_dict(d: Mapping[str, Any], where: str = "schema") -> Schema:
    """Parse and validate a schema dict; a bad one is a DataError naming the key."""
    try:
        return Schema.from_dict(d, where)
    except ManifestError as exc:
        raise DataError(f"invalid schema: {exc}") from None


# ---------------------------------------------------------------- helpers
def _row(label: Any) -> int:
    """The 0-based data row in the source file: frames keep the file's row numbers as their index."""
    try:
        return int(label)
    except (TypeError, ValueError):
        return -1


def _names(names: Iterable[Any]) -> str:
    names = [str(n) for n in names]
    shown = ", ".join(repr(n) for n in names[:_SHOW])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _SHOW else "")
