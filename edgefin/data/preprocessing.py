"""Fit the preprocessing spec on the training split; apply it only through the runtime.

Fitting (here) decides the numbers: median fill, mean/std scaling, missing indicators, category
vocabularies and encodings. Applying them is :class:`edgefin_runtime.preprocess.Preprocessor`'s job,
in training and on the device alike, so there is exactly one implementation and no skew.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd

from edgefin_runtime.errors import InputError
from edgefin_runtime.manifest import MAX_EDGES, CategoricalStep, NumericStep, PreprocessSpec, Schema, Step
from edgefin_runtime.plan import canonical_category
from edgefin_runtime.preprocess import Policy, Preprocessor

from ..errors import DataError
from .io import describe_row
from .schema import RANGE_QUANTILES, round_outward, round_significant, to_columns

Encoding = Literal["onehot", "index"]
MISSING_SENTINEL = "__missing__"  # a fill that is not a category, so missing values use the OOV slot


#: bins per numeric column that ``bins="auto"`` tries against the plain input (benchmarks/baselines.py:
#: on threshold-shaped data they close the gap to tuned gradient boosting)
DEFAULT_BINS = 16
#: validation AUC the binned input must gain over the plain one to be chosen: it makes the model's
#: input ~4x wider and single-record scoring ~1.6x slower (runtime/README.md), so a tie keeps it plain
BINS_MARGIN = 0.002
MAX_BINS = MAX_EDGES - 1
#: significant digits of a published bin edge (an exact training value could identify an applicant)
EDGE_DIGITS = 3


def fit_preprocess(
    train: pd.DataFrame, schema: Schema, *, encoding: Encoding = "onehot", bins: int = 0, source: str = "training split"
) -> PreprocessSpec:
    """Fit one step per schema field, in schema order, from the (un-augmented) training split.

    Numeric: fill with the median, scale with the mean and standard deviation of the observed
    values, and add a 0/1 missing indicator when the training split had missing values. With
    ``bins`` > 0, also up to that many piecewise-linear bins between training quantiles (see
    :func:`quantile_edges`).
    Categorical: the schema's vocabulary plus one out-of-vocabulary slot. A missing value is filled
    with the OOV slot when training had missing values (so the model learns what missing means),
    else with the most frequent category (a neutral guess for a value never missing in training).
    """
    if encoding not in ("onehot", "index"):
        raise ValueError(f"encoding must be 'onehot' or 'index', got {encoding!r}")
    if check_bins(bins) == "auto":
        raise ValueError("fit_preprocess needs a bin count; 'auto' is decided by training (edgefin.train)")
    cols = to_columns(train, schema, source)
    steps: list[Step] = []
    for f in schema.fields:
        values = cols[f.name]
        if f.kind == "numeric":
            miss = np.isnan(values)
            seen = values[~miss]
            if seen.size:
                with np.errstate(over="ignore", invalid="ignore"):
                    fill, mean, std = float(np.median(seen)), float(seen.mean()), float(seen.std())
            else:
                fill, mean, std = 0.0, 0.0, 1.0
            if not (np.isfinite(mean) and np.isfinite(fill)):
                raise DataError(
                    f"numeric column '{f.name}' in {source} has values too large to average "
                    f"(beyond about 1e308); rescale the column or leave it out with `drop={f.name}`"
                )
            scale = std if np.isfinite(std) and std > 1e-12 else 1.0
            steps.append(
                NumericStep(
                    field=f.name,
                    fill=fill,
                    mean=mean,
                    scale=scale,
                    indicator=bool(miss.any()),
                    edges=quantile_edges(seen, bins),
                )
            )
        else:
            canon = pd.Series([canonical_category(v) for v in values], dtype=object)
            if canon.isna().any():
                cat_fill = MISSING_SENTINEL
                while cat_fill in f.categories:
                    cat_fill = "_" + cat_fill + "_"
            else:
                counts = canon[canon.isin(f.categories)].value_counts()
                cat_fill = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0] if len(counts) else f.categories[0]
            steps.append(
                CategoricalStep(field=f.name, categories=tuple(f.categories), fill=cat_fill, encoding=encoding)
            )
    return PreprocessSpec(steps=tuple(steps))


def check_bins(value: object) -> int | str:
    """A bin-count option as "auto", 0 (standardise only) or 2..MAX_BINS; text digits become an int.
    Raises ValueError saying what is allowed (one bin would only repeat the standardised value)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        value = int(text) if text.isdigit() else value
    if isinstance(value, int) and not isinstance(value, bool) and (value == 0 or 2 <= value <= MAX_BINS):
        return value
    raise ValueError(f"expected auto, 0 (standardise only) or a whole number of bins in 2..{MAX_BINS}, got {value!r}")


def quantile_edges(seen: np.ndarray, bins: int) -> tuple[float, ...]:
    """Edges of up to ``bins`` bins holding about equal shares of the observed training values.

    Repeated quantiles (a column with few distinct values) merge, so a count such as "late
    payments" gets a bin per common value. Fewer than two bins would only repeat the
    standardised value, so such columns (and ``bins=0``) get none.

    The edges travel to every device in the bundle, so they must not reveal an applicant: the outer
    edges sit at the schema's robust range quantiles (0.5% / 99.5%, never the training extremes) rounded
    outward, and every edge is rounded to EDGE_DIGITS significant digits. Values beyond the outer edges
    still reach the model through the standardised column.
    """
    if bins < 2 or seen.size < 2:
        return ()
    lo_q, hi_q = RANGE_QUANTILES
    # "lower": edges are values that occur, so a 0/1 column gets no half-way edge at 0.5
    raw = np.quantile(seen, np.linspace(lo_q, hi_q, bins + 1), method="lower")
    raw = raw[np.isfinite(raw)]
    if raw.size < 2:
        return ()
    rounded = [round_outward(float(raw[0]), down=True, digits=EDGE_DIGITS)]
    rounded += [round_significant(float(e), EDGE_DIGITS) for e in raw[1:-1]]
    rounded.append(round_outward(float(raw[-1]), down=False, digits=EDGE_DIGITS))
    keep = [rounded[0]]
    for e in rounded[1:]:
        if 0 < e - keep[-1] < math.inf:  # the manifest's rule: increasing, with finite gaps
            keep.append(e)
    return tuple(keep) if len(keep) >= 3 else ()


def make_preprocessor(schema: Schema, spec: PreprocessSpec) -> Preprocessor:
    """The runtime's preprocessor with the training policy: impute, unseen categories to OOV."""
    return Preprocessor(schema, spec, Policy.lenient())


def encode_frame(frame: pd.DataFrame, schema: Schema, preprocessor: Preprocessor, *, source: str) -> np.ndarray:
    """Encode a frame to the model's float32 matrix; the first bad row becomes a DataError naming it."""
    cols = to_columns(frame, schema, source)
    try:
        result = preprocessor.columns(cols)
    except InputError as exc:
        raise DataError(f"{source}: {exc.reason}") from None
    if result.errors:
        first = min(result.errors)
        err = result.errors[first]
        raise DataError(f"{describe_row(source, int(frame.index[first]))}: {err.reason}")
    return result.matrix
