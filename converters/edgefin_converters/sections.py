"""The manifest's ``explain`` and ``drift`` sections, built from the run's training split.

No row of anyone's data goes into them: the reference applicant is an aggregate (means and modes over
at least :data:`MIN_REFERENCE_ROWS` training rows, numbers rounded to 4 significant digits), drift
bins are training quantiles rounded to 3 significant digits, and everything else is a proportion.

Reference applicant (the baseline every explanation compares with). By default: the training
applicants whose source-model score is at or above the decision threshold are ranked by score, and
the :func:`reference_rows` lowest (the applicants "just above the cutoff", Reg B's commentary
practice) form the group: N = max(MIN_REFERENCE_ROWS, REFERENCE_SHARE of the rows at or above the
threshold); if fewer rows than N are at or above the threshold, the N rows closest to it on either
side. Numeric field: the mean of the group's non-missing values (rounded to 4 significant digits; the
preprocessing's fill when all are missing). Categorical field: the group's most frequent category
(ties: the first in the schema's category order; the fill when all are missing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgefin_runtime.drift import category_values, numeric_values
from edgefin_runtime.explain import DIRECTIONS, METHODS
from edgefin_runtime.manifest import CategoricalStep, NumericStep, PreprocessSpec, Schema

from .acceptance import _round
from .errors import ModelInputError

MIN_REFERENCE_ROWS = 30
REFERENCE_SHARE = 0.1
DRIFT_BINS = 10
EDGE_DIGITS = 3
SHARE_DIGITS = 6


# ---------------------------------------------------------------- explain
def reference_rows(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the training rows the reference applicant is averaged over (see the module doc)."""
    ok = np.flatnonzero(np.isfinite(scores))
    above = ok[scores[ok] >= threshold]
    want = max(MIN_REFERENCE_ROWS, int(math.ceil(REFERENCE_SHARE * len(above))))
    if len(above) >= want:
        return above[np.argsort(scores[above], kind="stable")[:want]]
    return ok[np.argsort(np.abs(scores[ok] - threshold), kind="stable")[:want]]


def reference_record(
    schema: Schema, spec: PreprocessSpec, train: Mapping[str, Any], rows: np.ndarray
) -> dict[str, Any]:
    """Mean (numeric, 4 significant digits) / mode (categorical) of ``rows`` of the training columns."""
    record: dict[str, Any] = {}
    for step in spec.steps:
        col = train.get(step.field)
        picked = [] if col is None else [col[int(i)] for i in rows]
        if isinstance(step, NumericStep):
            x, _ = numeric_values(picked) if picked else (np.zeros(0), None)
            x = x[np.isfinite(x)]
            record[step.field] = _round(float(x.mean()), 4) if x.size else step.fill
        else:
            assert isinstance(step, CategoricalStep)
            seen = [c for c in category_values(picked) if c in step.categories]
            if seen:
                counts = {c: seen.count(c) for c in step.categories}
                record[step.field] = max(step.categories, key=lambda c: counts[c])  # first on ties
            else:
                record[step.field] = step.fill
    missing = [f.name for f in schema.fields if f.name not in record]
    if missing:
        raise ModelInputError(f"explain reference: no preprocessing step for {missing}")
    return record


def explain_section(
    schema: Schema,
    spec: PreprocessSpec,
    train: Mapping[str, Any],
    source_scores: np.ndarray,
    threshold: float,
    *,
    protected: Sequence[str] = (),
    reasons: Mapping[str, Mapping[str, str]] | None = None,
    method: str = "auto",
) -> dict[str, Any]:
    """The ``explain`` section: reference applicant, reason-text overrides, protected fields, method."""
    names = set(schema.names)
    bad = [p for p in protected if p not in names]
    if bad:
        raise ModelInputError(f"protected fields {bad} are not fields of the schema (fields: {sorted(names)})")
    check_reasons(reasons or {}, schema)
    if method not in METHODS:
        raise ModelInputError(f"explain method: expected one of {', '.join(METHODS)}, got {method!r}")
    rows = reference_rows(np.asarray(source_scores, dtype=np.float64).ravel(), threshold)
    if len(rows) < MIN_REFERENCE_ROWS:
        raise ModelInputError(
            f"explain reference: {len(rows)} scorable training rows; at least {MIN_REFERENCE_ROWS} are needed "
            f"so the reference applicant is an aggregate, never one applicant"
        )
    record = reference_record(schema, spec, train, rows)
    return {
        "method": method,
        "reference": {
            "record": record,
            "rows": int(len(rows)),
            "rule": (
                f"numeric: mean, categorical: mode, over the {len(rows)} training rows scored at or just above "
                f"the threshold {threshold:g} by the source model"
            ),
        },
        "reasons": {k: dict(v) for k, v in sorted((reasons or {}).items())},
        "protected": sorted(set(protected), key=list(schema.names).index),
    }


def check_reasons(reasons: Mapping[str, Any], schema: Schema) -> None:
    """Reason-text overrides: ``{field: {direction: text}}`` with known fields and directions."""
    names = set(schema.names)
    for name, texts in reasons.items():
        if name not in names:
            raise ModelInputError(f"reason texts: {name!r} is not a field of the schema (fields: {sorted(names)})")
        if not isinstance(texts, Mapping):
            raise ModelInputError(f"reason texts for {name!r}: expected a table of direction = text")
        for k, v in texts.items():
            if k not in DIRECTIONS or not isinstance(v, str) or not v.strip():
                raise ModelInputError(
                    f"reason texts for {name!r}.{k}: expected a non-empty text for one of {', '.join(DIRECTIONS)}"
                )


# ---------------------------------------------------------------- drift
def _edges(x: np.ndarray, bins: int) -> list[float]:
    """Interior edges between ``bins`` training quantiles, rounded, strictly increasing."""
    x = x[np.isfinite(x)]
    if x.size < 2:
        return []
    raw = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1], method="lower")
    out: list[float] = []
    for e in raw.tolist():
        r = _round(float(e), EDGE_DIGITS)
        if not out or r > out[-1]:
            out.append(r)
    return out


def _shares(counts: np.ndarray) -> list[float]:
    total = int(counts.sum())
    shares = [round(int(c) / total, SHARE_DIGITS) for c in counts] if total else [0.0] * len(counts)
    if total:  # keep the sum at 1 after rounding: the largest bin absorbs the rounding
        shares[int(np.argmax(counts))] += round(1.0 - sum(shares), SHARE_DIGITS)
        shares = [round(s, SHARE_DIGITS) for s in shares]
    return shares


def drift_section(
    schema: Schema, train: Mapping[str, Any], scores: np.ndarray, bins: int = DRIFT_BINS
) -> dict[str, Any]:
    """The ``drift`` section: per field and for ``scores`` (this variant's training scores), the
    reference bins and the training share of each; see :mod:`edgefin_runtime.drift` for the bins."""
    fields: dict[str, Any] = {}
    n = None
    for f in schema.fields:
        col = train.get(f.name)
        if col is None:
            raise ModelInputError(f"drift reference: training data has no column {f.name!r}")
        n = len(col) if n is None else n
        if f.kind == "numeric":
            x, _ = numeric_values(col)
            edges = _edges(x, bins)
            miss = np.isnan(x)
            idx = np.searchsorted(np.asarray(edges, dtype=np.float64), x, side="right")
            idx[miss] = len(edges) + 1
            counts = np.bincount(idx, minlength=len(edges) + 2)
            ok = x[~miss]
            oor = int(
                ((ok < f.min).sum() if f.min is not None else 0) + ((ok > f.max).sum() if f.max is not None else 0)
            )
            fields[f.name] = {
                "kind": "numeric",
                "edges": edges,
                "shares": _shares(counts),
                "range": [f.min, f.max],
                "out_of_range": round(oor / len(x), SHARE_DIGITS) if len(x) else 0.0,
            }
        else:
            lut = {c: i for i, c in enumerate(f.categories)}
            unseen, missing = len(f.categories), len(f.categories) + 1
            idx_c = [missing if c is None else lut.get(c, unseen) for c in category_values(col)]
            counts = np.bincount(np.asarray(idx_c, dtype=np.int64), minlength=len(f.categories) + 2)
            fields[f.name] = {"kind": "categorical", "categories": list(f.categories), "shares": _shares(counts)}
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    score_edges = _edges(s, bins)
    score_counts = np.bincount(
        np.searchsorted(np.asarray(score_edges, dtype=np.float64), s, side="right"), minlength=len(score_edges) + 1
    )
    if not n:
        raise ModelInputError("drift reference: the training data has no rows")
    return {
        "rows": int(n),
        "bins": bins,
        "fields": fields,
        "score": {"edges": score_edges, "shares": _shares(score_counts), "rows": int(len(s))},
    }


__all__ = [
    "MIN_REFERENCE_ROWS",
    "REFERENCE_SHARE",
    "reference_rows",
    "reference_record",
    "explain_section",
    "check_reasons",
    "drift_section",
]
