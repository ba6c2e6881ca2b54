"""What the linear path costs on the device: one record through LiteRT, with and without it.

Builds the default dense architecture (64-32, ``edgefin.model.DenseClassifier``) for the plain and
the 16-bin input width of the bundled credit data (33 and 135 features), with and without the
linear path, converts each to ``tflite-fp32`` and ``tflite-int8`` (``edgefin_converters``), and
times ``invoke`` on one record with LiteRT in this process (weights random: the op graph and its
shapes decide the time, not the values). Pin it (``taskset -c 1``) and read the ratios: absolute
figures move with the load on the machine.

    uv run --no-sync python benchmarks/model_latency.py [--json benchmarks/results/model_latency.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WIDTHS = {"plain": 33, "16 bins": 135}  # the bundled credit data's encoded widths


def invoke_us(model_bytes: bytes, n_features: int, calls: int, blocks: int) -> dict[str, float]:
    """Median and p95 (over block medians) of one ``invoke`` on one record, in microseconds."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model_bytes, num_threads=1)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    rows = np.random.default_rng(0).normal(size=(64, n_features)).astype(inp["dtype"])
    medians = []
    for _ in range(blocks):
        times = np.empty(calls)
        for i in range(calls):
            it.set_tensor(inp["index"], rows[i % 64 : i % 64 + 1])
            t = time.perf_counter_ns()
            it.invoke()
            times[i] = time.perf_counter_ns() - t
        medians.append(float(np.median(times)) / 1000)
    return {"p50_us": float(np.median(medians)), "block_p50_max_us": float(np.max(medians))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--blocks", type=int, default=7)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from edgefin_converters.tflite import to_tflite_fp32, to_tflite_int8

    from edgefin.model import DenseClassifier

    results: list[dict[str, Any]] = []
    for input_name, width in WIDTHS.items():
        calib = np.random.default_rng(1).normal(size=(256, width)).astype(np.float32)
        for linear in (False, True):
            model = DenseClassifier(linear=linear, seed=0).build(width)
            for variant, convert in (
                ("tflite-fp32", to_tflite_fp32),
                ("tflite-int8", lambda m, c=calib: to_tflite_int8(m, c)),
            ):
                r = invoke_us(convert(model), width, args.calls, args.blocks)
                row = {"input": input_name, "features": width, "linear": linear, "variant": variant}
                row.update(params=int(model.count_params()), **r)
                results.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    lines = ["| input | variant | params without / with linear path | invoke p50 us without / with | ratio |"]
    lines.append("|---|---|---|---|---|")
    for input_name in WIDTHS:
        for variant in ("tflite-fp32", "tflite-int8"):
            a, b = (
                next(r for r in results if r["input"] == input_name and r["variant"] == variant and r["linear"] is lin)
                for lin in (False, True)
            )
            lines.append(
                f"| {input_name} | {variant} | {a['params']:,} / {b['params']:,} | "
                f"{a['p50_us']:.2f} / {b['p50_us']:.2f} | {b['p50_us'] / a['p50_us']:.2f}x |"
            )
    md = "\n".join(lines) + "\n"
    if args.json:
        from edgefin import atomic

        atomic.write_json(args.json, {"results": results, "calls": args.calls, "blocks": args.blocks})
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
