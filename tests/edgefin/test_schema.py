"""Schema inference: kinds, overrides, the target and its positive class, mixed types, JSON shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edgefin_runtime.manifest import Schema

from edgefin.data.io import read_table
from edgefin.data.schema import (
    TargetSpec,
    fit_schema,
    infer_kinds,
    missing_fields,
    resolve_target,
    robust_range,
    round_outward,
    schema_from_dict,
    schema_to_dict,
    target_vector,
    to_columns,
)
from edgefin.errors import DataError, UsageError
from tests.fixtures.tabular import loans


def kinds_of(frame, **kw):
    return infer_kinds(frame, target="default", source="t.csv", **kw)


# ---------------------------------------------------------------- kinds
def test_kinds_by_dtype():
    assert kinds_of(loans(50)) == {
        "income": "numeric",
        "age": "numeric",
        "debt": "numeric",
        "region": "categorical",
        "owner": "categorical",
    }


def test_overrides_and_drop():
    k = kinds_of(loans(50), categorical=["age"], drop=["debt"])
    assert k["age"] == "categorical" and "debt" not in k and "default" not in k


def test_numeric_override_parses_number_text():
    frame = pd.DataFrame({"code": ["1", "2", "3.5"], "default": ["yes", "no", "no"]})
    assert kinds_of(frame) == {"code": "categorical"}
    assert kinds_of(frame, numeric=["code"]) == {"code": "numeric"}
    np.testing.assert_array_equal(to_columns(frame, {"code": "numeric"}, "t.csv")["code"], [1.0, 2.0, 3.5])


def test_numeric_override_names_the_row_that_is_not_a_number():
    frame = pd.DataFrame({"code": ["1", "x", "2", "3", "4"], "default": ["yes", "no"] * 2 + ["no"]})
    with pytest.raises(DataError, match=r"column 'code' is numeric, but t\.csv line 3 holds 'x'"):
        kinds_of(frame, numeric=["code"])


def test_unknown_override_column():
    with pytest.raises(DataError, match=r"column 'nope' given to `categorical` is not in t\.csv"):
        kinds_of(loans(20), categorical=["nope"])


def test_override_conflicts_are_usage_errors():
    with pytest.raises(UsageError, match="both `categorical` and `numeric`"):
        kinds_of(loans(20), categorical=["age"], numeric=["age"])
    with pytest.raises(UsageError, match="is the target"):
        kinds_of(loans(20), drop=["default"])


def test_nothing_left_to_learn_from():
    with pytest.raises(DataError, match="no feature columns"):
        kinds_of(loans(20), drop=["income", "age", "debt", "region", "owner"])


def test_mixed_column_in_a_csv_names_column_and_line(tmp_path):
    rows = ["income,default"] + [f"{100 + i},{'yes' if i % 2 else 'no'}" for i in range(20)]
    rows[8] = "unknown,no"
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    frame = read_table(tmp_path / "m.csv")
    with pytest.raises(DataError) as err:
        infer_kinds(frame, target="default", source=str(tmp_path / "m.csv"))
    msg = str(err.value)
    assert "column 'income' is mixed" in msg and "m.csv line 9" in msg and "'unknown'" in msg
    assert "`na_values='unknown'`" in msg and "`categorical=income`" in msg  # the CLI: test_cli_option_names


def test_mixed_python_objects_name_the_odd_row():
    frame = pd.DataFrame({"x": pd.Series([1, 2, 3, "three", 5], dtype=object), "default": ["yes", "no"] * 2 + ["no"]})
    with pytest.raises(DataError, match=r"column 'x' is mixed: mostly numbers, but t\.csv line 5 holds 'three'"):
        kinds_of(frame)


def test_text_with_a_few_codes_is_categorical():
    frame = pd.DataFrame({"home": ["rent", "own", "0", "rent"], "default": ["yes", "no", "no", "yes"]})
    assert kinds_of(frame) == {"home": "categorical"}


def test_dates_are_an_error_with_advice():
    frame = pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-02-01"]), "default": ["yes", "no"]})
    with pytest.raises(DataError, match="dates or times.*`drop=when`"):
        kinds_of(frame)


def test_categorical_override_rejects_fractional_numbers():
    frame = pd.DataFrame({"x": [1.0, 2.5, 3.0], "default": ["yes", "no", "no"]})
    with pytest.raises(DataError, match="declared categorical, but t.csv line 3 holds 2.5"):
        kinds_of(frame, categorical=["x"])


def test_infinity_is_an_error_naming_the_row():
    frame = pd.DataFrame({"x": [1.0, np.inf], "default": ["yes", "no"]})
    with pytest.raises(DataError, match=r"column 'x' in t\.csv line 3 is infinite"):
        to_columns(frame, {"x": "numeric"}, "t.csv")


def test_missing_feature_column_in_another_file():
    with pytest.raises(DataError, match=r"test\.csv lacks the column\(s\) 'age'"):
        to_columns(pd.DataFrame({"x": [1]}), {"age": "numeric"}, "test.csv")


# ---------------------------------------------------------------- target
def test_target_absent():
    with pytest.raises(DataError, match=r"target column 'Status' is not in t\.csv .*'income'"):
        resolve_target(loans(10), "Status", None, "t.csv")


def test_target_with_one_class():
    frame = pd.DataFrame({"x": [1, 2], "y": ["good", "good"]})
    with pytest.raises(DataError, match="only one class"):
        resolve_target(frame, "y", None, "t.csv")


def test_target_with_three_classes():
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    with pytest.raises(DataError, match="has 3 classes"):
        resolve_target(frame, "y", None, "t.csv")


def test_continuous_target():
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0.1, 0.7, 0.3]})
    with pytest.raises(DataError, match="not continuous numbers"):
        resolve_target(frame, "y", None, "t.csv")


@pytest.mark.parametrize(
    "values, positive, negative",
    [([0, 1, 1, 0], "1", "0"), ([True, False, True, True], "true", "false"), ([0.0, 1.0, np.nan, 1.0], "1", "0")],
)
def test_default_positive_for_binary_targets(values, positive, negative):
    spec = resolve_target(pd.DataFrame({"y": values}), "y", None, "t.csv")
    assert (spec.positive_label, spec.negative_label) == (positive, negative)


def test_text_target_needs_positive():
    frame = pd.DataFrame({"y": ["bad", "good", "good"]})
    with pytest.raises(DataError, match="with `positive`"):
        resolve_target(frame, "y", None, "t.csv")
    assert resolve_target(frame, "y", "bad", "t.csv") == TargetSpec("y", "bad", "good")
    assert resolve_target(frame, "y", "BAD", "t.csv").positive_label == "bad"
    with pytest.raises(DataError, match=r"`positive='ugly'` is not a class .*'bad', 'good'"):
        resolve_target(frame, "y", "ugly", "t.csv")


def test_target_vector_drops_missing_and_rejects_new_labels():
    spec = TargetSpec("y", "bad", "good")
    y, present = target_vector(pd.DataFrame({"y": ["bad", None, "good", ""]}), spec, "t.csv")
    assert list(present) == [True, False, True, False]
    assert list(y[present]) == [1, 0]
    with pytest.raises(DataError, match=r"t\.csv line 3 has the value 'meh'"):
        target_vector(pd.DataFrame({"y": ["bad", "meh"]}), spec, "t.csv")


# ---------------------------------------------------------------- fitted schema
def test_fit_schema_uses_training_rows_only():
    frame = loans(200)
    train = frame.iloc[:100]
    kinds = kinds_of(frame)
    schema = fit_schema(
        train, kinds, TargetSpec("default", "yes", "no"), source="t.csv", allow_missing=missing_fields([frame], kinds)
    )
    inc = schema.field("income")
    seen = train["income"].dropna().to_numpy()
    assert (inc.min, inc.max) == robust_range(seen)  # the training rows' robust quantiles, rounded ...
    assert robust_range(frame["income"].dropna().to_numpy()) != (inc.min, inc.max)  # ... not all rows'
    assert inc.min != seen.min() and inc.max != seen.max()  # never a training extreme itself
    assert inc.missing_share == pytest.approx(train["income"].isna().mean())
    assert inc.allow_missing and not schema.field("age").allow_missing
    region = schema.field("region")
    assert region.categories == tuple(sorted(train["region"].dropna().unique()))
    assert schema.field("owner").categories == ("false", "true")
    assert (schema.target, schema.positive_label, schema.negative_label) == ("default", "yes", "no")


def test_vocabulary_is_capped_by_frequency():
    frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"], "default": ["yes", "no"] * 6 + ["no"]})
    schema = fit_schema(frame, {"c": "categorical"}, TargetSpec("default", "yes", "no"), source="t", max_categories=2)
    assert schema.field("c").categories == ("a", "b")


def test_schema_json_matches_the_manifest_shape_and_round_trips():
    frame = loans(80)
    schema = fit_schema(frame, kinds_of(frame), TargetSpec("default", "yes", "no"), source="t")
    d = schema_to_dict(schema)
    assert set(d) == {"fields", "target", "positive_label", "negative_label"}
    assert set(d["fields"][0]) == {"name", "kind", "allow_missing", "categories", "min", "max", "missing_share"}
    assert schema_from_dict(d) == schema == Schema.from_dict(d)
    with pytest.raises(DataError, match="invalid schema"):
        schema_from_dict({"fields": [], "target": "y", "positive_label": "1", "negative_label": "0"})


# ---------------------------------------------------------------- published ranges
@pytest.mark.parametrize(
    "value, down, expected",
    [
        (18.3, True, 18.0),
        (18.3, False, 19.0),
        (459.2, False, 460.0),
        (459.2, True, 450.0),
        (-0.0123, True, -0.013),
        (-0.0123, False, -0.012),
        (0.0029, True, 0.0029),
        (0.0, True, 0.0),
        (123456.0, False, 130000.0),
        (7.0, True, 7.0),
    ],
)
def test_round_outward_keeps_two_significant_digits_and_rounds_away_from_the_data(value, down, expected):
    assert round_outward(value, down=down) == expected


def test_robust_range_hides_the_extremes_of_a_single_applicant():
    incomes = np.concatenate([np.linspace(800.0, 5000.0, 999), [987654.0]])  # one very rich applicant
    lo, hi = robust_range(incomes)
    assert lo == 820.0 and hi == 5000.0  # the 0.5%/99.5% quantiles (821.0, 4979.2) rounded outward
    assert robust_range(np.array([np.nan, np.nan])) == (None, None)
    assert robust_range(np.array([3.14159])) == (3.1, 3.2)
