"""The data-quality report written for every training run: facts plus warnings, never a crash.

It looks for what silently ruins a credit model: a column that leaks the target (one feature
alone separates the classes, AUC > 0.99), identifier columns the model would memorise, constant
columns, heavy missingness, duplicated rows and a rare positive class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from edgefin_runtime.plan import canonical_category

LEAK_AUC = 0.99
HIGH_MISSING = 0.5
ID_UNIQUE_SHARE = 0.95
RARE_POSITIVE = 0.05
_MAX_LIST = 20


def quality_report(
    frame: pd.DataFrame,
    y: np.ndarray,
    kinds: Mapping[str, str],
    *,
    target: str,
    dropped: list[str] | None = None,
    rows_without_target: int = 0,
    splits: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Report on the rows given (the training data as read, target rows only) and their 0/1 target."""
    y = np.asarray(y).astype(int)
    n = len(frame)
    warnings: list[str] = []
    pos = int(y.sum())
    balance = {"positive": pos, "negative": n - pos, "positive_share": pos / n if n else 0.0}
    if n and 0 < balance["positive_share"] < RARE_POSITIVE:
        warnings.append(
            f"the positive class is rare ({pos} of {n} rows, {balance['positive_share']:.1%}); "
            f"AUC and KS stay meaningful, but accuracy does not; consider `augment=smote`"
        )
    if rows_without_target:
        warnings.append(f"{rows_without_target} rows have no '{target}' value and were left out")

    features = list(kinds)
    missing = {c: float(frame[c].isna().mean()) for c in features}
    for c, share in missing.items():
        if share >= HIGH_MISSING:
            warnings.append(f"column '{c}' is missing in {share:.0%} of rows; consider `drop={c}`")

    constant = [c for c in features if frame[c].nunique(dropna=False) <= 1]
    for c in constant:
        warnings.append(f"column '{c}' has a single value in every row; it carries no signal (`drop={c}`)")

    identifiers = [c for c in features if c not in constant and _looks_like_id(frame[c], kinds[c])]
    for c in identifiers:
        warnings.append(
            f"column '{c}' looks like an identifier (almost every value is unique); "
            f"a model would memorise it: `drop={c}`"
        )

    leakage: dict[str, float] = {}
    for c in features:
        if c in constant:
            continue
        auc = single_feature_auc(frame[c], y, kinds[c])
        if auc is not None and auc > LEAK_AUC:
            leakage[c] = round(auc, 6)
            warnings.append(
                f"column '{c}' alone predicts '{target}' with AUC {auc:.4f}; it probably leaks "
                f"the outcome (recorded after the decision) - check it, or `drop={c}`"
            )

    cols = features + [target] if target in frame.columns else features
    dup = int(frame.duplicated(subset=cols, keep="first").sum())
    conflicting = 0
    if dup < n and frame.duplicated(subset=features).any():
        labels = pd.Series(y, index=frame.index)
        classes = labels.groupby([frame[c] for c in features], dropna=False, sort=False).transform("nunique")
        conflicting = int((classes > 1).sum())
    if dup:
        warnings.append(
            f"{dup} rows are exact duplicates of earlier rows ({dup / n:.1%}); duplicates can leak "
            f"between train and test splits"
        )
    if conflicting:
        warnings.append(
            f"{conflicting} rows share all feature values with a row of the other class; no model can separate them"
        )

    return {
        "rows": n,
        "columns": len(features),
        "target": target,
        "class_balance": balance,
        "splits": dict(splits or {}),
        "dropped_columns": list(dropped or []),
        "rows_without_target": int(rows_without_target),
        "kinds": dict(kinds),
        "missing_share": missing,
        "constant_columns": constant,
        "identifier_columns": identifiers,
        "leakage": leakage,
        "duplicated_rows": dup,
        "conflicting_rows": conflicting,
        "warnings": warnings,
    }


def single_feature_auc(col: pd.Series, y: np.ndarray, kind: str) -> float | None:
    """How well one column alone ranks the classes (max(AUC, 1 - AUC)); None when it cannot say.

    Numeric columns rank by value (missing as its own lowest value); categorical columns by each
    category's positive rate, so a category that appears only with one class counts as leaking.
    """
    if len(np.unique(y)) < 2:
        return None
    if kind == "numeric":
        vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(vals).all():
            return None
        lowest = np.nanmin(vals) - 1.0 if np.isfinite(np.nanmin(vals)) else 0.0
        score = np.where(np.isnan(vals), lowest, vals)
    else:
        keys = pd.Series([_cat_key(v) for v in col.tolist()])
        if keys.nunique() > max(100, len(keys) // 2):
            return None  # identifier-like; reported separately, target rates would overfit trivially
        rate = pd.Series(y).groupby(keys).transform("mean")
        score = rate.to_numpy(dtype=np.float64)
    try:
        auc = float(roc_auc_score(y, score))
    except ValueError:
        return None
    return max(auc, 1.0 - auc)


def _cat_key(v: Any) -> str:
    try:
        c = canonical_category(v)
    except TypeError:
        c = repr(v)
    return "\x00missing" if c is None else c


def _looks_like_id(col: pd.Series, kind: str) -> bool:
    values = col.dropna()
    if len(values) < 20:
        return False
    share = values.nunique() / len(values)
    if kind == "categorical":
        return share >= ID_UNIQUE_SHARE
    # integer columns counting through the rows (row numbers, account numbers)
    arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    integral = np.isfinite(arr).all() and np.all(arr == np.round(arr))
    return bool(integral and share >= 0.999)
