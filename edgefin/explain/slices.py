"""Quality per group: AUC, KS, approval rate and every variant's flip rate per value of a slice column.

A categorical slice column groups by value (missing values form their own group, the rarest values
beyond :data:`MAX_GROUPS` are pooled as "other"); a numeric one by quantile bands of the split
(edges rounded to 3 significant digits, so a band's label is never an applicant's exact value).
A group is flagged ``small`` when it has fewer than ``min_rows`` rows or fewer than ``min_class``
rows of either class: its AUC and KS are too noisy to act on (AUC/KS are left out below 2 per class).
A compression that hurts one group shows as a flip rate well above the variant's overall one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import metrics as M
from ..data.schema import round_significant

MAX_GROUPS = 12
BANDS = 4
MIN_ROWS = 100
MIN_CLASS = 10


def _is_numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "fiub"


def _band(edges: list[float], i: int) -> str:
    if i == 0:
        return f"< {edges[0]:g}"
    if i == len(edges):
        return f">= {edges[-1]:g}"
    return f"{edges[i - 1]:g} - {edges[i]:g}"


def groups_of(values: np.ndarray, *, bands: int = BANDS) -> tuple[list[str], np.ndarray]:
    """(group labels, group index per row) for a slice column."""
    v = np.asarray(values)
    if _is_numeric(v):
        x = v.astype(np.float64)
        ok = np.isfinite(x)
        edges = sorted({round_significant(float(q), 3) for q in np.quantile(x[ok], np.linspace(0, 1, bands + 1)[1:-1])})
        edges = [e for e in edges if np.nanmin(x[ok]) < e <= np.nanmax(x[ok])] if ok.any() else []
        idx = np.searchsorted(np.asarray(edges), x, side="right") if edges else np.zeros(len(x), dtype=int)
        labels = [_band(edges, i) for i in range(len(edges) + 1)] if edges else ["all"]
        if (~ok).any():
            labels.append("missing")
            idx = np.where(ok, idx, len(labels) - 1)
        return labels, idx.astype(int)
    text = np.array(["\x00missing" if (e is None or e != e) else str(e) for e in v.tolist()], dtype=object)
    values_, counts = np.unique(text, return_counts=True)
    order = [values_[i] for i in np.argsort(-counts, kind="stable")]
    keep = order[: MAX_GROUPS - 1] if len(order) > MAX_GROUPS else order
    labels = [("missing" if k == "\x00missing" else str(k)) for k in keep]
    pos = {k: i for i, k in enumerate(keep)}
    other = len(keep)
    idx = np.array([pos.get(t, other) for t in text.tolist()], dtype=int)
    if len(order) > len(keep):
        labels.append("other")
    return labels, idx


def slice_table(
    column: str,
    values: np.ndarray,
    y: np.ndarray,
    reference: np.ndarray,
    variants: Mapping[str, np.ndarray],
    threshold: float,
    *,
    bands: int = BANDS,
    min_rows: int = MIN_ROWS,
    min_class: int = MIN_CLASS,
) -> dict[str, Any]:
    """One slice column: per group n, positives, AUC, KS and approval rate of the reference (source) model,
    and per variant its AUC, approval rate and flip rate against the reference; small groups flagged.
    A variant's NaN scores (rejected rows) are left out of its figures."""
    y = np.asarray(y).astype(int)
    ref = np.asarray(reference, dtype=np.float64)
    labels, idx = groups_of(values, bands=bands)
    groups = []
    for g, label in enumerate(labels):
        m = idx == g
        n = int(m.sum())
        if n == 0:
            continue
        pos = int(y[m].sum())
        row: dict[str, Any] = {"group": label, "n": n, "positives": pos, **_quality(y[m], ref[m], threshold)}
        row["small"] = n < min_rows or min(pos, n - pos) < min_class
        row["variants"] = {}
        for name, s in variants.items():
            s = np.asarray(s, dtype=np.float64)[m]
            ok = np.isfinite(s)
            q = _quality(y[m][ok], s[ok], threshold)
            q["flip_rate"] = M.flip_rate(s[ok], ref[m][ok], threshold) if ok.any() else None
            row["variants"][name] = q
        groups.append(row)
    overall = {
        name: M.flip_rate(s[np.isfinite(s)], ref[np.isfinite(s)], threshold)
        for name, s in ((k, np.asarray(v, dtype=np.float64)) for k, v in variants.items())
    }
    worst = {
        name: max(
            (g for g in groups if g["variants"][name]["flip_rate"] is not None),
            key=lambda g: g["variants"][name]["flip_rate"],
            default=None,
        )
        for name in variants
    }
    return {
        "column": column,
        "kind": "numeric" if _is_numeric(np.asarray(values)) else "categorical",
        "groups": groups,
        "overall_flip_rate": overall,
        "worst_group": {k: (None if g is None else g["group"]) for k, g in worst.items()},
        "small_groups": [g["group"] for g in groups if g["small"]],
        "min_rows": min_rows,
        "min_class": min_class,
    }


def _quality(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    out: dict[str, Any] = {"approval_rate": float(np.mean(p < threshold)) if p.size else None}
    both = p.size and min(int(y.sum()), int(y.size - y.sum())) >= 2
    out["auc"] = M.auc(y, p) if both else None
    out["ks"] = M.ks(y, p) if both else None
    return out


def slices(
    frame_columns: Mapping[str, np.ndarray],
    names: Sequence[str],
    y: np.ndarray,
    reference: np.ndarray,
    variants: Mapping[str, np.ndarray],
    threshold: float,
    **kw: Any,
) -> list[dict[str, Any]]:
    """:func:`slice_table` for each named column; ValueError naming a column the split does not have."""
    missing = [n for n in names if n not in frame_columns]
    if missing:
        raise ValueError(
            f"slice column(s) {', '.join(missing)} not in the test split (columns: {', '.join(frame_columns)})"
        )
    return [slice_table(n, frame_columns[n], y, reference, variants, threshold, **kw) for n in names]


__all__ = ["groups_of", "slice_table", "slices"]
