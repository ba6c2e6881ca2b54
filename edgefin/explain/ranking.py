"""Top-k reasons from attributions, and how often two explainers name the same ones.

A reason is a field whose attribution raises the risk score (positive contribution: it pushes the
applicant toward a decline), ranked by contribution, largest first; protected fields are never
reasons. Agreement between two lists of top-k reasons per record is reported four ways:

- ``set``: the same fields among the top k, order ignored (the primary figure: the adverse-action
  notice lists the principal reasons; the issue's >= 95% target applies to it);
- ``ordered``: the same fields in the same order;
- ``top1``: the same first reason;
- ``overlap``: mean |A & B| / max(|A|, |B|) (1 when both are empty).

Two empty lists (no field raises the score) agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Reasons = tuple[str, ...]


def top_reasons(
    values: np.ndarray, names: Sequence[str], k: int = 4, *, exclude: Iterable[str] = (), positive_only: bool = True
) -> list[Reasons]:
    """Per record, the fields with the k largest contributions (> 0 unless ``positive_only`` is False, then
    by |contribution|), ties broken by schema order; fields in ``exclude`` never appear."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if values.shape[1] != len(names):
        raise ValueError(f"attributions have {values.shape[1]} fields, names {len(names)}")
    keep = np.array([n not in set(exclude) for n in names], dtype=bool)
    key = values if positive_only else np.abs(values)
    out: list[Reasons] = []
    for row, krow in zip(values, key):
        order = np.lexsort((np.arange(len(names)), -krow))  # descending key, then schema order
        chosen = [i for i in order if keep[i] and (row[i] > 0 if positive_only else krow[i] > 0)][:k]
        out.append(tuple(names[i] for i in chosen))
    return out


def agreement(a: Sequence[Reasons], b: Sequence[Reasons], k: int = 4) -> dict[str, float | int]:
    """How often two explainers' top-k reasons agree, per record (see the module docstring)."""
    if len(a) != len(b):
        raise ValueError(f"reason lists differ in length: {len(a)} vs {len(b)}")
    n = len(a)
    if n == 0:
        return {"n": 0, "k": k, "set": 0.0, "ordered": 0.0, "top1": 0.0, "overlap": 0.0}
    a = [tuple(x)[:k] for x in a]
    b = [tuple(x)[:k] for x in b]
    same_set = sum(set(x) == set(y) for x, y in zip(a, b))
    ordered = sum(x == y for x, y in zip(a, b))
    top1 = sum((x[:1] == y[:1]) for x, y in zip(a, b))
    overlap = sum(len(set(x) & set(y)) / max(len(x), len(y)) if (x or y) else 1.0 for x, y in zip(a, b))
    return {
        "n": n,
        "k": k,
        "set": same_set / n,
        "ordered": ordered / n,
        "top1": top1 / n,
        "overlap": overlap / n,
    }


__all__ = ["Reasons", "agreement", "top_reasons"]
