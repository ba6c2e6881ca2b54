"""Assemble a variant's manifest and write its .efb bundle atomically.

The manifest is built only through :class:`edgefin_runtime.manifest.Manifest` and packed only by
:func:`edgefin_runtime.bundle.build_bundle` (deterministic zip, member hashes), so the runtime's
contract is the one place that defines the format. Writing is all-or-nothing: a temporary file in
the target folder, fsync, rename, fsync of the folder; a failure at any point removes the temporary
file and leaves whatever bundle was there before. ``_before_replace`` lets tests inject a crash.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgefin_runtime import atomic
from edgefin_runtime.bundle import build_bundle
from edgefin_runtime.manifest import AcceptanceSet, Decision, GoldenVector, Manifest, ModelSpec, PreprocessSpec, Schema

from .versions import library_versions

BUNDLE_SUFFIX = ".efb"
_before_replace: Callable[[Path], None] | None = None  # test hook: raise here to simulate a crash


# ---------------------------------------------------------------- manifest parts
def producer(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The tool and the library versions that produced a bundle (stable across runs on one install)."""
    libs: dict[str, str] = {"python": ".".join(map(str, sys.version_info[:3])), **library_versions()}
    out: dict[str, Any] = {
        "tool": "edgefin-converters",
        "version": libs.get("edgefin-converters", "0"),
        "libraries": libs,
    }
    out.update(extra or {})
    return out


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def positive_means(schema: Schema) -> str:
    """What a positive decision means, in words a reviewer of the bundle understands."""
    return (
        f"{schema.target} = {schema.positive_label!r} (not {schema.negative_label!r}): the score is the "
        f"probability of {schema.positive_label!r}; a score at or above the threshold flags it"
    )


def make_manifest(
    *,
    schema: Schema,
    preprocessing: PreprocessSpec,
    model: ModelSpec,
    decision: Decision,
    golden: Sequence[GoldenVector] = (),
    golden_tolerance: float = 1e-5,
    acceptance: AcceptanceSet | None = None,
    metrics: Mapping[str, Any] | None = None,
    parity: Mapping[str, Any] | None = None,
    producer_info: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    created_at: str = "",
    explain: Mapping[str, Any] | None = None,
    drift: Mapping[str, Any] | None = None,
    model_card: Mapping[str, Any] | None = None,
) -> Manifest:
    """A Manifest for one variant (member hashes are filled in by build_bundle)."""
    return Manifest(
        schema=schema,
        preprocessing=preprocessing,
        model=model,
        decision=decision,
        members={},
        golden=tuple(golden),
        golden_tolerance=float(golden_tolerance),
        acceptance=acceptance,
        metrics=_json_safe(dict(metrics or {})),
        parity=_json_safe(dict(parity or {})),
        producer=_json_safe(dict(producer_info or {})),
        source=_json_safe(dict(source or {})),
        created_at=created_at,
        explain=None if explain is None else _json_safe(dict(explain)),
        drift=None if drift is None else _json_safe(dict(drift)),
        model_card=None if model_card is None else _json_safe(dict(model_card)),
    )


def pack(manifest: Manifest, model_bytes: bytes) -> tuple[bytes, Manifest]:
    """Deterministic bundle bytes and the manifest as packed (with member hashes)."""
    return build_bundle(manifest, model_bytes)


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


__all__ = ["BUNDLE_SUFFIX", "producer", "utc_now", "positive_means", "make_manifest", "pack", "write_bundle"]
