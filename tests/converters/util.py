"""Helpers shared by the converter tests (not fixtures: plain functions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

#: Gates for the tiny fixture model. A 16-unit model trained for seconds puts many test scores next
#: to its threshold, so int8 rounding flips ~1% of its decisions (measured 0.75-2% across seeds); the
#: default 1% gate is meant for real models and is checked on the bundled credit data by
#: benchmarks/convert_credit.py. Float gates keep their defaults.
FIXTURE_FLIP_RATE = 0.03


def manifest_of(bundle: Path | bytes) -> dict[str, Any]:
    """A bundle's manifest as plain JSON, read through the runtime (so the bundle is verified too), with
    its acceptance set (the ``acceptance.json`` member) under "acceptance", as ``inspect --json`` shows it."""
    from edgefin_runtime.bundle import read_bundle

    b = read_bundle(bundle)
    d = json.loads(b.manifest_bytes)
    if b.acceptance_bytes is not None:
        d["acceptance"] = json.loads(b.acceptance_bytes)
    return dict(sorted(d.items()))


def split_columns(run: Path, split: str = "test") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Raw typed columns and labels of a run's split, exactly as the converters read them."""
    from edgefin.data.rundata import load_split, run_schema
    from edgefin.data.schema import to_columns
    from edgefin.rundir import RunDir

    rd = RunDir.at(run)
    frame, y = load_split(rd, split)
    return to_columns(frame, run_schema(rd), split), y
