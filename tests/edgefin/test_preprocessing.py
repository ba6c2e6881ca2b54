"""Preprocessing is fitted here and applied only by the runtime; round trips incl. unseen and missing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from edgefin_runtime.manifest import CategoricalStep, NumericStep, PreprocessSpec

from edgefin.data.preprocessing import (
    MISSING_SENTINEL,
    encode_frame,
    fit_preprocess,
    make_preprocessor,
    quantile_edges,
)
from edgefin.data.schema import TargetSpec, fit_schema, infer_kinds, missing_fields
from edgefin.errors import DataError
from tests.fixtures.tabular import loans

TARGET = TargetSpec("default", "yes", "no")


def fitted(frame, encoding="onehot", allow=None):
    kinds = infer_kinds(frame, target="default", source="t")
    schema = fit_schema(
        frame, kinds, TARGET, source="t", allow_missing=missing_fields([frame], kinds) if allow is None else allow
    )
    spec = fit_preprocess(frame, schema, encoding=encoding)
    return schema, spec, make_preprocessor(schema, spec)


def test_numeric_steps_use_training_statistics():
    frame = loans(300)
    _, spec, _ = fitted(frame)
    steps = {s.field: s for s in spec.steps}
    inc = steps["income"]
    seen = frame["income"].dropna()
    assert isinstance(inc, NumericStep)
    assert inc.fill == pytest.approx(seen.median())
    assert inc.mean == pytest.approx(seen.mean())
    assert inc.scale == pytest.approx(seen.std(ddof=0))
    assert inc.indicator is True  # income had missing values in training
    assert steps["age"].indicator is False


def test_categorical_fill_is_oov_when_training_had_missing_else_the_mode():
    frame = loans(300)
    _, spec, _ = fitted(frame)
    steps = {s.field: s for s in spec.steps}
    assert isinstance(steps["region"], CategoricalStep)
    assert steps["region"].fill == MISSING_SENTINEL  # region had missing values
    assert steps["owner"].fill == frame["owner"].map({True: "true", False: "false"}).mode()[0]


def test_constant_column_gets_unit_scale():
    frame = loans(50)
    frame["flat"] = 3.0
    _, spec, _ = fitted(frame)
    flat = next(s for s in spec.steps if s.field == "flat")
    assert flat.scale == 1.0 and flat.mean == 3.0


def test_columns_and_record_paths_agree_bit_for_bit_including_unseen_and_missing():
    train = loans(300, seed=1)
    schema, spec, pre = fitted(train, allow={"income", "region", "age", "debt", "owner"})
    new = loans(40, seed=2)
    new.loc[0, "region"] = "atlantis"  # unseen category
    new.loc[1, "income"] = np.nan  # missing numeric
    new.loc[2, "region"] = None  # missing category
    new.loc[3, "age"] = np.nan  # missing where training had none (allowed here)
    x = encode_frame(new, schema, pre, source="new.csv")
    assert x.dtype == np.float32 and x.shape == (40, spec.n_features)
    for i, rec in enumerate(new.drop(columns="default").to_dict("records")):
        rec = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
        np.testing.assert_array_equal(pre.transform_record(rec)[0], x[i])
    names = list(spec.feature_names)
    assert x[0, names.index("region=__other__")] == 1.0
    assert x[0, [names.index(f"region={c}") for c in schema.field("region").categories]].sum() == 0
    inc = next(s for s in spec.steps if s.field == "income")
    assert x[1, names.index("income")] == np.float32((inc.fill - inc.mean) / inc.scale)
    assert x[1, names.index("income__missing")] == 1.0
    assert x[2, names.index("region=__other__")] == 1.0  # missing category -> the OOV slot it trained on
    assert np.isfinite(x).all()


def test_training_matrix_is_standardised():
    frame = loans(500, missing=False)
    schema, spec, pre = fitted(frame)
    x = encode_frame(frame, schema, pre, source="t")
    names = list(spec.feature_names)
    col = x[:, names.index("debt")]
    assert abs(col.mean()) < 1e-5 and abs(col.std() - 1) < 1e-4


def test_index_encoding_and_oov_position():
    train = loans(200, missing=False)
    schema, spec, pre = fitted(train, encoding="index")
    cats = schema.field("region").categories
    new = train.head(3).copy()
    new["region"] = [cats[0], cats[-1], "atlantis"]
    x = encode_frame(new, schema, pre, source="t")
    col = list(spec.feature_names).index("region__index")
    assert list(x[:, col]) == [0.0, float(len(cats) - 1), float(len(cats))]


def test_spec_json_round_trip():
    _, spec, _ = fitted(loans(100))
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec


def test_missing_where_no_data_had_missing_is_a_data_error_naming_the_row():
    train = loans(100, missing=False)
    schema, _, pre = fitted(train)
    new = train.head(5).copy()
    new.loc[3, "age"] = np.nan
    with pytest.raises(DataError, match=r"new\.csv line 5: field 'age': missing value"):
        encode_frame(new, schema, pre, source="new.csv")


def test_frame_with_pandas_string_dtype():
    frame = loans(60)
    frame["region"] = frame["region"].astype("string")
    schema, spec, pre = fitted(frame)
    x = encode_frame(frame, schema, pre, source="t")
    assert np.isfinite(x).all() and x.shape[1] == spec.n_features
    assert pd.isna(frame["region"]).sum() > 0


def test_values_too_large_to_average_are_a_data_error():
    frame = loans(20, missing=False)
    frame["debt"] = 1e308
    schema, _, _ = fitted(loans(20, missing=False))
    with pytest.raises(DataError, match="'debt'.*too large"):
        fit_preprocess(frame, schema)


def test_quantile_edges_split_the_training_values_evenly():
    seen = np.arange(1000, dtype=np.float64)
    edges = quantile_edges(seen, 4)
    # values that occur between the 0.5% and 99.5% quantiles, about a quarter of them per bin
    assert edges == (4.0, 252.0, 499.0, 746.0, 994.0)
    assert np.histogram(seen, bins=edges)[0].tolist() == [248, 247, 247, 249]


@pytest.mark.parametrize(
    "seen, bins, expected",
    [
        (np.array([0.0] * 90 + [1.0] * 6 + [2.0] * 3 + [5.0]), 16, (0.0, 1.0, 2.0)),  # counts: repeats merge;
        # the single applicant with 5 is beyond the 99.5% quantile and is not published
        (np.array([0.0, 1.0] * 50), 16, ()),  # two values: one bin would repeat the standardised value
        (np.full(100, 3.0), 16, ()),  # constant
        (np.arange(100.0), 0, ()),  # turned off
        (np.arange(100.0), 1, ()),
        (np.array([7.0]), 16, ()),
    ],
)
def test_quantile_edges_edge_cases(seen, bins, expected):
    assert quantile_edges(seen, bins) == expected


def test_quantile_edges_publish_no_training_extreme_and_round_to_three_digits():
    rng = np.random.default_rng(0)
    seen = rng.lognormal(5.0, 1.0, 5000)
    edges = quantile_edges(seen, 16)
    assert len(edges) >= 10
    assert edges[0] > seen.min() and edges[-1] < seen.max()
    assert not set(edges) & set(seen.tolist())  # no edge is an applicant's exact value
    assert all(float(f"{e:.2e}") == e for e in edges)  # three significant digits


def test_fit_with_bins_adds_bins_to_numeric_columns_only_and_encodes_consistently():
    frame = loans(400, seed=7)
    kinds = infer_kinds(frame, target="default", source="t")
    schema = fit_schema(frame, kinds, TARGET, source="t", allow_missing=missing_fields([frame], kinds))
    plain = fit_preprocess(frame, schema)
    binned = fit_preprocess(frame, schema, bins=8)
    assert all(not s.edges for s in plain.steps if isinstance(s, NumericStep))
    income = next(s for s in binned.steps if s.field == "income")
    assert 3 <= len(income.edges) <= 9 and list(income.edges) == sorted(set(income.edges))
    assert binned.n_features > plain.n_features
    x = encode_frame(frame, schema, make_preprocessor(schema, binned), source="t")
    cols = [i for i, n in enumerate(binned.feature_names) if n.startswith("income__bin")]
    assert ((x[:, cols] >= 0) & (x[:, cols] <= 1)).all()
    # equal-mass bins: 1/8 of the rows sit inside each bin, so bin t is full for about (7 - t)/8 of
    # them and half full (on average) for 1/8
    observed = ~frame["income"].isna().to_numpy()
    expected = (len(cols) - 1 - np.arange(len(cols)) + 0.5) / len(cols)
    np.testing.assert_allclose(x[observed][:, cols].mean(axis=0), expected, atol=0.05)
    with pytest.raises(ValueError, match="bins"):
        fit_preprocess(frame, schema, bins=-1)
