"""Keras -> ONNX (tf2onnx, explicit input signature, chosen opset) and ONNX Runtime quantisation.

* :func:`to_onnx_fp32` - tf2onnx with a fixed input signature ``features: float32[batch, k]`` and the
  output renamed ``score``; symbolic dimension names are normalised so output is byte-deterministic.
  A quantisation-aware Keras model converts to float weights with QuantizeLinear/DequantizeLinear
  pairs on the activations (tf2onnx maps FakeQuant ops that way); real int8 ONNX comes from ORT.
* :func:`to_onnx_dynamic` - ``quantize_dynamic``: uint8 weights, activations quantised on the fly (U8U8).
* :func:`to_onnx_int8` - ``quantize_static`` in QDQ format, uint8 activations and per-channel uint8
  weights (U8U8), calibrated on training rows (MinMax).

Why U8U8 (the same result on every CPU). ONNX Runtime's int8 GEMM (MLAS) picks its kernel by
instruction set. With int8 weights (U8S8, and S8S8, which x86 runs on the same kernels) AVX2 and
AVX-512 without VNNI multiply with ``vpmaddubsw``, which adds two u8*s8 products into a *saturating*
int16 (255*127*2 = 64770 > 32767); SSE4.1/4.2 widen to int16 first and VNNI (``vpdpbusd``) and ARM64
NEON accumulate in int32, so they do not saturate: the same model scores differently per CPU. With
uint8 weights every x86 level zero-extends both operands to int16 and uses ``pmaddwd`` (int32 sums),
and NEON widens or uses ``udot``: the integer result is exact everywhere, by construction
(``benchmarks/isa_quant.py`` checks both kernels' inputs; ``tests/converters/test_onnx_isa.py`` the
property). Measured on the credit demo's pruned model, 891 test rows, native AVX2 (Zen 3) against
``qemu-x86_64 -cpu Nehalem-v1`` (SSE4.2) and ``Haswell-v4`` (AVX2), and ``qemu-aarch64 -cpu
cortex-a72`` / ``neoverse-n1`` (NEON without / with dot product) in a Debian arm64 root:

* dynamic, the old U8S8 default: 14 decisions flip against Keras (1.57%, fails the 1% gate) and the
  SSE4.2 and ARM64 scores differ from AVX2 by up to 0.046 (14 flips); U8U8: 2 flips against Keras,
  AUC delta -0.0000, scores across CPUs within 1.2e-7 (float rounding of the dequantised output, e.g.
  FMA or not), 0 flips. U8S8 with ``reduce_range`` (7-bit weights, cannot saturate either)
  is as stable but less accurate (3 flips, AUC -0.0005). Size 9732 bytes (+2).
* static QDQ, the old S8S8 per-tensor default: SSE4.2 and ARM64 differ from AVX2 by up to 0.0078.
  U8U8 per-tensor is bit-identical across CPUs but flips 9 of 891 (1.01%, over the gate); U8U8
  per-channel is bit-identical and flips 4 (0.45%, as the old default), AUC delta -0.0008, at 13269
  bytes instead of 11918 (per-channel scales and zero points).

AVX-512 and VNNI cannot be emulated by QEMU 7.2 (TCG); they run U8U8 on the same ``pmaddwd``
arithmetic (VNNI only replaces the U8S8 kernel), so U8U8 needs no such CPU to be proven.

tf2onnx leaves ops it cannot convert in the graph (it only logs them); :func:`to_onnx_fp32` checks
every node against the ONNX operator sets and raises UnsupportedOpError naming the op and layer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgefin_runtime.manifest import TensorSpec

from ._native import quiet
from .errors import ConversionFailedError, ModelInputError, UnsupportedOpError
from .keras_io import layer_for_op

INPUT_NAME = "features"
OUTPUT_NAME = "score"
BATCH_DIM = "batch"
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 21
IntType = Literal["int8", "uint8"]
_ONNX_DTYPES = {1: "float32", 10: "float16", 3: "int8", 2: "uint8", 6: "int32", 7: "int64"}


@dataclass(frozen=True)
class OnnxDetails:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    quantization: dict[str, Any]


def check_opset(opset: int) -> int:
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ModelInputError(f"opset: expected an integer from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}")
    return opset


# ---------------------------------------------------------------- variants
def to_onnx_fp32(model: Any, n_features: int, *, opset: int = DEFAULT_OPSET, variant: str = "onnx-fp32") -> bytes:
    """Convert a Keras model (or a :class:`.sources.GraphModel`) with tf2onnx; raise UnsupportedOpError for
    ops ONNX cannot express. An :class:`.sources.OnnxModel` is returned as it is."""
    import tensorflow as tf
    import tf2onnx

    from .sources import GraphModel, OnnxModel

    if isinstance(model, OnnxModel):  # an ONNX source is its own float variant, as given
        return model.model_bytes
    check_opset(opset)
    spec = [tf.TensorSpec((None, n_features), tf.float32, name=INPUT_NAME)]
    try:
        with quiet():
            if isinstance(model, GraphModel):  # the same function TFLite converts, variables frozen
                frozen = model.frozen()
                proto, _ = tf2onnx.convert.from_graph_def(
                    frozen.graph.as_graph_def(),
                    input_names=[t.name for t in frozen.inputs],
                    output_names=[t.name for t in frozen.outputs],
                    opset=opset,
                )
            else:
                proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    except Exception as exc:  # noqa: BLE001 - every converter failure becomes a typed error
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ConversionFailedError(f"{variant}: tf2onnx failed: {first}") from None
    if isinstance(model, GraphModel):  # the frozen graph's input is named like its tensor ("features:0")
        from .sources import rename_tensor

        rename_tensor(proto.graph, proto.graph.input[0].name, INPUT_NAME)
    _check_ops(proto, model, variant)
    _normalise(proto)
    data: bytes = proto.SerializeToString()
    return data


def to_onnx_dynamic(
    fp32_bytes: bytes,
    *,
    weight_type: IntType = "uint8",
    reduce_range: bool = False,
    per_channel: bool = False,
    batch1: bool = True,
    variant: str = "onnx-dynamic",
) -> bytes:
    """ORT dynamic quantisation of a float ONNX model (uint8 weights, per tensor; uint8 activations at
    run time). ``weight_type="uint8"`` makes the integer GEMM exact on every instruction set (see the
    module docstring); ``"int8"`` saturates on AVX2 without VNNI unless ``reduce_range``.

    The model gets a fixed batch of 1 (``batch1``): ``DynamicQuantizeLinear`` takes one range over the
    whole input tensor, so in a batch a record's score would depend on the other records (measured up
    to 0.085 on the credit data). With batch 1 the runtime scores each record alone, identically on
    every path.
    """
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    wtype = _quant_type(weight_type)
    proto = onnx.load_from_string(fp32_bytes)
    if batch1:
        _fix_batch(proto, 1)
    with tempfile.TemporaryDirectory(prefix="edgefin-onnx-") as tmp:
        src, dst = Path(tmp, "model.onnx"), Path(tmp, "quantized.onnx")
        src.write_bytes(proto.SerializeToString())
        try:
            with quiet():
                quantize_dynamic(src, dst, weight_type=wtype, reduce_range=reduce_range, per_channel=per_channel)
        except Exception as exc:  # noqa: BLE001
            raise ConversionFailedError(f"{variant}: ONNX Runtime dynamic quantisation failed: {exc}") from None
        return _normalised_bytes(dst.read_bytes())


def to_onnx_int8(
    fp32_bytes: bytes,
    calibration: np.ndarray,
    *,
    per_channel: bool = True,
    activation_type: IntType = "uint8",
    weight_type: IntType = "uint8",
    reduce_range: bool = False,
    quant_format: Literal["qdq", "qoperator"] = "qdq",
    variant: str = "onnx-int8",
    nodes_to_exclude: Sequence[str] = (),
) -> bytes:
    """ORT static quantisation (QDQ, float I/O), MinMax-calibrated on ``calibration`` rows fed one at a
    time in their given order. ``nodes_to_exclude`` (node names of the pre-processed graph, as the
    quantised model keeps them) stay float32 (accuracy repair). The defaults (uint8 activations,
    per-channel uint8 weights) give bit-identical scores on every CPU measured (see the module
    docstring); int8 weights make the result depend on the CPU unless ``reduce_range``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    atype, wtype = _quant_type(activation_type), _quant_type(weight_type)
    rows = np.ascontiguousarray(calibration, dtype=np.float32)
    if rows.ndim != 2 or len(rows) == 0:
        raise ModelInputError(
            f"{variant}: the calibration data set is empty; static quantisation needs training rows to calibrate on"
        )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it = iter(range(len(rows)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            i = next(self._it, None)
            return None if i is None else {INPUT_NAME: rows[i : i + 1]}

    with tempfile.TemporaryDirectory(prefix="edgefin-onnx-") as tmp:
        src, pre, dst = Path(tmp, "model.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "quantized.onnx")
        src.write_bytes(fp32_bytes)
        try:
            with quiet():
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
                quantize_static(
                    pre,
                    dst,
                    Reader(),
                    quant_format=QuantFormat.QDQ if quant_format == "qdq" else QuantFormat.QOperator,
                    activation_type=atype,
                    weight_type=wtype,
                    per_channel=per_channel,
                    reduce_range=reduce_range,
                    nodes_to_exclude=list(nodes_to_exclude) or None,
                    calibration_providers=["CPUExecutionProvider"],
                )
        except Exception as exc:  # noqa: BLE001
            raise ConversionFailedError(f"{variant}: ONNX Runtime static quantisation failed: {exc}") from None
        return _normalised_bytes(dst.read_bytes())


def _quant_type(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    types = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    if name not in types:
        raise ModelInputError(f"quantisation type: expected 'int8' or 'uint8', got {name!r}")
    return types[name]


# ---------------------------------------------------------------- inspection
def describe_onnx(model_bytes: bytes) -> OnnxDetails:
    """I/O tensors and a quantisation summary (QDQ parameters at the I/O, int8 weight initialisers)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(model_bytes)
    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    summary: dict[str, Any] = {
        "opset": max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0),
        "ops": sorted({n.op_type for n in g.node}),
    }

    def scalar(name: str) -> Any:
        return numpy_helper.to_array(inits[name]).reshape(-1)[0].item() if name in inits else None

    in_name, out_name = g.input[0].name, g.output[0].name
    for n in g.node:
        if n.op_type == "QuantizeLinear" and n.input[0] == in_name and len(n.input) >= 3:
            summary["input_quantization"] = {"scale": scalar(n.input[1]), "zero_point": scalar(n.input[2])}
        if n.op_type == "DequantizeLinear" and len(n.input) >= 3 and out_name in n.output:
            summary["output_quantization"] = {"scale": scalar(n.input[1]), "zero_point": scalar(n.input[2])}
    # 8-bit integer weight matrices (int8 or uint8), their type and whether they have one scale/zero
    # point per output channel (read from the node that consumes them)
    weights = [i for i in g.initializer if i.data_type in (2, 3) and len(i.dims) == 2]
    per_channel: dict[str, bool] = {}
    for n in g.node:
        w_at, p_at = {
            "DequantizeLinear": (0, 1),
            "MatMulInteger": (1, 3),
            "QGemm": (3, 4),
            "QLinearMatMul": (3, 4),
        }.get(n.op_type, (-1, -1))
        if w_at >= 0 and len(n.input) > p_at and n.input[p_at] in inits:
            per_channel[n.input[w_at]] = len(inits[n.input[p_at]].dims) > 0  # per tensor: a scalar
    summary["int8_weight_tensors"] = [
        {
            "name": w.name,
            "shape": list(w.dims),
            "dtype": _ONNX_DTYPES[w.data_type],
            "per_channel": per_channel.get(w.name),
        }
        for w in sorted(weights, key=lambda w: w.name)
    ]
    return OnnxDetails(inputs=(_spec(g.input[0]),), outputs=(_spec(g.output[0]),), quantization=summary)


def _spec(vi: Any) -> TensorSpec:
    t = vi.type.tensor_type
    shape = tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in t.shape.dim)
    dtype = _ONNX_DTYPES.get(t.elem_type, f"onnx-type-{t.elem_type}")
    return TensorSpec(name=vi.name, shape=shape, dtype=dtype, quantization=None)


# ---------------------------------------------------------------- plumbing
def _check_ops(proto: Any, model: Any, variant: str) -> None:
    import onnx

    opset = {o.domain or "": o.version for o in proto.opset_import}
    bad = []
    for n in proto.graph.node:
        domain = n.domain or ""
        try:
            onnx.defs.get_schema(n.op_type, opset.get(domain, 1), domain)
        except Exception:  # noqa: BLE001 - SchemaError: the op does not exist in ONNX
            bad.append(n)
    if bad:
        seen: dict[str, str | None] = {}
        for n in bad:
            if n.op_type not in seen:
                seen[n.op_type] = layer_for_op(model, n.name, n.op_type)
        op, layer = next(iter(seen.items()))
        where = f"layer '{layer}'" if layer else "the model"
        parts = [f"'{o}'" + (f" (layer '{lay}')" if lay else "") for o, lay in seen.items()]
        more = f"; all unsupported ops: {', '.join(parts)}" if len(parts) > 1 else ""
        raise UnsupportedOpError(
            f"{variant}: {where} uses the TensorFlow op '{op}', which tf2onnx cannot express in standard "
            f"ONNX{more}. Replace that layer with standard Keras layers, or do this computation in "
            f"preprocessing",
            target=variant,
            op=op,
            layer=layer,
        )


def _normalise(proto: Any) -> None:
    """Stable names: input 'features', output 'score', batch dimension 'batch' (tf2onnx numbers them
    from a process-wide counter, which would make two conversions differ)."""
    g = proto.graph
    old_out = g.output[0].name
    if old_out != OUTPUT_NAME:
        for n in g.node:
            for i, o in enumerate(n.output):
                if o == old_out:
                    n.output[i] = OUTPUT_NAME
            for i, o in enumerate(n.input):
                if o == old_out:
                    n.input[i] = OUTPUT_NAME
        g.output[0].name = OUTPUT_NAME
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                d.dim_param = BATCH_DIM
    proto.doc_string = ""


def _fix_batch(proto: Any, batch: int) -> None:
    """Give the graph's input and output a fixed batch dimension (intermediate shapes are re-inferred)."""
    g = proto.graph
    for vi in list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = batch
    del g.value_info[:]


def _normalised_bytes(data: bytes) -> bytes:
    import onnx

    proto = onnx.load_from_string(data)
    _normalise(proto)
    if proto.graph.input[0].name != INPUT_NAME:
        raise ConversionFailedError(f"ONNX quantisation renamed the input to {proto.graph.input[0].name!r}")
    quantized: bytes = proto.SerializeToString()
    return quantized


__all__ = [
    "OnnxDetails",
    "DEFAULT_OPSET",
    "check_opset",
    "to_onnx_fp32",
    "to_onnx_dynamic",
    "to_onnx_int8",
    "describe_onnx",
]
