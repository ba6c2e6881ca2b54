"""Exact Baseline-Shapley values over input fields, computed by scoring every coalition in batches.

For a record x, a reference applicant r and fields 1..n (a field is every model-input column its
preprocessing step writes: one-hot columns, the missing-value indicator and bins stay with their
source field), a coalition S is scored on the input that takes S's columns from x and all others
from r: v(S) = f(x_S, r_rest). Every preprocessing step reads one field only, so mixing encoded
columns is the same as encoding the mixed raw record. The Shapley value of field j is

    phi_j = sum over S without j of |S|! (n - |S| - 1)! / n! * (v(S + j) - v(S))

and the values add up to v(all) - v(none) = f(x) - f(r) (efficiency). n fields need 2^n model rows
per record (13 fields: 8,192), scored in chunks of whole records through any batch ``predict``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edgefin_runtime.manifest import PreprocessSpec

#: beyond this many fields the 2^n coalitions of one record no longer fit a sensible batch
MAX_EXACT_FIELDS = 16
#: model rows scored per call (whole records per chunk)
CHUNK_ROWS = 1 << 17

Predict = Callable[[np.ndarray], np.ndarray]  # float32 (rows, n_features) -> scores (rows,)
Link = Literal["identity", "logit"]


@dataclass(frozen=True)
class FieldGroups:
    """Which model-input columns belong to which schema field (contiguous, in preprocessing order)."""

    names: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]  # [start, stop) per field
    n_features: int

    @classmethod
    def from_spec(cls, spec: PreprocessSpec) -> FieldGroups:
        spans, pos = [], 0
        for step in spec.steps:
            spans.append((pos, pos + step.width))
            pos += step.width
        return cls(tuple(s.field for s in spec.steps), tuple(spans), pos)

    @property
    def n(self) -> int:
        return len(self.names)

    def column_masks(self, fields: np.ndarray) -> np.ndarray:
        """(m, n) field masks -> (m, n_features) column masks."""
        widths = [b - a for a, b in self.spans]
        return np.repeat(np.asarray(fields, dtype=bool), widths, axis=1)


def coalitions(n: int) -> np.ndarray:
    """Every subset of n fields as a (2^n, n) bool matrix: row s holds the bits of s (field j = bit j)."""
    idx = np.arange(1 << n, dtype=np.int64)
    return ((idx[:, None] >> np.arange(n)) & 1).astype(bool)


def shapley_weights(n: int) -> np.ndarray:
    """w[s] = s! (n - s - 1)! / n!: the weight of a coalition of size s that excludes the field."""
    return np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)])


def _link(v: np.ndarray, link: Link) -> np.ndarray:
    if link == "identity":
        return v
    p = np.clip(v, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Attributions:
    """Shapley values (records x fields) with the scores they explain (on the link's scale)."""

    fields: tuple[str, ...]
    values: np.ndarray  # (m, n)
    scores: np.ndarray  # (m,) f(x)
    reference_score: float  # f(r)

    def additivity_gap(self) -> float:
        """max |sum(phi) - (f(x) - f(r))|: zero up to float rounding for exact Shapley values."""
        if not len(self.scores):
            return 0.0
        return float(np.max(np.abs(self.values.sum(axis=1) - (self.scores - self.reference_score))))


def values_from_coalitions(v: np.ndarray, n: int) -> np.ndarray:
    """Shapley values from every coalition's value: v is (m, 2^n) in :func:`coalitions` order."""
    w = shapley_weights(n)
    idx = np.arange(1 << n)
    size = np.array([bin(i).count("1") for i in idx])
    out = np.empty((v.shape[0], n), dtype=np.float64)
    for j in range(n):
        without = idx[(idx >> j) & 1 == 0]
        out[:, j] = (v[:, without | (1 << j)] - v[:, without]) @ w[size[without]]
    return out


def exact_shapley(
    predict: Predict,
    x: np.ndarray,
    reference: np.ndarray,
    groups: FieldGroups,
    *,
    link: Link = "identity",
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> Attributions:
    """Exact Baseline-Shapley values of encoded records ``x`` (m, d) against the encoded ``reference`` (d,).

    ``predict`` scores a float32 matrix; ``link="logit"`` explains log-odds instead of the probability.
    """
    n = groups.n
    if n > MAX_EXACT_FIELDS:
        raise ValueError(
            f"exact Shapley over {n} fields needs 2^{n} model rows per record; at most {MAX_EXACT_FIELDS} fields"
        )
    x = np.asarray(x, dtype=np.float32)
    ref = np.asarray(reference, dtype=np.float32).reshape(-1)
    if x.ndim != 2 or x.shape[1] != groups.n_features or ref.size != groups.n_features:
        raise ValueError(
            f"records {x.shape} and reference {ref.shape} do not match the {groups.n_features} model inputs"
        )
    cmask = groups.column_masks(coalitions(n))  # (C, d)
    c = cmask.shape[0]
    per = max(1, chunk_rows // c)
    v = np.empty((len(x), c), dtype=np.float64)
    for start in range(0, len(x), per):
        xs = x[start : start + per]
        z = np.where(cmask[None, :, :], xs[:, None, :], ref[None, None, :])
        v[start : start + len(xs)] = np.asarray(predict(z.reshape(-1, x.shape[1])), dtype=np.float64).reshape(
            len(xs), c
        )
        if progress is not None:
            progress(min(start + per, len(x)), len(x))
    v = _link(v, link)
    ref_score = float(v[0, 0]) if len(v) else float(_link(np.asarray(predict(ref[None, :]), np.float64), link)[0])
    return Attributions(groups.names, values_from_coalitions(v, n), v[:, -1].copy(), ref_score)


def field_index(names: Sequence[str], fields: Sequence[str]) -> list[int]:
    """Positions of ``fields`` in ``names`` (ValueError naming an unknown field)."""
    pos = {f: i for i, f in enumerate(names)}
    missing = [f for f in fields if f not in pos]
    if missing:
        raise ValueError(f"unknown field(s) {', '.join(missing)}; the schema has {', '.join(names)}")
    return [pos[f] for f in fields]


__all__ = [
    "Attributions",
    "FieldGroups",
    "MAX_EXACT_FIELDS",
    "coalitions",
    "exact_shapley",
    "field_index",
    "shapley_weights",
    "values_from_coalitions",
]
