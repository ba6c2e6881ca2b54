"""Global importance per field: permutation importance (AUC loss) and mean |attribution|.

Permutation importance shuffles one raw field across the rows of a labelled split (every column
the field encodes to moves together, so a one-hot field is permuted as one) and measures how much
the model's AUC falls; repeated with seeded permutations, reported as mean and standard deviation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import metrics as M

ScoreColumns = Callable[[Mapping[str, np.ndarray]], np.ndarray]  # raw columns -> scores


def permutation_importance(
    score: ScoreColumns,
    columns: Mapping[str, np.ndarray],
    y: np.ndarray,
    fields: Sequence[str],
    *,
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """AUC of the intact split and, per field, the AUC loss when that field is permuted (mean, sd, repeats)."""
    y = np.asarray(y).astype(int)
    if y.min() == y.max():
        raise ValueError("permutation importance needs rows of both classes")
    base = M.auc(y, score(columns))
    rng = np.random.default_rng(seed)
    n = len(y)
    perms = [rng.permutation(n) for _ in range(repeats)]  # the same permutations for every field
    out: dict[str, dict[str, float]] = {}
    for f in fields:
        losses = []
        for perm in perms:
            shuffled = {**columns, f: np.asarray(columns[f])[perm]}
            losses.append(base - M.auc(y, score(shuffled)))
        out[f] = {"auc_loss": float(np.mean(losses)), "sd": float(np.std(losses)), "repeats": repeats}
    return {"auc": base, "fields": out, "rows": n, "seed": seed}


def mean_abs_attribution(values: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Mean |attribution| per field over the explained records."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    return {n: float(v[:, i].mean()) if len(v) else 0.0 for i, n in enumerate(names)}


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Field names by score, largest first (ties in the mapping's order)."""
    return sorted(scores, key=lambda k: -scores[k])


__all__ = ["ScoreColumns", "mean_abs_attribution", "permutation_importance", "ranked"]
