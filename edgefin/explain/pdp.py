"""Partial dependence and centred ICE curves of one field.

The grid of a numeric field is rounded quantiles (5% .. 95%) of the split, never an applicant's
exact value; a categorical field's grid is its categories. Partial dependence is the mean score
when every row takes the grid value; ICE curves are single rows' scores along the grid, centred at
the first grid point (c-ICE: the shape of the effect without the row's level) and drawn for a
small seeded sample of rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data.schema import round_significant
from .importance import ScoreColumns

GRID_POINTS = 12
ICE_ROWS = 25
PD_ROWS = 600


def numeric_grid(values: np.ndarray, points: int = GRID_POINTS) -> list[float]:
    """Rounded quantiles from 5% to 95% of the non-missing values (distinct, ascending)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return []
    qs = np.quantile(v, np.linspace(0.05, 0.95, points))
    return sorted({round_significant(float(q), 3) for q in qs})


def partial_dependence(
    score: ScoreColumns,
    columns: Mapping[str, np.ndarray],
    field: str,
    kind: str,
    *,
    categories: Sequence[str] = (),
    points: int = GRID_POINTS,
    ice_rows: int = ICE_ROWS,
    max_rows: int = PD_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """{"field", "kind", "grid", "pd", "ice"} for one field over (a seeded sample of) the split's rows."""
    n = len(np.asarray(columns[field]))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n, max_rows), replace=False))
    sample = {k: np.asarray(v)[rows] for k, v in columns.items()}
    grid: list[Any] = numeric_grid(sample[field], points) if kind == "numeric" else list(categories)
    m = len(rows)
    if not grid:
        return {"field": field, "kind": kind, "grid": [], "pd": [], "ice": [], "rows": m}
    stacked = {k: np.concatenate([v] * len(grid)) for k, v in sample.items()}
    dtype = np.float64 if kind == "numeric" else object
    stacked[field] = np.repeat(np.asarray(grid, dtype=dtype), m)
    s = np.asarray(score(stacked), dtype=np.float64).reshape(len(grid), m)
    ice_idx = rng.choice(m, size=min(m, ice_rows), replace=False)
    ice = s[:, ice_idx].T - s[0, ice_idx][:, None]
    return {
        "field": field,
        "kind": kind,
        "grid": grid,
        "pd": [round(float(x), 6) for x in s.mean(axis=1)],
        "ice": [[round(float(x), 5) for x in row] for row in ice],
        "rows": m,
    }


__all__ = ["numeric_grid", "partial_dependence"]
