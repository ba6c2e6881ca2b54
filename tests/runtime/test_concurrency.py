"""Concurrency: 16 threads sharing one Predictor (LiteRT and ONNX Runtime) get bit-identical results
to a single thread on every path; 16 threads scoring through a ModelHolder while it swaps between
real TFLite and ONNX bundles lose no request and never mix two models in one result."""

from __future__ import annotations

import random
import threading
from typing import Any

import numpy as np
import pytest

from edgefin_runtime.holder import ModelHolder

THREADS = 16
VARIANTS = ("tflite-fp32", "tflite-int8", "tflite-int8-io", "onnx-fp32")


def _records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        out.append(
            {
                "Income": rng.choice([None, round(rng.uniform(0, 400), 2)]),
                "Age": rng.randint(18, 80),
                "Home": rng.choice(["owner", "rent", "parents", "castle"]),
                "Job": rng.choice(["fixed", "freelance", "partime", None]),
            }
        )
    return out


RECORDS = _records(256)
BAD = {"Income": "lots", "Age": 30, "Home": "rent"}


def _run_threads(target, n: int = THREADS) -> list[str]:
    barrier = threading.Barrier(n)
    problems: list[str] = []

    def wrapped(k: int) -> None:
        try:
            barrier.wait(timeout=30)
            target(k, problems)
        except Exception as exc:  # noqa: BLE001 - any exception is a failure of the property
            problems.append(f"thread {k}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=wrapped, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a scoring thread hung"
    return problems


@pytest.mark.parametrize("variant", VARIANTS)
def test_sixteen_threads_match_one_thread_bit_for_bit(predictors, variant):
    p = predictors[variant]
    single = [p.score(r).probability for r in RECORDS]
    chunks = [(0, 1), (5, 3), (17, 17), (100, 64), (0, 256), (200, 55), (31, 2)]
    batch = {c: [r.score.probability for r in p.score_batch(RECORDS[c[0] : c[0] + c[1]] + [BAD])[:-1]] for c in chunks}
    cols = {k: [r[k] for r in RECORDS] for k in RECORDS[0]}
    columns = p.score_columns(cols).probabilities.copy()

    def work(k: int, problems: list[str]) -> None:
        rng = random.Random(k)
        for rep in range(3):
            order = list(range(len(RECORDS)))
            rng.shuffle(order)
            for i in order[:96]:
                if p.score(RECORDS[i]).probability != single[i]:
                    problems.append(f"thread {k}: record {i} differs on the single path")
            start, size = c = rng.choice(chunks)
            res = p.score_batch(RECORDS[start : start + size] + [BAD])
            if [r.score.probability for r in res[:-1]] != batch[c]:
                problems.append(f"thread {k}: batch {c} differs from the same batch on one thread")
            if res[-1].ok:
                problems.append(f"thread {k}: a bad record was scored")
            if rep == 0 and not np.array_equal(p.score_columns(cols).probabilities, columns):
                problems.append(f"thread {k}: columns differ")

    problems = _run_threads(work)
    assert not problems, problems[:5]


def test_batch_results_do_not_depend_on_batch_composition(predictors):
    """A row's score is the same alone, in any batch, at any position (what makes threads safe to
    share padded batch buffers)."""
    for v in VARIANTS:
        p = predictors[v]
        alone = [p.score_batch([r])[0].score.probability for r in RECORDS[:40]]
        mixed = [r.score.probability for r in p.score_batch(list(reversed(RECORDS[:40])))][::-1]
        assert np.allclose(alone, mixed, atol=1e-6), v


def test_hot_swaps_under_sixteen_threads(tiny_bundles):
    """The main thread swaps 40 times between a TFLite int8 and an ONNX bundle (every fourth swap a
    damaged bundle) while 16 threads score; every request is answered by exactly one model."""
    paths = {v: tiny_bundles[v] for v in ("tflite-int8", "onnx-fp32")}
    holder = ModelHolder(paths["tflite-int8"])
    refs: dict[str, list[float]] = {}
    for path in paths.values():
        h = ModelHolder(path)
        refs[h.model.sha256] = [h.score(r).result.probability for r in RECORDS]
    assert len(refs) == 2
    damaged = bytearray(paths["onnx-fp32"].read_bytes())
    damaged[len(damaged) // 3] ^= 0x20
    stop = threading.Event()
    scoring = threading.Event()  # the swaps start once the threads score (a fast load could finish them first)
    tally: list[tuple[int, int]] = []
    seen: set[int] = set()

    def work(k: int, problems: list[str]) -> None:
        sent = got = 0
        rng = random.Random(k)
        while not stop.is_set() or sent < 300:
            if k % 2:
                i = rng.randrange(len(RECORDS))
                sent += 1
                s = holder.score(RECORDS[i])
                got += 1
                if abs(s.result.probability - refs[s.model.sha256][i]) > 1e-6:
                    problems.append(f"thread {k}: record {i} scored by a different model than {s.model.variant}")
            else:
                start = rng.randrange(0, len(RECORDS) - 32)
                sent += 32
                s = holder.score_batch(RECORDS[start : start + 32])
                got += len(s.result)
                ref = refs[s.model.sha256][start : start + 32]
                if not np.allclose([r.score.probability for r in s.result], ref, atol=1e-6):
                    problems.append(f"thread {k}: a batch mixed models or changed scores")
            seen.add(s.model.generation)
            scoring.set()
        tally.append((sent, got))

    def swapper() -> None:
        try:  # stop the scorers whatever happens here: a failed swap must fail the test, not hang it
            if not scoring.wait(timeout=60):
                return
            for n in range(40):
                if n % 4 == 3:
                    assert not holder.try_swap(bytes(damaged)).ok
                else:
                    holder.swap(paths["onnx-fp32" if n % 2 == 0 else "tflite-int8"])
        finally:
            stop.set()

    t = threading.Thread(target=swapper)
    t.start()
    problems = _run_threads(work)
    t.join(timeout=120)
    assert not problems, problems[:5]
    assert len(tally) == THREADS and all(s == g for s, g in tally)
    assert holder.generation == 30 and len(seen) >= 5
