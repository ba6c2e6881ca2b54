"""The source Keras model timed in a benchmark worker: ``model(x)``, ``model.predict``, batches, test scores.

Runs inside the runtime's measuring worker (``edgefin_runtime.benchmark.worker``, spec key
``measure = "edgefin.bench.keras_timing:run_keras"``) after the profile's CPU pinning and thread
counts are applied, with the same timing loops as the bundles (``edgefin_runtime.benchmark.timing``),
so the ratios compare like with like. TensorFlow is imported only here, and no memory cap applies
(TensorFlow alone maps gigabytes of address space), which the result records.
"""

from __future__ import annotations

import json
import time
from typing import Any

from edgefin_runtime.benchmark.measure import load_inputs
from edgefin_runtime.benchmark.process import memory
from edgefin_runtime.benchmark.timing import time_single, time_throughput


def run_keras(spec: dict[str, Any], applied: dict[str, Any], spawn_ns: int) -> dict[str, Any]:
    """The source Keras model: ``model(x)`` and ``model.predict`` on one record, batches, test scores."""
    settings = spec["settings"]
    out: dict[str, Any] = {
        "mode": "keras",
        "profile_applied": applied,
        "memory_cap_note": "no address-space cap: TensorFlow alone maps several GiB",
    }
    t0 = time.perf_counter()
    import numpy as np

    from edgefin_runtime.manifest import PreprocessSpec, Schema
    from edgefin_runtime.preprocess import Preprocessor

    from edgefin.keras_io import load_model
    from edgefin.tfcompat import tf

    threads = int(spec.get("threads", 1))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    t_import = time.perf_counter()
    model = load_model(spec["model"])
    with open(spec["schema"], encoding="utf-8") as fh:
        schema = Schema.from_dict(json.load(fh))
    with open(spec["preprocess"], encoding="utf-8") as fh:
        pspec = PreprocessSpec.from_dict(json.load(fh))
    names, cols, records = load_inputs(spec["input"])
    matrix = Preprocessor(schema, pspec).columns(cols).matrix
    first = float(np.asarray(model(matrix[:1], training=False))[0, 0])
    out["cold_start"] = {
        "spawn_to_first_score_ms": (time.time_ns() - spawn_ns) / 1e6,
        "import_ms": (t_import - t0) * 1e3,
        "first_probability": first,
    }
    out["scores"] = [float(v) for v in np.asarray(model.predict(matrix, batch_size=1024, verbose=0)).reshape(-1)]
    rows = [matrix[i : i + 1].copy() for i in range(min(len(records), 64))]
    calls, pcalls = int(settings["keras_calls"]), int(settings["keras_predict_calls"])
    out["latency"] = {
        "keras_call": time_single(lambda x: model(x, training=False), rows, min(20, calls), 1, calls),
        "keras_predict": time_single(lambda x: model.predict(x, verbose=0), rows, 3, 1, pcalls),
    }
    thr = []
    for b in settings["batch_sizes"]:
        xb = matrix[np.arange(int(b)) % matrix.shape[0]]
        # timed and dropped within this iteration
        thr.append(time_throughput(lambda: model(xb, training=False), int(b), 3, float(settings["min_block_s"])))  # noqa: B023
    out["throughput"] = {"keras_call": thr}
    out["memory"] = memory()
    out["versions"] = {"tensorflow": tf.__version__, "numpy": np.__version__}
    return out
