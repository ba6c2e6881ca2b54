"""Credit-risk metrics on scores, built on scikit-learn and SciPy (nothing re-implemented).

Scores are probabilities of the positive (risk) class; a row is flagged positive when its score is
at or above the decision threshold (``score >= threshold``), everywhere in edgefin.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import ks_2samp
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from .errors import UsageError

ThresholdMethod = Literal["fixed", "max_ks", "rate"]


def _check(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {p.size}")
    if not np.isfinite(p).all():
        raise ValueError(
            f"{int((~np.isfinite(p)).sum())} scores are NaN or infinite; a model that outputs "
            f"non-finite scores cannot be evaluated"
        )
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError(f"labels must be 0/1, got {sorted(set(np.unique(y)))[:5]}")
    return y, p


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve (needs both classes)."""
    y, p = _check(y, p)
    return float(roc_auc_score(y, p))


def gini(y: ArrayLike, p: ArrayLike) -> float:
    """Gini coefficient as credit scorers use it: 2 * AUC - 1."""
    return 2.0 * auc(y, p) - 1.0


def ks(y: ArrayLike, p: ArrayLike) -> float:
    """Kolmogorov-Smirnov statistic: the largest gap between the score CDFs of the two classes."""
    y, p = _check(y, p)
    if y.min() == y.max():
        raise ValueError("KS needs rows of both classes")
    return float(ks_2samp(p[y == 1], p[y == 0]).statistic)


def brier(y: ArrayLike, p: ArrayLike) -> float:
    """Mean squared error of the probabilities (lower is better)."""
    y, p = _check(y, p)
    return float(brier_score_loss(y, p))


def logloss(y: ArrayLike, p: ArrayLike) -> float:
    """Binary cross-entropy of the probabilities (lower is better)."""
    y, p = _check(y, p)
    eps = 1e-15
    return float(log_loss(y, np.clip(p, eps, 1 - eps), labels=[0, 1]))


def at_threshold(y: ArrayLike, p: ArrayLike, threshold: float) -> dict[str, float | int]:
    """Accuracy, precision, recall, F1 and the flagged share when ``score >= threshold`` is positive."""
    y, p = _check(y, p)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "positive_rate": float(pred.mean()) if pred.size else 0.0,
        "tp": int(tp),
        "fp": int(fp),
        "tn": int(tn),
        "fn": int(fn),
    }


def evaluate(y: ArrayLike, p: ArrayLike, threshold: float) -> dict[str, float | int]:
    """Every metric edgefin reports for one split, in one flat dict."""
    y, p = _check(y, p)
    out: dict[str, float | int] = {"n": int(y.size), "positives": int(y.sum())}
    out["auc"] = auc(y, p)
    out["gini"] = 2.0 * out["auc"] - 1.0
    out["ks"] = ks(y, p)
    out["brier"] = brier(y, p)
    out["logloss"] = logloss(y, p)
    out["threshold"] = float(threshold)
    out.update(at_threshold(y, p, threshold))
    return out


# ---------------------------------------------------------------- thresholds
def parse_threshold(text: str | float) -> tuple[ThresholdMethod, float | None]:
    """'max-ks' -> ('max_ks', None); '0.35' -> ('fixed', 0.35); 'rate:0.2' -> ('rate', 0.2)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        raise UsageError(f"`threshold`: expected max-ks, a probability like 0.35, or rate:0.2; got {text!r}")
    t = text.strip().lower()
    if t in ("max-ks", "max_ks", "maxks", "ks"):
        return "max_ks", None
    method: ThresholdMethod = "fixed"
    if t.startswith("rate:"):
        method, t = "rate", t[5:]
    try:
        value = float(t)
    except ValueError:
        raise UsageError(
            f"`threshold`: expected max-ks, a probability like 0.35, or rate:0.2 (flag 20% of rows); got {text!r}"
        ) from None
    if method == "fixed" and not 0.0 <= value <= 1.0:
        raise UsageError(f"`threshold`: a fixed threshold is a probability in [0, 1], got {value}")
    if method == "rate" and not 0.0 < value < 1.0:
        raise UsageError(f"`threshold=rate:R`: R is the share of rows to flag, in (0, 1); got {value}")
    return method, value


def max_ks_threshold(y: ArrayLike, p: ArrayLike) -> float:
    """The score where TPR - FPR (the KS gap) is largest; flag rows with score >= it."""
    y, p = _check(y, p)
    fpr, tpr, thr = roc_curve(y, p)
    i = int(np.argmax(tpr - fpr))
    t = float(thr[i])
    return 1.0 if not math.isfinite(t) else min(max(t, 0.0), 1.0)


def rate_threshold(p: ArrayLike, rate: float) -> float:
    """The lowest threshold that flags at most ``rate`` of the rows (ties may flag a little less)."""
    p = np.sort(np.asarray(p, dtype=np.float64).ravel())[::-1]
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    k = int(math.floor(rate * p.size))
    if k <= 0:
        return float(np.nextafter(p[0], np.inf)) if p.size else 1.0
    t = p[k - 1]
    if k < p.size and p[k] == t:  # ties at the cut: move above them rather than over-flag
        t = float(np.nextafter(t, np.inf))
    return float(min(t, 1.0))


def choose_threshold(y: ArrayLike, p: ArrayLike, method: ThresholdMethod, value: float | None = None) -> float:
    """Threshold by method: 'fixed' (value), 'max_ks' (on these labels), 'rate' (flag a share)."""
    if method == "fixed":
        if value is None:
            raise ValueError("a fixed threshold needs a value")
        return float(value)
    if method == "max_ks":
        return max_ks_threshold(y, p)
    if method == "rate":
        if value is None:
            raise ValueError("a rate threshold needs a rate")
        return rate_threshold(p, value)
    raise ValueError(f"unknown threshold method {method!r}; expected fixed, max_ks or rate")


def flip_rate(a: ArrayLike, b: ArrayLike, threshold: float) -> float:
    """Share of rows whose decision (score >= threshold) differs between two score vectors."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"score vectors differ in length: {a.size} vs {b.size}")
    if a.size == 0:
        return 0.0
    return float(np.mean((a >= threshold) != (b >= threshold)))


# ---------------------------------------------------------------- confidence intervals
BOOTSTRAP_METRICS = ("auc", "gini", "ks", "brier", "logloss")


def _auc_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUC of each row of (B, n) resampled labels/scores: the Mann-Whitney statistic with average ranks
    for ties, which is what roc_auc_score computes (a test checks they agree), vectorised over rows."""
    from scipy.stats import rankdata

    r = rankdata(p, axis=1)
    n1 = y.sum(axis=1)
    n0 = y.shape[1] - n1
    return ((r * y).sum(axis=1) - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def _ks_row(y: np.ndarray, p: np.ndarray) -> float:
    """Two-sample KS statistic of one resample (the largest gap between the classes' empirical CDFs)."""
    a, b = np.sort(p[y == 1]), np.sort(p[y == 0])
    grid = np.concatenate([a, b])
    gap = np.searchsorted(a, grid, "right") / a.size - np.searchsorted(b, grid, "right") / b.size
    return float(np.max(np.abs(gap)))


def _boot_values(metric: str, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    if metric in ("auc", "gini"):
        a = _auc_rows(y, p)
        return a if metric == "auc" else 2.0 * a - 1.0
    if metric == "ks":
        return np.array([_ks_row(yr, pr) for yr, pr in zip(y, p)])
    if metric == "brier":
        return ((p - y) ** 2).mean(axis=1)
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return -(y * np.log(q) + (1 - y) * np.log(1 - q)).mean(axis=1)


def bootstrap_ci(
    y: ArrayLike,
    p: ArrayLike,
    metrics: tuple[str, ...] = BOOTSTRAP_METRICS,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float | int]]:
    """Percentile bootstrap confidence intervals of split-level metrics (rows resampled with replacement).

    Every metric uses the same resamples; a resample holding one class only is drawn again (AUC and KS
    need both). Deterministic for a seed. Returns ``{metric: {value, lo, hi}}`` (value: the metric on
    the split itself) plus a ``_meta`` entry (level, n_boot, seed, rows)."""
    y, p = _check(y, p)
    if y.min() == y.max():
        raise ValueError("a bootstrap of AUC/KS needs rows of both classes")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    funcs = {"auc": auc, "gini": gini, "ks": ks, "brier": brier, "logloss": logloss}
    unknown = [m for m in metrics if m not in funcs]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; expected some of {sorted(funcs)}")
    rng = np.random.default_rng(seed)
    n = y.size
    rows: list[np.ndarray] = []
    while len(rows) < n_boot:
        idx = rng.integers(0, n, (n_boot - len(rows), n))
        yb = y[idx]
        rows.extend(idx[(yb.min(axis=1) != yb.max(axis=1))])
    idx = np.asarray(rows[:n_boot])
    yb, pb = y[idx], p[idx]
    a = (1.0 - level) / 2.0
    out: dict[str, dict[str, float | int]] = {}
    for m in metrics:
        d = _boot_values(m, yb, pb)
        out[m] = {"value": funcs[m](y, p), "lo": float(np.quantile(d, a)), "hi": float(np.quantile(d, 1 - a))}
    out["_meta"] = {"level": level, "n_boot": n_boot, "seed": seed, "rows": int(n)}
    return out
