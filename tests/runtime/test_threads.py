"""One Predictor shared by 16 threads gives exactly the single-threaded results."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tests.fixtures.bundles import tiny_data

NAMES = ("Income", "Age", "Home", "Job")
THREADS = 16


def test_sixteen_threads_are_bit_identical_to_one(variant, predictors) -> None:
    pred = predictors[variant]
    cols, _ = tiny_data(400, seed=11)
    recs = [{k: cols[k][i] for k in NAMES} for i in range(400)]
    recs[17]["Age"] = "bad"  # a rejected row in the mix
    expected_single = [_outcome(pred, r) for r in recs]
    expected_batch = _plain(pred.score_batch(recs))
    expected_cols = pred.score_columns(cols).probabilities
    barrier = threading.Barrier(THREADS)

    def work(t: int) -> tuple[list[Any], list[Any], np.ndarray]:
        barrier.wait()  # start together so the threads really overlap
        order = recs[t:] + recs[:t]  # each thread walks the records from a different place
        single = [_outcome(pred, r) for r in order]
        single = single[len(recs) - t :] + single[: len(recs) - t]
        return single, _plain(pred.score_batch(recs)), pred.score_columns(cols).probabilities

    with ThreadPoolExecutor(THREADS) as pool:
        for single, batch, col in pool.map(work, range(THREADS)):
            assert single == expected_single
            assert batch == expected_batch
            assert col.tobytes() == expected_cols.tobytes()


def _plain(results: list[Any]) -> list[Any]:
    """Results with errors as (type, message): exceptions compare by identity."""
    return [(r.row, r.status, r.score, r.error and (type(r.error).__name__, str(r.error))) for r in results]


def _outcome(pred: Any, rec: dict[str, Any]) -> Any:
    try:
        return pred.score(rec)
    except Exception as exc:  # noqa: BLE001 - compared by type and message
        return type(exc).__name__, str(exc)
