"""ISA-stable ONNX int8: the default settings are the ones whose integer arithmetic is exact on every CPU.

ONNX Runtime's int8 GEMM (MLAS) runs uint8 x int8 (U8S8, and S8S8 on x86) on ``vpmaddubsw`` on AVX2 and
AVX-512 without VNNI: two u8*s8 products are added into a *saturating* int16. SSE4.2, VNNI and ARM64
accumulate in int32, so an int8-weight model can score differently per CPU. uint8 x uint8 (U8U8) is
zero-extended to int16 and multiplied with ``pmaddwd`` (int32 sums) on every x86 level and widened on
NEON: exact. These tests prove on a small real model that the converters' defaults are U8U8 (weights
and activations uint8), and, with a numpy model of both x86 kernels, that the default model's integer
GEMM equals exact arithmetic for the worst-case activations while the former int8-weight default
does not (so the check can fail). The x86-64-v2 run under qemu is in tests/edgefin/targets/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

INT16_MIN, INT16_MAX = -32768, 32767


# ---------------------------------------------------------------- numpy models of MLAS's x86 kernels
def vpmaddubsw_gemm(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """U8S8 on AVX2/AVX-512 without VNNI: u8 activations x s8 weights, adjacent K pairs summed into a
    saturating int16 (``vpmaddubsw``), then widened and accumulated in int32."""
    assert a.dtype == np.uint8 and w.dtype == np.int8
    a64, w64 = a.astype(np.int64), w.astype(np.int64)
    if a64.shape[1] % 2:  # MLAS pads K with zeros
        a64 = np.hstack([a64, np.zeros((len(a64), 1), np.int64)])
        w64 = np.vstack([w64, np.zeros((1, w64.shape[1]), np.int64)])
    pairs = a64[:, 0::2, None] * w64[None, 0::2, :] + a64[:, 1::2, None] * w64[None, 1::2, :]
    return np.clip(pairs, INT16_MIN, INT16_MAX).sum(axis=1)


def pmaddwd_gemm(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """U8U8 on SSE2..AVX-512: both operands zero-extended to int16 (0..255), ``pmaddwd`` multiplies
    int16 x int16 into int32 pair sums (it cannot saturate for operands in 0..255)."""
    assert a.dtype == np.uint8 and w.dtype == np.uint8
    a16, w16 = a.astype(np.int16), w.astype(np.int16)  # zero extension: exact
    assert (a16 >= 0).all() and (w16 >= 0).all()
    return a16.astype(np.int64) @ w16.astype(np.int64)


def test_the_kernel_models_detect_saturation() -> None:
    a = np.full((1, 2), 255, np.uint8)
    w = np.array([[127], [127]], np.int8)
    assert vpmaddubsw_gemm(a, w)[0, 0] == INT16_MAX != 255 * 127 * 2
    assert vpmaddubsw_gemm(a, np.array([[64], [64]], np.int8))[0, 0] == 255 * 128  # reduce_range: exact


@pytest.mark.parametrize("seed", range(5))
def test_u8u8_pair_sums_never_leave_the_pmaddwd_range(seed: int) -> None:
    """Property: for any uint8 activations and weights, every pmaddwd pair sum fits int32 and the GEMM
    equals exact integer arithmetic; for int8 weights vpmaddubsw does not (it saturates)."""
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(2, 300)), int(rng.integers(1, 40))
    a = rng.integers(0, 256, (8, k)).astype(np.uint8)
    a[0] = 255  # the worst case is always in the batch
    wu = rng.integers(0, 256, (k, n)).astype(np.uint8)
    exact = a.astype(np.int64) @ wu.astype(np.int64)
    assert np.array_equal(pmaddwd_gemm(a, wu), exact)
    assert 2 * 255 * 255 < 2**31 - 1
    ws = np.full((k, n), 127, np.int8)
    assert not np.array_equal(vpmaddubsw_gemm(a, ws), a.astype(np.int64) @ ws.astype(np.int64))


# ---------------------------------------------------------------- the converters' defaults on a real model
@pytest.fixture(scope="module")
def tiny(run_dir: Path) -> dict:
    from edgefin_converters import onnx as oc
    from edgefin_converters.export import ExportOptions, _calibration_rows
    from edgefin_runtime.preprocess import Preprocessor

    from edgefin.data.rundata import encoded_split, load_split, run_schema, run_spec
    from edgefin.data.schema import to_columns
    from edgefin.keras_io import load_model
    from edgefin.rundir import RunDir

    run = RunDir.at(run_dir)
    schema = run_schema(run)
    frame, _ = load_split(run, "train")
    cal = _calibration_rows(Preprocessor(schema, run_spec(run)), to_columns(frame, schema, "train"), ExportOptions())
    x, _ = encoded_split(run, "test")
    fp32 = oc.to_onnx_fp32(load_model(run.model_path("dense")), x.shape[1])
    return {
        "fp32": fp32,
        "cal": cal,
        "x": x.astype(np.float32),
        "dynamic": oc.to_onnx_dynamic(fp32),
        "static": oc.to_onnx_int8(fp32, cal),
    }


def _graph(model: bytes):
    import onnx
    from onnx import numpy_helper

    g = onnx.load_from_string(model).graph
    return g, {i.name: numpy_helper.to_array(i) for i in g.initializer}


def _gemm_weights(model: bytes) -> list[tuple[np.ndarray, np.ndarray]]:
    """(integer weight matrix, its zero point) of every integer MatMul/Gemm of a quantised model."""
    g, inits = _graph(model)
    out = []
    for n in g.node:
        if n.op_type == "MatMulInteger":
            out.append((inits[n.input[1]], inits[n.input[3]]))
        elif n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 2:
            out.append((inits[n.input[0]], inits[n.input[2]]))
    return out


def test_default_dynamic_model_is_u8u8_per_tensor_batch1(tiny) -> None:
    g, inits = _graph(tiny["dynamic"])
    weights = _gemm_weights(tiny["dynamic"])
    assert len(weights) == 2  # the fixture's two Dense layers
    assert all(w.dtype == np.uint8 and zp.dtype == np.uint8 and zp.size == 1 for w, zp in weights)
    assert {n.op_type for n in g.node} >= {"DynamicQuantizeLinear", "MatMulInteger"}  # uint8 activations
    assert g.input[0].type.tensor_type.shape.dim[0].dim_value == 1


def test_default_static_model_is_u8u8_per_channel_qdq(tiny) -> None:
    g, inits = _graph(tiny["static"])
    weights = _gemm_weights(tiny["static"])
    assert len(weights) == 2
    for w, zp in weights:
        assert w.dtype == np.uint8 and zp.dtype == np.uint8
        assert zp.shape == (w.shape[1],)  # one zero point (and scale) per output channel
    act = [inits[n.input[2]] for n in g.node if n.op_type == "QuantizeLinear"]
    assert act and all(z.dtype == np.uint8 for z in act)  # every activation is uint8


@pytest.mark.parametrize("kind", ["dynamic", "static"])
def test_default_integer_gemm_is_exact_for_worst_case_activations(tiny, kind: str) -> None:
    """The default model's weights through the U8U8 kernel model give exact sums for every activation
    in 0..255; the same layer quantised the former way (int8 weights) saturates vpmaddubsw."""
    from edgefin_converters import onnx as oc

    rng = np.random.default_rng(0)
    for w, _ in _gemm_weights(tiny[kind]):
        a = np.vstack([np.full((1, w.shape[0]), 255, np.uint8), rng.integers(0, 256, (31, w.shape[0]))]).astype(
            np.uint8
        )
        assert np.array_equal(pmaddwd_gemm(a, w), a.astype(np.int64) @ w.astype(np.int64))
    old = (
        oc.to_onnx_dynamic(tiny["fp32"], weight_type="int8")
        if kind == "dynamic"
        else oc.to_onnx_int8(tiny["fp32"], tiny["cal"], activation_type="int8", weight_type="int8", per_channel=False)
    )
    saturates = []
    for w, _ in _gemm_weights(old):
        assert w.dtype == np.int8
        a = np.full((1, w.shape[0]), 255, np.uint8)
        a_neg = a * (w[:, [int(np.argmax(np.abs(w).max(axis=0)))]].ravel() < 0)  # activate one sign only
        a_pos = a * (w[:, [int(np.argmax(np.abs(w).max(axis=0)))]].ravel() > 0)
        for x in (a_pos.astype(np.uint8), a_neg.astype(np.uint8)):
            saturates.append(not np.array_equal(vpmaddubsw_gemm(x, w), x.astype(np.int64) @ w.astype(np.int64)))
    assert any(saturates), "the former int8-weight setting should be able to saturate int16"


def test_default_conversions_are_byte_deterministic(tiny) -> None:
    from edgefin_converters import onnx as oc

    assert oc.to_onnx_dynamic(tiny["fp32"]) == tiny["dynamic"]
    assert oc.to_onnx_int8(tiny["fp32"], tiny["cal"]) == tiny["static"]


def test_describe_reports_weight_types_and_per_channel(tiny) -> None:
    from edgefin_converters.onnx import describe_onnx

    dyn = describe_onnx(tiny["dynamic"]).quantization["int8_weight_tensors"]
    sta = describe_onnx(tiny["static"]).quantization["int8_weight_tensors"]
    assert dyn and all(w["dtype"] == "uint8" and w["per_channel"] is False for w in dyn)
    assert sta and all(w["dtype"] == "uint8" and w["per_channel"] is True for w in sta)


def test_the_default_models_score_like_the_float_model(tiny) -> None:
    """Sanity: U8U8 keeps the scores close to float (the credit model's gates are in the benchmark)."""
    import onnxruntime as ort

    def scores(model: bytes) -> np.ndarray:
        s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        return np.array([s.run(None, {"features": r[None]})[0].ravel()[0] for r in tiny["x"][:200]])

    ref = scores(tiny["fp32"])
    assert np.abs(scores(tiny["dynamic"]) - ref).max() < 0.05
    assert np.abs(scores(tiny["static"]) - ref).max() < 0.1


def test_bad_quantisation_type_is_a_typed_error(tiny) -> None:
    from edgefin_converters import onnx as oc
    from edgefin_converters.errors import ModelInputError

    with pytest.raises(ModelInputError, match="expected 'int8' or 'uint8'"):
        oc.to_onnx_dynamic(tiny["fp32"], weight_type="int4")  # type: ignore[arg-type]


def test_registry_says_what_each_variant_needs_of_the_cpu() -> None:
    from edgefin_converters.registry import REGISTRY

    for v in REGISTRY.values():
        assert isinstance(v.cpu, str) and "CPU" in v.cpu and isinstance(v.portable, bool)
    assert REGISTRY["onnx-dynamic"].portable and REGISTRY["onnx-int8"].portable
    assert REGISTRY["onnx-int8"].weights == REGISTRY["onnx-int8"].activations == "uint8"
