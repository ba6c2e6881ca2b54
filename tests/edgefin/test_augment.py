"""Augmentation touches the training rows only, keeps them exact, is a pure function of the seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from edgefin.data import fit_schema, infer_kinds, resolve_target, split_indices, target_vector
from edgefin.data.augment import METHODS, augment
from edgefin.errors import UsageError
from tests.fixtures.tabular import loans

SYNTH = ["smote", "jitter", "smote+jitter"]


@pytest.fixture(scope="module")
def split():
    frame = loans(500, seed=11)
    t = resolve_target(frame, "default", "yes", "loans")
    kinds = infer_kinds(frame, target="default", source="loans")
    y, _ = target_vector(frame, t, "loans")
    y = y.astype(np.int64)
    idx = split_indices(y, seed=1)
    train, ytr = frame.iloc[idx.train], y[idx.train]
    schema = fit_schema(train, kinds, t, source="loans", allow_missing={"income", "region"})
    held_out = frame.iloc[np.concatenate([idx.validation, idx.test])]
    return train, ytr, schema, held_out


@pytest.mark.parametrize("method", SYNTH)
def test_real_rows_unchanged_synthetic_rows_marked_and_balanced(split, method):
    train, y, schema, held_out = split
    snapshot = train.copy(deep=True)
    out, yo = augment(train, y, method=method, schema=schema, seed=3)
    pd.testing.assert_frame_equal(train, snapshot)  # the input is not modified
    n = len(train)
    pd.testing.assert_frame_equal(out.iloc[:n], train)  # the real rows come back exact, same index and dtypes
    np.testing.assert_array_equal(yo[:n], y)
    new = out.iloc[n:]
    assert len(new) > 0 and (new.index < 0).all() and new.index.is_unique
    assert not set(new.index) & set(held_out.index) and not set(new.index) & set(train.index)
    assert (yo[n:] == 1).all() and yo.mean() == pytest.approx(0.5, abs=0.01)  # minority 'yes' up to the majority
    assert (new["default"] == "yes").all()
    # synthetic values stay plausible: training ranges, integers stay integers, known categories only
    for col in ("income", "age", "debt"):
        seen = train[col].dropna()
        vals = new[col].dropna()
        assert vals.between(seen.min(), seen.max()).all()
        assert (vals == np.round(vals)).all()
    assert set(new["region"].dropna()) <= set(train["region"].dropna())
    assert set(new["owner"].dropna().map(bool)) <= {True, False}
    assert out.dtypes.to_dict() == train.dtypes.to_dict()


def test_missing_values_are_carried_not_invented(split):
    train, y, schema, _ = split
    out, _ = augment(train, y, method="jitter", schema=schema, seed=3)
    new = out.iloc[len(train) :]
    assert new["income"].isna().any()  # copies of minority rows keep their missing incomes
    assert not new["age"].isna().any()  # a field never missing stays present
    out, _ = augment(train, y, method="smote", schema=schema, seed=3)
    new = out.iloc[len(train) :]
    assert not new["age"].isna().any()
    assert new["income"].isna().mean() <= train["income"].isna().mean() * 3


@pytest.mark.parametrize("method", SYNTH)
def test_reproducible_with_a_seed(split, method):
    train, y, schema, _ = split
    a, ya = augment(train, y, method=method, schema=schema, seed=5)
    b, yb = augment(train, y, method=method, schema=schema, seed=5)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    c, _ = augment(train, y, method=method, schema=schema, seed=6)
    assert not a.iloc[len(train) :].equals(c.iloc[len(train) :])


def test_jitter_perturbs_only_the_copies(split):
    train, y, schema, _ = split
    out, _ = augment(train, y, method="jitter", schema=schema, seed=2, noise=0.1)
    new = out.iloc[len(train) :]
    minority = train[y == 1]
    # each copy's categoricals match some minority row; its numerics moved by a fraction of the spread
    assert set(zip(new["region"].fillna("?"), new["owner"])) <= set(
        zip(minority["region"].fillna("?"), minority["owner"])
    )
    age_std = train["age"].std()
    nearest = np.abs(new["age"].to_numpy()[:, None] - minority["age"].to_numpy()[None, :]).min(axis=1)
    assert np.median(nearest) < 0.2 * age_std


def test_none_ratio_and_bad_input(split):
    train, y, schema, _ = split
    out, yo = augment(train, y, method="none", schema=schema, seed=1)
    pd.testing.assert_frame_equal(out, train)
    half, yh = augment(train, y, method="smote", schema=schema, seed=1, ratio=0.5)
    assert (yh == 1).sum() == pytest.approx(0.5 * (yh == 0).sum(), abs=1)
    assert set(METHODS) == {"none", "smote", "jitter", "smote+jitter"}
    with pytest.raises(UsageError, match="`augment`"):
        augment(train, y, method="mixup", schema=schema, seed=1)


@pytest.mark.slow
def test_train_step_augments_the_training_split_only(tmp_path):
    """Through `edgefin train`: validation and test rows are byte-for-byte those of an un-augmented run."""
    from edgefin.data import load_split
    from edgefin.rundir import RunDir
    from edgefin.train import train

    frame = loans(400, seed=9)
    runs = {}
    for method in ("none", "smote"):
        root = tmp_path / method
        m = train(
            frame, root, target="default", positive="yes", hidden=(8,), epochs=2, patience=2, seed=4, augment=method
        )
        runs[method] = (RunDir.at(root), m)
    for split in ("validation", "test"):
        a, ya = load_split(runs["none"][0], split)
        b, yb = load_split(runs["smote"][0], split)
        pd.testing.assert_frame_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
        assert (a.index >= 0).all()
    assert runs["smote"][1]["model"]["train_rows"] > runs["none"][1]["model"]["train_rows"]
    assert runs["smote"][1]["splits"] == runs["none"][1]["splits"]
    # preprocessing is fitted on the real training rows, not on synthetic ones
    assert runs["none"][0].preprocess_json.read_text() == runs["smote"][0].preprocess_json.read_text()
