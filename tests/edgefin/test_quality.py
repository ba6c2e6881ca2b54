"""The data-quality report finds leaks, identifiers, constants, duplicates; it warns, never raises."""

from __future__ import annotations

import numpy as np
import pandas as pd

from edgefin.data.quality import quality_report, single_feature_auc
from edgefin.data.schema import infer_kinds
from tests.fixtures.tabular import loans


def report(frame, **kw):
    y = (frame["default"] == "yes").to_numpy().astype(int)
    kinds = infer_kinds(frame, target="default", source="t")
    return quality_report(frame, y, kinds, target="default", **kw), y


def test_clean_data_has_no_warnings_and_the_basic_facts():
    frame = loans(300, missing=False)
    r, y = report(frame, splits={"train": 180, "validation": 60, "test": 60})
    assert r["warnings"] == []
    assert r["rows"] == 300 and r["columns"] == 5
    assert r["class_balance"]["positive"] == y.sum()
    assert r["class_balance"]["positive_share"] == y.mean()
    assert r["splits"]["train"] == 180 and r["leakage"] == {}


def test_missing_shares():
    frame = loans(300)
    r, _ = report(frame)
    assert r["missing_share"]["income"] == frame["income"].isna().mean() > 0
    assert r["missing_share"]["age"] == 0.0


def test_leak_identifier_constant_and_duplicates_are_flagged():
    frame = loans(300, missing=False)
    frame["paid_back"] = np.where(frame["default"] == "yes", "no", "yes")  # recorded after the outcome
    frame["loan_id"] = [f"L{i:05d}" for i in range(300)]
    frame["row_number"] = np.arange(300)
    frame["currency"] = "EUR"
    frame = pd.concat([frame, frame.iloc[:7]], ignore_index=True)
    frame.loc[len(frame)] = {**frame.iloc[0].to_dict(), "default": "no" if frame.iloc[0]["default"] == "yes" else "yes"}
    r, _ = report(frame)
    assert "paid_back" in r["leakage"] and r["leakage"]["paid_back"] > 0.99
    assert "loan_id" in r["identifier_columns"]
    assert r["constant_columns"] == ["currency"]
    assert r["duplicated_rows"] == 7
    assert r["conflicting_rows"] >= 2
    text = " ".join(r["warnings"])
    for word in ("paid_back", "loan_id", "currency", "duplicates", "other class"):
        assert word in text


def test_numeric_leak_and_rare_positive_class():
    frame = loans(400, positive_share=0.03, missing=False)
    frame["recovery_amount"] = np.where(frame["default"] == "yes", 1000.0, 0.0)
    r, _ = report(frame)
    assert "recovery_amount" in r["leakage"]
    assert any("rare" in w for w in r["warnings"])


def test_single_feature_auc_is_symmetric_and_handles_missing():
    y = np.array([0, 0, 1, 1])
    assert single_feature_auc(pd.Series([4.0, 3.0, 2.0, 1.0]), y, "numeric") == 1.0
    assert single_feature_auc(pd.Series([np.nan] * 4), y, "numeric") is None
    assert single_feature_auc(pd.Series(["a", "a", "b", None]), y, "categorical") == 1.0  # rates 0, 1, 1
    # category rates a=1/2, b=0, missing=1 -> scores .5 0 .5 1 -> 3.5 of 4 pairs ranked right
    assert single_feature_auc(pd.Series(["a", "b", "a", None]), y, "categorical") == 0.875
