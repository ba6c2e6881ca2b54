"""One benchmark measurement in a fresh process: ``python .../edgefin_runtime/benchmark/worker.py SPEC.json``.

Run by path, not with ``-m``: importing the ``edgefin_runtime`` package loads NumPy and the manifest
code, and the limits below must be in force first, so import time, cold start and peak memory are
those of a process that really ran under them. Until the limits are applied only the standard
library is loaded. Spec keys (JSON object):

    bundle, input          the .efb and the inputs file (measure.inputs_document)
    settings               a Settings dict (settings.py)
    threads                engine and math-library threads (default 1)
    cpus                   CPU ids to pin to (optional)
    memory_mib             address-space cap (optional)
    scores                 false: leave the rows' scores out of the result
    probe_only             true: load and score one record only
    measure                "module:function" measuring instead of the bundle measurement (the toolkit's
                           Keras timing); called as function(spec, applied, spawn_ns) -> dict
    out                    where the result goes (JSON, written atomically)

The parent sets ``EDGEFIN_BENCH_SPAWN_NS`` (wall clock, ns) just before spawning: cold start counts
from there. The result has ``status`` "ok", "does_not_fit" (ran out of memory under the cap) or
"error" with the message; the exit code is 0 for ok, 4 otherwise.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

if __name__ == "__main__" and sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)  # run by path: this folder must not shadow anything (the package is imported by name)


def apply_limits(spec: dict[str, Any]) -> dict[str, Any]:
    """Pin CPUs, fix math-library threads and cap address space; return what is now in force."""
    threads = str(int(spec.get("threads", 1)))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = threads
    cpus = spec.get("cpus")
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus})
    mem = spec.get("memory_mib")
    if mem:
        cap = int(mem) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return {
        "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": int(threads),
        "rlimit_as_mib": None if soft == resource.RLIM_INFINITY else soft // (1024 * 1024),
    }


def _measure(spec: dict[str, Any], applied: dict[str, Any], spawn_ns: int) -> dict[str, Any]:
    target = spec.get("measure")
    if target:
        import importlib

        module, _, attr = str(target).partition(":")
        func = getattr(importlib.import_module(module), attr)
        return dict(func(spec, applied, spawn_ns))
    from edgefin_runtime.benchmark.measure import measure_bundle

    return measure_bundle(spec, applied, spawn_ns)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spawn_ns = int(os.environ.get("EDGEFIN_BENCH_SPAWN_NS", time.time_ns()))
    with open(argv[0], encoding="utf-8") as fh:
        spec = json.load(fh)
    result: dict[str, Any]
    try:
        applied = apply_limits(spec)
        result = {"status": "ok", **_measure(spec, applied, spawn_ns)}
    except BaseException as exc:  # noqa: BLE001 - the parent needs every outcome as data
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:2000]}
        try:
            from edgefin_runtime.benchmark.process import is_out_of_memory, memory

            if spec.get("memory_mib") and is_out_of_memory(exc):
                result["status"] = "does_not_fit"
            result["memory"] = memory()
        except BaseException:  # noqa: BLE001 - pragma: no cover - out of memory even for this
            pass
    try:
        data = json.dumps(result, allow_nan=False, default=float)
    except ValueError as exc:  # a NaN or infinity reached the result: say so instead of writing it
        data = json.dumps({"status": "error", "error": f"non-finite value in the measurement: {exc}"})
    from edgefin_runtime.atomic import write_bytes

    write_bytes(spec["out"], data.encode("utf-8"))
    return 0 if result["status"] == "ok" else 4


if __name__ == "__main__":
    sys.exit(main())
