"""load()'s self-test is split: the single-record path is checked before load returns, the batch path
(its own interpreter) before the engine scores its first matrix. A batch path that does not reproduce
the golden scores must never score a batch, however it is reached and from however many threads."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from edgefin_runtime import SelfTestError, load
from edgefin_runtime.predictor import SMALL_BATCH

GOOD = {"Income": 120.0, "Age": 35, "Home": "rent", "Job": "fixed"}
MANY = [GOOD] * (SMALL_BATCH + 1)  # small batches take the single-record path


def _skew_batches(predictor: Any, by: float) -> None:
    """Make this engine's matrix path disagree with its single-row path (a broken batch kernel)."""
    engine = predictor.engine
    inner = type(engine).run

    def run(x: np.ndarray) -> np.ndarray:
        return inner(engine, x) + np.float32(by)

    engine.run = run


def test_load_checks_the_single_path_and_defers_the_batch_half(variant, tiny_bundles) -> None:
    p = load(tiny_bundles[variant])
    assert p.engine._batch_gate is not None  # nothing built for batches yet
    one = p.score(GOOD)
    assert p.score_batch([GOOD, GOOD]) and p.engine._batch_gate is not None  # small: single-record path
    batch = p.score_batch(MANY)
    assert p.engine._batch_gate is None  # the golden check ran before that first batch and passed
    assert [r.score.probability for r in batch] == [one.probability] * len(MANY)


def test_a_batch_path_that_misses_its_goldens_never_scores(tiny_bundles) -> None:
    p = load(tiny_bundles["tflite-int8"])
    _skew_batches(p, 0.25)
    assert p.score(GOOD)  # the single-record path was verified and still scores
    with pytest.raises(SelfTestError, match="batch path"):
        p.self_test()  # the explicit self-test checks both paths at once
    for _ in range(2):  # a failed check stays pending: every later batch fails the same way
        with pytest.raises(SelfTestError, match=r"golden\[0\] scored .* on the batch path .* do not deploy"):
            p.score_batch(MANY)
    with pytest.raises(SelfTestError, match="batch path"):
        p.score_columns({k: np.array([v]) for k, v in GOOD.items()})


def test_self_test_runs_both_halves_and_clears_the_gate(tiny_bundles) -> None:
    p = load(tiny_bundles["onnx-fp32"])
    report = p.self_test()
    assert report["golden"] == len(p.info.golden) > 0 and report["max_abs_delta"] <= report["tolerance"]
    assert p.engine._batch_gate is None


def test_threads_wait_for_one_golden_check(tiny_bundles) -> None:
    p = load(tiny_bundles["tflite-fp32"])
    gate = p.engine._batch_gate
    calls = []

    def counted() -> None:
        calls.append(threading.get_ident())
        gate()

    p.engine.gate_batch(counted)
    start = threading.Barrier(4)
    out: list[Any] = []

    def worker() -> None:
        start.wait()
        out.append([r.score.probability for r in p.score_batch(MANY)])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(out) == 4 and all(o == out[0] for o in out)


def test_a_load_without_self_test_has_no_gate(tiny_bundles) -> None:
    p = load(tiny_bundles["tflite-fp32"], self_test=False)
    assert p.engine._batch_gate is None
