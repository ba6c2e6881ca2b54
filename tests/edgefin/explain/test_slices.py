"""Slices: a group where the compressed variant flips more is visible; small groups are flagged."""

from __future__ import annotations

import numpy as np
import pytest

from edgefin.explain.slices import groups_of, slice_table, slices


def _case(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 1200
    region = np.array(["north"] * 600 + ["south"] * 560 + ["east"] * 40, dtype=object)
    age = rng.uniform(18, 80, n)
    y = (rng.random(n) < 0.3).astype(int)
    ref = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.15, n), 0, 1)
    good = ref + rng.normal(0, 0.001, n)
    bad = ref.copy()
    south = region == "south"
    bad[south] = ref[south] + rng.normal(0, 0.2, south.sum())  # this variant hurts the south only
    bad[5] = np.nan  # a rejected row is left out
    return region, age, y, ref, {"good": good, "bad": bad}


def test_the_group_a_variant_hurts_stands_out() -> None:
    region, _, y, ref, variants = _case()
    t = slice_table("Region", region, y, ref, variants, 0.35)
    by = {g["group"]: g for g in t["groups"]}
    assert [g["group"] for g in t["groups"]] == ["north", "south", "east"]  # by size
    assert by["south"]["variants"]["bad"]["flip_rate"] > 0.15
    assert by["north"]["variants"]["bad"]["flip_rate"] == 0.0
    assert by["south"]["variants"]["good"]["flip_rate"] < 0.02
    assert by["south"]["variants"]["bad"]["auc"] < by["south"]["auc"] - 0.05
    assert t["worst_group"]["bad"] == "south"
    assert t["small_groups"] == ["east"] and by["east"]["small"] and not by["north"]["small"]
    assert by["north"]["n"] + by["south"]["n"] + by["east"]["n"] == len(y)
    assert by["north"]["approval_rate"] == pytest.approx(np.mean(ref[region == "north"] < 0.35))


def test_numeric_slices_are_rounded_quantile_bands_with_missing() -> None:
    _, age, y, ref, variants = _case()
    age = age.copy()
    age[:7] = np.nan
    labels, idx = groups_of(age)
    assert labels[0].startswith("< ") and labels[-2].startswith(">= ") and labels[-1] == "missing"
    assert (idx[:7] == len(labels) - 1).all()
    counts = np.bincount(idx)
    assert all(250 <= c <= 350 for c in counts[:-1])  # quartile bands
    edges = [float(x) for lab in labels[1:-2] for x in lab.split(" - ")]
    assert not set(edges) & set(age[np.isfinite(age)].tolist())  # labels are rounded, not applicants' ages
    t = slices({"Age": age}, ["Age"], y, ref, variants, 0.35)[0]
    assert t["kind"] == "numeric" and t["groups"][-1]["group"] == "missing" and t["groups"][-1]["small"]
    with pytest.raises(ValueError, match="slice column.*Region.*not in the test split"):
        slices({"Age": age}, ["Region"], y, ref, variants, 0.35)


def test_many_categories_are_pooled() -> None:
    vals = np.array([f"c{i % 30}" for i in range(600)] + [None] * 10, dtype=object)
    labels, idx = groups_of(vals)
    assert len(labels) == 12 and labels[-1] == "other"
    assert idx.max() == 11


def test_a_slice_column_the_run_lacks_fails_before_anything_is_measured(tmp_path) -> None:
    import json

    import pandas as pd

    from edgefin.errors import RunDirError
    from edgefin.explain.analysis import check_slices

    (tmp_path / "data").mkdir()
    pd.DataFrame({"Status": ["bad", "good"], "Home": ["rent", "own"], "Region": ["n", "s"]}).to_parquet(
        tmp_path / "data" / "test.parquet"
    )
    (tmp_path / "data" / "schema.json").write_text(json.dumps({"target": "Status", "fields": []}))
    check_slices(tmp_path, ["Home", "Region"])  # a column the model does not use is a fine slice
    with pytest.raises(RunDirError, match=r"slice column\(s\) Status, Nope are not columns .*Home, Region"):
        check_slices(tmp_path, ["Status", "Nope"])
