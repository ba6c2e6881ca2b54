"""The acceptance-set generator: synthetic, deterministic, near the threshold, never a data row
(no TensorFlow: the source model is a fixed logistic function of the encoded features)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefin_converters import acceptance as acc
from edgefin_converters.errors import ConversionFailedError
from edgefin_runtime.manifest import FieldSpec, Schema
from edgefin_runtime.preprocess import Policy, Preprocessor

from tests.fixtures.bundles import TINY_SCHEMA, fit_spec, tiny_data

THRESHOLD = 0.4


def _scorer(n_features: int, seed: int = 1):
    w = np.random.default_rng(seed).normal(size=n_features)
    return lambda x: 1.0 / (1.0 + np.exp(-(np.asarray(x, dtype=np.float64) @ w)))


@pytest.fixture(scope="module")
def tiny():
    cols, _ = tiny_data()
    spec = fit_spec(TINY_SCHEMA, cols)
    return cols, spec, _scorer(spec.n_features)


def _gen(tiny, **kw):
    cols, spec, score = tiny
    kw.setdefault("avoid", [cols])
    return acc.generate(
        TINY_SCHEMA, spec, score, THRESHOLD, frequencies=acc.category_frequencies(TINY_SCHEMA, cols), **kw
    )


def test_deterministic_for_a_seed_and_different_for_another(tiny):
    a, b, c = _gen(tiny, seed=0), _gen(tiny, seed=0), _gen(tiny, seed=1)
    assert a.records == b.records and np.array_equal(a.source_scores, b.source_scores) and a.golden == b.golden
    assert a.records != c.records


def test_composition_edges_near_threshold_and_spread(tiny):
    g = _gen(tiny, count=128)
    assert len(g.records) == len(g.source_scores) == len(g.kinds) == 128
    kinds = np.array(g.kinds)
    assert set(g.kinds) == {"edge", "near", "spread"}
    near = g.source_scores[kinds == "near"]
    assert len(near) == 64 and np.all(np.abs(near - THRESHOLD) <= acc.NEAR_BAND)
    assert (near < THRESHOLD).any() and (near >= THRESHOLD).any()  # both sides of the threshold
    edges = [r for r, k in zip(g.records, g.kinds) if k == "edge"]
    for f in TINY_SCHEMA.fields:  # every field that may be missing is missing in an edge record
        if f.allow_missing:
            assert any(r[f.name] is None for r in edges), f.name
        if f.kind == "numeric":  # both range ends appear
            assert any(r[f.name] == f.min for r in edges) and any(r[f.name] == f.max for r in edges), f.name
    spread = g.source_scores[kinds == "spread"]
    assert spread.max() - spread.min() > 0.3  # spread over the score range
    json.dumps(g.records, allow_nan=False)  # strict JSON


def test_records_are_unseen_free_in_range_and_accepted_by_a_strict_policy(tiny):
    g = _gen(tiny)
    cats = {f.name: set(f.categories) for f in TINY_SCHEMA.fields if f.kind == "categorical"}
    strict_but_imputing = Policy(unknown_fields="reject", unseen_categories="reject")
    pre = Preprocessor(TINY_SCHEMA, tiny[1], strict_but_imputing)
    for r in g.records:
        assert set(r) == set(TINY_SCHEMA.names)
        for name, known in cats.items():
            assert r[name] is None or r[name] in known
        for f in TINY_SCHEMA.fields:
            if f.kind == "numeric" and r[f.name] is not None:
                assert f.min <= r[f.name] <= f.max * (1 + 1e-3)
        pre.record(r)  # raises if anything is unseen or unknown


def test_source_scores_are_the_scorers_scores_of_the_records(tiny):
    cols, spec, score = tiny
    g = _gen(tiny)
    x = Preprocessor(TINY_SCHEMA, spec).columns({n: [r[n] for r in g.records] for n in TINY_SCHEMA.names}).matrix
    assert np.allclose(g.source_scores, score(x))


def test_golden_subset_covers_missing_values_and_both_sides(tiny):
    g = _gen(tiny)
    assert len(g.golden) == acc.GOLDEN_COUNT == len(set(g.golden))
    assert any(v is None for i in g.golden for v in g.records[i].values())
    s = g.source_scores[g.golden]
    assert (s < THRESHOLD).any() and (s >= THRESHOLD).any()
    assert int(np.argmin(g.source_scores)) in g.golden and int(np.argmax(g.source_scores)) in g.golden


def test_categories_follow_training_frequencies():
    cols, _ = tiny_data()
    cols = {**cols, "Home": ["owner"] * (len(cols["Home"]) - 1) + ["rent"]}  # "parents" never seen
    freq = acc.category_frequencies(TINY_SCHEMA, cols)
    assert freq["Home"]["parents"] == 0.0 and freq["Home"]["owner"] > 0.99
    spec = fit_spec(TINY_SCHEMA, tiny_data()[0])
    g = acc.generate(TINY_SCHEMA, spec, _scorer(spec.n_features), THRESHOLD, frequencies=freq, count=64)
    assert all(r["Home"] != "parents" for r in g.records)
    uniform = acc.generate(TINY_SCHEMA, spec, _scorer(spec.n_features), THRESHOLD, count=64)  # unknown: uniform
    assert {r["Home"] for r in uniform.records} == {"owner", "rent", "parents"}


def test_no_record_equals_a_data_row_even_when_the_data_holds_the_first_choice(tiny):
    """Feed the generator's own first output back as data rows: the next set must avoid every one."""
    cols, spec, score = tiny
    first = _gen(tiny, avoid=[], count=64)
    planted = {n: [r[n] for r in first.records] for n in TINY_SCHEMA.names}
    second = _gen(tiny, avoid=[cols, planted], count=64)
    assert acc.equal_rows(first.records, TINY_SCHEMA, [planted]) == 64  # the check can see a hit
    assert acc.equal_rows(second.records, TINY_SCHEMA, [cols, planted]) == 0
    keys = {json.dumps(r, sort_keys=True) for r in second.records}
    assert len(keys) == len(second.records)  # and no two records are equal either


def test_a_row_equal_up_to_representation_is_still_a_collision():
    schema = Schema(
        fields=(FieldSpec("n", "numeric"), FieldSpec("c", "categorical", allow_missing=True, categories=("1", "2"))),
        target="y",
        positive_label="1",
        negative_label="0",
    )
    rows = {"n": np.array([35], dtype=np.int64), "c": np.array([1], dtype=object)}
    assert acc.equal_rows([{"n": 35.0, "c": "1"}], schema, [rows]) == 1
    rows_missing = {"n": np.array([35.0]), "c": np.array([None], dtype=object)}
    assert acc.equal_rows([{"n": 35.0, "c": None}], schema, [rows_missing]) == 1
    assert acc.equal_rows([{"n": 35.5, "c": None}], schema, [rows_missing]) == 0


def test_too_few_combinations_is_a_clear_error():
    from edgefin_runtime.manifest import CategoricalStep, PreprocessSpec

    schema = Schema(
        fields=(FieldSpec("c", "categorical", categories=("a", "b")),),
        target="y",
        positive_label="1",
        negative_label="0",
    )
    spec = PreprocessSpec((CategoricalStep("c", ("a", "b"), "a"),))
    with pytest.raises(ConversionFailedError, match=r"acceptance set: only 2 of 16 synthetic records"):
        acc.generate(schema, spec, _scorer(spec.n_features), 0.5, count=16)
    data = {"c": np.array(["a", "b"], dtype=object)}  # every combination is a data row
    with pytest.raises(ConversionFailedError, match=r"only 0 of 16"):
        acc.generate(schema, spec, _scorer(spec.n_features), 0.5, avoid=[data], count=16)


@pytest.mark.parametrize("count", [0, acc.MIN_COUNT - 1, acc.MAX_COUNT + 1])
def test_count_out_of_bounds_is_refused(tiny, count):
    with pytest.raises(ValueError, match="acceptance count"):
        _gen(tiny, count=count)


def test_a_scorer_that_returns_nan_is_refused(tiny):
    cols, spec, _ = tiny
    with pytest.raises(ConversionFailedError, match="no finite score"):
        acc.generate(TINY_SCHEMA, spec, lambda x: np.full(len(x), np.nan), THRESHOLD, count=16)


def test_threshold_outside_every_score_still_fills_the_set(tiny):
    cols, spec, _ = tiny
    g = acc.generate(TINY_SCHEMA, spec, lambda x: np.full(len(x), 0.2) + 1e-3 * x[:, 0], 0.9, count=32)
    assert len(g.records) == 32 and g.kinds.count("near") == 16  # the closest candidates instead
