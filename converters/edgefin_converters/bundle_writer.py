"""Assemble a variant's manifest and write its .efb bundle atomically.

The manifest is built only through :class:`edgefin_runtime.manifest.Manifest` and packed only by
:func:`edgefin_runtime.bundle.build_bundle` (deterministic zip, member hashes), so the runtime's
contract is the one place that defines the format. Writing is all-or-nothing: a temporary file in
the target folder, fsync, rename, fsync of the folder; a failure at any point removes the temporary
file and leaves whatever bundle was there before. ``_before_replace`` lets tests inject a crash.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from edgefin_runtime import atomic
from edgefin_runtime.bundle import build_bundle
from edgefin_runtime.manifest import Decision, GoldenVector, Manifest, ModelSpec, PreprocessSpec, Schema
from edgefin_runtime.preprocess import canonical_category

BUNDLE_SUFFIX = ".efb"
GOLDEN_COUNT = 8
_before_replace: Callable[[Path], None] | None = None  # test hook: raise here to simulate a crash

_LIBRARIES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "tf2onnx", "onnx", "onnxruntime",
              "ai-edge-litert", "numpy", "edgefin-runtime", "edgefin-converters")


# ---------------------------------------------------------------- manifest parts
def producer(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The tool and the library versions that produced a bundle (stable across runs on one install)."""
    libs: dict[str, str] = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            libs[name] = metadata.version(name)
    out: dict[str, Any] = {"tool": "edgefin-converters", "version": libs.get("edgefin-converters", "0"),
                           "libraries": libs}
    out.update(extra or {})
    return out


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def positive_means(schema: Schema) -> str:
    """What a positive decision means, in words a reviewer of the bundle understands."""
    return (f"{schema.target} = {schema.positive_label!r} (not {schema.negative_label!r}): the score is the "
            f"probability of {schema.positive_label!r}; a score at or above the threshold flags it")


def make_manifest(*, schema: Schema, preprocessing: PreprocessSpec, model: ModelSpec, decision: Decision,
                  golden: Sequence[GoldenVector] = (), golden_tolerance: float = 1e-5,
                  metrics: Mapping[str, Any] | None = None, parity: Mapping[str, Any] | None = None,
                  producer_info: Mapping[str, Any] | None = None, source: Mapping[str, Any] | None = None,
                  created_at: str = "") -> Manifest:
    """A Manifest for one variant (member hashes are filled in by build_bundle)."""
    return Manifest(schema=schema, preprocessing=preprocessing, model=model, decision=decision, members={},
                    golden=tuple(golden), golden_tolerance=float(golden_tolerance),
                    metrics=_json_safe(dict(metrics or {})), parity=_json_safe(dict(parity or {})),
                    producer=_json_safe(dict(producer_info or {})), source=_json_safe(dict(source or {})),
                    created_at=created_at)


def pack(manifest: Manifest, model_bytes: bytes) -> tuple[bytes, Manifest]:
    """Deterministic bundle bytes and the manifest as packed (with member hashes)."""
    return build_bundle(manifest, model_bytes)


def with_created_at(manifest: Manifest, created_at: str) -> Manifest:
    return replace(manifest, created_at=created_at)


# ---------------------------------------------------------------- golden vectors
def select_golden(columns: Mapping[str, Any], schema: Schema, scores: np.ndarray, usable: np.ndarray,
                  threshold: float, count: int = GOLDEN_COUNT) -> list[int]:
    """Pick ~``count`` test rows: some with missing values, then a spread of scores (lowest, highest,
    both sides of the threshold, quantiles). Deterministic for the same rows and scores."""
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return []
    chosen: list[int] = []
    seen_missing: set[str] = set()
    for i in idx:  # rows with missing values, preferring ones that miss a field not yet covered
        miss = {f.name for f in schema.fields if _is_missing(columns[f.name][i])}
        if miss and not miss <= seen_missing:
            chosen.append(int(i))
            seen_missing |= miss
        if len(chosen) >= max(1, count // 3):
            break
    s = np.asarray(scores, dtype=np.float64)[idx]
    order = idx[np.argsort(s, kind="stable")]
    sorted_s = np.sort(s, kind="stable")
    picks = [order[0], order[-1]]
    k = int(np.searchsorted(sorted_s, threshold))
    picks += [order[max(k - 1, 0)], order[min(k, len(order) - 1)]]
    for q in np.linspace(0.1, 0.9, count):
        picks.append(order[min(int(q * len(order)), len(order) - 1)])
    for i in picks:
        if len(chosen) >= count:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return chosen


def golden_record(columns: Mapping[str, Any], schema: Schema, i: int) -> dict[str, Any]:
    """One raw row as a strict-JSON record: numbers as int/float, categories as strings, missing as None."""
    rec: dict[str, Any] = {}
    for f in schema.fields:
        v = columns[f.name][i]
        if _is_missing(v):
            rec[f.name] = None
        elif f.kind == "categorical":
            rec[f.name] = canonical_category(v)
        elif isinstance(v, (bool, np.bool_)):
            rec[f.name] = bool(v)
        elif isinstance(v, (int, np.integer)):
            rec[f.name] = int(v)
        else:
            rec[f.name] = float(v)
    return rec


def _is_missing(v: Any) -> bool:
    if v is None or (isinstance(v, str) and v == ""):
        return True
    if isinstance(v, (float, np.floating)):
        return bool(math.isnan(v))
    pd = sys.modules.get("pandas")
    return pd is not None and v is pd.NA


# ---------------------------------------------------------------- writing
def write_bundle(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write bundle bytes to ``path`` atomically (temp file in the same folder, fsync, rename).

    Permissions are those a plain open() gives (a bundle is read by other accounts).
    """
    return atomic.write_bytes(path, data, before_replace=_before_replace)


def _json_safe(obj: Any) -> Any:
    """Plain JSON types only (numpy scalars -> Python; NaN/inf -> None) so strict JSON always works."""
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


__all__ = ["BUNDLE_SUFFIX", "GOLDEN_COUNT", "producer", "utc_now", "positive_means", "make_manifest", "pack",
           "select_golden", "golden_record", "write_bundle"]
