"""What the converters need to know about a Keras source model, asked once at the door.

A bundle holds one model with one float32 input ``(batch, n_features)`` and one probability output
``(batch, 1)``; :func:`check_model` says exactly what is wrong otherwise. :func:`layer_for_op` maps an
op a converter rejected back to the Keras layer that emitted it, so errors name something the user
wrote. TensorFlow is imported lazily (through ``tf.keras``, i.e. tf_keras when TF_USE_LEGACY_KERAS=1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ModelInputError

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.keras must be Keras 2 (tf_keras), as TFMOT needs

PREDICT_BATCH = 1024


@dataclass(frozen=True)
class ModelInfo:
    """The source model's interface: feature count, input name, and whether it is quantisation-aware."""

    n_features: int
    input_name: str
    qat: bool
    layer_names: tuple[str, ...]


def _tf() -> Any:
    import tensorflow as tf

    return tf


def is_qat_model(model: Any) -> bool:
    """True when the model holds TFMOT quantisation wrappers (fake-quant ops with learned ranges)."""
    for layer in _walk_layers(model):
        mod = type(layer).__module__
        if "tensorflow_model_optimization" in mod and "quantiz" in mod:
            return True
    return False


def _walk_layers(model: Any) -> list[Any]:
    out: list[Any] = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_walk_layers(layer))
        inner = getattr(layer, "layer", None)  # wrappers (QuantizeWrapper, PruneLowMagnitude)
        if inner is not None:
            out.append(inner)
    return out


def check_model(model: Any, *, n_features: int | None = None, label: str = "model") -> ModelInfo:
    """Check the model has one (batch, k) float input and one (batch, 1) output; return its ModelInfo."""
    inputs = list(getattr(model, "inputs", None) or [])
    outputs = list(getattr(model, "outputs", None) or [])
    if not inputs or not outputs:
        raise ModelInputError(
            f"{label}: the model has no defined inputs/outputs (a subclassed model that was "
            f"never called?); build it as a functional or Sequential Keras model"
        )
    if len(inputs) != 1:
        names = [getattr(t, "name", "?") for t in inputs]
        raise ModelInputError(
            f"{label}: expected one input tensor of shape (batch, n_features), got "
            f"{len(inputs)} inputs {names}; concatenate the features into one input"
        )
    if len(outputs) != 1:
        raise ModelInputError(
            f"{label}: expected one output (the positive-class probability), got {len(outputs)} outputs"
        )
    shape = tuple(inputs[0].shape)
    dtype = getattr(inputs[0].dtype, "name", str(inputs[0].dtype))
    if len(shape) != 2 or shape[1] is None:
        raise ModelInputError(f"{label}: expected an input of shape (batch, n_features), got {list(shape)}")
    if dtype not in ("float32", "float16", "float64"):
        raise ModelInputError(f"{label}: expected a float input (features are encoded as float32), got {dtype}")
    oshape = tuple(outputs[0].shape)
    if len(oshape) != 2 or oshape[1] != 1:
        hint = " (a 2-class softmax: use one sigmoid unit instead)" if len(oshape) == 2 and oshape[1] == 2 else ""
        raise ModelInputError(
            f"{label}: expected an output of shape (batch, 1) holding the positive-class "
            f"probability, got {list(oshape)}{hint}"
        )
    k = int(shape[1])
    if n_features is not None and k != n_features:
        raise ModelInputError(
            f"{label}: the model expects {k} features but the preprocessing produces "
            f"{n_features}; the model and the preprocessing spec do not belong together"
        )
    name = getattr(inputs[0], "name", "features").split(":")[0]
    return ModelInfo(
        n_features=k,
        input_name=name,
        qat=is_qat_model(model),
        layer_names=tuple(layer.name for layer in _walk_layers(model)),
    )


def predict(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's probabilities for a float32 matrix, as a float32 vector (inference mode, fixed batches)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    from .sources import OnnxModel

    if isinstance(model, OnnxModel):  # ONNX Runtime; no TensorFlow needed
        return model.predict(x).reshape(-1)
    tf = _tf()
    out = np.empty(len(x), dtype=np.float32)
    for start in range(0, len(x), PREDICT_BATCH):
        chunk = tf.constant(x[start : start + PREDICT_BATCH])
        out[start : start + len(chunk)] = np.asarray(model(chunk, training=False), dtype=np.float32).reshape(-1)
    return out


def layer_for_op(model: Any, op_path: str | None, op_type: str | None = None) -> str | None:
    """The Keras layer that emitted an op, from the op's graph path (``model/<layer>/<Op>``) or its type."""
    names = {layer.name for layer in _walk_layers(model)}
    if op_path:
        parts = op_path.split("@")[0].split("/")
        hits = [p for p in parts[:-1] if p in names]
        if hits:
            return hits[-1]
    if op_type:
        path = _first_op_path(model, op_type)
        if path and path != op_path:
            return layer_for_op(model, path)
    return None


def _first_op_path(model: Any, op_type: str) -> str | None:
    """Trace the model once and return the name of the first op of ``op_type`` (None when absent)."""
    tf = _tf()
    try:
        k = int(model.inputs[0].shape[1])
        fn = tf.function(lambda x: model(x, training=False))
        graph = fn.get_concrete_function(tf.TensorSpec((None, k), tf.float32)).graph
    except Exception:  # noqa: BLE001 - a diagnostic aid only; the caller still reports the op
        return None
    for op in graph.get_operations():
        if op.type == op_type:
            return str(op.name)
    for fn_def in graph.as_graph_def().library.function:
        for node in fn_def.node_def:
            if node.op == op_type:
                return str(node.name)
    return None


__all__ = ["ModelInfo", "check_model", "is_qat_model", "predict", "layer_for_op"]
