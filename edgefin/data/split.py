"""Deterministic, stratified train / validation / test splits.

The same data and seed always give the same rows in each split (on any machine: the split uses a
NumPy generator seeded explicitly, via scikit-learn's ``train_test_split``). Rows keep their index,
which is their row number in the source file, so later messages can point at the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from ..errors import DataError

MIN_PER_CLASS = 2  # each split needs rows of both classes for AUC and early stopping


@dataclass(frozen=True)
class SplitIndices:
    """Positions (0-based, into the frame that was split) of each split's rows, each sorted."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": int(self.train.size), "validation": int(self.validation.size), "test": int(self.test.size)}


def split_indices(
    y: np.ndarray, *, seed: int, test_size: float = 0.2, validation_size: float = 0.2, source: str = "data"
) -> SplitIndices:
    """Stratified split of ``len(y)`` rows. ``test_size``/``validation_size`` are shares of all rows;
    either may be 0 when that split comes from its own file."""
    y = np.asarray(y)
    n = y.size
    if not (0 <= test_size < 1 and 0 <= validation_size < 1 and test_size + validation_size < 1):
        raise ValueError(
            f"split shares must be in [0, 1) and sum below 1, got test={test_size}, validation={validation_size}"
        )
    _check_enough(y, test_size, validation_size, source)
    idx = np.arange(n)
    rest, test = _cut(idx, y, test_size, seed)
    val_share = validation_size / (1.0 - test_size) if validation_size else 0.0
    train, val = _cut(rest, y[rest], val_share, seed + 1)
    return SplitIndices(train=np.sort(train), validation=np.sort(val), test=np.sort(test))


def _cut(idx: np.ndarray, y: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if share <= 0:
        return idx, np.array([], dtype=idx.dtype)
    keep, cut = train_test_split(idx, test_size=share, stratify=y, random_state=np.random.RandomState(seed))
    return np.asarray(keep), np.asarray(cut)


def _check_enough(y: np.ndarray, test_size: float, validation_size: float, source: str) -> None:
    parts = 1 + (test_size > 0) + (validation_size > 0)
    values, counts = np.unique(y, return_counts=True)
    smallest = min(test_size or 1, validation_size or 1, 1 - test_size - validation_size)
    for v, c in zip(values, counts):
        if c * smallest < MIN_PER_CLASS or c < MIN_PER_CLASS * parts:
            label = "positive" if v == 1 else "negative"
            raise DataError(
                f"{source} has only {c} rows of the {label} class; splitting it into {parts} parts "
                f"needs at least {int(np.ceil(MIN_PER_CLASS / smallest))} of each class. "
                f"Add rows, or pass `test_data` and `validation_data` files"
            )
