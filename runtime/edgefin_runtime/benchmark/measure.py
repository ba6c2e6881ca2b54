"""One bundle measured in this process: cold start, single-record latency (runtime and bare engine),
batch and columns throughput, peak memory, and the scores of the benchmark rows.

The rows come from an inputs file (:func:`inputs_document`): field names, kinds and columns, with
None for a missing value. The toolkit writes its test split in this form; ``edgefin-run bench`` the
bundle's acceptance records or the device's own ``--data``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .process import heavy_modules_loaded, is_out_of_memory, last_cpu, memory
from .timing import time_single, time_throughput

if TYPE_CHECKING:
    from ..manifest import Schema


def inputs_document(schema: Schema, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The inputs file for ``records`` (raw field values; absent or None = missing) under ``schema``."""
    names = [f.name for f in schema.fields]
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for rec in records:
        for n in names:
            v = rec.get(n)
            columns[n].append(None if isinstance(v, float) and v != v else v)
    return {"fields": names, "kinds": {f.name: f.kind for f in schema.fields}, "columns": columns}


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


def _tile(cols: dict[str, Any], records: list[dict[str, Any]], size: int) -> tuple[dict[str, Any], list[Any]]:
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
    return None


def measure_bundle(spec: Mapping[str, Any], applied: dict[str, Any], spawn_ns: int) -> dict[str, Any]:
    """Measure ``spec["bundle"]`` on the rows of ``spec["input"]`` with ``spec["settings"]`` (a
    :class:`~.settings.Settings` dict). ``spawn_ns`` is when the parent spawned this process (wall
    clock, ns): cold start is spawn to first score, minus the benchmark's own input loading.
    ``spec["scores"] = False`` leaves the rows' scores out of the result (a device's own data)."""
    settings = spec["settings"]
    out: dict[str, Any] = {"mode": "variant", "variant": spec.get("variant"), "profile_applied": applied}
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
    out["memory_after_first_score"] = memory()
    if spec.get("probe_only"):
        out["profile_applied"]["ran_on_cpu"] = last_cpu()
        return out

    results = predictor.score_batch(records)
    probs = [probability_of(r) for r in results]
    if spec.get("scores", True):
        out["scores"] = probs
    out["rows"] = len(records)
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
    out["memory"] = memory()
    out["profile_applied"]["ran_on_cpu"] = last_cpu()
    out["heavy_modules_loaded"] = heavy_modules_loaded()
    out["versions"] = {
        "edgefin_runtime": getattr(edgefin_runtime, "__version__", "unknown"),
        engine.engine: engine.version,
        "numpy": np.__version__,
    }
    return out
