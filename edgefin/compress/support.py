"""What TFMOT can wrap, asked before it is asked to: clear errors that name the layer and the fix.

TFMOT raises long ``ValueError``s from deep inside ``clone_model`` when it meets a layer it does not
know; here every layer is checked up front against TFMOT's own registries, and whatever still
escapes is translated by :func:`tfmot_errors` into :class:`~edgefin.errors.UnsupportedLayerError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from ..errors import ModelError, UnsupportedLayerError
from ..tftypes import KerasLayer, KerasModel, TfmotRegistry

KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "embeddings")


def check_model(model: KerasModel, *, label: str = "model", n_features: int | None = None) -> None:
    """A Sequential or functional tf_keras model with one (batch, k) input and one (batch, 1) output."""
    from ..tfcompat import keras

    if not isinstance(model, keras.Model):
        raise ModelError(f"{label}: expected a tf_keras Model, got {type(model).__name__}")
    if not (isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)):
        raise UnsupportedLayerError(
            f"{label}: '{type(model).__name__}' is a subclassed keras.Model; TFMOT can only wrap Sequential or "
            f"functional models. Rebuild it with the functional API (keras.Model(inputs, outputs)) and save it again"
        )
    inputs, outputs = list(model.inputs or []), list(model.outputs or [])
    if len(inputs) != 1 or len(tuple(inputs[0].shape)) != 2:
        raise ModelError(
            f"{label}: expected one input of shape (batch, n_features), got "
            f"{[list(t.shape) for t in inputs]}; concatenate the features into one input"
        )
    if len(outputs) != 1 or tuple(outputs[0].shape)[1:] != (1,):
        raise ModelError(
            f"{label}: expected one output of shape (batch, 1) holding the positive-class probability "
            f"(a Dense(1, activation='sigmoid') head), got {[list(t.shape) for t in outputs]}"
        )
    width = inputs[0].shape[1]
    if n_features is not None and width is not None and int(width) != n_features:
        raise ModelError(
            f"{label}: the model takes {int(width)} input features but the data's preprocessing produces {n_features}"
        )
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            raise UnsupportedLayerError(
                f"{label}: layer '{layer.name}' is a nested model ({type(layer).__name__}); TFMOT cannot prune or "
                f"quantise models inside models. Flatten it into one functional model"
            )


def output_layer_name(model: KerasModel) -> str:
    """The name of the layer that produces the model's output (often kept dense)."""
    return model.outputs[0].node.layer.name if hasattr(model.outputs[0], "node") else model.layers[-1].name


def check_skip(model: KerasModel, skip: Iterable[str]) -> None:
    names = [layer.name for layer in model.layers]
    unknown = [s for s in skip if s not in names]
    if unknown:
        raise UnsupportedLayerError(
            f"`skip_layers`: no such layer in the model: {', '.join(unknown)} (its layers: {', '.join(names)})"
        )


def _unsupported(layers: list[KerasLayer], what: str, fix: str) -> UnsupportedLayerError:
    named = ", ".join(f"'{layer.name}' ({type(layer).__name__})" for layer in layers)
    skip = " ".join(f"`skip_layers={layer.name}`" for layer in layers)
    return UnsupportedLayerError(
        f"TFMOT cannot {what} layer{'s' if len(layers) > 1 else ''} {named}. "
        f"Pass {skip} to leave {'them' if len(layers) > 1 else 'it'} as {fix}, "
        f"or rebuild the model with built-in Keras layers"
    )


def check_prunable(model: KerasModel, skip: Iterable[str]) -> list[str]:
    """Names of the layers that will be pruned; raises for layers TFMOT cannot handle (unless skipped)."""
    from ..tfcompat import keras
    from ..tfmot_compat import PrunableLayer, PruneRegistry

    skip = set(skip)
    bad, targets = [], []
    for layer in model.layers:
        if layer.name in skip or isinstance(layer, keras.layers.InputLayer):
            continue
        ok = PruneRegistry.supports(layer) or isinstance(layer, PrunableLayer) or hasattr(layer, "get_prunable_weights")
        if not ok:
            bad.append(layer)
        elif _kernels(layer):
            targets.append(layer.name)
    if bad:
        raise _unsupported(bad, "prune", "it is (dense)")
    if not targets:
        raise UnsupportedLayerError(
            "no layer with prunable weights is left to prune (all skipped, or the model "
            "has no Dense/Conv layers); remove one of `skip_layers`"
        )
    return targets


def check_quantizable(model: KerasModel, skip: Iterable[str], registry: TfmotRegistry) -> None:
    """Raise for layers the quantisation registry cannot handle (unless skipped).

    The prune-preserving registry answers ``supports`` True for layers (Lambda) whose config it
    then cannot give, so the default 8-bit registry it builds on must agree too.
    """
    from ..tfcompat import keras
    from ..tfmot_compat import Default8BitQuantizeRegistry

    base = Default8BitQuantizeRegistry()
    skip = set(skip)
    bad = [
        layer
        for layer in model.layers
        if layer.name not in skip
        and not isinstance(layer, keras.layers.InputLayer)
        and not (registry.supports(layer) and base.supports(layer))
    ]
    if bad:
        raise _unsupported(bad, "quantise (QAT)", "float32 in the QAT model; or use `qat=False`")


def clone(model: KerasModel, clone_function: Callable[[KerasLayer], KerasLayer] | None = None) -> KerasModel:
    """``keras.models.clone_model`` for a model already in memory (its Lambda code is already loaded,
    so the safe-mode guard against code in files does not apply)."""
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    from ..tfcompat import keras

    with SafeModeScope(False):
        return keras.models.clone_model(model, clone_function=clone_function)


def _kernels(layer: KerasLayer) -> list[Any]:
    return [w for w in layer.weights if short_name(w.name) in KERNEL_NAMES]


def short_name(name: str) -> str:
    return name.split(":")[0].split("/")[-1]


@contextlib.contextmanager
def tfmot_errors(stage: str) -> Iterator[None]:
    """Turn what TFMOT still raises into one-line edgefin errors (never a deep traceback).

    TFMOT clones models it wraps or strips; the models are in memory, so Lambda layers may be cloned
    (safe mode guards against code inside files, which this is not).
    """
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    try:
        with SafeModeScope(False):
            yield
    except (UnsupportedLayerError, ModelError):
        raise
    except (ValueError, TypeError, NotImplementedError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        lowered = text.lower()
        if any(k in lowered for k in ("not supported", "unsupported", "supported layer", "layer")):
            raise UnsupportedLayerError(
                f"{stage}: TFMOT cannot handle this model: {text[:400]}. Pass "
                f"`skip_layers=NAME` for the layer it names, or rebuild it with built-in Keras layers"
            ) from None
        raise ModelError(f"{stage} failed: {text[:400]}") from None


def predict(model: KerasModel, X: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """Positive-class probabilities (inference mode) as a float64 vector; NaN scores are an error."""
    p = np.asarray(
        model.predict(np.asarray(X, dtype=np.float32), batch_size=batch_size, verbose=0), dtype=np.float64
    ).reshape(-1)
    if not np.isfinite(p).all():
        raise ModelError(
            f"the model produced {int((~np.isfinite(p)).sum())} non-finite scores; it cannot be "
            f"evaluated (lower the learning rate of the fine-tuning step)"
        )
    return p
