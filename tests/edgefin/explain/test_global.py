"""Top-k reasons, agreement, permutation importance, partial dependence (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefin.explain.importance import mean_abs_attribution, permutation_importance, ranked
from edgefin.explain.pdp import numeric_grid, partial_dependence
from edgefin.explain.ranking import agreement, top_reasons

NAMES = ("a", "b", "c", "d", "e")


def test_top_reasons_rank_positive_contributions_and_skip_protected() -> None:
    v = np.array([[0.3, -0.5, 0.1, 0.3, 0.2], [-0.1, -0.2, 0.0, -0.3, -0.01]])
    assert top_reasons(v, NAMES, 4) == [("a", "d", "e", "c"), ()]  # tie a/d broken by schema order
    assert top_reasons(v, NAMES, 2, exclude=("a",)) == [("d", "e"), ()]
    assert top_reasons(v, NAMES, 2, positive_only=False)[0] == ("b", "a")


def test_agreement_counts_set_order_and_top1() -> None:
    a = [("a", "b", "c", "d"), ("a", "b"), (), ("a", "b", "c", "d")]
    b = [("b", "a", "c", "d"), ("a", "b"), (), ("a", "b", "c", "e")]
    got = agreement(a, b)
    assert got["n"] == 4
    assert got["set"] == pytest.approx(3 / 4)
    assert got["ordered"] == pytest.approx(2 / 4)
    assert got["top1"] == pytest.approx(3 / 4)
    assert got["overlap"] == pytest.approx((1 + 1 + 1 + 0.75) / 4)
    with pytest.raises(ValueError):
        agreement(a, b[:2])


def _case(n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    cols = {
        "signal": rng.normal(size=n),
        "noise": rng.normal(size=n),
        "home": rng.choice(np.array(["own", "rent"], dtype=object), n),
    }
    y = (cols["signal"] + 0.3 * rng.normal(size=n) > 0).astype(int)

    def score(c):  # depends on signal strongly, on home slightly, never on noise
        return 1 / (1 + np.exp(-(3 * np.asarray(c["signal"], float) + 0.2 * (np.asarray(c["home"]) == "rent"))))

    return cols, y, score


def test_permutation_importance_finds_the_decisive_field() -> None:
    cols, y, score = _case()
    imp = permutation_importance(score, cols, y, ["signal", "noise", "home"], repeats=3, seed=1)
    f = imp["fields"]
    assert imp["auc"] > 0.9
    assert f["signal"]["auc_loss"] > 0.3
    assert f["noise"]["auc_loss"] == 0.0 and f["noise"]["sd"] == 0.0  # the model never reads it
    assert abs(f["home"]["auc_loss"]) < 0.02
    assert ranked({k: v["auc_loss"] for k, v in f.items()})[0] == "signal"
    again = permutation_importance(score, cols, y, ["signal"], repeats=3, seed=1)
    assert again["fields"]["signal"] == f["signal"]  # seeded


def test_mean_abs_attribution() -> None:
    v = np.array([[1.0, -2.0], [-3.0, 0.0]])
    assert mean_abs_attribution(v, ("x", "y")) == {"x": 2.0, "y": 1.0}


def test_partial_dependence_of_a_linear_score_is_the_line() -> None:
    cols, _, _ = _case(500)

    def score(c):
        return 0.5 * np.asarray(c["signal"], float) + 1.0 * (np.asarray(c["home"]) == "rent")

    pd_ = partial_dependence(score, cols, "signal", "numeric", ice_rows=5)
    grid = np.asarray(pd_["grid"])
    assert len(grid) >= 8 and np.all(np.diff(grid) > 0)
    offset = np.mean(np.asarray(cols["home"]) == "rent")
    np.testing.assert_allclose(pd_["pd"], 0.5 * grid + offset, atol=1e-5)
    assert len(pd_["ice"]) == 5 and all(row[0] == 0.0 for row in pd_["ice"])  # centred ICE
    np.testing.assert_allclose(pd_["ice"][0], 0.5 * (grid - grid[0]), atol=1e-4)
    cat = partial_dependence(score, cols, "home", "categorical", categories=["own", "rent"])
    assert cat["pd"][1] - cat["pd"][0] == pytest.approx(1.0)


def test_numeric_grid_is_rounded_not_raw_values() -> None:
    v = np.random.default_rng(0).normal(100, 15, 1000)
    grid = numeric_grid(v)
    assert all(float(f"{g:.3g}") == g for g in grid)
    assert not set(grid) & set(v.tolist())
