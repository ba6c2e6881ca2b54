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
    model = dataclasses.replace(
        m.model,
        variant="onnx-int8",
        inputs=details.inputs,
        outputs=details.outputs,
        weights=variant.weights,
        activations=variant.activations,
    )
    provisional, _ = build_bundle(dataclasses.replace(m, model=model, golden=(), acceptance=None), model_bytes)
    pred = edgefin_runtime.load(provisional, self_test=False)
    golden = tuple(GoldenVector(record=g.record, score=float(pred.score(g.record).probability)) for g in m.golden)
    acceptance = m.acceptance
    if acceptance is not None:
        scores = tuple(float(pred.score(r).probability) for r in acceptance.records)
        acceptance = dataclasses.replace(acceptance, scores=scores)
    final = dataclasses.replace(
        m,
        model=model,
        golden=golden,
        acceptance=acceptance,
        golden_tolerance=variant.golden_tolerance,
        parity={"gate": {"kind": "quantized", "max_auc_drop": 0.005, "max_flip_rate": 0.01}},
    )
    data, _ = build_bundle(final, model_bytes)
    out = tmp_path_factory.mktemp("targets") / "tiny-onnx-int8.efb"
    out.write_bytes(data)
    edgefin_runtime.load(out)  # self-tested on the build machine, as a converted bundle is
    assert np.isfinite(golden[0].score)
    return out


def _saturating_fp32(n_features: int) -> bytes:
    """A float ONNX model whose every weight pair is large and of one sign: quantised with int8 weights
    and uint8 activations (U8S8), AVX2 without VNNI saturates its 16-bit pair sums (vpmaddubsw), SSE4.2
    does not - the ISA dependence issue 12 measured on the demo's onnx-dynamic, made certain."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = np.abs(rng.normal(1.0, 0.05, (n_features, 64))).astype(np.float32)
    w2 = (rng.normal(0, 1, (64, 1)) * 0.05).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "W2"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p"]),
        ],
        "saturating",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(w2, "W2")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.fixture(scope="session")
def saturating_bundles(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: F811
    """onnx-dynamic bundles of the saturating model: 'default' (the converters' shipped settings) and
    'u8s8' (int8 weights), scored on this machine as convert scores a bundle."""
    import edgefin_runtime
    from edgefin_converters.onnx import describe_onnx, to_onnx_dynamic
    from edgefin_converters.registry import resolve_variants
    from edgefin_runtime.bundle import build_bundle, read_bundle
    from edgefin_runtime.manifest import GoldenVector

    m = read_bundle(tiny_dir / "tiny-onnx-fp32.efb").manifest
    fp32 = _saturating_fp32(m.preprocessing.n_features)
    variant = resolve_variants("onnx-dynamic")[0]
    out_dir = tmp_path_factory.mktemp("saturating")
    out: dict[str, Path] = {}
    for name, model_bytes in (("default", to_onnx_dynamic(fp32)), ("u8s8", to_onnx_dynamic(fp32, weight_type="int8"))):
        d = describe_onnx(model_bytes)
        model = dataclasses.replace(
            m.model,
            variant="onnx-dynamic",
            inputs=d.inputs,
            outputs=d.outputs,
            weights=variant.weights,
            activations=variant.activations,
        )
        provisional, _ = build_bundle(dataclasses.replace(m, model=model, golden=(), acceptance=None), model_bytes)
        pred = edgefin_runtime.load(provisional, self_test=False)
        golden = tuple(GoldenVector(g.record, float(pred.score(g.record).probability)) for g in m.golden)
        acc = m.acceptance
        if acc is not None:
            acc = dataclasses.replace(acc, scores=tuple(float(pred.score(r).probability) for r in acc.records))
        final = dataclasses.replace(
            m,
            model=model,
            golden=golden,
            acceptance=acc,
            golden_tolerance=variant.golden_tolerance,
            parity={"gate": {"kind": "quantized"}},
        )
        path = out_dir / f"saturating-{name}.efb"
        path.write_bytes(build_bundle(final, model_bytes)[0])
        out[name] = path
    return out
