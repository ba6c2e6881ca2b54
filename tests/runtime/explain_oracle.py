"""The test oracle for reason codes: the Explainer's results computed the straightforward way.

Encode the record with ``Preprocessor.record``, find the fields whose encoded columns differ from the
reference applicant's, build every coalition row of the method's table as a full matrix, score it with
``engine.run``, then attribute and pick reasons with plain Python/numpy in the order of operations the
runtime has used since reason codes landed (commit 6549614). The runtime's fast single-record path
must give the same Explanation bit for bit (tests/runtime/test_explain_identity.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgefin_runtime.explain import (
    EXACT_NOISE,
    Explanation,
    Reason,
    _exact_table,
    _paired_table,
    _resolve,
    _sampled_table,
    _stratified_table,
)
from edgefin_runtime.manifest import NumericStep
from edgefin_runtime.results import Score


def spread(phi: list[float], total: float) -> list[float]:
    """Efficiency: what is left of ``total`` spread in proportion to |phi| (equally when all are 0)."""
    residual = total - sum(phi)
    weight = sum(abs(c) for c in phi)
    if weight > 0.0:
        scale = residual / weight
        return [c + scale * abs(c) for c in phi]
    return [c + residual / len(phi) for c in phi]


def attribute(how: str, k: int, v: np.ndarray, v0: float, table: Any) -> tuple[list[float], float]:
    if how == "paired":
        vals = [float(t) for t in v]
        p = vals[0]
        up = [vals[1 + j] - v0 for j in range(k)]
        down = [p - vals[1 + k + j] for j in range(k)]
        return spread([0.5 * (u + d) for u, d in zip(up, down)], p - v0), p
    full = np.concatenate([[v0], v])
    if how == "exact":
        p = float(v[-1]) if len(v) else v0
        if k == 0:
            return [], p
        phi = table @ full
        phi[np.abs(phi) < EXACT_NOISE] = 0.0
        return [float(c) for c in phi], p
    if how == "stratified":
        a, b, weights = table
        return spread([float(c) for c in (full[a] - full[b]) @ weights], float(v[0]) - v0), float(v[0])
    order = table  # sampled
    chains = v.reshape(len(order), k)
    before = np.concatenate([np.full((len(order), 1), v0), chains[:, :-1]], axis=1)
    acc = np.zeros(k)
    np.add.at(acc, order.ravel(), (chains - before).ravel())
    acc /= len(order)
    return [float(c) for c in acc], float(chains[0, -1])


def direction_of(value: Any, numeric: bool, ref: Any) -> str:
    if (
        value is None
        or (isinstance(value, str) and value.strip() == "")
        or (isinstance(value, float) and math.isnan(value))
    ):
        return "missing"
    if not numeric:
        return "category"
    try:
        return "higher" if float(value) > float(ref) else "lower"
    except (TypeError, ValueError):
        return "higher"


def as_text(v: Any) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def oracle_explain(
    pred: Any, record: Mapping[str, Any], method: str | None = None, max_reasons: int = 4
) -> Explanation:
    """What ``pred.explain(record, max_reasons=..., method=...)`` must return."""
    ex = pred.explainer()
    m = pred.info
    steps = m.preprocessing.steps
    fields = [s.field for s in steps]
    spans, pos = [], 0
    for s in steps:
        spans.append((pos, pos + s.width))
        pos += s.width
    row, flags = pred._pre.record(record)
    x = np.array(row, dtype=np.float32)
    ref = np.array(pred._pre.record(ex.spec.reference)[0], dtype=np.float32)
    v0 = float(pred.engine.run(ref[None, :])[0])
    active = [i for i, (a, b) in enumerate(spans) if bool((x[a:b] != ref[a:b]).any())]
    k = len(active)
    how = _resolve(method or ex.method, k)  # which method runs is the runtime's; the oracle checks its results
    if how == "exact":
        z, table = _exact_table(k)
        z = z[1:]
    elif how == "paired":
        z, table = _paired_table(k), None
    elif how == "stratified":
        z, table = _stratified_table(k)
    else:
        z, table = _sampled_table(k)
    player = {f: j for j, f in enumerate(active)}
    rows = []
    for coalition in z:
        r = ref.copy()
        for i, (a, b) in enumerate(spans):
            if i in player and coalition[player[i]]:
                r[a:b] = x[a:b]
        rows.append(r)
    v = pred.engine.run(np.array(rows, dtype=np.float32)).astype(np.float64) if rows else np.zeros(0)
    phi_active, p = attribute(how, k, v, v0, table)
    phi = [0.0] * len(fields)
    for i, c in zip(active, phi_active):
        phi[i] = c
    protected = set(ex.spec.protected)
    ranked = sorted(
        (i for i, c in enumerate(phi) if c > 0.0 and fields[i] not in protected), key=lambda i: (-phi[i], i)
    )
    reasons = []
    for i in ranked[: max(0, max_reasons)]:
        name, value, ref_value = fields[i], record.get(fields[i]), ex.spec.reference[fields[i]]
        d = direction_of(value, isinstance(steps[i], NumericStep), ref_value)
        text = ex.spec.texts[name][d].replace("{value}", as_text(value)).replace("{reference}", as_text(ref_value))
        reasons.append(Reason(name, d, phi[i], text))
    decision = p >= float(m.decision.threshold)
    score = Score(p, decision, m.schema.positive_label if decision else m.schema.negative_label, flags)
    return Explanation(score, tuple(reasons), v0, dict(zip(fields, phi)), how)
