"""Synthetic scoring data of any size from a run's schema and training statistics (``edgefin synth``).

The generator keeps statistics, never rows: per numeric field 1,001 quantiles of the training split
(sampled by inverse-CDF interpolation between them, rounded when the field holds whole numbers),
per categorical field the category frequencies, per field the missing share (fields that allow
missing values only), and the correlations of the fields' normal scores: a Gaussian copula, so
pairs like income and amount move together as in training. Rows are drawn in chunks and written as
Parquet part files, so 10M rows need only one chunk in memory.

A share of bad rows (``bad_share``) is spread over the kinds that can live in a typed Parquet column:

* ``missing_required`` - a field that does not allow missing values is null (rejected: MissingFieldError);
* ``non_finite`` - a numeric field is +-inf (rejected: NonFiniteError);
* ``out_of_range`` - a numeric field 10x beyond its training range (scored and flagged out_of_range;
  rejected only when the standardised value is beyond the runtime's limit);
* ``unseen_category`` - a categorical field holds a category never seen in training (lenient policy:
  scored and flagged; strict policy: rejected with CategoryError).

A value of the wrong type (a word in a numeric field) cannot exist in one row of a typed Parquet
column, so it is not generated; the runtime rejects such rows when a column is read as text.
Every row has an ``id`` (0..rows-1). ``_synth.json`` records the counts per bad kind.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from edgefin_runtime.manifest import Schema

from .errors import DataError, UsageError
from .reporter import Reporter, Silent
from .rundir import RunDir

QUANTILES = 1001
BAD_KINDS = ("missing_required", "non_finite", "out_of_range", "unseen_category")
DEFAULT_CHUNK = 500_000
DEFAULT_PART_ROWS = 1_000_000


@dataclass(frozen=True)
class FieldStats:
    """What the generator keeps of one field: no row, only marginals."""

    name: str
    kind: str
    missing_share: float
    allow_missing: bool
    quantiles: tuple[float, ...] = ()
    integral: bool = False
    lo: float | None = None
    hi: float | None = None
    categories: tuple[str, ...] = ()
    frequencies: tuple[float, ...] = ()


@dataclass(frozen=True)
class SynthModel:
    """Marginals per field and the copula's correlation matrix (fields in schema order)."""

    fields: tuple[FieldStats, ...]
    correlation: tuple[tuple[float, ...], ...]


@dataclass
class SynthResult:
    out: str
    rows: int
    parts: int
    bad_rows: int
    bad_by_kind: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- fitting
def fit(schema: Schema, frame: pd.DataFrame) -> SynthModel:
    """Marginals and normal-score correlations of the schema's fields in ``frame`` (training rows)."""
    stats: list[FieldStats] = []
    scores: list[np.ndarray] = []
    n = len(frame)
    if n < 2:
        raise DataError(f"the training split has {n} row(s); synth needs at least 2 to fit marginals")
    for f in schema.fields:
        col = frame[f.name] if f.name in frame.columns else pd.Series([None] * n)
        present = col.notna().to_numpy()
        share = float(f.missing_share) if f.allow_missing else 0.0
        if f.kind == "numeric":
            vals = pd.to_numeric(col[present], errors="coerce").to_numpy(dtype=np.float64)
            vals = vals[np.isfinite(vals)]
            if not len(vals):
                raise DataError(f"field '{f.name}': no finite training values to fit")
            q = np.quantile(vals, np.linspace(0.0, 1.0, QUANTILES))
            integral = bool(np.all(vals == np.round(vals)))
            stats.append(
                FieldStats(f.name, "numeric", share, f.allow_missing, tuple(q.tolist()), integral, f.min, f.max)
            )
            ranks = _ranks(pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64))
        else:
            cats = [str(c) for c in f.categories]
            counts = col[present].astype(str).value_counts()
            freq = np.array([float(counts.get(c, 0)) for c in cats]) + 0.5  # every category stays possible
            freq /= freq.sum()
            stats.append(
                FieldStats(
                    f.name, "categorical", share, f.allow_missing, categories=tuple(cats), frequencies=tuple(freq)
                )
            )
            ranks = _category_ranks(col, cats, freq)
        scores.append(_ndtri(ranks))
    # pairwise over the rows where both fields have a value: missing values carry no rank
    corr = pd.DataFrame(np.column_stack(scores)).corr(min_periods=2).to_numpy()
    corr = np.nan_to_num(corr, nan=0.0)
    np.fill_diagonal(corr, 1.0)
    corr = _nearest_pd(corr)
    return SynthModel(tuple(stats), tuple(tuple(r) for r in corr.tolist()))


def _ranks(vals: np.ndarray) -> np.ndarray:
    """Mid-ranks in (0, 1); NaN where the value is missing."""
    out = np.full(len(vals), np.nan)
    ok = np.isfinite(vals)
    if ok.sum() > 1:
        out[ok] = (pd.Series(vals[ok]).rank(method="average").to_numpy() - 0.5) / ok.sum()
    return out


def _category_ranks(col: pd.Series, cats: Sequence[str], freq: np.ndarray) -> np.ndarray:
    """Each category's mid-point on the cumulative frequency scale (the copula's latent position)."""
    upper = np.cumsum(freq)
    mid = dict(zip(cats, (upper - freq / 2).tolist()))
    return np.array([mid.get(str(v), np.nan) if v is not None and v == v else np.nan for v in col.tolist()])


def _ndtri(u: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return np.asarray(ndtri(np.clip(u, 1e-6, 1 - 1e-6)), dtype=np.float64)  # NaN stays NaN


def _nearest_pd(c: np.ndarray) -> np.ndarray:
    """Clip negative eigenvalues so the Cholesky factor exists (pairwise estimates may not be PSD)."""
    w, v = np.linalg.eigh(c)
    w = np.clip(w, 1e-6, None)
    c = (v * w) @ v.T
    d = np.sqrt(np.diag(c))
    return np.asarray(c / np.outer(d, d), dtype=np.float64)


# ---------------------------------------------------------------- drawing
def draw(model: SynthModel, n: int, rng: np.random.Generator, start: int = 0) -> pd.DataFrame:
    """``n`` good rows (ids ``start..start+n-1``) from the copula and the marginals."""
    from scipy.special import ndtr

    chol = np.linalg.cholesky(np.array(model.correlation))
    z = rng.standard_normal((n, len(model.fields))) @ chol.T
    u = ndtr(z)
    cols: dict[str, Any] = {"id": np.arange(start, start + n, dtype=np.int64)}
    grid = np.linspace(0.0, 1.0, QUANTILES)
    for j, f in enumerate(model.fields):
        missing = rng.random(n) < f.missing_share if f.missing_share > 0 else None
        if f.kind == "numeric":
            v = np.interp(u[:, j], grid, np.array(f.quantiles))
            if f.integral:
                v = np.round(v)
            if missing is not None:
                v[missing] = np.nan
            cols[f.name] = v
        else:
            idx = np.searchsorted(np.cumsum(f.frequencies), u[:, j], side="right")
            idx = np.minimum(idx, len(f.categories) - 1)
            values = np.array(f.categories, dtype=object)[idx]
            if missing is not None:
                values[missing] = None
            cols[f.name] = values
    return pd.DataFrame(cols)


def spoil(
    model: SynthModel, frame: pd.DataFrame, share: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Make ``share`` of the rows bad, one kind per bad row (only kinds this schema can have)."""
    kinds = _kinds(model)
    counts = {k: 0 for k in kinds}
    n = len(frame)
    bad = np.flatnonzero(rng.random(n) < share) if share > 0 else np.array([], dtype=np.intp)
    if not len(bad) or not kinds:
        return frame, counts
    which = rng.integers(0, len(kinds), len(bad))
    numeric = [f for f in model.fields if f.kind == "numeric"]
    required = [f for f in model.fields if not f.allow_missing]
    categorical = [f for f in model.fields if f.kind == "categorical"]
    for k, kind in enumerate(kinds):
        rows = bad[which == k]
        counts[kind] = len(rows)
        if not len(rows):
            continue
        pick = rng.integers(0, 1 << 30, len(rows))
        if kind == "missing_required":
            for f_i, f in enumerate(required):
                sel = rows[pick % len(required) == f_i]
                frame.loc[sel, f.name] = np.nan if f.kind == "numeric" else None
        elif kind == "non_finite":
            for f_i, f in enumerate(numeric):
                sel = rows[pick % len(numeric) == f_i]
                frame.loc[sel, f.name] = np.where(rng.random(len(sel)) < 0.5, np.inf, -np.inf)
        elif kind == "out_of_range":
            for f_i, f in enumerate(numeric):
                sel = rows[pick % len(numeric) == f_i]
                lo, hi = f.quantiles[0], f.quantiles[-1]
                frame.loc[sel, f.name] = hi + 10.0 * max(hi - lo, 1.0)
        else:
            for f_i, f in enumerate(categorical):
                sel = rows[pick % len(categorical) == f_i]
                frame.loc[sel, f.name] = "zz-unseen"
    return frame, counts


def _kinds(model: SynthModel) -> list[str]:
    kinds = []
    if any(not f.allow_missing for f in model.fields):
        kinds.append("missing_required")
    if any(f.kind == "numeric" for f in model.fields):
        kinds += ["non_finite", "out_of_range"]
    if any(f.kind == "categorical" for f in model.fields):
        kinds.append("unseen_category")
    return kinds


# ---------------------------------------------------------------- the command's work
def synthesize(
    run_dir: str | os.PathLike[str],
    rows: int,
    out: str | os.PathLike[str],
    *,
    bad_share: float = 0.0,
    seed: int = 0,
    part_rows: int = DEFAULT_PART_ROWS,
    chunk_rows: int = DEFAULT_CHUNK,
    reporter: Reporter | None = None,
) -> SynthResult:
    """Write ``rows`` synthetic rows of the run's schema as Parquet part files into ``out``."""
    import time

    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    from . import atomic
    from .data.rundata import load_split, run_schema

    rep = reporter or Silent()
    if rows < 1:
        raise UsageError(f"rows: expected a positive number of rows, got {rows}")
    if not 0.0 <= bad_share <= 1.0 or math.isnan(bad_share):
        raise UsageError(f"bad share: expected a fraction between 0 and 1, got {bad_share}")
    if part_rows < 1 or chunk_rows < 1:
        raise UsageError("part rows and chunk rows must be positive")
    t0 = time.perf_counter()
    run = RunDir.at(run_dir)
    schema = run_schema(run)
    frame, _ = load_split(run, "train")
    model = fit(schema, frame)
    del frame
    out_path = Path(out)
    if out_path.exists() and (not out_path.is_dir() or any(out_path.iterdir())):
        raise UsageError(f"output {out_path} exists and is not an empty directory; choose a new output directory")
    counts = {k: 0 for k in _kinds(model)}
    parts = 0
    rep.started("synth", rows)
    with atomic.atomic_dir(out_path) as tmp:
        done = 0
        writer = None
        in_part = 0
        try:
            while done < rows:
                n = min(chunk_rows, rows - done, part_rows - in_part if writer is not None else part_rows)
                rng = np.random.default_rng([seed, done])
                chunk = draw(model, n, rng, start=done)
                chunk, c = spoil(model, chunk, bad_share, rng)
                for k, v in c.items():
                    counts[k] += v
                table = pa.Table.from_pandas(chunk, preserve_index=False, schema=_arrow_schema(model))
                if writer is None:
                    writer = pq.ParquetWriter(tmp / f"part-{parts:05d}.parquet", table.schema)
                    in_part = 0
                writer.write_table(table, row_group_size=131072)
                in_part += n
                done += n
                if in_part >= part_rows:
                    writer.close()
                    writer = None
                    parts += 1
                rep.advanced("synth", done, rows)
        finally:
            if writer is not None:
                writer.close()
                parts += 1
        result = SynthResult(
            str(out_path), rows, parts, sum(counts.values()), counts, seed, round(time.perf_counter() - t0, 3)
        )
        atomic.write_json(tmp / "_synth.json", {**result.to_dict(), "run": str(run.root), "bad_share": bad_share})
    rep.done("synth")
    return result


def _arrow_schema(model: SynthModel) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    fields = [pa.field("id", pa.int64(), nullable=False)]
    for f in model.fields:
        fields.append(pa.field(f.name, pa.float64() if f.kind == "numeric" else pa.string()))
    return pa.schema(fields)
