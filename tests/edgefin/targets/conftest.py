"""Fixtures for the target-matrix tests: a real ONNX int8 bundle made from the session's tiny bundles.

The tiny fixture bundles (tests/runtime/conftest.py) are built once per code version with TensorFlow
in a subprocess; the int8 bundle is quantised here from the ONNX float32 one with the converters'
own ``to_onnx_int8`` (the shipped defaults), then its golden and acceptance scores are re-scored by
the runtime, as convert does. No TensorFlow enters the pytest process.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.runtime.conftest import tiny_dir  # noqa: F401 - the session's fixture bundles (built once)


@pytest.fixture(scope="session")
def onnx_int8_bundle(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    import edgefin_runtime
    from edgefin_converters.onnx import describe_onnx, to_onnx_int8
    from edgefin_converters.registry import resolve_variants
    from edgefin_runtime.bundle import build_bundle, read_bundle
    from edgefin_runtime.manifest import GoldenVector
    from edgefin_runtime.preprocess import Preprocessor

    from tests.fixtures.bundles import tiny_data

    src = read_bundle(tiny_dir / "tiny-onnx-fp32.efb")
    m = src.manifest
    cols, _ = tiny_data()
    res = Preprocessor(m.schema, m.preprocessing).columns(cols)
    keep = np.ones(len(res.matrix), dtype=bool)
    keep[list(res.errors)] = False
    calibration = res.matrix[keep][:200]
    model_bytes = to_onnx_int8(src.model_bytes, calibration)
    details = describe_onnx(model_bytes)
    variant = resolve_variants("onnx-int8")[0]
    model = dataclasses.replace(m.model, variant="onnx-int8", inputs=details.inputs, outputs=details.outputs,
                                weights=variant.weights, activations=variant.activations)
    provisional, _ = build_bundle(dataclasses.replace(m, model=model, golden=(), acceptance=None), model_bytes)
    pred = edgefin_runtime.load(provisional, self_test=False)
    golden = tuple(GoldenVector(record=g.record, score=float(pred.score(g.record).probability)) for g in m.golden)
    acceptance = m.acceptance
    if acceptance is not None:
        scores = tuple(float(pred.score(r).probability) for r in acceptance.records)
        acceptance = dataclasses.replace(acceptance, scores=scores)
    final = dataclasses.replace(m, model=model, golden=golden, acceptance=acceptance,
                                golden_tolerance=variant.golden_tolerance,
                                parity={"gate": {"kind": "quantized", "max_auc_drop": 0.005, "max_flip_rate": 0.01}})
    data, _ = build_bundle(final, model_bytes)
    out = tmp_path_factory.mktemp("targets") / "tiny-onnx-int8.efb"
    out.write_bytes(data)
    edgefin_runtime.load(out)  # self-tested on the build machine, as a converted bundle is
    assert np.isfinite(golden[0].score)
    return out
