"""Parity: does a deployable variant score like the Keras model it was converted from?

Both sides see the same held-out rows: the source model gets the runtime-preprocessed matrix, the
variant is scored through the runtime itself (bundle -> ``edgefin_runtime.load`` -> Predictor), so
what is measured here is exactly what a device will compute. Every variant is compared and every
failure is collected (as Hugging Face Optimum validates exports); the caller decides afterwards.

Gates (defaults; ``Gates`` makes them configurable):

* ``exact`` (float32 variants): max |delta p| <= 1e-5;
* ``fp16``: max |delta p| <= 1e-3;
* ``quantized`` (full int8, and dynamic-range int8 whose on-the-fly activation rounding moves
  scores by up to ~1e-2 on real models, so an element-wise bound would be arbitrary): the AUC may
  drop by at most 0.005 and at most 1% of decisions may flip at the run's threshold.

A score is a positive decision when ``p >= threshold`` (as everywhere in edgefin).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

Evaluate = Callable[[np.ndarray, np.ndarray, float], Mapping[str, Any]]


@dataclass(frozen=True)
class Gates:
    max_auc_drop: float = 0.005
    max_flip_rate: float = 0.01
    exact_max_delta: float = 1e-5
    fp16_max_delta: float = 1e-3

    def for_kind(self, kind: str) -> dict[str, Any]:
        """The thresholds that apply to a gate kind, as recorded in the manifest and parity.json."""
        if kind == "exact":
            return {"kind": kind, "max_abs_delta": self.exact_max_delta}
        if kind == "fp16":
            return {"kind": kind, "max_abs_delta": self.fp16_max_delta}
        if kind == "quantized":
            return {"kind": kind, "max_auc_drop": self.max_auc_drop, "max_flip_rate": self.max_flip_rate}
        raise ValueError(f"unknown gate kind {kind!r}; expected exact, fp16 or quantized")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Parity:
    """One variant against its source model on the same rows."""

    variant: str
    source_stage: str
    n: int
    threshold: float
    max_abs_delta: float | None
    mean_abs_delta: float | None
    auc_source: float | None
    auc_variant: float | None
    auc_delta: float | None
    flip_rate: float
    flips: int
    gate: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    excluded_rows: int = 0
    #: the same comparison for the one-record path (``Predictor.score``), which a kiosk uses; an engine
    #: whose scores depend on the batch (ORT dynamic quantisation) differs here from the batch path
    single_row: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC, or None when the rows hold only one class (then AUC is undefined)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(int)
    if y.size == 0 or y.min() == y.max():
        return None
    return float(roc_auc_score(y, np.asarray(p, dtype=np.float64)))


def basic_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """Metrics of a variant on held-out rows, when the caller supplies no ``evaluate`` of its own."""
    from sklearn.metrics import brier_score_loss, log_loss

    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    pred = p >= threshold
    a = auc(y, p)
    out: dict[str, Any] = {
        "n": int(y.size),
        "positives": int(y.sum()),
        "auc": a,
        "gini": None if a is None else 2 * a - 1,
        "threshold": float(threshold),
        "positive_rate": float(pred.mean()) if y.size else 0.0,
    }
    if y.size:
        out["brier"] = float(brier_score_loss(y, p))
        out["logloss"] = float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))
        tp = int((pred & (y == 1)).sum())
        out["precision"] = tp / int(pred.sum()) if pred.any() else 0.0
        out["recall"] = tp / int(y.sum()) if y.any() else 0.0
    return out


def compare(
    variant: str,
    gate_kind: str,
    source_stage: str,
    reference: np.ndarray,
    scores: np.ndarray,
    y: np.ndarray,
    threshold: float,
    gates: Gates | None = None,
    *,
    excluded_rows: int = 0,
    single: np.ndarray | None = None,
) -> Parity:
    """Compare a variant's scores with its source model's on the same rows and apply its gate.

    ``scores`` come from the batch path; ``single`` (optional) from scoring the same rows one record
    at a time. Both paths are gated; failures of the single-row path say so.
    """
    par = _compare(variant, gate_kind, source_stage, reference, scores, y, threshold, gates, excluded_rows)
    if single is not None and par.n:
        one = _compare(variant, gate_kind, source_stage, reference, single, y, threshold, gates, excluded_rows)
        batch = np.asarray(scores, dtype=np.float64).ravel()
        vs_batch = np.abs(np.asarray(single, dtype=np.float64).ravel() - batch)
        par.single_row = {
            "max_abs_delta": one.max_abs_delta,
            "mean_abs_delta": one.mean_abs_delta,
            "auc_variant": one.auc_variant,
            "auc_delta": one.auc_delta,
            "flip_rate": one.flip_rate,
            "flips": one.flips,
            "max_abs_delta_vs_batch": float(np.nanmax(vs_batch)) if vs_batch.size else 0.0,
        }
        par.failures.extend(f"{f} (single-record path)" for f in one.failures if f not in par.failures)
    return par


def _compare(
    variant: str,
    gate_kind: str,
    source_stage: str,
    reference: np.ndarray,
    scores: np.ndarray,
    y: np.ndarray,
    threshold: float,
    gates: Gates | None,
    excluded_rows: int,
) -> Parity:
    gates = gates or Gates()
    gate = gates.for_kind(gate_kind)
    ref = np.asarray(reference, dtype=np.float64).ravel()
    got = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(y).ravel()
    failures: list[str] = []
    if ref.shape != got.shape or ref.shape != y.shape:
        raise ValueError(
            f"{variant}: reference ({ref.size}), variant ({got.size}) and labels ({y.size}) differ in length"
        )
    n = int(ref.size)
    if n == 0:
        failures.append(f"{variant}: no held-out rows could be scored, so parity cannot be shown")
        return Parity(
            variant, source_stage, 0, threshold, None, None, None, None, None, 0.0, 0, gate, failures, excluded_rows
        )
    finite = np.isfinite(got)
    if not finite.all():
        failures.append(f"{variant}: {int((~finite).sum())} of {n} scores are NaN or infinite")
        got = np.where(finite, got, 0.5)
    delta = np.abs(got - ref)
    flips_mask = (ref >= threshold) != (got >= threshold)
    a_src, a_var = auc(y, ref), auc(y, got)
    a_delta = None if a_src is None or a_var is None else a_var - a_src
    par = Parity(
        variant=variant,
        source_stage=source_stage,
        n=n,
        threshold=float(threshold),
        max_abs_delta=float(delta.max()),
        mean_abs_delta=float(delta.mean()),
        auc_source=a_src,
        auc_variant=a_var,
        auc_delta=a_delta,
        flip_rate=float(flips_mask.mean()),
        flips=int(flips_mask.sum()),
        gate=gate,
        failures=failures,
        excluded_rows=excluded_rows,
    )
    if "max_abs_delta" in gate and par.max_abs_delta > gate["max_abs_delta"]:
        failures.append(
            f"{variant}: max |delta p| {par.max_abs_delta:.3g} exceeds {gate['max_abs_delta']:g} "
            f"(mean {par.mean_abs_delta:.3g}, {n} rows) against the {source_stage} Keras model"
        )
    if "max_auc_drop" in gate and a_delta is not None and -a_delta > gate["max_auc_drop"]:
        failures.append(
            f"{variant}: AUC {a_var:.4f} is {-a_delta:.4f} below the {source_stage} Keras model's "
            f"{a_src:.4f} (at most {gate['max_auc_drop']:g} allowed)"
        )
    if "max_flip_rate" in gate and par.flip_rate > gate["max_flip_rate"]:
        failures.append(
            f"{variant}: {par.flips} of {n} decisions ({par.flip_rate:.2%}) flip at threshold "
            f"{threshold:.4g} against the {source_stage} Keras model (at most "
            f"{gate['max_flip_rate']:.2%} allowed)"
        )
    return par


__all__ = ["Gates", "Parity", "compare", "auc", "basic_metrics", "Evaluate"]
