"""Probe one CPU target: load each bundle and score raw records on it; no comparison here.

Standalone script, run by path in one process per target (natively, under ``qemu-x86_64 -cpu``, or
in the emulated ARM64 root) with the runtime's source folder on PYTHONPATH::

    python probe.py INPUT.json OUTPUT.json

It imports only the standard library, ``edgefin_runtime`` and numpy (the runtime imports the
engines), never TensorFlow or the toolkit. INPUT::

    {"sets": {"test": [record, ...], "acceptance:onnx-int8": [...]},
     "bundles": [{"name": "onnx-int8", "path": "/abs/onnx-int8.efb", "sets": ["acceptance:onnx-int8", "test"]}]}

OUTPUT (written when every bundle is done; the host compares)::

    {"probe": 1, "platform": {...}, "bundles": {"onnx-int8": {"loaded": true, "error": null,
      "self_test": {...}, "bundle_sha256": "...", "engine": "onnx", "scored_without_self_test": false,
      "sets": {"test": {"single": [p | null, ...], "batch": [p | null, ...], "rejected": 0}}}}}

A bundle whose self-test fails is recorded as not loading (with the typed error), then loaded again
without the self-test so its scores still show how far off it is. Scores of rejected records are
null; no record value is ever written (only counts and error types). Progress lines
``@@probe <text>`` go to stderr.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback
from typing import Any

PROBE_VERSION = 1


def _say(text: str) -> None:
    print(f"@@probe {text}", file=sys.stderr, flush=True)


def _cpu_features() -> list[str]:
    from edgefin_runtime.benchmark.machine import cpu_features

    return cpu_features()


def _platform() -> dict[str, Any]:
    import numpy

    info: dict[str, Any] = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "cpu_features": _cpu_features(),
    }
    for mod, key in (("onnxruntime", "onnxruntime"), ("ai_edge_litert", "ai_edge_litert")):
        try:
            m = __import__(mod)
            info[key] = getattr(m, "__version__", "installed")
        except Exception as exc:  # noqa: BLE001 - an engine that fails to import is a finding, not a crash
            info[key] = f"unavailable ({type(exc).__name__})"
    return info


def _error(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc)}


def _score_set(predictor: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores of every record on the single-record path and on the batch path (None where rejected)."""
    from edgefin_runtime.errors import InputError

    single: list[float | None] = []
    rejected: dict[str, int] = {}
    for rec in records:
        try:
            single.append(float(predictor.score(rec).probability))
        except InputError as err:
            single.append(None)
            rejected[type(err).__name__] = rejected.get(type(err).__name__, 0) + 1
    batch: list[float | None] = [None] * len(records)
    for res in predictor.score_batch(records):
        if res.status == "scored":
            batch[res.row] = float(res.score.probability)
    return {"single": single, "batch": batch, "rejected": sum(rejected.values()), "rejected_by": rejected}


def probe_bundle(spec: dict[str, Any], sets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Load one bundle (hashes, engine, self-test) and score its record sets."""
    import edgefin_runtime as rt

    out: dict[str, Any] = {
        "loaded": False,
        "error": None,
        "self_test": None,
        "bundle_sha256": None,
        "engine": None,
        "scored_without_self_test": False,
        "sets": {},
    }
    predictor = None
    try:
        predictor = rt.load(spec["path"])
        out["loaded"] = True
    except rt.SelfTestError as exc:
        out["error"] = _error(exc)
        try:
            predictor = rt.load(spec["path"], self_test=False)
            out["scored_without_self_test"] = True
        except rt.EdgefinRuntimeError:
            predictor = None
    except rt.EdgefinRuntimeError as exc:
        out["error"] = _error(exc)
    if predictor is None:
        return out
    out["bundle_sha256"] = predictor.bundle_sha256
    out["engine"] = predictor.engine.name
    if out["loaded"]:
        try:
            out["self_test"] = predictor.self_test()
        except rt.EdgefinRuntimeError as exc:  # pragma: no cover - load() just ran it
            out["error"] = _error(exc)
    for name in spec.get("sets", []):
        try:
            out["sets"][name] = _score_set(predictor, sets[name])
        except rt.EdgefinRuntimeError as exc:  # an engine failing mid-way: the bundle does not work here
            out["sets"][name] = {"error": _error(exc)}
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: probe.py INPUT.json OUTPUT.json", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as fh:
        job = json.load(fh)
    sets = job.get("sets", {})
    t0 = time.perf_counter()
    result: dict[str, Any] = {"probe": PROBE_VERSION, "platform": _platform(), "bundles": {}}
    bundles = job.get("bundles", [])
    for i, spec in enumerate(bundles):
        _say(f"{spec['name']} ({i + 1}/{len(bundles)})")
        try:
            result["bundles"][spec["name"]] = probe_bundle(spec, sets)
        except Exception as exc:  # noqa: BLE001 - anything else is recorded for this bundle, others go on
            result["bundles"][spec["name"]] = {
                "loaded": False,
                "error": _error(exc),
                "sets": {},
                "crashed": True,
                "traceback": traceback.format_exc(limit=5),
            }
    result["seconds"] = time.perf_counter() - t0
    tmp = f"{argv[2]}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, allow_nan=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, argv[2])
    _say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
