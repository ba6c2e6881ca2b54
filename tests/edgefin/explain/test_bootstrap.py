"""Bootstrap confidence intervals: deterministic for a seed, bracketing the point estimate."""

from __future__ import annotations

import numpy as np
import pytest

from edgefin.metrics import auc, bootstrap_ci


def _data(n: int = 400):
    rng = np.random.default_rng(0)
    y = (rng.random(n) < 0.3).astype(int)
    p = np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.2, n), 0.001, 0.999)
    return y, p


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    y, p = _data()
    a = bootstrap_ci(y, p, ("auc", "ks"), n_boot=200, seed=7)
    b = bootstrap_ci(y, p, ("auc", "ks"), n_boot=200, seed=7)
    c = bootstrap_ci(y, p, ("auc", "ks"), n_boot=200, seed=8)
    assert a == b
    assert a["auc"] != c["auc"]
    assert a["auc"]["value"] == pytest.approx(auc(y, p))
    for m in ("auc", "ks"):
        assert a[m]["lo"] <= a[m]["value"] <= a[m]["hi"]
    assert 0.02 < a["auc"]["hi"] - a["auc"]["lo"] < 0.2  # a 400-row split: a few hundredths wide
    assert a["_meta"] == {"level": 0.95, "n_boot": 200, "seed": 7, "rows": 400}


def test_bad_input() -> None:
    y, p = _data()
    with pytest.raises(ValueError, match="both classes"):
        bootstrap_ci(np.zeros(10), np.linspace(0, 1, 10))
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_ci(y, p, ("auc", "f2"))


def test_vectorised_resample_metrics_equal_the_library_ones() -> None:
    from edgefin import metrics as M

    y, p = _data(300)
    p = np.round(p, 2)  # ties
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 300, (5, 300))
    for name, f in (("auc", M.auc), ("ks", M.ks), ("brier", M.brier), ("logloss", M.logloss), ("gini", M.gini)):
        got = M._boot_values(name, y[idx], p[idx])
        want = [f(y[i], p[i]) for i in idx]
        np.testing.assert_allclose(got, want, atol=1e-12, err_msg=name)
