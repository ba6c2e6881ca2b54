"""Exact Baseline-Shapley over field groups against an independent brute force (all orderings)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from edgefin.explain.shapley import FieldGroups, coalitions, exact_shapley, shapley_weights

WIDTHS = (1, 3, 2, 1)  # a numeric field, a one-hot field, a field with its missing indicator, a numeric field
GROUPS = FieldGroups(
    ("a", "b", "c", "d"),
    tuple((sum(WIDTHS[:i]), sum(WIDTHS[: i + 1])) for i in range(len(WIDTHS))),
    sum(WIDTHS),
)


def tiny_model(seed: int = 0):
    """A 7-16-1 ReLU network with a sigmoid: interactions between every field."""
    rng = np.random.default_rng(seed)
    w1, b1 = rng.normal(size=(7, 16)), rng.normal(size=16)
    w2, b2 = rng.normal(size=16), 0.1

    def predict(x: np.ndarray) -> np.ndarray:
        h = np.maximum(np.asarray(x, dtype=np.float64) @ w1 + b1, 0.0)
        return 1.0 / (1.0 + np.exp(-(h @ w2 + b2)))

    return predict


def brute_force(predict, x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Shapley values as the mean marginal contribution over all n! orderings of the fields."""
    n = GROUPS.n
    phi = np.zeros(n)
    for order in itertools.permutations(range(n)):
        z = ref.astype(np.float64).copy()
        prev = predict(z[None, :])[0]
        for j in order:
            a, b = GROUPS.spans[j]
            z[a:b] = x[a:b]
            cur = predict(z[None, :])[0]
            phi[j] += cur - prev
            prev = cur
    return phi / math.factorial(n)


def test_exact_shapley_equals_brute_force_and_adds_up() -> None:
    rng = np.random.default_rng(1)
    predict = tiny_model()
    x = rng.normal(size=(6, 7)).astype(np.float32)
    ref = rng.normal(size=7).astype(np.float32)
    att = exact_shapley(predict, x, ref, GROUPS)
    for i in range(len(x)):
        np.testing.assert_allclose(att.values[i], brute_force(predict, x[i], ref), atol=1e-9)
    assert att.additivity_gap() < 1e-9
    np.testing.assert_allclose(att.scores, predict(x), atol=1e-12)
    assert att.reference_score == pytest.approx(float(predict(ref[None, :])[0]))


def test_chunking_and_logit_link() -> None:
    rng = np.random.default_rng(2)
    predict = tiny_model(3)
    x = rng.normal(size=(5, 7)).astype(np.float32)
    ref = np.zeros(7, dtype=np.float32)
    whole = exact_shapley(predict, x, ref, GROUPS)
    chunked = exact_shapley(predict, x, ref, GROUPS, chunk_rows=16)  # one record per chunk
    np.testing.assert_array_equal(whole.values, chunked.values)
    logit = exact_shapley(predict, x, ref, GROUPS, link="logit")
    p = predict(x)
    np.testing.assert_allclose(logit.scores, np.log(p / (1 - p)), atol=1e-6)
    assert logit.additivity_gap() < 1e-9


def test_a_field_the_model_ignores_gets_zero_and_symmetric_fields_share() -> None:
    def predict(x: np.ndarray) -> np.ndarray:  # depends on a and on d only, symmetrically, with an interaction
        return x[:, 0] * x[:, 6] + x[:, 0] + x[:, 6]

    x = np.array([[2.0, 1, 0, 0, 5, 1, 2.0]], dtype=np.float32)
    att = exact_shapley(predict, x, np.zeros(7, dtype=np.float32), GROUPS)
    assert att.values[0, 1] == 0.0 and att.values[0, 2] == 0.0
    assert att.values[0, 0] == pytest.approx(att.values[0, 3]) == pytest.approx(4.0)


def test_helpers_and_limits() -> None:
    assert coalitions(3).tolist()[5] == [True, False, True]
    assert sum(shapley_weights(4)[s] * math.comb(3, s) for s in range(4)) == pytest.approx(1.0)
    big = FieldGroups(tuple(f"f{i}" for i in range(17)), tuple((i, i + 1) for i in range(17)), 17)
    with pytest.raises(ValueError, match="at most 16 fields"):
        exact_shapley(lambda z: z[:, 0], np.zeros((1, 17)), np.zeros(17), big)
    with pytest.raises(ValueError, match="do not match the 7 model inputs"):
        exact_shapley(lambda z: z[:, 0], np.zeros((1, 6)), np.zeros(7), GROUPS)


def test_groups_from_a_preprocessing_spec() -> None:
    from edgefin_runtime.manifest import PreprocessSpec

    spec = PreprocessSpec.from_dict(
        {
            "n_features": 6,
            "steps": [
                {"kind": "numeric", "field": "Income", "mean": 1.0, "scale": 2.0, "fill": 1.0, "indicator": True},
                {
                    "kind": "categorical",
                    "field": "Home",
                    "categories": ["owner", "rent"],
                    "fill": "owner",
                    "encoding": "onehot",
                },
                {"kind": "numeric", "field": "Age", "mean": 40.0, "scale": 9.0, "fill": 40.0, "indicator": False},
            ],
        }
    )
    g = FieldGroups.from_spec(spec)
    assert g.names == ("Income", "Home", "Age")
    assert g.spans[0] == (0, 2) and g.spans[2][1] == g.n_features == spec.n_features
