"""One benchmark measurement in a fresh process: ``python -m edgefin.bench.worker SPEC.json``.

The profile (CPU affinity, thread counts, address-space cap) is applied first, with only the
standard library loaded, so import time, cold start and peak memory are those of a process that
really ran under it. Then the bundle is loaded through ``edgefin_runtime`` and measured:
cold start (parent's spawn to first score), every test row's score, single-record latency through
the runtime (dict -> Score) and through the bare engine, and throughput at each batch size.

``mode = "keras"`` measures the source Keras model instead (``model(x)``, ``model.predict``) for the
ratios; TensorFlow is imported only in that mode, and no memory cap applies to it (TensorFlow alone
maps gigabytes of address space), which the result records.

The result is one JSON file (``spec["out"]``). A variant that runs out of memory under the cap
reports ``status = "does_not_fit"``; any other failure ``status = "error"`` with the message.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

_OOM_MARKERS = (
    "failed to map segment",
    "cannot allocate memory",
    "bad_alloc",
    "bad allocation",
    "out of memory",
    "memoryerror",
    "std::length_error",
    "resource exhausted",
)


# ---------------------------------------------------------------- profile (stdlib only)
def apply_profile(spec: dict[str, Any]) -> dict[str, Any]:
    """Pin CPUs, fix math-library threads and cap address space; return what is now in force."""
    threads = str(int(spec.get("threads", 1)))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    cpus = spec.get("cpus")
    if cpus:
        os.sched_setaffinity(0, set(int(c) for c in cpus))
    mem = spec.get("memory_mib")
    if mem:
        cap = int(mem) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return {
        "cpus": sorted(os.sched_getaffinity(0)),
        "threads": int(threads),
        "rlimit_as_mib": None if soft == resource.RLIM_INFINITY else soft // (1024 * 1024),
    }


def last_cpu() -> int | None:
    """The CPU this process last ran on (field 39 of /proc/self/stat): proof that pinning took effect."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            tail = fh.read().rsplit(")", 1)[1].split()
        return int(tail[36])
    except (OSError, IndexError, ValueError):  # pragma: no cover - not Linux
        return None


def is_out_of_memory(exc: BaseException) -> bool:
    """True when an exception (or its cause chain) says an allocation failed."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 8:
        if isinstance(e, MemoryError):
            return True
        text = f"{type(e).__name__}: {e}".lower()
        if any(m in text for m in _OOM_MARKERS):
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def _memory() -> dict[str, float]:
    """Peak resident set (VmHWM) and peak address space (VmPeak) of this process.

    ``ru_maxrss`` is not used: Linux carries it over from the parent across fork + exec, so a worker
    started by a big parent would report the parent's peak.
    """
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    out["peak_rss_mib"] = int(line.split()[1]) / 1024.0
                elif line.startswith("VmPeak:"):
                    out["peak_vm_mib"] = int(line.split()[1]) / 1024.0
    except OSError:  # pragma: no cover - not Linux
        out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


# ---------------------------------------------------------------- measuring (numpy loaded)
def summarize(samples_ns: list[int], block_p50_ns: list[float]) -> dict[str, Any]:
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
    call: Callable[[Any], Any], inputs: list[Any], warmup: int, blocks: int, block_size: int
) -> dict[str, Any]:
    """Time ``call(inputs[i])`` one call at a time (perf_counter_ns around each call)."""
    import numpy as np

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
        block_p50.append(float(np.median(block)))
    return summarize(samples, block_p50)


def time_throughput(run: Callable[[], Any], batch: int, blocks: int, min_block_s: float) -> dict[str, Any]:
    """Records per second of ``run()`` on one batch: the median of ``blocks`` timed blocks, with min/max."""
    import statistics

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


def load_inputs(path: str) -> tuple[list[str], dict[str, Any], list[dict[str, Any]]]:
    """The benchmark rows: field names, numpy columns (NaN/None = missing) and the same rows as dicts."""
    import numpy as np

    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    names: list[str] = data["fields"]
    kinds: dict[str, str] = data["kinds"]
    cols: dict[str, Any] = {}
    for name in names:
        raw = data["columns"][name]
        if kinds[name] == "numeric":
            cols[name] = np.array([np.nan if v is None else v for v in raw], dtype=np.float64)
        else:
            cols[name] = np.array(raw, dtype=object)
    n = len(data["columns"][names[0]]) if names else 0
    records = [{name: data["columns"][name][i] for name in names} for i in range(n)]
    return names, cols, records


def _tile(
    cols: dict[str, Any], records: list[dict[str, Any]], size: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import numpy as np

    n = len(records)
    idx = np.arange(size) % n
    return {k: v[idx] for k, v in cols.items()}, [records[i] for i in idx]


def probability_of(result: Any) -> float | None:
    """The probability of one scored result; None for a rejected one."""
    for attr in ("probability", "score"):
        v = getattr(result, attr, None)
        if isinstance(v, float):
            return v
        if v is not None and hasattr(v, "probability"):
            return float(v.probability)
    if isinstance(result, dict):
        v = result.get("probability", result.get("score"))
        return float(v) if isinstance(v, (int, float)) else None
    return None


def run_variant(spec: dict[str, Any], applied: dict[str, Any], spawn_ns: int) -> dict[str, Any]:
    settings = spec["settings"]
    out: dict[str, Any] = {"mode": "variant", "variant": spec["variant"], "profile_applied": applied}
    t0 = time.perf_counter()
    import numpy as np

    import edgefin_runtime
    from edgefin_runtime.bundle import read_bundle
    from edgefin_runtime.preprocess import Preprocessor

    t_import = time.perf_counter()
    threads = int(spec.get("threads", 1))
    predictor = edgefin_runtime.load(spec["bundle"], threads=threads)
    t_load = time.perf_counter()
    names, cols, records = load_inputs(spec["input"])  # the benchmark's own work: not part of cold start
    t_inputs = time.perf_counter()
    first = predictor.score(records[0])
    first_ns = time.time_ns()
    t_first = time.perf_counter()
    out["cold_start"] = {
        "spawn_to_first_score_ms": (first_ns - spawn_ns) / 1e6 - (t_inputs - t_load) * 1e3,
        "import_ms": (t_import - t0) * 1e3,
        "load_ms": (t_load - t_import) * 1e3,
        "first_score_ms": (t_first - t_inputs) * 1e3,
        "first_probability": probability_of(first),
        "excluded_input_loading_ms": (t_inputs - t_load) * 1e3,
    }
    out["memory_after_first_score"] = _memory()
    if spec.get("probe_only"):
        out["profile_applied"]["ran_on_cpu"] = last_cpu()
        return out

    results = predictor.score_batch(records)
    probs = [probability_of(r) for r in results]
    out["scores"] = probs
    out["rejected"] = sum(p is None for p in probs)

    blocks, bsize, warm = int(settings["blocks"]), int(settings["block_size"]), int(settings["warmup"])
    bundle = read_bundle(spec["bundle"])
    from .engines import bare_engine

    engine = bare_engine(
        bundle.manifest.model.engine, bundle.model_bytes, threads, kernels=bundle.manifest.model.kernels
    )
    pre = Preprocessor(bundle.manifest.schema, bundle.manifest.preprocessing)
    matrix = pre.columns(cols).matrix
    out["engine"] = {"name": engine.engine, "version": engine.version, "fixed_batch": engine.fixed_batch}

    lat: dict[str, Any] = {"runtime": time_single(predictor.score, records, warm, blocks, bsize)}
    # the same rows, encoded beforehand: only the engine's own calls are timed
    rows = [engine.prepare(matrix[i : i + 1].copy()) for i in range(min(len(records), 256))]
    lat["engine"] = time_single(engine.call, rows, warm, blocks, bsize)
    out["latency"] = lat

    thr: dict[str, list[dict[str, Any]]] = {"runtime_records": [], "runtime_columns": [], "engine": []}
    tblocks, min_s = max(3, blocks), float(settings["min_block_s"])
    for b in settings["batch_sizes"]:
        bcols, brecs = _tile(cols, records, int(b))
        prepared = engine.prepare(pre.columns(bcols).matrix)
        # the closures are timed and dropped within this iteration of b
        for kind, run in (
            ("runtime_records", lambda: predictor.score_batch(brecs)),  # noqa: B023
            ("runtime_columns", lambda: predictor.score_columns(bcols)),  # noqa: B023
            ("engine", engine.runner(prepared)),
        ):
            try:
                thr[kind].append(time_throughput(run, int(b), tblocks, min_s))
            except Exception as exc:  # noqa: BLE001 - one failing path must not hide the others
                if is_out_of_memory(exc):
                    raise
                thr[kind].append({"batch": int(b), "error": f"{type(exc).__name__}: {exc}"[:500]})
    out["throughput"] = thr
    out["memory"] = _memory()
    out["profile_applied"]["ran_on_cpu"] = last_cpu()
    # what this process loaded: the variant path must never pull in TensorFlow, pandas or the toolkit's
    # training code (it would distort cold start and memory, and the device does not have them)
    out["heavy_modules_loaded"] = sorted(
        m for m in ("tensorflow", "tf_keras", "pandas", "sklearn", "edgefin.train") if m in sys.modules
    )
    out["versions"] = {
        "edgefin_runtime": getattr(edgefin_runtime, "__version__", "unknown"),
        engine.engine: engine.version,
        "numpy": np.__version__,
    }
    return out


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
    out["memory"] = _memory()
    out["versions"] = {"tensorflow": tf.__version__, "numpy": np.__version__}
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spawn_ns = int(os.environ.get("EDGEFIN_BENCH_SPAWN_NS", time.time_ns()))
    with open(argv[0], encoding="utf-8") as fh:
        spec = json.load(fh)
    result: dict[str, Any]
    try:
        applied = apply_profile(spec if spec.get("mode") != "keras" else {**spec, "memory_mib": None})
        runner = run_keras if spec.get("mode") == "keras" else run_variant
        result = {"status": "ok", **runner(spec, applied, spawn_ns)}
    except BaseException as exc:  # noqa: BLE001 - the parent needs every outcome as data
        status = "does_not_fit" if spec.get("memory_mib") and is_out_of_memory(exc) else "error"
        result = {"status": status, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        try:
            result["memory"] = _memory()
        except BaseException:  # pragma: no cover
            pass
    from edgefin.atomic import write_text

    try:
        data = json.dumps(result, allow_nan=False, default=float)
    except ValueError as exc:  # a NaN or infinity reached the result: say so instead of writing it
        data = json.dumps({"status": "error", "error": f"non-finite value in the measurement: {exc}"})
    write_text(spec["out"], data)
    return 0 if result["status"] == "ok" else 4


if __name__ == "__main__":
    sys.exit(main())
