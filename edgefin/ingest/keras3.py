"""Keras 3 models: load one under ``TF_USE_LEGACY_KERAS=1``, and rebuild it in tf_keras for compression.

``TF_USE_LEGACY_KERAS=1`` (the Makefile's setting, which TFMOT needs) makes ``tf.keras`` tf_keras; the
``keras`` package itself stays Keras 3, so :func:`load` reads a Keras 3 ``.keras`` file with
``keras.saving.load_model``. Conversion never needs tf_keras (``edgefin_converters.sources.from_keras3``).

Compression does: TFMOT prunes and quantises tf_keras layers only. :func:`rebuild_in_tf_keras` builds
the same graph from tf_keras layers with the same weights, for the layers in :data:`MAPPABLE`; any other
layer raises :class:`~edgefin.errors.UnsupportedLayerError` naming it. :func:`prove_equal` then checks the
two models on data (max |dp| <= :data:`EQUAL_MAX_DELTA`); a rebuild that is not proven is never used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, UnsupportedLayerError
from .lift import Lifted, input_name, lift_keras

#: the rebuilt tf_keras model must score every row within this of the Keras 3 model
EQUAL_MAX_DELTA = 1e-6

#: activations whose tf_keras function computes the same thing (Keras 3 name -> tf_keras name)
ACTIVATIONS = {
    "linear": "linear",
    "relu": "relu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "softplus": "softplus",
    "softsign": "softsign",
    "elu": "elu",
    "selu": "selu",
    "swish": "swish",
    "silu": "swish",
    "gelu": "gelu",
    "exponential": "exponential",
}


def load(path: str | os.PathLike[str]) -> Any:
    """A Keras 3 model from a ``.keras`` (or Keras 3 ``.h5``) file, uncompiled."""
    import keras  # type: ignore[import-untyped]

    try:
        return keras.saving.load_model(Path(path), compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a damaged or foreign file
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        hint = (
            " (a Lambda layer: Keras will not run its Python code from a file in safe mode)"
            if "lambda" in text.lower()
            else ""
        )
        raise ModelError(f"cannot load Keras 3 model {path}: {type(exc).__name__}: {text}{hint}") from None


def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write a Keras 3 model to ``path`` (``.keras``) atomically."""
    import tempfile

    from ..atomic import write_bytes

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="edgefin-keras3-") as tmp:
        staged = Path(tmp, path.name)
        try:
            model.save(staged)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for layers it cannot serialise
            raise ModelError(f"cannot save Keras 3 model to {path}: {type(exc).__name__}: {exc}") from None
        return write_bytes(path, staged.read_bytes())


# ---------------------------------------------------------------- the tf_keras rebuild
@dataclass(frozen=True)
class _Mapped:
    """How one Keras 3 layer class becomes a tf_keras layer: build it, then copy its weights."""

    make: Callable[[Any, Any], Any]  # (keras3 layer, tf_keras module) -> tf_keras layer
    copy_weights: bool = True


def _activation(layer: Any, fn: Any) -> str:
    import keras

    name = keras.activations.serialize(fn)
    name = name if isinstance(name, str) else str(getattr(fn, "__name__", name))
    if name not in ACTIVATIONS:
        raise UnsupportedLayerError(
            f"layer '{layer.name}' ({type(layer).__name__}) uses the activation '{name}', which edgefin cannot "
            f"map to tf_keras for compression (mappable: {', '.join(sorted(ACTIVATIONS))}). The model still "
            f"converts as it is; to compress it, use one of those activations"
        )
    return ACTIVATIONS[name]


def _normalization(layer: Any, k: Any) -> Any:
    if getattr(layer, "invert", False):
        raise UnsupportedLayerError(
            f"layer '{layer.name}' (Normalization) has invert=True, which edgefin does not map to tf_keras"
        )
    mean = np.asarray(layer.mean, dtype=np.float32)
    var = np.asarray(layer.variance, dtype=np.float32)
    return k.layers.Normalization(axis=layer.axis, mean=mean, variance=var, name=layer.name)


MAPPABLE: dict[str, _Mapped] = {
    "Dense": _Mapped(
        lambda lay, k: k.layers.Dense(
            lay.units, activation=_activation(lay, lay.activation), use_bias=lay.use_bias, name=lay.name
        )
    ),
    "Normalization": _Mapped(_normalization, copy_weights=False),
    "BatchNormalization": _Mapped(
        lambda lay, k: k.layers.BatchNormalization(
            axis=lay.axis, momentum=lay.momentum, epsilon=lay.epsilon, center=lay.center, scale=lay.scale, name=lay.name
        )
    ),
    "Dropout": _Mapped(lambda lay, k: k.layers.Dropout(lay.rate, name=lay.name), copy_weights=False),
    "GaussianNoise": _Mapped(lambda lay, k: k.layers.GaussianNoise(lay.stddev, name=lay.name), copy_weights=False),
    "GaussianDropout": _Mapped(lambda lay, k: k.layers.GaussianDropout(lay.rate, name=lay.name), copy_weights=False),
    "Activation": _Mapped(
        lambda lay, k: k.layers.Activation(_activation(lay, lay.activation), name=lay.name), copy_weights=False
    ),
    "ReLU": _Mapped(
        lambda lay, k: k.layers.ReLU(
            max_value=lay.max_value, negative_slope=lay.negative_slope, threshold=lay.threshold, name=lay.name
        ),
        copy_weights=False,
    ),
    "LeakyReLU": _Mapped(
        lambda lay, k: k.layers.LeakyReLU(alpha=lay.negative_slope, name=lay.name), copy_weights=False
    ),
    "Rescaling": _Mapped(
        lambda lay, k: k.layers.Rescaling(scale=lay.scale, offset=lay.offset, name=lay.name), copy_weights=False
    ),
    "Concatenate": _Mapped(lambda lay, k: k.layers.Concatenate(axis=lay.axis, name=lay.name), copy_weights=False),
    "Add": _Mapped(lambda lay, k: k.layers.Add(name=lay.name), copy_weights=False),
    "Identity": _Mapped(lambda lay, k: k.layers.Identity(name=lay.name), copy_weights=False),
}


def check_mappable(model: Any) -> None:
    """Raise UnsupportedLayerError naming the first layer :func:`rebuild_in_tf_keras` cannot map."""
    for layer in getattr(model, "layers", []):
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        if kind not in MAPPABLE:
            raise UnsupportedLayerError(_refusal(layer))


def _refusal(layer: Any) -> str:
    kind = type(layer).__name__
    return (
        f"layer '{layer.name}' ({kind}) of the Keras 3 model cannot be rebuilt in tf_keras, which "
        f"compression (TFMOT) needs; mappable layers: {', '.join(sorted(MAPPABLE))}. The model still "
        f"converts as it is (edgefin convert); to compress it, replace that layer"
    )


def rebuild_in_tf_keras(model: Any) -> Any:
    """The same graph built from tf_keras layers with the Keras 3 model's weights (same layer names)."""
    from ..tfcompat import keras as tfk

    check_mappable(model)
    inputs = list(getattr(model, "inputs", None) or [])
    outputs = list(getattr(model, "outputs", None) or [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedLayerError(
            f"the Keras 3 model has {len(inputs)} inputs and {len(outputs)} outputs; edgefin rebuilds models "
            f"with one feature input and one probability output"
        )
    k = int(inputs[0].shape[-1])
    new_input = tfk.Input((k,), name=input_name(inputs[0]))
    memo: dict[int, Any] = {id(inputs[0]): new_input}
    made: dict[int, tuple[Any, Any]] = {}  # id(keras3 layer) -> (keras3 layer, tf_keras layer)

    def tensor(kt: Any) -> Any:
        if id(kt) in memo:
            return memo[id(kt)]
        op, node_index, _ = kt._keras_history
        kind = type(op).__name__
        if kind not in MAPPABLE:
            raise UnsupportedLayerError(_refusal(op))
        node = op._inbound_nodes[node_index]
        args = [tensor(t) for t in node.input_tensors]
        if id(op) not in made:
            made[id(op)] = (op, MAPPABLE[kind].make(op, tfk))
        out = made[id(op)][1](args[0] if len(args) == 1 else args)
        outs = out if isinstance(out, (list, tuple)) else [out]
        for src, dst in zip(node.output_tensors, outs, strict=True):
            memo[id(src)] = dst
        return memo[id(kt)]

    out = tensor(outputs[0])
    rebuilt = tfk.Model(new_input, out, name=str(getattr(model, "name", "model")))
    for op, new in made.values():
        if MAPPABLE[type(op).__name__].copy_weights:
            new.set_weights([np.asarray(w) for w in op.get_weights()])
    return rebuilt


# ---------------------------------------------------------------- lifting preprocessing into the spec
def lift_leading(model: Any) -> Lifted | None:
    """The Normalization (not inverted, last axis), Rescaling or BatchNormalization that alone consumes
    the Keras 3 model's input, split off (:func:`.lift.lift_keras`); None when the model does not start
    with one."""
    import keras

    return lift_keras(model, keras, float(keras.backend.epsilon()))


def prove_equal(model: Any, rebuilt: Any, x: np.ndarray, *, label: str = "model") -> float:
    """max |dp| between the Keras 3 model and its tf_keras rebuild on ``x``; ModelError above EQUAL_MAX_DELTA."""
    from edgefin_converters.keras_io import predict
    from edgefin_converters.sources import from_keras3

    ref = predict(from_keras3(model, label=label), x)
    got = predict(rebuilt, x)
    delta = float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64)))) if len(x) else 0.0
    if not delta <= EQUAL_MAX_DELTA:
        raise UnsupportedLayerError(
            f"{label}: the tf_keras rebuild of the Keras 3 model scores {len(x)} rows up to {delta:.2e} apart "
            f"from the model itself (allowed {EQUAL_MAX_DELTA:g}); it is not used. The model still converts "
            f"as it is; compression needs a model whose layers map exactly"
        )
    return delta


__all__ = [
    "ACTIVATIONS",
    "EQUAL_MAX_DELTA",
    "MAPPABLE",
    "Lifted",
    "check_mappable",
    "lift_leading",
    "load",
    "prove_equal",
    "rebuild_in_tf_keras",
    "save",
]
