"""The attribution methods on synthetic games: the coalition tables and the formulas the Explainer uses,
checked against exact Shapley values (the tiny fixture model has 4 fields, below where ``stratified``
differs from ``exact``; the demo's 13-field figures are in benchmarks/explain_methods.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

from edgefin_runtime.explain import (
    METHODS,
    _attribute,
    _exact_table,
    _resolve,
    _rows_bound,
    _stratified_table,
)

Game = Callable[[np.ndarray], float]


def harsanyi_game(k: int, max_order: int, seed: int) -> Game:
    """v(S) = sum of random dividends a(T) over the subsets T of S with |T| <= max_order."""
    rng = np.random.default_rng(seed)
    dividends = {
        t: float(rng.normal()) for order in range(1, max_order + 1) for t in itertools.combinations(range(k), order)
    }

    def v(s: np.ndarray) -> float:
        members = set(np.flatnonzero(s).tolist())
        return sum(a for t, a in dividends.items() if members.issuperset(t))

    return v


def logistic_game(k: int, seed: int) -> Game:
    """A sigmoid of a linear score plus pair terms: interactions of every order, like the credit model."""
    rng = np.random.default_rng(seed)
    w, q = rng.normal(size=k), rng.normal(size=(k, k)) * 0.3

    def v(s: np.ndarray) -> float:
        x = s.astype(np.float64)
        return float(1.0 / (1.0 + np.exp(-(w @ x + x @ q @ x - 0.5))))

    return v


def exact_shapley(v: Game, k: int) -> np.ndarray:
    z, w = _exact_table(k)
    return w @ np.array([v(row[:k]) for row in z])


def stratified(v: Game, k: int) -> tuple[np.ndarray, float, float]:
    """The Explainer's path: the table's rows scored, then the attribution (v0 = v(empty) is known)."""
    z, weights = _stratified_table(k)
    assert z.shape == (1 + 2 * k + k * (k - 1), k + 1) and not z[:, k].any()  # + the inactive column
    vals = np.array([v(row[:k]) for row in z])
    v0 = v(np.zeros(k, dtype=bool))
    phi, p = _attribute("stratified", k, vals, v0, weights)
    return np.array(phi), p, v0


@pytest.mark.parametrize("k", [5, 6, 7, 9])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_stratified_is_exact_without_five_way_interactions(k: int, order: int) -> None:
    v = harsanyi_game(k, order, seed=k * 10 + order)
    phi, p, v0 = stratified(v, k)
    assert p == v(np.ones(k, dtype=bool))
    np.testing.assert_allclose(phi, exact_shapley(v, k), rtol=0, atol=1e-10)


@pytest.mark.parametrize("k", [5, 8, 11])
def test_stratified_is_efficient_but_not_exact_with_higher_interactions(k: int) -> None:
    v = logistic_game(k, seed=k)
    phi, p, v0 = stratified(v, k)
    assert float(np.sum(phi)) == pytest.approx(p - v0, abs=1e-12)
    exact = exact_shapley(v, k)
    assert np.max(np.abs(phi - exact)) > 1e-6  # an approximation here, so the test above is not vacuous
    assert np.max(np.abs(phi - exact)) < 0.1 * np.max(np.abs(exact))


def test_stratified_gives_a_null_player_exactly_zero_and_is_deterministic() -> None:
    k = 7
    base = harsanyi_game(k, 3, seed=3)

    def v(s: np.ndarray) -> float:  # field 2 changes nothing
        s = s.copy()
        s[2] = False
        return base(s) + (0.25 if s[0] and s[4] and s[5] and s[6] and s[1] else 0.0)  # a 5-way term too

    phi, p, v0 = stratified(v, k)
    assert phi[2] == 0.0
    again, _, _ = stratified(v, k)
    assert phi.tolist() == again.tolist()


def test_stratified_is_the_default_and_exact_up_to_five_fields() -> None:
    assert "stratified" in METHODS
    for method in ("stratified", "auto"):
        assert [_resolve(method, k) for k in range(8)] == ["exact"] * 6 + ["stratified"] * 2
    assert _rows_bound("auto", 13) == 183 and _rows_bound("stratified", 5) == 32 and _rows_bound("paired", 13) == 27


def test_exact_gives_a_field_that_changes_no_score_exactly_zero() -> None:
    """On an int8-like output grid a field's effect can vanish; the weighted sum of its (all zero)
    marginal contributions must not leave rounding noise that could make it a reason."""
    k = 9
    smooth = logistic_game(k, seed=4)

    def v(s: np.ndarray) -> float:
        s = s.copy()
        s[3] = False  # field 3 changes nothing
        return round(smooth(s) * 256) / 256

    z, w = _exact_table(k)
    vals = np.array([v(row[:k]) for row in z[1:]])
    raw = w @ np.concatenate([[v(np.zeros(k, dtype=bool))], vals])
    assert raw[3] != 0.0  # the plain product leaves noise here, so the test below can fail
    phi, p = _attribute("exact", k, vals, v(np.zeros(k, dtype=bool)), w)
    assert phi[3] == 0.0
    assert sum(phi) == pytest.approx(p - v(np.zeros(k, dtype=bool)), abs=1e-12)
