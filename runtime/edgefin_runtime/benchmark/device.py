"""``edgefin-run bench`` as a library: measure bundles on this machine and write a device results file.

Each bundle is measured in a fresh process (:func:`.launch.spawn_worker`) with the same code the
toolkit's ``edgefin bench`` uses. Records come from ``data`` (the device's own rows, never copied
into the results) or, by default, from each bundle's acceptance set (synthetic records; the golden
vectors for older bundles), so no customer data is needed on the device.

Results file (JSON, :data:`SCHEMA` version :data:`SCHEMA_VERSION`), documented in runtime/README.md::

    {"schema": "edgefin-device-bench", "schema_version": 1, "created_at": "...Z",
     "device": {"name": ..., "machine": {cpu_model, cpu_features, cpu_count, memory_total_mib, os,
                python, ...}, "versions": {"edgefin-runtime": ..., "onnxruntime": ..., ...}},
     "settings": {...}, "threads": 1, "cpus": [0] | null,
     "bundles": [{"file", "sha256", "variant", "engine", "kernels", "weights", "activations",
                  "status": "ok" | "error", "error"?, "records": {"source", "count", "rejected"},
                  "cold_start": {...}, "latency": {"runtime": {p50_us...}, "engine": {...}},
                  "throughput": {"runtime_records": [...], "runtime_columns": [...], "engine": [...]},
                  "memory": {"peak_rss_mib", "peak_vm_mib"}, "engine_info": {"name", "version"},
                  "acceptance": {"max_abs_diff", "n"}?}]}
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import BenchResultsError
from .launch import spawn_worker
from .machine import machine_info, versions
from .measure import inputs_document
from .settings import preset

if TYPE_CHECKING:
    from ..manifest import Manifest

SCHEMA = "edgefin-device-bench"
SCHEMA_VERSION = 1
RECORD_SOURCES = ("acceptance", "golden", "data")
# what a bundle entry carries from the worker's result (never the rows' scores)
_KEEP = (
    "cold_start",
    "latency",
    "throughput",
    "memory",
    "memory_after_first_score",
    "versions",
    "profile_applied",
    "heavy_modules_loaded",
)


def _bundle_records(manifest: Manifest) -> tuple[str, list[dict[str, Any]], list[float]]:
    """(source, records, build-machine scores or None) from a bundle's manifest."""
    acc = manifest.acceptance
    if acc is not None and acc.records:
        return "acceptance", [dict(r) for r in acc.records], list(acc.scores)
    return "golden", [dict(g.record) for g in manifest.golden], [float(g.score) for g in manifest.golden]


def bench_bundles(
    bundles: Sequence[str],
    *,
    data: Sequence[Mapping[str, Any]] | None = None,
    records: int | None = None,
    repeat: str = "default",
    threads: int = 1,
    cpus: Sequence[int] | None = None,
    name: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Measure each bundle in a fresh process; return the results document (not yet written)."""
    import platform

    from ..atomic import write_bytes
    from ..bundle import read_bundle

    settings = preset(repeat)
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgefin-run-bench-") as tmp:
        work = Path(tmp)
        for i, path in enumerate(bundles):
            if progress:
                progress(i, len(bundles), Path(path).name)
            bundle = read_bundle(path)  # a damaged or tampered bundle is refused before anything is timed
            m = bundle.manifest
            rows: list[Mapping[str, Any]]
            expected: list[float] | None
            if data is not None:
                source, rows, expected = "data", list(data), None
            else:
                source, own, expected = _bundle_records(m)
                rows = list(own)
            if records is not None:
                rows = rows[:records]
                expected = expected[:records] if expected is not None else None
            if not rows:
                raise BenchResultsError(f"{path}: no records to time (the bundle has no acceptance set or golden)")
            inputs = work / f"inputs-{i}.json"
            write_bytes(inputs, json.dumps(inputs_document(m.schema, rows)).encode("utf-8"))
            spec = {
                "bundle": str(Path(path).resolve()),
                "input": str(inputs),
                "variant": m.model.variant,
                "threads": threads,
                "cpus": list(cpus) if cpus else None,
                "settings": settings.to_dict(),
                "scores": expected is not None,  # synthetic records only: compared, then dropped
            }
            res = spawn_worker(spec, work, f"bundle-{i}", settings.timeout_s)
            entry: dict[str, Any] = {
                "file": Path(path).name,
                "sha256": bundle.sha256,
                "variant": m.model.variant,
                "engine": m.model.engine,
                "kernels": m.model.kernels,
                "weights": m.model.weights,
                "activations": m.model.activations,
                "status": "ok" if res.get("status") == "ok" else "error",
                "records": {"source": source, "count": len(rows), "rejected": res.get("rejected")},
            }
            if res.get("error"):
                entry["error"] = res["error"]
            entry.update({k: res[k] for k in _KEEP if k in res})
            if "engine" in res:
                entry["engine_info"] = res["engine"]  # the bare engine's name, version and fixed batch
            scores = res.get("scores")
            if expected is not None and isinstance(scores, list):
                diffs = [abs(a - b) for a, b in zip(scores, expected) if a is not None]
                entry["acceptance"] = {"n": len(diffs), "max_abs_diff": max(diffs) if diffs else None}
            entries.append(entry)
    if progress:
        progress(len(bundles), len(bundles), "done")
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": {"name": name or platform.node() or "device", "machine": machine_info(), "versions": versions()},
        "settings": settings.to_dict(),
        "threads": threads,
        "cpus": list(cpus) if cpus else None,
        "bundles": entries,
    }


def validate(doc: object, where: str) -> dict[str, Any]:
    """Check a parsed results file; return it, or raise BenchResultsError naming ``where`` and the key."""
    if not isinstance(doc, dict):
        raise BenchResultsError(f"{where}: expected a JSON object (an edgefin-run bench results file)")
    if doc.get("schema") != SCHEMA:
        raise BenchResultsError(f"{where}: 'schema' is {doc.get('schema')!r}, expected {SCHEMA!r}")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
        raise BenchResultsError(
            f"{where}: 'schema_version' {version!r} is not one this runtime reads (1..{SCHEMA_VERSION}); "
            "upgrade edgefin-runtime on the reading side"
        )
    device = doc.get("device")
    if not isinstance(device, dict) or not isinstance(device.get("name"), str) or not device["name"]:
        raise BenchResultsError(f"{where}: 'device.name' must be a non-empty string")
    bundles = doc.get("bundles")
    if not isinstance(bundles, list):
        raise BenchResultsError(f"{where}: 'bundles' must be a list")
    for k, b in enumerate(bundles):
        if not isinstance(b, dict):
            raise BenchResultsError(f"{where}: bundles[{k}] must be an object")
        for key in ("variant", "sha256", "status"):
            if not isinstance(b.get(key), str):
                raise BenchResultsError(f"{where}: bundles[{k}].{key} must be a string")
    return doc


def read_results(path: str) -> dict[str, Any]:
    """Read and validate a results file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchResultsError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BenchResultsError(f"{path}: not valid JSON ({exc})") from None
    return validate(doc, path)
