"""Piecewise-linear bins: hand-checked values, identical on every path, never NaN."""

from __future__ import annotations

import math
from array import array

import numpy as np
import pytest

from edgefin_runtime.errors import NonFiniteError
from edgefin_runtime.manifest import CategoricalStep, FieldSpec, NumericStep, PreprocessSpec, Schema
from edgefin_runtime.preprocess import Policy, Preprocessor

SCHEMA = Schema(
    fields=(
        FieldSpec("Income", "numeric", allow_missing=True, min=0.0, max=300.0),
        FieldSpec("Age", "numeric", min=18.0, max=75.0),
        FieldSpec("Home", "categorical", categories=("own", "rent")),
    ),
    target="Status",
    positive_label="bad",
    negative_label="good",
)
SPEC = PreprocessSpec(
    steps=(
        NumericStep("Income", fill=50.0, mean=60.0, scale=20.0, indicator=True, edges=(0.0, 20.0, 50.0, 100.0, 300.0)),
        NumericStep("Age", fill=40.0, mean=40.0, scale=10.0, edges=(18.0, 30.0, 45.0, 75.0)),
        CategoricalStep("Home", categories=("own", "rent"), fill="own"),
    )
)
NAMES = SPEC.feature_names


def encode(pre: Preprocessor, rec: dict) -> np.ndarray:
    return pre.transform_record(rec)[0]


@pytest.mark.parametrize(
    "income, bins",
    [
        (-5.0, [0, 0, 0, 0]),  # below the first edge: every bin empty (z still carries the value)
        (0, [0, 0, 0, 0]),
        (10, [0.5, 0, 0, 0]),
        (20.0, [1, 0, 0, 0]),  # exactly on an edge
        (35.0, [1, 0.5, 0, 0]),
        (100, [1, 1, 1, 0]),
        (299.0, [1, 1, 1, 0.995]),
        (300.0, [1, 1, 1, 1]),
        (1000.0, [1, 1, 1, 1]),  # above the training range: full, and flagged
        (None, [1, 1, 0, 0]),  # missing: the bins of the fill (50)
    ],
)
def test_bins_hold_hand_checked_values(income, bins):
    pre = Preprocessor(SCHEMA, SPEC)
    x = encode(pre, {"Income": income, "Age": 40, "Home": "own"})
    got = x[[NAMES.index(f"Income__bin{t}") for t in range(4)]]
    np.testing.assert_allclose(got, np.array(bins, dtype=np.float32), rtol=0, atol=1e-7)
    assert x[NAMES.index("Income__missing")] == (1.0 if income is None else 0.0)
    expected_z = ((50.0 if income is None else income) - 60.0) / 20.0
    assert x[NAMES.index("Income")] == np.float32(expected_z)


RECORDS = [
    {"Income": v, "Age": a, "Home": h}
    for v in (None, -5, 0, -0.0, 10, 20, 35.5, 49.999, 50, 100, 299, 300, 1e6, 2**60, 5, -1e-300)
    for a in (18, 29.9, 30, 45, 50, 74.99, 100, 10, 2**53 + 1)
    for h in ("own", "castle")
]


@pytest.mark.parametrize("policy", [Policy.lenient(), Policy(missing="reject")])
def test_record_buffer_and_columns_paths_are_bit_identical(policy):
    pre = Preprocessor(SCHEMA, SPEC, policy)
    cols = {k: [r[k] for r in RECORDS] for k in ("Income", "Age", "Home")}
    res = pre.columns(cols)
    buf = array("f", [0.0] * SPEC.n_features)
    view = memoryview(buf)
    for i, rec in enumerate(RECORDS):
        try:
            row, _ = pre.record(rec)
        except Exception as exc:  # noqa: BLE001 - compared with the columns path's error below
            assert type(res.errors[i]) is type(exc)
            continue
        assert i not in res.errors
        for j in range(len(buf)):
            buf[j] = 0.0
        pre.encode_into(rec, view)
        a = np.array(row, dtype=np.float32)
        assert a.tobytes() == res.matrix[i].tobytes() == np.array(buf, dtype=np.float32).tobytes(), rec


def test_absent_column_gets_the_fill_bins_on_every_path():
    pre = Preprocessor(SCHEMA, SPEC)
    m = pre.columns({"Age": [40.0], "Home": ["own"]}).matrix[0]
    assert m.tobytes() == encode(pre, {"Age": 40.0, "Home": "own"}).tobytes()


def test_extreme_values_never_become_nan():
    pre = Preprocessor(SCHEMA, SPEC)
    cols = {"Income": [1e300, -1e300, math.inf, 1e-320], "Age": [40.0] * 4, "Home": ["own"] * 4}
    res = pre.columns(cols)
    assert np.isfinite(res.matrix).all()
    assert set(res.errors) == {0, 1, 2}
    assert all(isinstance(e, NonFiniteError) for e in res.errors.values())
    tight = PreprocessSpec(
        steps=(NumericStep("Income", 0.0, 0.0, 1.0, True, edges=(0.0, 5e-324, 1e-300)), *SPEC.steps[1:])
    )
    pre = Preprocessor(SCHEMA, tight)
    for v in (0.0, 5e-324, 1e-310, 1e-300, 7.0):
        x = encode(pre, {"Income": v, "Age": 40, "Home": "own"})
        bins = x[1:3]
        assert np.isfinite(x).all() and ((0.0 <= bins) & (bins <= 1.0)).all(), (v, bins)


def test_negative_zero_and_underflow_give_the_same_bytes_on_every_path():
    """-0.0 on an edge at 0, and a fraction that underflows to -0.0, leave +0.0 in the bin everywhere."""
    schema = Schema(fields=(FieldSpec("X", "numeric"),), target="t", positive_label="1", negative_label="0")
    for edges, value in (((0.0, 1.0, 2.0), -0.0), ((-1e300, 0.0, 1e300), -1e-30)):
        pre = Preprocessor(schema, PreprocessSpec(steps=(NumericStep("X", 0.0, 0.0, 1.0, edges=edges),)))
        row = np.array(pre.record({"X": value})[0], dtype=np.float32)
        buf = array("f", [0.0] * pre.n_features)
        pre.encode_into({"X": value}, memoryview(buf))
        cols = pre.columns({"X": np.array([value])}).matrix[0]
        assert row.tobytes() == bytes(buf) == cols.tobytes(), (edges, value)


def test_copies_and_pickles_rebuild_an_identical_preprocessor():
    import copy
    import pickle

    pre = Preprocessor(SCHEMA, SPEC, Policy.strict())
    rec = {"Income": 35.0, "Age": 50, "Home": "rent"}
    for other in (copy.deepcopy(pre), copy.copy(pre), pickle.loads(pickle.dumps(pre))):
        assert other.policy == pre.policy and other.spec == pre.spec
        assert encode(other, rec).tobytes() == encode(pre, rec).tobytes()


def test_a_spec_built_in_code_with_an_overflowing_fill_is_refused():
    """Manifest.from_dict refuses it; a spec made directly must not impute an infinite feature either."""
    from edgefin_runtime.errors import ManifestError

    bad = PreprocessSpec(
        steps=(NumericStep("Income", fill=1e300, mean=0.0, scale=1.0, indicator=True), *SPEC.steps[1:])
    )
    with pytest.raises(ManifestError, match="standard deviations"):
        Preprocessor(SCHEMA, bad)
