"""Tabular augmentation of the raw TRAINING split: minority oversampling for small, imbalanced data.

The train step calls :func:`augment` on the training rows only, after the preprocessing has been
fitted on the un-augmented rows; validation and test rows never reach this module. Original rows
are returned unchanged (same values, same index) and synthetic rows are appended with negative
index labels (-1, -2, ...), which no file row has, so they can always be told apart.

Methods
* ``smote``: SMOTE-NC (imbalanced-learn) for mixed numeric/categorical rows, plain SMOTE when there
  are no categorical features. Neighbours are searched on standardised numerics (so Income does not
  drown Age) with missing numerics imputed by the training median *for the search only*; each
  numeric field's "is missing" flag and each categorical (missing = its own category) are nominal
  features, so a synthetic row is missing where most of its neighbours are, as in the real data.
* ``jitter``: copies of randomly drawn minority rows with Gaussian noise on every numeric field,
  ``noise`` x that field's training standard deviation; categoricals and missingness are copied.
  Only the copies are perturbed: the real rows stay exact, and the copies balance the classes like
  SMOTE without interpolating between possibly distant neighbours.
* ``smote+jitter``: SMOTE-NC rows, then jittered.
Synthetic numerics are clipped to the training range and rounded where the field only holds whole
numbers (ages, terms). Classes are balanced to ``ratio`` (minority / majority, default 1.0).
Everything is a pure function of the inputs and ``seed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from edgefin_runtime.manifest import Schema
from edgefin_runtime.plan import canonical_category

from ..errors import DataError, UsageError

METHODS = ("none", "smote", "jitter", "smote+jitter")
MISSING = "__missing__"


def augment(
    frame: pd.DataFrame,
    y: np.ndarray,
    *,
    method: str,
    schema: Schema,
    seed: int,
    ratio: float = 1.0,
    noise: float = 0.1,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Return (training rows + synthetic minority rows, their labels); never modifies its inputs."""
    if method not in METHODS:
        raise UsageError(f"`augment`: expected one of {', '.join(METHODS)}, got {method!r}")
    if not 0.0 < ratio <= 1.0:
        raise UsageError(f"augmentation ratio (minority / majority after oversampling) must be in (0, 1], got {ratio}")
    if noise <= 0:
        raise UsageError(f"jitter noise (share of each feature's standard deviation) must be > 0, got {noise}")
    y = np.asarray(y).reshape(-1)
    if len(y) != len(frame):
        raise DataError(f"augment: {len(frame)} rows but {len(y)} labels")
    if method == "none":
        return frame.copy(), y.copy()
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) != 2:
        raise DataError(f"augment: the training split needs rows of both classes, got classes {classes.tolist()}")
    minority = classes[int(np.argmin(counts))]
    n_min, n_maj = int(counts.min()), int(counts.max())
    n_new = int(round(ratio * n_maj)) - n_min
    if n_new <= 0:
        return frame.copy(), y.copy()
    missing_cols = [f.name for f in schema.fields if f.name not in frame.columns]
    if missing_cols:
        raise DataError(f"augment: the training rows lack the schema's fields {missing_cols}")

    enc = _Encoding.fit(frame, schema)
    rng = np.random.default_rng(seed)
    if method in ("smote", "smote+jitter"):
        new = enc.smote(frame, y, minority, n_min + n_new, seed)
    else:
        pick = rng.choice(np.flatnonzero(y == minority), size=n_new, replace=True)
        new = frame.iloc[pick][enc.names].reset_index(drop=True)
    if method in ("jitter", "smote+jitter"):
        new = enc.jitter(new, rng, noise)
    new = enc.finish(new, frame, target=schema.target, target_value=_target_value(frame, y, minority, schema))
    new.index = pd.Index(
        -np.arange(1, len(new) + 1), dtype=frame.index.dtype if frame.index.dtype.kind == "i" else None
    )
    out = pd.concat([frame, new[frame.columns]], axis=0)
    return out, np.concatenate([y, np.full(len(new), minority, dtype=y.dtype)])


def _target_value(frame: pd.DataFrame, y: np.ndarray, minority: np.generic, schema: Schema) -> object:
    """The raw target value of the minority class as the frame spells it (e.g. 'bad')."""
    if schema.target in frame.columns:
        vals = frame.loc[y == minority, schema.target].dropna()
        if len(vals):
            return vals.iloc[0]
    return None


class _Encoding:
    """Per-field facts fitted on the training rows: scale for distances and noise, range, integrality."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.numeric: list[str] = []
        self.categorical: list[str] = []
        self.stats: dict[str, dict[str, float | bool]] = {}
        self.originals: dict[str, dict[str, Any]] = {}

    @classmethod
    def fit(cls, frame: pd.DataFrame, schema: Schema) -> _Encoding:
        e = cls()
        for f in schema.fields:
            e.names.append(f.name)
            if f.kind == "numeric":
                v = pd.to_numeric(frame[f.name], errors="coerce").to_numpy(dtype=np.float64)
                seen = v[~np.isnan(v)]
                if seen.size == 0:
                    seen = np.zeros(1)
                std = float(seen.std())
                e.numeric.append(f.name)
                e.stats[f.name] = {
                    "median": float(np.median(seen)),
                    "mean": float(seen.mean()),
                    "std": std if std > 1e-12 else 1.0,
                    "min": float(seen.min()),
                    "max": float(seen.max()),
                    "integral": bool(np.all(np.mod(seen, 1) == 0)),
                    "has_missing": bool(np.isnan(v).any()),
                }
            else:
                e.categorical.append(f.name)
                first: dict[str, Any] = {}
                for raw in frame[f.name]:
                    c = _canon(raw)
                    if c is not None and c not in first:
                        first[c] = raw
                e.originals[f.name] = first
        return e

    # ------------------------------------------------------------ SMOTE-NC
    def smote(
        self, frame: pd.DataFrame, y: np.ndarray, minority: np.generic, target_count: int, seed: int
    ) -> pd.DataFrame:
        from imblearn.over_sampling import SMOTE, SMOTENC

        X = pd.DataFrame(index=range(len(frame)))
        nominal: list[str] = []
        for name in self.numeric:
            s = self.stats[name]
            v = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
            miss = np.isnan(v)
            X[name] = (np.where(miss, s["median"], v) - s["mean"]) / s["std"]
            if s["has_missing"]:
                X[f"{name}__isna"] = np.where(miss, "1", "0").astype(object)
                nominal.append(f"{name}__isna")
        for name in self.categorical:
            X[name] = np.array([_canon(v) or MISSING for v in frame[name]], dtype=object)
            nominal.append(name)
        n_min = int((y == minority).sum())
        if n_min < 2:
            raise DataError(
                f"augment smote: the minority class has {n_min} training row(s); SMOTE needs at least 2 "
                f"(use `augment=jitter`)"
            )
        k = min(5, n_min - 1)
        strategy = {minority: int(target_count)}
        if not self.numeric:
            raise DataError("augment smote: SMOTE-NC needs at least one numeric feature; use `augment=jitter`")
        if nominal:
            sampler: Any = SMOTENC(
                categorical_features=nominal, sampling_strategy=strategy, random_state=seed, k_neighbors=k
            )
        else:
            sampler = SMOTE(sampling_strategy=strategy, random_state=seed, k_neighbors=k)
        X_res, _ = sampler.fit_resample(X, y)
        syn = pd.DataFrame(X_res).iloc[len(X) :].reset_index(drop=True)
        out = pd.DataFrame(index=range(len(syn)))
        for name in self.names:
            if name in self.numeric:
                s = self.stats[name]
                v = syn[name].to_numpy(dtype=np.float64) * s["std"] + s["mean"]
                if s["has_missing"]:
                    v = np.where(syn[f"{name}__isna"].astype(str).to_numpy() == "1", np.nan, v)
                out[name] = v
            else:
                out[name] = [None if c == MISSING else c for c in syn[name]]
        return out

    # ------------------------------------------------------------ jitter
    def jitter(self, rows: pd.DataFrame, rng: np.random.Generator, noise: float) -> pd.DataFrame:
        rows = rows.copy()
        for name in self.numeric:
            v = pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=np.float64)
            rows[name] = v + rng.normal(0.0, noise * float(self.stats[name]["std"]), size=len(v))  # NaN stays NaN
        return rows

    # ------------------------------------------------------------ back to the frame's types
    def finish(self, rows: pd.DataFrame, frame: pd.DataFrame, *, target: str, target_value: object) -> pd.DataFrame:
        """Synthetic rows with the frame's columns and dtypes: the target says minority, other
        non-feature columns (dropped ones, ids) are missing."""
        out = pd.DataFrame(index=range(len(rows)))
        for col in frame.columns:
            if col in self.numeric:
                s = self.stats[col]
                v = np.clip(pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=np.float64), s["min"], s["max"])
                if s["integral"]:
                    v = np.round(v)
                if frame[col].dtype.kind in "iu" and not np.isnan(v).any():
                    out[col] = v.astype(frame[col].dtype)
                else:
                    out[col] = pd.Series(v).astype(frame[col].dtype if frame[col].dtype.kind == "f" else "float64")
            elif col in self.categorical:
                orig = self.originals[col]
                vals = [None if (k := _canon(c)) is None else orig.get(k, c) for c in rows[col]]
                out[col] = _typed(vals, frame[col].dtype)
            elif col == target and target_value is not None:
                out[col] = _typed([target_value] * len(rows), frame[col].dtype)
            else:
                out[col] = _typed([None] * len(rows), frame[col].dtype)
        return out


def _typed(values: list[Any], dtype: Any) -> pd.Series:
    """A column in the frame's own dtype (so appending rows never changes the real rows' types)."""
    try:
        return pd.Series(values, dtype=dtype)
    except (TypeError, ValueError):
        return pd.Series(values, dtype=object)


def _canon(v: Any) -> str | None:
    try:
        return canonical_category(v)
    except TypeError:
        return str(v)
