"""Quantisation-aware training as a fine-tuning phase (``tfmot.quantization.keras``).

The scheme follows what the model already is, so earlier savings survive the int8 training:

* dense model            -> default 8-bit QAT;
* pruned (sparse) model  -> PQAT, ``Default8BitPrunePreserveQuantizeScheme``: the zeros stay zeros;
* clustered model        -> CQAT (``Default8BitClusterPreserveQuantizeScheme``, sparsity-preserving):
  the weights stay on their centroids. A trained CQAT model builds data-dependent state that the
  ``.keras`` format cannot rebuild, so it is *baked* into an equivalent prune-preserving QAT model
  (same kernels, same learned ranges) before it is returned; the baking is checked on real rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelError
from .finetune import EpochHook, FitData, fine_tune
from .prune import copy_model
from .support import check_model, check_quantizable, check_skip, tfmot_errors

SCHEMES = ("default", "pqat", "cqat")


def scheme_for(model: Any, *, clustered: bool) -> str:
    """'cqat' for a clustered model, 'pqat' when its kernels hold zeros, else 'default'."""
    if clustered:
        return "cqat"
    from .sparsity import measure

    return "pqat" if measure(model)["kernel_zeros"] > 0 else "default"


def _scheme(name: str) -> Any:
    import tensorflow_model_optimization as tfmot

    if name == "pqat":
        return tfmot.quantization.keras.collab_opts.Default8BitPrunePreserveQuantizeScheme()
    if name == "cqat":
        return tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
    if name == "default":
        from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_scheme import (
            Default8BitQuantizeScheme,
        )

        return Default8BitQuantizeScheme()
    raise ModelError(f"unknown QAT scheme {name!r}; expected one of {', '.join(SCHEMES)}")


def quantize_model(model: Any, scheme: str, skip_layers: tuple[str, ...] = ()) -> Any:
    """Annotate every layer but the skipped ones and apply ``scheme`` (not yet trained)."""
    import tensorflow_model_optimization as tfmot

    from ..tfcompat import keras

    check_model(model, label="model to quantise")
    check_skip(model, skip_layers)
    sch = _scheme(scheme)
    check_quantizable(model, skip_layers, sch.get_quantize_registry())
    skip = set(skip_layers)

    def annotate(layer: Any) -> Any:
        if layer.name in skip or isinstance(layer, keras.layers.InputLayer):
            return layer
        return tfmot.quantization.keras.quantize_annotate_layer(layer)

    with tfmot_errors("quantisation-aware training"):
        annotated = keras.models.clone_model(copy_model(model), clone_function=annotate)
        with tfmot.quantization.keras.quantize_scope():
            return tfmot.quantization.keras.quantize_apply(annotated, sch)


def quantize_aware(model: Any, data: FitData, *, scheme: str, epochs: int, learning_rate: float, seed: int,
                   skip_layers: tuple[str, ...] = (), on_epoch: EpochHook | None = None) -> tuple[Any, dict[str, Any]]:
    """QAT fine-tuning of ``model`` with ``scheme``; return (QAT model, details)."""
    import logging

    if scheme not in SCHEMES:
        raise ModelError(f"unknown QAT scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # TFMOT warns via root logger
    qmodel = quantize_model(model, scheme, skip_layers)
    fit = fine_tune(qmodel, data, stage="qat", epochs=epochs, learning_rate=learning_rate, seed=seed,
                    on_epoch=on_epoch)
    details: dict[str, Any] = {"scheme": scheme, "scheme_class": type(_scheme(scheme)).__name__,
                               "skipped_layers": list(skip_layers), "fine_tune": fit}
    if scheme == "cqat":
        qmodel, err = bake_cqat(qmodel, model, data.x_val, skip_layers)
        details["baked_to"] = "pqat"
        details["bake_max_abs_diff"] = err
    return qmodel, details


def bake_cqat(cqat: Any, base: Any, x_check: np.ndarray, skip_layers: tuple[str, ...] = ()) -> tuple[Any, float]:
    """An equivalent prune-preserving QAT model holding the CQAT model's clustered kernels and ranges."""
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_wrapper import QuantizeWrapper

    from .support import short_name

    _snap_to_centroids(cqat)
    baked = quantize_model(base, "pqat", skip_layers)
    src = {layer.name: layer for layer in cqat.layers}
    for layer in baked.layers:
        other = src.get(layer.name)
        if other is None:
            raise ModelError(f"baking CQAT: layer '{layer.name}' has no counterpart in the CQAT model")
        if isinstance(layer, QuantizeWrapper):
            layer.layer.set_weights(other.layer.get_weights())
        inner = {id(w) for w in getattr(layer, "layer", layer).weights} if isinstance(layer, QuantizeWrapper) else set()
        theirs = {short_name(w.name): w for w in other.weights}
        for w in layer.weights:
            if id(w) in inner:
                continue
            if short_name(w.name) not in theirs:
                raise ModelError(f"baking CQAT: variable '{w.name}' has no counterpart in layer '{other.name}'")
            w.assign(theirs[short_name(w.name)].numpy())
    from .support import predict

    diff = float(np.max(np.abs(predict(baked, x_check) - predict(cqat, x_check)))) if len(x_check) else 0.0
    if diff > 1e-4:
        raise ModelError(f"baking the CQAT model changed its scores by up to {diff:.2g}; use --no-qat with --cluster")
    return baked, diff


def _snap_to_centroids(model: Any) -> None:
    """Write the clustered weights into each kernel exactly as a CQAT training step does, so inference
    (which reads the kernel) and the baked model hold the centroids, not the last optimizer update."""
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_wrapper import QuantizeWrapper

    for layer in model.layers:
        if not isinstance(layer, QuantizeWrapper):
            continue
        for weight, quantizer, qvars in getattr(layer, "_weight_vars", []):
            if not isinstance(qvars, dict) or "cluster_centroids_tf" not in qvars:
                continue
            impl, ori = qvars["clst_impl"], qvars["ori_weights_vars_tf"]
            if getattr(quantizer, "preserve_sparsity", False) and "sparsity_mask" in qvars:
                ori.assign(ori * qvars["sparsity_mask"])
                impl.cluster_centroids.assign(impl.cluster_centroids * qvars["centroids_mask"])
                qvars["cluster_centroids_tf"].assign(impl.cluster_centroids)
            idx = impl.get_pulling_indices(ori)
            qvars["pulling_indices_tf"].assign(tf_cast(idx, qvars["pulling_indices_tf"].dtype))
            weight.assign(impl.get_clustered_weight(idx, ori))


def tf_cast(x: Any, dtype: Any) -> Any:
    from ..tfcompat import tf

    return tf.cast(x, dtype)
