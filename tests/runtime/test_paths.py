"""The record, batch and columns paths agree bit for bit, and batches never let one bad row sink others."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgefin_runtime.predictor as predictor_mod
from edgefin_runtime import ColumnsScore, Result, Score
from edgefin_runtime.preprocess import Preprocessor

from tests.fixtures.bundles import GOLDEN_RECORDS, tiny_data

NAMES = ("Income", "Age", "Home", "Job")


def records(n: int = 300, seed: int = 7) -> list[dict[str, Any]]:
    """Realistic records plus the awkward ones: missing, unseen, out of range, numpy scalars."""
    cols, _ = tiny_data(n, seed=seed)
    recs = [{k: cols[k][i] for k in NAMES} for i in range(n)]
    recs[3]["Home"] = "castle"
    recs[5]["Age"] = 95
    recs[7]["Income"] = np.float32(55.5)
    recs[9]["Age"] = np.int64(40)
    del recs[11]["Job"]
    recs[13]["Income"] = ""
    return recs


def test_record_columns_and_encode_into_features_are_bit_identical(predictors) -> None:
    pre: Preprocessor = predictors["tflite-fp32"]._pre
    recs = records()
    rows = [pre.record(r) for r in recs]
    via_records = np.array([r for r, _ in rows], dtype=np.float32)
    cols = {k: [r.get(k) for r in recs] for k in NAMES}
    res = pre.columns(cols)
    assert not res.errors
    assert via_records.tobytes() == res.matrix.tobytes()
    buf = np.zeros(pre.n_features, dtype=np.float32)
    for r, (row, flags) in zip(recs, rows):
        buf[:] = 0
        assert pre.encode_into(r, memoryview(buf)) == flags
        assert buf.tobytes() == np.array(row, dtype=np.float32).tobytes()
    # typed numpy columns (float64 with NaN, fixed-width strings) give the same matrix
    typed = {
        "Income": np.array([math.nan if v in (None, "") else float(v) for v in cols["Income"]]),
        "Age": np.array(cols["Age"], dtype=np.float64),
        "Home": np.array(cols["Home"]),
        "Job": np.array(["" if v is None else v for v in cols["Job"]]),
    }
    assert pre.columns(typed).matrix.tobytes() == res.matrix.tobytes()


def test_score_batch_and_columns_equal_score(variant, predictors) -> None:
    pred = predictors[variant]
    recs = records()
    single = [pred.score(r) for r in recs]
    batch = pred.score_batch(recs)
    assert [r.score for r in batch] == single
    cols = pred.score_columns({k: [r.get(k) for r in recs] for k in NAMES})
    assert cols.probabilities.tolist() == [s.probability for s in single]
    assert cols.decisions.tolist() == [s.decision for s in single]
    assert [cols.row_flags(i) for i in range(len(recs))] == [s.flags for s in single]
    assert cols.results() == batch


def test_scores_are_probabilities_with_the_bundle_threshold(predictors) -> None:
    pred = predictors["tflite-fp32"]
    assert pred.threshold == pred.info.decision.threshold == 0.5
    for r in records():
        s = pred.score(r)
        assert isinstance(s, Score) and 0.0 <= s.probability <= 1.0
        assert s.decision == (s.probability >= pred.threshold)
        assert s.label == (pred.schema.positive_label if s.decision else pred.schema.negative_label)
    with pytest.raises(AttributeError):
        s.probability = 0.5  # type: ignore[misc]  # frozen
    assert not hasattr(s, "__dict__")  # slotted


def test_batch_with_mixed_good_and_bad_rows(predictors) -> None:
    pred = predictors["tflite-int8"]
    good = records(20)
    mixed: list[Any] = [
        good[0],
        {"Age": 30},
        good[1],
        None,
        {**good[2], "Income": "lots"},
        good[3],
        OrderedDict(good[4]),
        {**good[5], "Age": math.inf},
        good[6],
    ]
    res = pred.score_batch(mixed)
    assert [r.row for r in res] == list(range(len(mixed)))
    assert [r.status for r in res] == [
        "scored",
        "rejected",
        "scored",
        "rejected",
        "rejected",
        "scored",
        "scored",
        "rejected",
        "scored",
    ]
    assert [type(r.error).__name__ for r in res if not r.ok] == [
        "MissingFieldError",
        "RecordTypeError",
        "FieldTypeError",
        "NonFiniteError",
    ]
    assert [r.error.row for r in res if not r.ok] == [1, 3, 4, 7]
    assert [r.error.field for r in res if not r.ok] == ["Home", None, "Income", "Age"]
    for r, rec in zip(res, mixed):
        if r.ok:
            assert r.score == pred.score(rec)
    assert all(isinstance(r, Result) for r in res)


def test_batch_errors_match_single_record_errors_exactly(predictors) -> None:
    pred = predictors["tflite-fp32"]
    bad = [
        {"Income": 1.0, "Age": 30},
        {"Income": None, "Age": None, "Home": "rent"},
        {"Income": True, "Age": 30, "Home": "rent"},
        {"Income": 1.0, "Age": 30, "Home": ["x"]},
    ]
    for rec, res in zip(bad, pred.score_batch(bad)):
        with pytest.raises(Exception) as info:
            pred.score(rec)
        assert type(res.error) is type(info.value) and res.error.reason == info.value.reason


def test_empty_inputs(predictors) -> None:
    pred = predictors["onnx-fp32"]
    assert pred.score_batch([]) == []
    assert pred.score_batch(iter([])) == []
    res = pred.score_columns({k: [] for k in NAMES})
    assert isinstance(res, ColumnsScore) and len(res) == 0 and res.probabilities.dtype == np.float32


def test_generators_are_accepted(predictors) -> None:
    pred = predictors["onnx-fp32"]
    recs = records(20)
    assert pred.score_batch(r for r in recs) == pred.score_batch(recs)


def test_columns_in_blocks_keep_absolute_row_numbers(predictors, monkeypatch) -> None:
    pred = predictors["tflite-fp32"]
    recs = records(50)
    recs[33]["Age"] = "old"
    recs[4]["Home"] = None
    cols = {k: [r.get(k) for r in recs] for k in NAMES}
    whole = pred.score_columns(cols)
    monkeypatch.setattr(predictor_mod, "COLUMN_BLOCK", 7)
    blocked = pred.score_columns(cols)
    assert sorted(blocked.errors) == [4, 33] and blocked.errors[33].row == 33
    assert np.array_equal(blocked.probabilities, whole.probabilities, equal_nan=True)
    assert {k: m.tolist() for k, m in blocked.flags.items()} == {k: m.tolist() for k, m in whole.flags.items()}


def test_columns_from_pandas_and_pyarrow(predictors) -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    pred = predictors["tflite-fp32"]
    recs = records(40)
    recs[13]["Income"] = None
    cols = {k: [r.get(k) for r in recs] for k in NAMES}
    expected = pred.score_columns(cols)
    frame = pd.DataFrame({**cols, "Unrelated": range(40)})
    via_pandas = pred.score_columns(frame)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    via_arrow = pred.score_columns(table)
    via_batch = pred.score_columns(table.to_batches()[0])
    for got in (via_pandas, via_arrow, via_batch):
        assert got.probabilities.tolist() == expected.probabilities.tolist()
        assert got.results() == expected.results()
    nullable = frame.astype({"Income": "Float64", "Home": "category"})
    assert pred.score_columns(nullable).probabilities.tolist() == expected.probabilities.tolist()
    with pytest.raises(Exception, match="expected a mapping of column arrays"):
        pred.score_columns([[1, 2]])


def test_bad_column_shapes(predictors) -> None:
    pred = predictors["tflite-fp32"]
    with pytest.raises(Exception, match="different lengths"):
        pred.score_columns({"Income": [1.0, 2.0], "Age": [30], "Home": ["rent"], "Job": ["fixed"]})
    with pytest.raises(Exception, match="required but absent"):
        pred.score_columns({"Income": [1.0], "Home": ["rent"], "Job": ["fixed"]})
    with pytest.raises(Exception, match="1-D"):
        pred.score_columns({"Income": np.ones((2, 2)), "Age": [30, 31], "Home": ["rent"] * 2, "Job": ["x"] * 2})


def test_golden_records_reproduce(predictors) -> None:
    for pred in predictors.values():
        for g, rec in zip(pred.info.golden, GOLDEN_RECORDS):
            assert pred.score(rec).probability == g.score


# ---------------------------------------------------------------- property: all paths agree on anything
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-500, 500),
    st.sampled_from(["", "rent", "owner", "parents", "castle", "fixed", "partime", "12", "x" * 300]),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.binary(max_size=3),
)
_record = st.dictionaries(st.sampled_from(["Income", "Age", "Home", "Job", "Extra"]), _values, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recs=st.lists(_record, min_size=1, max_size=6), strict=st.booleans())
def test_every_path_gives_the_same_outcome(predictors, recs, strict) -> None:
    pred = predictors["tflite-fp32"].with_policy("strict" if strict else "lenient")
    singles = []
    for r in recs:
        try:
            singles.append(pred.score(r))
        except Exception as exc:  # noqa: BLE001 - checked below: always an InputError
            singles.append(exc)
    assert all(isinstance(s, Score) or type(s).__mro__[1].__name__.endswith("Error") for s in singles)
    batch = pred.score_batch(recs)
    for s, b in zip(singles, batch):
        if isinstance(s, Score):
            assert b.ok and b.score == s and math.isfinite(s.probability)
        else:
            assert not b.ok and type(b.error) is type(s) and b.error.reason == s.reason
    if any("Extra" in r for r in recs) and strict:
        return
    present = [n for n in NAMES if all(n in r for r in recs)]
    if len(present) < len(NAMES):
        return  # an absent column is a structural error for score_columns (tested elsewhere)
    cols = pred.score_columns({n: [r[n] for r in recs] for n in present})
    for i, s in enumerate(singles):
        if isinstance(s, Score):
            assert not cols.rejected[i] and float(cols.probabilities[i]) == s.probability
            assert cols.row_flags(i) == s.flags
        else:
            assert cols.rejected[i] and type(cols.errors[i]) is type(s)


# ---------------------------------------------------------------- fixed-width string columns
def _pre_for(categories: tuple[str, ...], allow_missing: bool = True, policy: str = "lenient") -> Preprocessor:
    from edgefin_runtime.manifest import CategoricalStep, FieldSpec, PreprocessSpec, Schema
    from edgefin_runtime.preprocess import Policy

    schema = Schema(
        (FieldSpec("c", "categorical", allow_missing=allow_missing, categories=categories),), "t", "bad", "good"
    )
    spec = PreprocessSpec((CategoricalStep("c", categories, fill=categories[0]),))
    return Preprocessor(schema, spec, Policy.strict() if policy == "strict" else Policy())


@pytest.mark.parametrize(
    "categories",
    [
        ("ignore", "other", "owner", "parents", "priv", "rent"),  # one code point tells them apart
        ("aa", "ab", "ba", "bb", "a"),  # no single position does: compare loop
        ("x", "yy", "zzz", "\u00e9t\u00e9", "w" * 300),  # lengths differ, non-ASCII, one over the cap
        ("no", "yes"),  # few categories: compare loop
    ],
)
@pytest.mark.parametrize("policy", ["lenient", "strict"])
def test_string_arrays_encode_like_lists(categories, policy) -> None:
    pre = _pre_for(categories, policy=policy)
    rng = np.random.default_rng(len(categories))
    pool = [*categories, "", "castle", "a", "b", "ab ", " rent", "RENT", "r", "x" * 400, "\u00e9", "\x00a"]
    values = [pool[i] for i in rng.integers(0, len(pool), 500)]
    as_list = pre.columns({"c": values})
    for arr in (
        np.array(values),
        np.array(values)[::-1][::-1],
        np.array(values).astype(">U400"),
        np.array(values, dtype="U400")[::1],
    ):
        got = pre.columns({"c": arr})
        assert got.matrix.tobytes() == as_list.matrix.tobytes()
        assert {i: type(e) for i, e in got.errors.items()} == {i: type(e) for i, e in as_list.errors.items()}
        assert {k: m.tolist() for k, m in got.flags.items()} == {k: m.tolist() for k, m in as_list.flags.items()}
    strided = np.repeat(np.array(values), 2)[::2]  # a non-contiguous view
    assert pre.columns({"c": strided}).matrix.tobytes() == as_list.matrix.tobytes()


def test_string_array_narrower_than_the_categories() -> None:
    pre = _pre_for(("ignore", "other", "owner", "parents", "priv", "rent"))
    short = np.array(["rent", "priv", "", "x"])  # U4: 'parents' cannot even be stored
    assert pre.columns({"c": short}).matrix.tobytes() == pre.columns({"c": short.tolist()}).matrix.tobytes()


@pytest.mark.parametrize("small_batch", [0, 10_000])
def test_small_and_vectorised_batch_paths_agree(predictors, monkeypatch, small_batch) -> None:
    """score_batch switches between a per-record loop and the vectorised path by size; both agree."""
    import edgefin_runtime.predictor as predictor_mod

    pred = predictors["tflite-int8"]
    good = records(20)
    mixed: list[Any] = [
        good[0],
        {"Age": 30},
        good[1],
        None,
        {**good[2], "Income": "lots"},
        good[3],
        {**good[5], "Age": math.inf},
        good[6],
    ] * 12
    monkeypatch.setattr(predictor_mod, "SMALL_BATCH", small_batch)
    res = pred.score_batch(mixed)
    assert [r.row for r in res] == list(range(len(mixed)))
    for r, rec in zip(res, mixed):
        if r.ok:
            assert r.score == pred.score(rec)
        else:
            with pytest.raises(Exception) as info:
                pred.score(rec)
            assert type(r.error) is type(info.value) and r.error.reason == info.value.reason
    assert sum(r.ok for r in res) == 4 * 12
