"""Metrics against values checked by hand on a four-row example, thresholds and flip rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgefin import metrics as m
from edgefin.errors import UsageError

Y = [0, 0, 1, 1]
P = [0.1, 0.4, 0.35, 0.8]


def test_ranking_metrics_by_hand():
    # pairs (pos, neg): (0.35,0.1) ok, (0.35,0.4) wrong, (0.8,0.1) ok, (0.8,0.4) ok -> 3/4
    assert m.auc(Y, P) == 0.75
    assert m.gini(Y, P) == 0.5
    # CDF gap: after 0.1 -> neg 1/2, pos 0; after 0.4 -> neg 1, pos 1/2 -> KS = 0.5
    assert m.ks(Y, P) == 0.5


def test_probability_metrics_by_hand():
    assert m.brier(Y, P) == pytest.approx((0.1**2 + 0.4**2 + 0.65**2 + 0.2**2) / 4)
    assert m.logloss(Y, P) == pytest.approx(-(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4)


def test_threshold_metrics_by_hand():
    r = m.at_threshold(Y, P, 0.35)  # predictions 0,1,1,1 (score >= threshold is positive)
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (2, 1, 1, 0)
    assert r["accuracy"] == 0.75 and r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == 1.0 and r["f1"] == pytest.approx(0.8) and r["positive_rate"] == 0.75
    none = m.at_threshold(Y, P, 0.95)
    assert none["precision"] == 0.0 and none["recall"] == 0.0


def test_evaluate_has_every_key():
    r = m.evaluate(Y, P, 0.5)
    for k in ("auc", "gini", "ks", "brier", "logloss", "n", "accuracy", "precision", "recall", "f1", "threshold"):
        assert k in r
    assert r["n"] == 4 and r["positives"] == 2


def test_max_ks_threshold_reaches_the_ks():
    t = m.max_ks_threshold(Y, P)
    assert t == 0.8  # flags only 0.8: TPR 1/2, FPR 0 (the first of two equal KS points)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 500), 0, 1)
    t = m.max_ks_threshold(y, p)
    tpr = (p[y == 1] >= t).mean()
    fpr = (p[y == 0] >= t).mean()
    assert tpr - fpr == pytest.approx(m.ks(y, p))


def test_rate_threshold_flags_the_share():
    p = np.linspace(0.05, 0.95, 100)
    t = m.choose_threshold(None, p, "rate", 0.2)
    assert (p >= t).sum() == 20
    ties = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    t = m.rate_threshold(ties, 0.4)  # two rows wanted, but three tie at 0.5: flag fewer, not more
    assert (ties >= t).sum() == 1


def test_parse_threshold():
    assert m.parse_threshold("max-ks") == ("max_ks", None)
    assert m.parse_threshold("0.35") == ("fixed", 0.35)
    assert m.parse_threshold(0.35) == ("fixed", 0.35)
    assert m.parse_threshold("rate:0.2") == ("rate", 0.2)
    for bad in ("1.5", "rate:0", "rate:1.2", "median", "rate:x"):
        with pytest.raises(UsageError):
            m.parse_threshold(bad)
    assert m.choose_threshold(Y, P, "fixed", 0.3) == 0.3


def test_flip_rate():
    assert m.flip_rate([0.1, 0.6, 0.49, 0.51], [0.2, 0.4, 0.51, 0.52], 0.5) == 0.5
    assert m.flip_rate([0.5], [0.5], 0.5) == 0.0
    with pytest.raises(ValueError):
        m.flip_rate([0.1], [0.1, 0.2], 0.5)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="NaN or infinite"):
        m.auc(Y, [0.1, float("nan"), 0.3, 0.4])
    with pytest.raises(ValueError):
        m.ks([1, 1], [0.2, 0.3])
