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

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ModelError
from ..tftypes import KerasLayer, KerasModel, TfmotScheme
from .finetune import EpochHook, FitData, fine_tune
from .prune import copy_model
from .support import check_model, check_quantizable, check_skip, clone, tfmot_errors

SCHEMES = ("default", "pqat", "cqat")


def scheme_for(model: KerasModel, *, clustered: bool) -> str:
    """'cqat' for a clustered model, 'pqat' when its kernels hold zeros, else 'default'."""
    if clustered:
        return "cqat"
    from .sparsity import measure

    return "pqat" if measure(model)["kernel_zeros"] > 0 else "default"


def _scheme(name: str) -> TfmotScheme:
    from ..tfmot_compat import Default8BitQuantizeScheme, strict_scheme, tfmot

    if name == "pqat":
        return strict_scheme(tfmot.quantization.keras.collab_opts.Default8BitPrunePreserveQuantizeScheme())
    if name == "cqat":
        return strict_scheme(
            tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
        )
    if name == "default":
        return Default8BitQuantizeScheme()
    raise ModelError(f"unknown QAT scheme {name!r}; expected one of {', '.join(SCHEMES)}")


def quantize_model(model: KerasModel, scheme: str, skip_layers: tuple[str, ...] = ()) -> KerasModel:
    """Annotate every layer but the skipped ones and apply ``scheme`` (not yet trained)."""
    from ..tfcompat import keras
    from ..tfmot_compat import own_cluster_quantizers, tfmot

    check_model(model, label="model to quantise")
    check_skip(model, skip_layers)
    sch = _scheme(scheme)
    check_quantizable(model, skip_layers, sch.get_quantize_registry())
    skip = set(skip_layers)

    def annotate(layer: KerasLayer) -> KerasLayer:
        if layer.name in skip or isinstance(layer, keras.layers.InputLayer):
            return layer
        return tfmot.quantization.keras.quantize_annotate_layer(layer)

    with tfmot_errors("quantisation-aware training"):
        annotated = clone(copy_model(model), clone_function=annotate)
        with tfmot.quantization.keras.quantize_scope():
            qmodel = tfmot.quantization.keras.quantize_apply(annotated, sch)
    if scheme == "cqat":
        own_cluster_quantizers(qmodel)
    return qmodel


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_aware(
    model: KerasModel,
    data: FitData,
    *,
    scheme: str,
    epochs: int,
    learning_rate: float,
    seed: int,
    skip_layers: tuple[str, ...] = (),
    on_epoch: EpochHook | None = None,
) -> tuple[KerasModel, dict[str, Any]]:
    """QAT fine-tuning of ``model`` with ``scheme``; return (QAT model, details)."""
    if scheme not in SCHEMES:
        raise ModelError(f"unknown QAT scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    with _quiet_root_logger():  # TFMOT warns through the root logger about layers without zeros
        qmodel = quantize_model(model, scheme, skip_layers)
    fit = fine_tune(qmodel, data, stage="qat", epochs=epochs, learning_rate=learning_rate, seed=seed, on_epoch=on_epoch)
    details: dict[str, Any] = {
        "scheme": scheme,
        "scheme_class": type(_scheme(scheme)).__name__,
        "skipped_layers": list(skip_layers),
        "fine_tune": fit,
    }
    if scheme == "cqat":
        qmodel, err = bake_cqat(qmodel, model, data.x_val, skip_layers)
        details["baked_to"] = "pqat"
        details["bake_max_abs_diff"] = err
    return qmodel, details


def bake_cqat(
    cqat: KerasModel, base: KerasModel, x_check: np.ndarray, skip_layers: tuple[str, ...] = ()
) -> tuple[KerasModel, float]:
    """An equivalent prune-preserving QAT model holding the CQAT model's clustered kernels and ranges."""
    from ..tfmot_compat import QuantizeWrapper, snap_to_centroids
    from .support import short_name

    snap_to_centroids(cqat)
    with _quiet_root_logger():
        baked = quantize_model(base, "pqat", skip_layers)
    if len(baked.layers) != len(cqat.layers):
        raise ModelError("baking CQAT: the CQAT and the prune-preserving QAT model differ in their layers")
    for layer, other in zip(baked.layers, cqat.layers):  # same graph; auto-named layers may differ in suffix
        if type(layer) is not type(other) or (
            isinstance(layer, QuantizeWrapper) and layer.layer.name != other.layer.name
        ):
            raise ModelError(f"baking CQAT: layer '{layer.name}' does not match '{other.name}' of the CQAT model")
        if isinstance(layer, QuantizeWrapper):
            layer.layer.set_weights(other.layer.get_weights())
        inner = {id(w) for w in getattr(layer, "layer", layer).weights} if isinstance(layer, QuantizeWrapper) else set()
        theirs = {short_name(w.name).removeprefix(f"{other.name}_"): w for w in other.weights}
        for w in layer.weights:
            if id(w) in inner:
                continue
            key = short_name(w.name).removeprefix(f"{layer.name}_")
            if key not in theirs or tuple(theirs[key].shape) != tuple(w.shape):
                raise ModelError(f"baking CQAT: variable '{w.name}' has no counterpart in layer '{other.name}'")
            w.assign(theirs[key].numpy())
    from .support import predict

    diff = float(np.max(np.abs(predict(baked, x_check) - predict(cqat, x_check)))) if len(x_check) else 0.0
    if diff > 1e-4:
        raise ModelError(
            f"baking the CQAT model changed its scores by up to {diff:.2g}; use `qat=False` with `cluster`"
        )
    return baked, diff
