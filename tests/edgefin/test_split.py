"""Splits are deterministic from the seed, stratified, disjoint and complete."""

from __future__ import annotations

import numpy as np
import pytest

from edgefin.data.split import split_indices
from edgefin.errors import DataError


def labels(n=1000, share=0.2, seed=0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, int(n * share), replace=False)] = 1
    return y


def test_same_seed_same_rows_other_seed_other_rows():
    y = labels()
    a, b, c = split_indices(y, seed=7), split_indices(y, seed=7), split_indices(y, seed=8)
    for s in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(a, s), getattr(b, s))
    assert not np.array_equal(a.test, c.test)


def test_disjoint_complete_and_sized():
    y = labels()
    idx = split_indices(y, seed=1, test_size=0.2, validation_size=0.1)
    allrows = np.concatenate([idx.train, idx.validation, idx.test])
    assert sorted(allrows) == list(range(y.size))
    assert idx.sizes() == {"train": 700, "validation": 100, "test": 200}


def test_stratified():
    y = labels(share=0.13)
    idx = split_indices(y, seed=3)
    for s in ("train", "validation", "test"):
        rows = getattr(idx, s)
        assert abs(y[rows].mean() - y.mean()) < 2.0 / rows.size


def test_zero_shares_when_splits_come_from_files():
    y = labels(200)
    idx = split_indices(y, seed=0, test_size=0.0, validation_size=0.25)
    assert idx.test.size == 0 and idx.validation.size == 50
    idx = split_indices(y, seed=0, test_size=0.0, validation_size=0.0)
    assert idx.train.size == 200


def test_too_few_rows_of_a_class():
    y = np.array([0] * 50 + [1] * 3)
    with pytest.raises(DataError, match="only 3 rows of the positive class"):
        split_indices(y, seed=0)


def test_bad_shares():
    with pytest.raises(ValueError):
        split_indices(labels(), seed=0, test_size=0.6, validation_size=0.5)
