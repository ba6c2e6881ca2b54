"""The manifest's explain and drift sections as the converters build them (edgefin_converters.sections)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefin_converters import sections
from edgefin_converters.errors import ModelInputError
from edgefin_runtime.manifest import CategoricalStep, FieldSpec, NumericStep, PreprocessSpec, Schema

SCHEMA = Schema(
    fields=(
        FieldSpec("Income", "numeric", allow_missing=True, min=0.0, max=300.0),
        FieldSpec("Home", "categorical", categories=("owner", "rent")),
    ),
    target="Status",
    positive_label="bad",
    negative_label="good",
)
SPEC = PreprocessSpec(
    (
        NumericStep("Income", fill=100.0, mean=100.0, scale=50.0, indicator=True),
        CategoricalStep("Home", ("owner", "rent"), "owner"),
    )
)


def data(n: int = 1000) -> tuple[dict[str, list], np.ndarray]:
    rng = np.random.default_rng(0)
    income = rng.gamma(4.0, 30.0, n).round(2)
    cols = {
        "Income": [None if i % 10 == 0 else float(v) for i, v in enumerate(income)],
        "Home": ["rent" if v < 100 else "owner" for v in income],
    }
    scores = 1 / (1 + np.exp((income - 100) / 30))  # risk falls with income
    return cols, scores


def test_reference_rows_are_just_above_the_threshold() -> None:
    scores = np.linspace(0, 1, 1001)
    rows = sections.reference_rows(scores, 0.5)
    assert len(rows) == max(30, int(np.ceil(0.1 * 501)))
    assert scores[rows].min() >= 0.5 and scores[rows].max() <= 0.5 + 0.051
    # too few rows above: the closest rows on either side
    rows = sections.reference_rows(scores, 0.99)
    assert len(rows) == 30 and np.abs(scores[rows] - 0.99).max() <= 0.0191


def test_explain_section_is_an_aggregate() -> None:
    cols, scores = data()
    sec = sections.explain_section(SCHEMA, SPEC, cols, scores, 0.5, protected=("Home",))
    ref = sec["reference"]["record"]
    rows = sections.reference_rows(scores, 0.5)
    want = np.mean([cols["Income"][i] for i in rows if cols["Income"][i] is not None])
    assert ref["Income"] == pytest.approx(want, rel=1e-3) and ref["Income"] not in cols["Income"]
    assert ref["Home"] == "rent"  # the mode of the group (low incomes are riskier and rent)
    assert sec["protected"] == ["Home"] and sec["method"] == "auto" and sec["reference"]["rows"] == len(rows)
    with pytest.raises(ModelInputError, match="at least 30"):
        sections.explain_section(SCHEMA, SPEC, {k: v[:20] for k, v in cols.items()}, scores[:20], 0.5)


def test_drift_section_shares_and_edges() -> None:
    cols, scores = data()
    sec = sections.drift_section(SCHEMA, cols, scores)
    inc = sec["fields"]["Income"]
    assert len(inc["shares"]) == len(inc["edges"]) + 2 and sum(inc["shares"]) == pytest.approx(1.0, abs=1e-6)
    assert inc["shares"][-1] == pytest.approx(0.1)  # every tenth income is missing
    assert all(float(f"{e:.3g}") == e for e in inc["edges"])  # quantiles rounded to 3 significant digits
    home = sec["fields"]["Home"]
    assert home["categories"] == ["owner", "rent"] and home["shares"][2:] == [0.0, 0.0]
    assert sum(sec["score"]["shares"]) == pytest.approx(1.0, abs=1e-6) and sec["rows"] == 1000
