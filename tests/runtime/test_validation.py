"""Every input error type, on every path (score, score_batch, score_columns), with the field named.

Tiny schema: Income numeric (missing allowed, 0..300), Age numeric (required, 18..75), Home categorical
one-hot (required; owner/rent/parents), Job categorical index-encoded (missing allowed).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from edgefin_runtime import (
    CategoryError,
    FieldTypeError,
    InputError,
    MissingFieldError,
    NonFiniteError,
    Policy,
    RecordTypeError,
    UnknownFieldError,
)

BASE: dict[str, Any] = {"Income": 120.0, "Age": 35, "Home": "rent", "Job": "fixed"}
ABSENT = object()


def with_(field: str, value: Any) -> dict[str, Any]:
    rec = dict(BASE)
    if value is ABSENT:
        del rec[field]
    else:
        rec[field] = value
    return rec


# (record, expected error, field) under the default (lenient) policy
LENIENT_ERRORS = [
    (with_("Age", ABSENT), MissingFieldError, "Age"),
    (with_("Age", None), MissingFieldError, "Age"),
    (with_("Age", math.nan), MissingFieldError, "Age"),
    (with_("Age", np.float64("nan")), MissingFieldError, "Age"),
    (with_("Age", ""), MissingFieldError, "Age"),
    (with_("Home", ABSENT), MissingFieldError, "Home"),
    (with_("Home", None), MissingFieldError, "Home"),
    (with_("Home", ""), MissingFieldError, "Home"),
    (with_("Home", math.nan), MissingFieldError, "Home"),
    (with_("Age", "35"), FieldTypeError, "Age"),
    (with_("Age", "n/a"), FieldTypeError, "Age"),
    (with_("Age", True), FieldTypeError, "Age"),
    (with_("Age", np.bool_(False)), FieldTypeError, "Age"),
    (with_("Age", [35]), FieldTypeError, "Age"),
    (with_("Age", {"value": 35}), FieldTypeError, "Age"),
    (with_("Age", complex(35, 1)), FieldTypeError, "Age"),
    (with_("Income", Decimal("120")), FieldTypeError, "Income"),
    (with_("Age", math.inf), NonFiniteError, "Age"),
    (with_("Age", -math.inf), NonFiniteError, "Age"),
    (with_("Income", math.inf), NonFiniteError, "Income"),
    (with_("Income", np.float32("inf")), NonFiniteError, "Income"),
    (with_("Age", 10**400), NonFiniteError, "Age"),
    (with_("Income", 1e300), NonFiniteError, "Income"),  # finite, but overflows float32 once scaled
    (with_("Income", -1e300), NonFiniteError, "Income"),
    (with_("Home", 1.5), CategoryError, "Home"),
    (with_("Home", ["rent"]), CategoryError, "Home"),
    (with_("Home", {"rent": 1}), CategoryError, "Home"),
    (with_("Home", b"rent"), CategoryError, "Home"),
    (with_("Home", "x" * 300), CategoryError, "Home"),
    (with_("Home", math.inf), CategoryError, "Home"),
]

STRICT_ERRORS = [
    ({**BASE, "Extra": 1}, UnknownFieldError, "Extra"),
    (with_("Home", "castle"), CategoryError, "Home"),
    (with_("Home", True), CategoryError, "Home"),
    (with_("Income", None), MissingFieldError, "Income"),
    (with_("Job", ABSENT), MissingFieldError, "Job"),
]


def _ids(cases: list[tuple[Any, Any, str]]) -> list[str]:
    return [f"{cls.__name__}-{field}-{i}" for i, (_, cls, field) in enumerate(cases)]


@pytest.mark.parametrize("record,error,field", LENIENT_ERRORS, ids=_ids(LENIENT_ERRORS))
def test_lenient_errors_on_every_path(predictors, record, error, field) -> None:
    _check_all_paths(predictors["tflite-fp32"], record, error, field)


@pytest.mark.parametrize("record,error,field", STRICT_ERRORS, ids=_ids(STRICT_ERRORS))
def test_strict_policy_errors_on_every_path(predictors, record, error, field) -> None:
    strict = predictors["tflite-fp32"].with_policy("strict")
    _check_all_paths(strict, record, error, field)
    # the same records are accepted (and flagged or imputed) under the lenient policy
    assert 0.0 <= predictors["tflite-fp32"].score(record).probability <= 1.0


def _check_all_paths(pred: Any, record: dict[str, Any], error: type, field: str) -> None:
    with pytest.raises(error) as info:
        pred.score(record)
    assert info.value.field == field
    assert f"'{field}'" in str(info.value) or repr(field) in str(info.value)

    batch = pred.score_batch([BASE, record, BASE])
    assert [r.status for r in batch] == ["scored", "rejected", "scored"]
    err = batch[1].error
    assert type(err) is error and err.field == field and err.row == 1
    assert batch[1].score is None and batch[0].score == batch[2].score

    if record.keys() == BASE.keys() or not set(BASE) - set(record):
        names = list(dict.fromkeys([*BASE, *record]))
        cols = {n: [BASE.get(n), record.get(n), BASE.get(n)] for n in names}
        if "Extra" in record:
            with pytest.raises(UnknownFieldError):
                pred.score_columns(cols)
            return
        res = pred.score_columns(cols)
        assert res.rejected.tolist() == [False, True, False]
        assert isinstance(res.errors[1], error) and res.errors[1].field == field
        assert math.isnan(res.probabilities[1]) and not res.decisions[1]


def test_record_must_be_a_mapping(predictors) -> None:
    pred = predictors["onnx-fp32"]
    for bad in ([1, 2], None, "Income=1", 42, (("Income", 1),)):
        with pytest.raises(RecordTypeError):
            pred.score(bad)
    res = pred.score_batch([BASE, [1, 2], None])
    assert [r.status for r in res] == ["scored", "rejected", "rejected"]
    assert all(isinstance(r.error, RecordTypeError) for r in res[1:])


def test_input_errors_are_value_errors_with_clear_messages(predictors) -> None:
    with pytest.raises(ValueError, match=r"field 'Age': expected a number, got str '35'"):
        predictors["tflite-fp32"].score(with_("Age", "35"))
    with pytest.raises(InputError, match="required but absent"):
        predictors["tflite-fp32"].score(with_("Age", ABSENT))
    with pytest.raises(InputError, match="too large to score"):
        predictors["tflite-fp32"].score(with_("Income", 1e300))


def test_flags_name_what_was_done(predictors) -> None:
    pred = predictors["tflite-int8"]
    assert pred.score(BASE).flags == ()
    assert pred.score(with_("Income", None)).flags == ("imputed:Income",)
    assert pred.score(with_("Income", "")).flags == ("imputed:Income",)
    assert pred.score(with_("Job", ABSENT)).flags == ("imputed:Job",)
    assert pred.score(with_("Home", "castle")).flags == ("unseen_category:Home",)
    assert pred.score(with_("Home", True)).flags == ("unseen_category:Home",)  # canonical 'true'
    assert pred.score(with_("Age", 90)).flags == ("out_of_range:Age",)
    assert pred.score(with_("Age", 17.5)).flags == ("out_of_range:Age",)
    many = pred.score({"Income": 999.0, "Age": 90, "Home": "castle"})
    assert many.flags == ("out_of_range:Income", "out_of_range:Age", "unseen_category:Home", "imputed:Job")


def test_unknown_fields_are_ignored_when_lenient(predictors) -> None:
    pred = predictors["tflite-fp32"]
    assert pred.score({**BASE, "Extra": "x", "Notes": [1]}) == pred.score(BASE)


def test_number_types_that_mean_the_same_value_score_the_same(predictors) -> None:
    pred = predictors["tflite-fp32"]
    expected = pred.score(BASE)
    for age in (35, 35.0, np.int64(35), np.int8(35), np.float32(35.0), np.float64(35.0), np.uint16(35)):
        assert pred.score(with_("Age", age)) == expected


def test_category_values_are_canonicalised(predictors) -> None:
    pred = predictors["tflite-fp32"]
    assert pred.score(with_("Home", np.str_("rent"))) == pred.score(BASE)
    assert pred.score(with_("Job", "fixed")) == pred.score(BASE)


def test_policy_combinations() -> None:
    assert Policy.strict() == Policy("reject", "reject", "reject")
    assert Policy.lenient() == Policy()
    with pytest.raises(ValueError, match="unknown_fields"):
        Policy(unknown_fields="maybe")  # type: ignore[arg-type]


def test_missing_policy_alone(predictors) -> None:
    pred = predictors["tflite-fp32"].with_policy(Policy(missing="reject"))
    with pytest.raises(MissingFieldError):
        pred.score(with_("Income", None))
    assert pred.score(with_("Home", "castle")).flags == ("unseen_category:Home",)


def test_nan_is_never_scored_as_a_number(predictors) -> None:
    pred = predictors["tflite-fp32"]
    imputed = pred.score(with_("Income", math.nan))
    assert imputed.flags == ("imputed:Income",)
    assert imputed == pred.score(with_("Income", None))
    res = pred.score_columns(
        {
            "Income": np.array([np.nan, np.inf, 120.0]),
            "Age": np.array([35.0, 35.0, np.nan]),
            "Home": ["rent"] * 3,
            "Job": ["fixed"] * 3,
        }
    )
    assert res.rejected.tolist() == [False, True, True]
    assert res.row_flags(0) == ("imputed:Income",)
    assert np.isfinite(res.probabilities[0]) and np.isnan(res.probabilities[1:]).all()
