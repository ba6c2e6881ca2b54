"""Validating the device's reason codes, as a regulator asks of a post-hoc explanation.

- **Agreement**: the device's top-4 reasons (``Predictor.explain`` of each bundle, its own engine,
  the bundle's default method and ``method="exact"``) against the top-4 of exact Baseline-Shapley
  values of the float Keras model with the same reference applicant (:mod:`.shapley`), per record
  of a test sample; see :mod:`.ranking` for the four agreement figures (``set`` is the primary one).
- **Deletion test**: for each declined applicant (score >= threshold) with at least one reason,
  move the top reason's field to the reference applicant's value and score again; the explanation
  is faithful when the risk score falls. Reported as the share that fell (target >= 90%).
- **Quantisation**: every variant's top-4 against the float32 variant's (same method, same records),
  written into parity.json by convert.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .ranking import Reasons, agreement

Record = dict[str, Any]
ScoreRecords = Callable[[Sequence[Mapping[str, Any]]], np.ndarray]
FLOAT_REFERENCES = ("tflite-fp32", "onnx-fp32")
PARITY_ROWS = 200


@dataclass(frozen=True)
class DeviceExplanations:
    """One bundle's explanations of a list of records (schema-field order for ``contributions``)."""

    method: str  # what was asked: the bundle's default or a named method
    reasons: list[Reasons]
    contributions: np.ndarray  # (m, n fields)
    scores: np.ndarray  # (m,) probabilities
    reference_score: float
    methods_used: dict[str, int]  # method actually used -> records

    def additivity_gap(self) -> float:
        """max |sum(contributions) - (score - reference score)| over the records."""
        if not len(self.scores):
            return 0.0
        return float(np.max(np.abs(self.contributions.sum(axis=1) - (self.scores - self.reference_score))))


def device_explanations(
    predictor: Any, records: Sequence[Mapping[str, Any]], names: Sequence[str], *, k: int = 4, method: str | None = None
) -> DeviceExplanations:
    """``predictor.explain`` of every record (``method`` None: the bundle's default)."""
    reasons: list[Reasons] = []
    contrib = np.zeros((len(records), len(names)))
    scores = np.zeros(len(records))
    used: Counter[str] = Counter()
    ref = math.nan
    for i, rec in enumerate(records):
        e = predictor.explain(rec, max_reasons=k, method=method)
        reasons.append(tuple(r.field for r in e.reasons))
        contrib[i] = [e.contributions.get(n, 0.0) for n in names]
        scores[i] = e.score.probability
        ref = e.reference_score
        used[e.method] += 1
    return DeviceExplanations(method or "default", reasons, contrib, scores, float(ref), dict(used))


def deletion_test(
    score: ScoreRecords,
    records: Sequence[Mapping[str, Any]],
    scores: np.ndarray,
    reasons: Sequence[Reasons],
    reference: Mapping[str, Any],
    threshold: float,
) -> dict[str, Any]:
    """Declined records (score >= threshold) with a reason: does moving the top reason's field to the
    reference value lower the risk score? Counts, the share lowered and the share then approved."""
    idx = [i for i in range(len(records)) if scores[i] >= threshold and reasons[i]]
    declined = int(np.sum(np.asarray(scores) >= threshold))
    if not idx:
        return {"declined": declined, "with_reason": 0, "lowered": 0, "rate": None, "approved_after": None}
    moved = [{**records[i], reasons[i][0]: reference[reasons[i][0]]} for i in idx]
    after = np.asarray(score(moved), dtype=np.float64)
    before = np.asarray([scores[i] for i in idx], dtype=np.float64)
    lowered = int(np.sum(after < before))
    return {
        "declined": declined,
        "with_reason": len(idx),
        "lowered": lowered,
        "rate": lowered / len(idx),
        "approved_after": float(np.mean(after < threshold)),
        "mean_drop": float(np.mean(before - after)),
    }


def predictor_scorer(predictor: Any) -> ScoreRecords:
    """Score records one by one through a runtime Predictor (the device's path)."""

    def score(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.asarray([predictor.score(r).probability for r in records], dtype=np.float64)

    return score


def float_reference(names: Sequence[str]) -> str | None:
    """The variant whose explanations the others are compared with for quantisation."""
    return next((n for n in FLOAT_REFERENCES if n in names), None)


def quantisation_agreement(
    bundles: Mapping[str, str | Path],
    records: Sequence[Mapping[str, Any]],
    *,
    k: int = 4,
    method: str | None = None,
) -> dict[str, Any]:
    """Every bundle's top-k reasons against the float32 bundle's on the same records (parity.json's
    ``explain_top4``). Bundles without an explain section are listed as such, never guessed."""
    from edgefin_runtime import load
    from edgefin_runtime.errors import ManifestError

    ref_name = float_reference(list(bundles))
    out: dict[str, Any] = {"reference_variant": ref_name, "rows": len(records), "k": k, "method": method or "default"}
    if ref_name is None:
        out["error"] = f"no float32 variant ({' or '.join(FLOAT_REFERENCES)}) to compare with"
        return out
    got: dict[str, list[Reasons]] = {}
    variants: dict[str, Any] = {}
    for name, path in bundles.items():
        p = load(path)
        names = p.schema.names
        try:
            got[name] = device_explanations(p, records, names, k=k, method=method).reasons
        except ManifestError as exc:
            variants[name] = {"error": str(exc)}
    if ref_name not in got:
        out["error"] = f"{ref_name} has no explanations to compare with"
    else:
        for name, reasons in got.items():
            variants[name] = agreement(reasons, got[ref_name], k)
    out["variants"] = variants
    return out


def parity_top4(
    bundles: Mapping[str, str | Path],
    test: Mapping[str, Any],
    schema: Any,
    *,
    rows: int = PARITY_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """parity.json's ``explain_top4``: :func:`quantisation_agreement` on a seeded sample of the test split."""
    from edgefin_converters.export import row_record

    n = len(next(iter(test.values()))) if test else 0
    records = [row_record(test, schema, int(i)) for i in sample_rows(n, rows, seed)]
    return {**quantisation_agreement(bundles, records), "seed": seed}


def sample_rows(n: int, rows: int, seed: int) -> np.ndarray:
    """A seeded, sorted sample of at most ``rows`` of ``n`` row indices."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, rows), replace=False))


__all__ = [
    "DeviceExplanations",
    "deletion_test",
    "device_explanations",
    "float_reference",
    "predictor_scorer",
    "parity_top4",
    "quantisation_agreement",
    "sample_rows",
]
