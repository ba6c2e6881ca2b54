"""Keras -> TFLite (LiteRT) flatbuffers: one function per variant, each returning model bytes.

All variants keep builtin ops only (no TF Select / Flex): the device runtime is plain LiteRT.
The converter is deterministic for a given model and calibration set, so converting a run twice
gives byte-identical models. Inspection uses ``ai_edge_litert`` (never ``tf.lite.Interpreter``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefin_runtime.manifest import Quantization, TensorSpec

from ._native import quiet
from .errors import ConversionFailedError, DependencyError, ModelInputError, UnsupportedOpError
from .keras_io import layer_for_op

_INT_TYPES = {"int8", "uint8"}


@dataclass(frozen=True)
class TFLiteDetails:
    """What a flatbuffer declares: its I/O tensors (with quantisation) and a quantisation summary."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    quantization: dict[str, Any]


# ---------------------------------------------------------------- variants
def to_tflite_fp32(model: Any) -> bytes:
    """Float32 weights and activations (a QAT source keeps its fake-quant ranges as QUANTIZE ops)."""
    return _convert(model, "tflite-fp32", lambda c: None)


def to_tflite_fp16(model: Any) -> bytes:
    """Float16 weights (dequantised to float32 at load), float32 activations and I/O."""

    def setup(c: Any) -> None:
        tf = _tf()
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.target_spec.supported_types = [tf.float16]

    return _convert(model, "tflite-fp16", setup)


def to_tflite_dynamic(model: Any) -> bytes:
    """Dynamic-range quantisation: int8 weights, float32 activations (weights of tensors under 1,024
    elements stay float: TFLite's own size threshold)."""
    return _convert(model, "tflite-dynamic", lambda c: setattr(c, "optimizations", [_tf().lite.Optimize.DEFAULT]))


def to_tflite_int8(
    model: Any,
    representative: np.ndarray,
    *,
    int8_io: bool = False,
    per_channel: bool = False,
    variant: str = "tflite-int8",
    keep_float: Sequence[str] = (),
) -> bytes:
    """Full-integer int8 model, calibrated on the ``representative`` rows (post-training quantisation).

    A quantisation-aware model keeps the ranges its fake-quant ops learned: the converter then uses
    the rows only for tensors without learned ranges (none in a TFMOT model; scaling the rows leaves
    the model bytes unchanged), but it insists on them for a builtin-int8-only conversion.
    ``int8_io`` also makes the input and output tensors int8 (float32 otherwise). ``per_channel``
    quantises dense-layer weights per output unit (default: one scale per tensor).

    ``keep_float`` names op output tensors (see :func:`quantisable_layers`) that stay float32
    (selective quantisation): the model is calibrated once and quantised by
    :func:`quantize_selectively` with those nodes denylisted."""
    tf = _tf()
    rep = np.ascontiguousarray(representative, dtype=np.float32)
    if rep.ndim != 2 or len(rep) == 0:
        raise ModelInputError(
            f"{variant}: the representative data set is empty; int8 conversion needs training rows to calibrate on"
        )

    def setup(c: Any) -> None:
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if hasattr(c, "_experimental_disable_per_channel_quantization_for_dense_layers"):
            c._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel

        def gen() -> Iterator[list[np.ndarray]]:
            for i in range(len(rep)):
                yield [rep[i : i + 1]]

        c.representative_dataset = gen
        if int8_io:
            c.inference_input_type = tf.int8
            c.inference_output_type = tf.int8

    if not keep_float:
        return _convert(model, variant, setup)
    calibrated = calibrate_tflite(model, rep, variant=variant, setup=setup)
    known = {n for _, nodes in quantisable_layers(calibrated) for n in nodes}
    unknown = [n for n in keep_float if n not in known]
    if unknown:
        raise ModelInputError(
            f"{variant}: keep_float names {unknown}, which are not quantisable nodes of this "
            f"model (known: {sorted(known)})"
        )
    return quantize_selectively(
        calibrated, keep_float=keep_float, per_channel=per_channel, int8_io=int8_io, variant=variant
    )


# ---------------------------------------------------------------- the one TensorFlow internal
#: TensorFlow versions (major.minor) whose internal ``mlir_quantize`` selective quantisation was written
#: and tested against; another version is refused before the internal is called
MLIR_QUANTIZE_TESTED = ("2.21",)
_MLIR_QUANTIZE_ARGS = (
    "disable_per_channel",
    "input_data_type",
    "output_data_type",
    "denylisted_nodes",
    "disable_per_channel_for_dense_layers",
)


def mlir_quantizer() -> Callable[..., Any]:
    """TensorFlow's internal ``tensorflow.lite.python.convert.mlir_quantize``, after checking that the
    installed TensorFlow is a version it was tested with and that it takes the arguments used here.

    No public API does this: ``tf.lite.experimental.QuantizationDebugger`` (whose
    ``get_nondebug_quantized_model`` calls it with ``denylisted_nodes``) forwards neither the
    dense-layer per-channel switch nor int8 input/output types. Raises :class:`DependencyError`.
    """
    import inspect

    tf = _tf()
    version = str(getattr(tf, "__version__", "unknown"))
    if ".".join(version.split(".")[:2]) not in MLIR_QUANTIZE_TESTED:
        raise DependencyError(
            f"tensorflow {version} is installed, but selective int8 quantisation (keeping layers in float, "
            f"used by accuracy repair) relies on a TensorFlow internal tested with "
            f"{', '.join(MLIR_QUANTIZE_TESTED)}; install tensorflow=={MLIR_QUANTIZE_TESTED[-1]}.* or turn repair off"
        )
    try:
        from tensorflow.lite.python.convert import mlir_quantize
    except ImportError as exc:
        raise DependencyError(
            f"tensorflow {version} has no tensorflow.lite.python.convert.mlir_quantize ({exc}); selective "
            f"int8 quantisation needs it"
        ) from None
    params = inspect.signature(mlir_quantize).parameters
    missing = [a for a in _MLIR_QUANTIZE_ARGS if a not in params]
    if missing:
        raise DependencyError(
            f"tensorflow {version}'s mlir_quantize takes no {', '.join(missing)}; selective int8 quantisation "
            f"was written for tensorflow {', '.join(MLIR_QUANTIZE_TESTED)}"
        )
    return mlir_quantize  # type: ignore[no-any-return]


def quantize_selectively(
    calibrated: bytes, *, keep_float: Sequence[str], per_channel: bool, int8_io: bool, variant: str = "tflite-int8"
) -> bytes:
    """Quantise a calibrated flatbuffer (:func:`calibrate_tflite`) to int8, the ``keep_float`` nodes left in
    float32 (the one call of a TensorFlow internal: :func:`mlir_quantizer`)."""
    mlir_quantize = mlir_quantizer()
    tf = _tf()
    io = tf.int8 if int8_io else tf.float32
    try:
        with quiet():
            return bytes(
                mlir_quantize(
                    calibrated,
                    disable_per_channel=False,
                    input_data_type=io,
                    output_data_type=io,
                    denylisted_nodes=list(keep_float),
                    disable_per_channel_for_dense_layers=not per_channel,
                )
            )
    except Exception as exc:  # noqa: BLE001 - every quantiser failure becomes a typed error
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ConversionFailedError(f"{variant}: selective int8 quantisation failed: {first}") from None


def calibrate_tflite(
    model: Any, representative: np.ndarray, *, variant: str = "tflite-int8", setup: Callable[[Any], None] | None = None
) -> bytes:
    """The float flatbuffer with calibration statistics (MinMax over ``representative``), not yet quantised."""
    if setup is None:

        def setup(c: Any) -> None:
            rep = np.ascontiguousarray(representative, dtype=np.float32)
            c.optimizations = [_tf().lite.Optimize.DEFAULT]
            c.target_spec.supported_ops = [_tf().lite.OpsSet.TFLITE_BUILTINS_INT8]
            c.representative_dataset = lambda: ([rep[i : i + 1]] for i in range(len(rep)))

    def calibrate_only(c: Any) -> None:
        setup(c)
        c._experimental_calibrate_only = True  # noqa: SLF001 - what QuantizationDebugger sets, too

    return _convert(model, variant, calibrate_only)


#: ops that start a quantisable layer; the ops after one (its activation, e.g. LOGISTIC) up to the next
#: belong to the same layer
_LAYER_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL")


def quantisable_layers(model_bytes: bytes) -> list[tuple[str, tuple[str, ...]]]:
    """The quantisable layers of a (calibrated or quantised) flatbuffer in graph order: a short layer
    name (the Keras layer path) and the output tensor names of its ops (what ``keep_float`` takes)."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet():
        it = Interpreter(model_content=model_bytes)
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    layers: list[tuple[str, list[str]]] = []
    for op in it._get_ops_details():  # noqa: SLF001 - the public API has no op listing
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        outs = [names[int(i)] for i in op["outputs"] if int(i) in names]
        if op["op_name"] in _LAYER_OPS:
            layers.append((layer_name(outs[0]), outs))
        elif layers:
            layers[-1][1].extend(outs)
    return [(name, tuple(nodes)) for name, nodes in layers]


def layer_name(node: str) -> str:
    """'model/dense_1/MatMul;model/dense_1/Relu' -> 'model/dense_1' (the graph path of the layer)."""
    first = node.split(";")[0]
    cut = first.find("/MatMul")
    return first[:cut] if cut > 0 else first


# ---------------------------------------------------------------- inspection
def describe_tflite(model_bytes: bytes) -> TFLiteDetails:
    """Read the I/O tensors and quantisation parameters of a flatbuffer with LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet():
        it = Interpreter(model_content=model_bytes)
    ins, outs = it.get_input_details(), it.get_output_details()
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    ops = it._get_ops_details()  # noqa: SLF001 - the public API has no op listing
    summary: dict[str, Any] = {"ops": sorted({o["op_name"] for o in ops})}
    dtypes: dict[str, int] = {}
    for t in tensors.values():
        name = np.dtype(t["dtype"]).name
        dtypes[name] = dtypes.get(name, 0) + 1
    summary["tensor_dtypes"] = dict(sorted(dtypes.items()))
    in_idx, out_idx = ins[0]["index"], outs[0]["index"]
    for op in ops:  # float I/O around an int8 core: the QUANTIZE after the input, the DEQUANTIZE before the output
        if op["op_name"] == "QUANTIZE" and in_idx in list(op["inputs"]):
            summary["input_quantization"] = _qdict(tensors[int(op["outputs"][0])])
        if op["op_name"] == "DEQUANTIZE" and out_idx in list(op["outputs"]):
            summary["output_quantization"] = _qdict(tensors[int(op["inputs"][0])])
    weight_idx = {
        int(op["inputs"][1])
        for op in ops
        if op["op_name"] in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D") and len(op["inputs"]) > 1
    }
    weights = [tensors[i] for i in weight_idx if i in tensors and np.dtype(tensors[i]["dtype"]).name == "int8"]
    summary["int8_weight_tensors"] = [
        {"name": t["name"], "shape": [int(s) for s in t["shape"]], **_qdict(t)}
        for t in sorted(weights, key=lambda t: t["name"])
    ]
    return TFLiteDetails(inputs=(_spec(ins[0]),), outputs=(_spec(outs[0]),), quantization=summary)


def _spec(d: dict[str, Any]) -> TensorSpec:
    dtype = np.dtype(d["dtype"]).name
    shape = tuple(int(s) for s in d.get("shape_signature", d["shape"]))
    quant = None
    if dtype in _INT_TYPES:
        scale, zero = d["quantization"]
        quant = Quantization(scale=float(scale), zero_point=int(zero))
    return TensorSpec(name=d["name"], shape=shape, dtype=dtype, quantization=quant)


def _qdict(t: dict[str, Any]) -> dict[str, Any]:
    qp = t.get("quantization_parameters") or {}
    scales = [float(s) for s in np.asarray(qp.get("scales", []), dtype=np.float64).ravel()]
    zeros = [int(z) for z in np.asarray(qp.get("zero_points", []), dtype=np.int64).ravel()]
    if not scales:
        scale, zero = t.get("quantization", (0.0, 0))
        scales, zeros = [float(scale)], [int(zero)]
    out: dict[str, Any] = {"dtype": np.dtype(t["dtype"]).name}
    if len(scales) == 1:
        out.update(scale=scales[0], zero_point=zeros[0] if zeros else 0)
    else:
        out.update(per_channel=True, channels=len(scales), scale_min=min(scales), scale_max=max(scales))
    return out


# ---------------------------------------------------------------- plumbing
def _tf() -> Any:
    import tensorflow as tf

    return tf


def _convert(model: Any, variant: str, setup: Callable[[Any], None]) -> bytes:
    tf = _tf()
    captured: list[str] = []
    try:
        with quiet(captured):
            converter = _converter_for(model, variant)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            setup(converter)
            return bytes(converter.convert())
    except (UnsupportedOpError, ModelInputError):
        raise
    except Exception as exc:  # noqa: BLE001 - every converter failure becomes a typed error
        raise _explain(exc, model, variant, "".join(captured)) from None


def _converter_for(model: Any, variant: str) -> Any:
    """TFLite's converter for a tf_keras model, or for a :class:`.sources.GraphModel`'s concrete function."""
    from .sources import ONNX_NO_TFLITE, GraphModel, OnnxModel

    tf = _tf()
    if isinstance(model, GraphModel):
        return tf.lite.TFLiteConverter.from_concrete_functions([model.function], model.owner)
    if isinstance(model, OnnxModel):
        raise ModelInputError(f"{variant}: {ONNX_NO_TFLITE}")
    return tf.lite.TFLiteConverter.from_keras_model(model)


_OP_RE = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_SELECT_RE = re.compile(r"TF Select ops: ([\w, ]+)")


def _explain(exc: Exception, model: Any, variant: str, native: str) -> Exception:
    """Turn a converter exception into UnsupportedOpError (naming every op and its layer) or a failure."""
    found: list[tuple[str, str | None]] = []  # (op type, graph path) in the converter's order
    for err in getattr(exc, "errors", None) or []:
        name = getattr(getattr(err, "operator", None), "name", "")
        if name:
            calls = getattr(getattr(err, "location", None), "call", None) or []
            found.append((name.split(".", 1)[-1], next((c.name for c in calls if getattr(c, "name", "")), None)))
    if not found:
        text = f"{exc}\n{native}"
        m = _OP_RE.search(text) or _SELECT_RE.search(text)
        if m:
            found = [(op.strip(), None) for op in m.group(1).split(",") if op.strip()]
    if found:
        seen: dict[str, str | None] = {}
        for op, path in found:
            if op not in seen:
                seen[op] = layer_for_op(model, path, op)
        parts = [f"'{op}'" + (f" (layer '{layer}')" if layer else "") for op, layer in seen.items()]
        op, layer = next(iter(seen.items()))
        where = f"layer '{layer}'" if layer else "the model"
        more = f"; all unsupported ops: {', '.join(parts)}" if len(parts) > 1 else ""
        return UnsupportedOpError(
            f"{variant}: {where} uses the TensorFlow op '{op}', which LiteRT's builtin op set cannot run "
            f"(it would need TF Select/Flex, which edgefin bundles do not ship){more}. Replace that layer with "
            f"standard Keras layers, or do this computation in preprocessing",
            target=variant,
            op=op,
            layer=layer,
        )
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return ConversionFailedError(f"{variant}: the TFLite converter failed: {first}")


__all__ = [
    "TFLiteDetails",
    "to_tflite_fp32",
    "to_tflite_fp16",
    "to_tflite_dynamic",
    "to_tflite_int8",
    "calibrate_tflite",
    "mlir_quantizer",
    "quantize_selectively",
    "quantisable_layers",
    "layer_name",
    "describe_tflite",
]
