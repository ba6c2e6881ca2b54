"""Shared data and checks for the Spark, Dask and local scale-out tests (tiny bundles' schema)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Good rows and every kind of bad row a typed column can hold, with an ``id`` key.

    Age is required (missing -> MissingFieldError), +-inf -> NonFiniteError, 1e12 beyond the runtime's
    limit -> NonFiniteError, Home 'castle' is unseen (lenient: flagged; strict: CategoryError), Income
    may be missing (imputed) and 999 is out of range (flagged).
    """
    rng = np.random.default_rng(seed)
    income = rng.uniform(0, 300, n)
    income[rng.random(n) < 0.1] = np.nan
    income[rng.random(n) < 0.02] = 999.0
    age = rng.uniform(18, 75, n)
    age[rng.random(n) < 0.03] = np.nan
    age[rng.random(n) < 0.01] = np.inf
    age[rng.random(n) < 0.01] = -np.inf
    age[rng.random(n) < 0.01] = 1e12
    home = rng.choice(np.array(["owner", "rent", "parents", "castle"], dtype=object), n, p=[0.4, 0.3, 0.25, 0.05])
    home[rng.random(n) < 0.02] = None
    job = rng.choice(np.array(["fixed", "freelance", "partime"], dtype=object), n)
    return pd.DataFrame({"id": np.arange(n, dtype=np.int64), "Income": income, "Age": age, "Home": home, "Job": job})


def expected(predictor: Any, pdf: pd.DataFrame) -> pd.DataFrame:
    """What one process gives: score_columns on the whole frame, as the adapters' output columns."""
    res = predictor.score_columns(pdf.drop(columns=["id"]))
    errors = [res.errors.get(i) for i in range(len(pdf))]
    return pd.DataFrame(
        {
            "id": pdf["id"].to_numpy(),
            "score": res.probabilities,
            "decision": res.decisions,
            "rejected": res.rejected,
            "flags": [";".join(res.row_flags(i)) if not res.rejected[i] else None for i in range(len(pdf))],
            "error_type": [type(e).__name__ if e is not None else None for e in errors],
            "field": [e.field if e is not None else None for e in errors],
            "error": [e.reason if e is not None else None for e in errors],
        }
    )


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Row for row by id: scores bit-identical (float32 bits), decisions, flags and errors equal."""
    got = got.sort_values("id").reset_index(drop=True)
    assert got["id"].tolist() == want["id"].tolist(), "rows were dropped or duplicated"
    rejected = want["rejected"].to_numpy()
    score = got["score"].to_numpy(dtype=np.float32, na_value=np.nan)
    assert np.isnan(score[rejected]).all()
    assert (score[~rejected].view(np.uint32) == want["score"].to_numpy()[~rejected].view(np.uint32)).all()
    decision = got["decision"].astype("boolean")
    assert decision[rejected].isna().all()
    assert (decision[~rejected].to_numpy(dtype=bool) == want["decision"].to_numpy()[~rejected]).all()
    for col in ("flags", "error_type", "field", "error"):
        assert _plain(got[col]) == _plain(want[col]), col


def _plain(col: pd.Series) -> list[Any]:
    """Values with every kind of null (None, NaN, pd.NA: pandas 3 string columns) as None."""
    return [None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v for v in col]


def with_explain(bundle: Any) -> bytes:
    """The tiny bundle with an explain section (a reference applicant), re-hashed consistently."""
    from tests.fixtures.repack import repack

    reference = {"Income": 120.0, "Age": 40, "Home": "owner", "Job": "fixed"}
    explain = {"method": "auto", "reference": {"record": reference, "rule": "a test applicant", "rows": 1}}
    return repack(bundle, lambda d: d.__setitem__("explain", explain))


def expected_reasons(predictor: Any, pdf: pd.DataFrame, max_reasons: int) -> list[Any]:
    """Each row's reasons as score_batch(reasons=True) gives them for the row as a record (NaN -> None)."""
    import json

    records = [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in rec.items()}
        for rec in pdf.drop(columns=["id"]).to_dict("records")
    ]
    out = []
    for r in predictor.score_batch(records, reasons=True, max_reasons=max_reasons):
        e = r.explanation
        out.append(None if e is None else json.dumps([x.to_dict() for x in e.reasons], sort_keys=True))
    return out


def assert_same_reasons(got: pd.DataFrame, want: list[Any]) -> None:
    got = got.sort_values("id").reset_index(drop=True)
    assert sum(w is not None for w in want) > 0
    assert _plain(got["reasons"]) == want
