"""A model's leading per-column affine map, split off so the bundle's preprocessing spec does it instead.

A user's model often starts with its own standardisation of the raw columns: a ``Normalization`` or
``Rescaling`` layer, a ``BatchNormalization`` (in inference mode ``(x - moving_mean) /
sqrt(moving_var + eps) * gamma + beta``), or in an ONNX graph the ``Mul``/``Add``/``Sub``/``Div`` (or
``BatchNormalization``) nodes such a layer became, their constants as initialisers or ``Constant`` nodes.
Each is ``a * x + b`` per column; with ``a > 0`` it is the spec's ``(x - mean) / scale`` with
``scale = 1 / a`` and ``mean = -b / a``. Lifting it lets
the runtime validate and standardise the columns, and int8 input quantisation then sees standardised
values instead of raw columns on very different scales (one per-tensor scale loses the small ones).

:func:`lift_keras` works on Keras 3 and tf_keras functional/Sequential models (``keras`` is the module
whose layers the model is made of), :func:`lift_onnx` on an ONNX model's bytes. Both return None when
the model does not start with such a map, when it is not the only use of the raw input, or when a
column's factor is not positive; ingest then proves the lifted spec plus the rest equal to the model on
the training rows before using it (:func:`edgefin.ingest.run._lift`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: the ONNX ops a leading per-column affine chain may be made of (constant operand: an initializer or a
#: ``Constant`` node)
ONNX_AFFINE_OPS = ("Mul", "Add", "Sub", "Div", "BatchNormalization")


@dataclass(frozen=True)
class Lifted:
    """The leading map as ``(x - mean) / scale`` per input column, what it was (``layer``, ``kind``), and
    the rest of the model (Keras: a model of the same layer objects from the one after it; ONNX: bytes)."""

    layer: str
    kind: str
    mean: np.ndarray
    scale: np.ndarray
    rest: Any


def _from_affine(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``a * x + b`` as ``(x - mean) / scale``; None unless every factor is finite and positive."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(a > 0)):
        return None
    return -b / a, 1.0 / a


def _last_axis(axis: Any, rank: int = 2) -> bool:
    axes = [int(v) for v in (axis if isinstance(axis, (tuple, list)) or hasattr(axis, "__iter__") else [axis])]
    return len(axes) == 1 and axes[0] in (-1, rank - 1)


def layer_affine(layer: Any, k: int, epsilon: float) -> tuple[np.ndarray, np.ndarray] | None:
    """A leading layer's per-column ``(mean, scale)``, or None when it is not such a map (``epsilon``:
    the framework's floor on a Normalization's standard deviation)."""
    kind = type(layer).__name__
    if kind == "Normalization":
        if getattr(layer, "invert", False) or not _last_axis(layer.axis):
            return None
        mean = np.asarray(layer.mean, dtype=np.float64).reshape(-1)
        scale = np.maximum(np.sqrt(np.asarray(layer.variance, dtype=np.float64).reshape(-1)), epsilon)
        return np.broadcast_to(mean, (k,)).copy(), np.broadcast_to(scale, (k,)).copy()
    if kind == "Rescaling":
        factor = np.broadcast_to(np.asarray(layer.scale, dtype=np.float64).reshape(-1), (k,))
        offset = np.broadcast_to(np.asarray(layer.offset, dtype=np.float64).reshape(-1), (k,))
        return _from_affine(factor, offset)
    if kind == "BatchNormalization":
        if not _last_axis(layer.axis) or getattr(layer, "renorm", False) or getattr(layer, "virtual_batch_size", None):
            return None
        mm = np.asarray(layer.moving_mean, dtype=np.float64).reshape(-1)
        mv = np.asarray(layer.moving_variance, dtype=np.float64).reshape(-1)
        gamma = np.asarray(layer.gamma, dtype=np.float64).reshape(-1) if layer.gamma is not None else np.ones(k)
        beta = np.asarray(layer.beta, dtype=np.float64).reshape(-1) if layer.beta is not None else np.zeros(k)
        if not (mm.size == mv.size == gamma.size == beta.size == k):
            return None
        a = gamma / np.sqrt(mv + float(layer.epsilon))
        return _from_affine(a, beta - mm * a)
    return None


def lift_keras(model: Any, keras: Any, epsilon: float) -> Lifted | None:
    """The Normalization / Rescaling / BatchNormalization that alone consumes the model's one input,
    split off; ``keras`` is the module the model's layers come from (``keras`` 3 or tf_keras)."""
    inputs = list(getattr(model, "inputs", None) or [])
    outputs = list(getattr(model, "outputs", None) or [])
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    k = int(inputs[0].shape[-1])
    consumers = [
        (op, node)
        for op, node in graph_nodes(outputs[0])
        if type(op).__name__ != "InputLayer" and any(t is inputs[0] for t in _flat(node.input_tensors))
    ]
    if len(consumers) != 1:
        return None
    layer, node = consumers[0]
    found = layer_affine(layer, k, epsilon)
    if found is None or len(_flat(node.output_tensors)) != 1:
        return None
    new_input = keras.Input((k,), name=input_name(inputs[0]))
    memo: dict[int, Any] = {id(_flat(node.output_tensors)[0]): new_input}

    def tensor(kt: Any) -> Any:
        if id(kt) in memo:
            return memo[id(kt)]
        if any(kt is t for t in inputs):
            raise _NotLiftable
        op, node_index, _ = kt._keras_history
        n = op._inbound_nodes[node_index]
        args = [tensor(t) for t in _flat(n.input_tensors)]
        out = op(args[0] if len(args) == 1 else args)
        for src, dst in zip(_flat(n.output_tensors), _flat(out), strict=True):
            memo[id(src)] = dst
        return memo[id(kt)]

    try:
        rest = keras.Model(new_input, tensor(outputs[0]), name=str(getattr(model, "name", "model")))
    except _NotLiftable:
        return None
    return Lifted(layer=str(layer.name), kind=type(layer).__name__, mean=found[0], scale=found[1], rest=rest)


def graph_nodes(output: Any) -> list[tuple[Any, Any]]:
    """The (layer, node) pairs the model's output is computed by (a loaded Sequential's layers also keep
    nodes of earlier builds, which are not part of its graph)."""
    seen: dict[int, tuple[Any, Any]] = {}
    stack = [output]
    while stack:
        kt = stack.pop()
        history = getattr(kt, "_keras_history", None)
        if history is None:
            continue
        op, node_index, _ = history
        node = op._inbound_nodes[node_index]
        if id(node) not in seen:
            seen[id(node)] = (op, node)
            stack.extend(_flat(node.input_tensors))
    return list(seen.values())


def _flat(tensors: Any) -> list[Any]:
    """A node's tensors as a flat list (tf_keras gives one tensor, or the nested call argument)."""
    if isinstance(tensors, (list, tuple)):
        return [t for item in tensors for t in _flat(item)]
    if isinstance(tensors, dict):
        return [t for item in tensors.values() for t in _flat(item)]
    return [tensors]


def input_name(t: Any) -> str:
    name = str(getattr(t, "name", "features") or "features")
    return name.split(":")[0].replace("/", "_") or "features"


class _NotLiftable(Exception):
    """The raw input is used again after the leading layer (e.g. a skip connection): nothing is lifted."""


# ---------------------------------------------------------------- ONNX
def lift_onnx(model_bytes: bytes) -> Lifted | None:
    """The chain of per-column affine nodes (``ONNX_AFFINE_OPS`` with constant operands - initialisers or
    ``Constant`` nodes - of shape (k,) or (1, k), or a scalar) that starts at the graph's one input and is
    its only use, folded into one ``a * x + b`` and cut out of the graph (``rest``: the remaining model's
    bytes; the Constant nodes only the chain used go with it)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(model_bytes)
    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    real = [i for i in g.input if i.name not in inits]
    if len(real) != 1 or len(g.output) != 1:
        return None
    dims = real[0].type.tensor_type.shape.dim
    if len(dims) != 2 or not dims[1].HasField("dim_value"):
        return None
    k = int(dims[1].dim_value)
    x = real[0].name
    uses: dict[str, list[Any]] = {}
    for n in g.node:
        for name in n.input:
            uses.setdefault(name, []).append(n)

    constants = {n.output[0]: n for n in g.node if n.op_type == "Constant" and len(n.output) == 1}

    def const(name: str) -> np.ndarray | None:
        if name in inits:
            v = numpy_helper.to_array(inits[name]).astype(np.float64)
        elif name in constants:
            found = _constant_value(constants[name])
            if found is None:
                return None
            v = found
        else:
            return None
        if v.size == 1:
            return np.full(k, float(v.reshape(-1)[0]))
        if v.shape in ((k,), (1, k)):
            return v.reshape(-1)
        return None

    a, b = np.ones(k), np.zeros(k)
    chain: list[Any] = []
    cur = x
    while cur != g.output[0].name and len(uses.get(cur, [])) == 1:
        n = uses[cur][0]
        if n.op_type not in ONNX_AFFINE_OPS or len(n.output) != 1:
            break
        step = _onnx_step(n, cur, const, k)
        if step is None:
            break
        a, b = step[0] * a, step[0] * b + step[1]
        chain.append(n)
        cur = n.output[0]
    if not chain or cur == g.output[0].name:
        return None
    found = _from_affine(a, b)
    if found is None:
        return None
    for n in chain:
        g.node.remove(n)
    for n in g.node:
        for i, name in enumerate(n.input):
            if name == cur:
                n.input[i] = x
    used = {name for n in g.node for name in n.input}
    for n in [c for c in g.node if c.op_type == "Constant" and c.output[0] not in used]:
        if n.output[0] in constants and n.output[0] not in {o.name for o in g.output}:
            g.node.remove(n)
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)
    for vi in [v for v in g.input if v.name in inits and v.name not in used]:
        g.input.remove(vi)
    names = "+".join(n.op_type for n in chain)
    label = chain[0].name or chain[0].op_type
    return Lifted(layer=label, kind=f"ONNX {names}", mean=found[0], scale=found[1], rest=proto.SerializeToString())


def _constant_value(node: Any) -> np.ndarray | None:
    """A Constant node's value (``value`` tensor, ``value_float`` or ``value_floats``), or None."""
    from onnx import numpy_helper

    for attr in node.attribute:
        if attr.name == "value":
            return np.asarray(numpy_helper.to_array(attr.t), dtype=np.float64)
        if attr.name == "value_float":
            return np.asarray([attr.f], dtype=np.float64)
        if attr.name == "value_floats":
            return np.asarray(list(attr.floats), dtype=np.float64)
    return None


def _onnx_step(n: Any, cur: str, const: Any, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """One node as ``a * cur + b`` per column, or None (the other operand must be a constant)."""
    if n.op_type == "BatchNormalization":
        if n.input[0] != cur or len(n.input) != 5:
            return None
        vals = [const(name) for name in n.input[1:]]
        if any(v is None for v in vals):
            return None
        gamma, beta, mean, var = vals
        eps = next((attr.f for attr in n.attribute if attr.name == "epsilon"), 1e-5)
        a = gamma / np.sqrt(var + eps)
        return a, beta - mean * a
    if len(n.input) != 2:
        return None
    first = n.input[0] == cur
    other = const(n.input[1] if first else n.input[0])
    if other is None or (n.input[0] == cur and n.input[1] == cur):
        return None
    if n.op_type == "Mul":
        return other, np.zeros(k)
    if n.op_type == "Add":
        return np.ones(k), other
    if n.op_type == "Sub":
        return (np.ones(k), -other) if first else (-np.ones(k), other)
    if n.op_type == "Div" and first and np.all(other != 0):
        return 1.0 / other, np.zeros(k)
    return None


__all__ = ["Lifted", "ONNX_AFFINE_OPS", "graph_nodes", "input_name", "layer_affine", "lift_keras", "lift_onnx"]
