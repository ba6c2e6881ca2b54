"""What each variant gives up: quality on the test split (through edgefin.metrics), flip rate and
score deltas against the source Keras model, the speed-up ratios over Keras, and the curves
(ROC, calibration) the report draws."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import metrics as M

ROC_POINTS = 120
CALIBRATION_BINS = 10


def threshold_of(row: Mapping[str, object], metrics_json: object) -> float:
    """The decision threshold: the bundle's own, else the run's metrics.json, else 0.5."""
    t = row.get("threshold")
    if isinstance(t, (int, float)):
        return float(t)
    if isinstance(metrics_json, Mapping):
        t = metrics_json.get("threshold")
        if isinstance(t, Mapping):
            t = t.get("value")
        if isinstance(t, (int, float)):
            return float(t)
    return 0.5


def _scored(labels: list[int], scores: list[float | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mask = np.array([s is not None for s in scores], dtype=bool)
    y = np.asarray(labels, dtype=int)[mask]
    p = np.asarray([s for s in scores if s is not None], dtype=np.float64)
    return y, p, mask


def variant_quality(
    labels: list[int], scores: list[float | None], dense: list[float] | None, threshold: float
) -> dict[str, Any]:
    """AUC, Gini, KS, Brier, log loss, threshold metrics; flip rate and |delta p| against the dense model."""
    y, p, mask = _scored(labels, scores)
    out: dict[str, Any] = {"scored": int(mask.sum()), "rejected": int((~mask).sum())}
    if y.size == 0 or y.min() == y.max():
        out["error"] = "the test split needs scored rows of both classes to compute AUC"
        return out
    out.update(M.evaluate(y, p, threshold))
    if dense is not None and len(dense) == len(labels):
        d = np.asarray(dense, dtype=np.float64)[mask]
        out["flip_rate_vs_dense"] = M.flip_rate(p, d, threshold)
        delta = np.abs(p - d)
        out["max_abs_delta_vs_dense"] = float(delta.max())
        out["mean_abs_delta_vs_dense"] = float(delta.mean())
    return out


def source_summary(labels: list[int], dense: list[float] | None, metrics_json: object) -> dict[str, Any]:
    """The dense Keras model's figures on the same test rows (measured here, else from metrics.json)."""
    threshold = threshold_of({}, metrics_json)
    if dense is not None and len(dense) == len(labels):
        ev = M.evaluate(labels, dense, threshold)
        return {"model": "dense (Keras)", "measured": True, **ev}
    test = metrics_json.get("test") if isinstance(metrics_json, Mapping) else None
    if isinstance(test, Mapping) and isinstance(test.get("auc"), (int, float)):
        return {
            "model": "dense (Keras)",
            "measured": False,
            "threshold": threshold,
            **{k: test[k] for k in ("auc", "gini", "ks", "brier", "logloss", "n") if k in test},
        }
    return {"model": "dense (Keras)", "measured": False, "threshold": threshold}


def parity_for(parity_json: object, name: str) -> dict[str, Any] | None:
    """This variant's entry of bundles/parity.json, whatever its exact nesting."""
    if parity_json is None:
        return None
    cands: list[Any] = []
    if isinstance(parity_json, Mapping):
        v = parity_json.get("variants", parity_json)
        if isinstance(v, Mapping):
            cands.append(v.get(name))
        elif isinstance(v, list):
            cands.extend(e for e in v if isinstance(e, Mapping) and name in (e.get("variant"), e.get("name")))
    elif isinstance(parity_json, list):
        cands.extend(e for e in parity_json if isinstance(e, Mapping) and name in (e.get("variant"), e.get("name")))
    for c in cands:
        if isinstance(c, Mapping):
            return dict(c)
    return None


def _p50(d: Any, *keys: str) -> float | None:
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return float(d) if isinstance(d, (int, float)) else None


def ratios(row: Mapping[str, object], keras: Mapping[str, object]) -> dict[str, float]:
    """How many times faster the runtime is than Keras, and what the runtime costs over the bare engine."""
    rt = _p50(row, "latency", "runtime", "p50_us")
    eng = _p50(row, "latency", "engine", "p50_us")
    kc = _p50(keras, "latency", "keras_call", "p50_us")
    kp = _p50(keras, "latency", "keras_predict", "p50_us")
    out: dict[str, float] = {}
    if rt:
        if kc:
            out["keras_call_over_runtime"] = kc / rt
        if kp:
            out["keras_predict_over_runtime"] = kp / rt
        if eng:
            out["runtime_over_engine"] = rt / eng
    return out


def roc_points(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    if fpr.size > ROC_POINTS:  # keep the shape: sample evenly along the curve, keep both ends
        idx = np.unique(np.linspace(0, fpr.size - 1, ROC_POINTS).round().astype(int))
        fpr, tpr = fpr[idx], tpr[idx]
    return {"fpr": [round(float(v), 5) for v in fpr], "tpr": [round(float(v), 5) for v in tpr]}


def calibration(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict[str, float]]:
    """Reliability in equal-width probability bins: mean predicted vs observed positive rate."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            out.append(
                {
                    "lo": float(edges[b]),
                    "hi": float(edges[b + 1]),
                    "n": int(m.sum()),
                    "mean_predicted": float(p[m].mean()),
                    "observed_rate": float(y[m].mean()),
                }
            )
    return out


def curves(rows: list[dict[str, Any]], labels: list[int], dense: list[float] | None) -> dict[str, Any]:
    """ROC and calibration per measured variant (and the dense model); drops the raw scores from rows."""
    out: dict[str, Any] = {}
    ys = np.asarray(labels, dtype=int)
    if dense is not None and len(dense) == len(labels) and ys.min() != ys.max():
        d = np.asarray(dense, dtype=np.float64)
        out["dense (Keras)"] = {"roc": roc_points(ys, d), "calibration": calibration(ys, d)}
    for row in rows:
        scores = row.pop("_scores", None)
        if scores is None:
            continue
        y, p, _ = _scored(labels, scores)
        if y.size and y.min() != y.max():
            out[row["name"]] = {"roc": roc_points(y, p), "calibration": calibration(y, p)}
    return out
