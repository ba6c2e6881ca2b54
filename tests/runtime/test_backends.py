"""Engines: one interface, any batch size, single row == batch row, int8 I/O exactly like TFLite."""

from __future__ import annotations

import numpy as np
import pytest

from edgefin_runtime import BackendError
from edgefin_runtime.backends import MAX_CHUNK, create_engine
from edgefin_runtime.backends.base import bucket, dequantize, quantize
from edgefin_runtime.bundle import read_bundle
from edgefin_runtime.manifest import Quantization


def engine_for(path, **kw):
    b = read_bundle(path)
    return create_engine(b.manifest.model, b.model_bytes, **kw)


def features(n: int, k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1.5, (n, k)).astype(np.float32)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, MAX_CHUNK, MAX_CHUNK + 5])
def test_any_batch_size_matches_single_rows(variant, tiny_bundles, n) -> None:
    eng = engine_for(tiny_bundles[variant])
    x = features(n, eng.n_features, seed=n)
    out = eng.run(x)
    assert out.shape == (n,) and out.dtype == np.float32
    rows = range(n) if n < 64 else [0, 1, n // 2, n - 1]
    for i in rows:
        assert eng.run_one(x[i].tolist()) == float(out[i])
    if n:
        assert np.all((out >= 0) & (out <= 1))


def test_repeated_and_interleaved_calls_are_stable(variant, tiny_bundles) -> None:
    eng = engine_for(tiny_bundles[variant])
    x = features(300, eng.n_features)
    first = eng.run(x)
    for size in (1, 300, 7, 300, 64):
        assert np.array_equal(eng.run(x[:size]), first[:size])
    slot = eng.row_slot()
    if slot is not None:  # the zero-copy single-row path writes into the engine's own buffer
        slot.raw[:] = slot.zero
        for j, v in enumerate(x[5].tolist()):
            slot.features[j] = v
        slot.invoke()
        assert slot.out[0] == float(first[5])


def test_int8_io_quantisation_matches_the_models_own_quantize_op(tiny_bundles) -> None:
    io8 = engine_for(tiny_bundles["tflite-int8-io"])  # we quantise inputs / dequantise outputs
    f8 = engine_for(tiny_bundles["tflite-int8"])  # the model's own Quantize/Dequantize ops do
    assert io8.row_slot() is None and f8.row_slot() is not None
    x = features(2000, io8.n_features, seed=3)
    assert np.array_equal(io8.run(x), f8.run(x))
    assert io8.run_one(x[0].tolist()) == float(f8.run(x[:1])[0])


def test_quantize_rounds_half_away_from_zero_and_clamps() -> None:
    q = Quantization(scale=0.5, zero_point=3)
    x = np.array([[0.25, -0.25, 0.75, -0.75, 0.0, 1000.0, -1000.0]], dtype=np.float32)
    assert quantize(x, q, "int8").tolist() == [[4, 2, 5, 1, 3, 127, -128]]
    assert quantize(x, Quantization(0.5, 128), "uint8").tolist() == [[129, 127, 130, 126, 128, 255, 0]]
    assert dequantize(np.array([3, 4, -128], dtype=np.int8), q).tolist() == [0.0, 0.5, -65.5]


def test_bucket_sizes_are_bounded() -> None:
    assert [bucket(n) for n in (1, 2, 3, 5, 1000, 1024, 1025, MAX_CHUNK, 10**6)] == [
        1,
        2,
        4,
        8,
        1024,
        1024,
        2048,
        MAX_CHUNK,
        MAX_CHUNK,
    ]


def test_bad_matrices_are_refused(tiny_bundles) -> None:
    eng = engine_for(tiny_bundles["onnx-fp32"])
    with pytest.raises(BackendError, match="shape"):
        eng.run(np.zeros((2, eng.n_features + 1), dtype=np.float32))
    with pytest.raises(BackendError, match="shape"):
        eng.run([[0.0] * eng.n_features])  # type: ignore[arg-type]
    x64 = features(4, eng.n_features).astype(np.float64)
    assert np.array_equal(eng.run(x64), eng.run(x64.astype(np.float32)))
    fortran = np.asfortranarray(features(4, eng.n_features))
    assert np.array_equal(eng.run(fortran), eng.run(np.ascontiguousarray(fortran)))


def test_describe_names_engine_and_version(tiny_bundles) -> None:
    d = engine_for(tiny_bundles["tflite-int8"]).describe()
    assert d["engine"] == "litert" and d["package"] == "ai-edge-litert" and d["threads"] == 1
    d = engine_for(tiny_bundles["onnx-fp32"], threads=2).describe()
    assert d["engine"] == "onnx" and d["threads"] == 2 and d["version"]


def test_reference_kernels_follow_the_manifest(tiny_bundles) -> None:
    """A manifest asking for reference kernels gets them (portable int8); 'litert-ref' forces them."""
    from dataclasses import replace

    b = read_bundle(tiny_bundles["tflite-int8"])
    x = features(64, b.manifest.preprocessing.n_features, seed=3)
    default = create_engine(b.manifest.model, b.model_bytes)
    ref_spec = replace(b.manifest.model, kernels="reference")
    ref = create_engine(ref_spec, b.model_bytes)
    forced = create_engine(b.manifest.model, b.model_bytes, backend="litert-ref")
    assert default.describe()["reference_kernels"] is False
    assert ref.describe()["reference_kernels"] is True and forced.describe()["reference_kernels"] is True
    assert np.array_equal(ref.run(x), forced.run(x))
    assert [ref.run_one(r) for r in x[:5]] == ref.run(x[:5]).tolist()


def test_litert_public_api_fallback(tiny_bundles, monkeypatch) -> None:
    """Without the native wrapper (another LiteRT build), the engine uses set_tensor/invoke/get_tensor."""
    from edgefin_runtime.backends import litert

    fast = engine_for(tiny_bundles["tflite-fp32"])
    monkeypatch.setattr(litert, "_native", lambda interpreter: None)
    slow = engine_for(tiny_bundles["tflite-fp32"])
    assert slow.row_slot() is None
    x = features(20, slow.n_features, seed=5)
    assert [slow.run_one(r) for r in x.tolist()] == [fast.run_one(r) for r in x.tolist()] == fast.run(x).tolist()
