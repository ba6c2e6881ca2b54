"""Timing loops: single calls (percentiles with their spread) and throughput (records per second)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any, Callable


def summarize(samples_ns: Sequence[int], block_p50_ns: Sequence[float]) -> dict[str, Any]:
    """Percentiles in microseconds, the spread (IQR, per-block p50 min/max) and a 101-point quantile sketch."""
    import numpy as np

    a = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    q = np.percentile(a, [25, 50, 75, 95, 99])
    sketch = np.percentile(a, np.arange(101))
    return {
        "n": int(a.size),
        "p50_us": float(q[1]),
        "p95_us": float(q[3]),
        "p99_us": float(q[4]),
        "mean_us": float(a.mean()),
        "min_us": float(a.min()),
        "max_us": float(a.max()),
        "iqr_us": float(q[2] - q[0]),
        "block_p50_min_us": float(min(block_p50_ns) / 1000.0),
        "block_p50_max_us": float(max(block_p50_ns) / 1000.0),
        "quantiles_us": [round(float(v), 3) for v in sketch],
    }


def time_single(
    call: Callable[[Any], object], inputs: Sequence[Any], warmup: int, blocks: int, block_size: int
) -> dict[str, Any]:
    """Time ``call(inputs[i])`` one call at a time (perf_counter_ns around each call)."""
    pc = time.perf_counter_ns
    n = len(inputs)
    for j in range(warmup):
        call(inputs[j % n])
    samples: list[int] = []
    block_p50: list[float] = []
    k = 0
    for _ in range(blocks):
        block: list[int] = []
        for _ in range(block_size):
            x = inputs[k % n]
            k += 1
            t0 = pc()
            call(x)
            block.append(pc() - t0)
        samples.extend(block)
        block_p50.append(float(statistics.median(block)))
    return summarize(samples, block_p50)


def time_throughput(run: Callable[[], object], batch: int, blocks: int, min_block_s: float) -> dict[str, Any]:
    """Records per second of ``run()`` on one batch: the median of ``blocks`` timed blocks, with min/max."""
    pc, cpu = time.perf_counter, time.process_time
    for _ in range(3):
        run()
    rates: list[float] = []
    cpu_rates: list[float] = []
    for _ in range(blocks):
        calls = 0
        t0, c0 = pc(), cpu()
        while True:
            run()
            calls += 1
            dt = pc() - t0
            if dt >= min_block_s:
                break
        rates.append(calls * batch / dt)
        cpu_rates.append(calls * batch / max(cpu() - c0, 1e-9))
    # wall-clock is what a device sees; the CPU-time rate (all threads of this process) shows what the
    # code costs when other processes share the core, as they do on a busy machine
    return {
        "batch": batch,
        "records_per_s": statistics.median(rates),
        "min_records_per_s": min(rates),
        "max_records_per_s": max(rates),
        "cpu_records_per_s": statistics.median(cpu_rates),
        "blocks": blocks,
    }
