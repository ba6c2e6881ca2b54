"""Fixture bundles with the explain and drift sections: the tiny fixture bundles (tests/fixtures/bundles.py)
repacked with sections built by the converters from the tiny training data (no TensorFlow needed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import edgefin_runtime
from edgefin_converters import sections
from edgefin_runtime.bundle import build_bundle, read_bundle


def fixture_module() -> Any:
    """tests/fixtures/bundles.py by path (a site-packages ``tests`` package can shadow ours)."""
    import importlib.util
    import sys

    name = "edgefin_test_fixture_bundles"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parents[1] / "fixtures" / "bundles.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def with_sections(
    src: Path,
    out: Path,
    *,
    protected: tuple[str, ...] = (),
    reasons: dict[str, Any] | None = None,
    method: str = "auto",
) -> Path:
    """``src`` repacked with explain and drift sections (reference from the bundle's own scores of the tiny data)."""
    bundle = read_bundle(str(src))
    m = bundle.manifest
    fx = fixture_module()
    cols, _ = fx.tiny_data()
    pred = edgefin_runtime.load(str(src), self_test=False)
    scores = np.asarray(pred.score_columns(cols).probabilities, dtype=np.float64)
    explain = sections.explain_section(
        fx.TINY_SCHEMA,
        m.preprocessing,
        cols,
        scores,
        m.decision.threshold,
        protected=protected,
        reasons=reasons,
        method=method,
    )
    drift = sections.drift_section(fx.TINY_SCHEMA, cols, scores)
    data, _ = build_bundle(replace(m, explain=explain, drift=drift), bundle.model_bytes)
    out.write_bytes(data)
    return out
