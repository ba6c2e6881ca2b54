"""The one door to TFMOT: its public API, the few internals edgefin needs, and the workarounds for its bugs.

Everything here was written against (and tested with) the TFMOT versions in :data:`TESTED_VERSIONS`;
importing this module with any other installed version raises :class:`~edgefin.errors.DependencyError`
before an internal is touched, instead of failing somewhere deep in a compression. Elsewhere, use the
public API through :data:`tfmot` (``tfmot.sparsity.keras``, ``tfmot.quantization.keras``,
``tfmot.clustering.keras``) and import from here whatever TFMOT does not publish; nothing else in
edgefin imports ``tensorflow_model_optimization.python.core``.

The workarounds (each names the bug it works around):

* :func:`tfmot_saving` - quantisation-aware models and the ``.keras`` format;
* :func:`strict_scheme` - collaborative quantisation registries that claim every layer;
* :func:`own_cluster_quantizers` - one cluster-preserving quantiser shared by all layers;
* :func:`snap_to_centroids` - a CQAT model's kernels lag its centroids until the next training step.

Importing this module imports TensorFlow (through :mod:`edgefin.tfcompat`) and TFMOT.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any

from .errors import DependencyError
from .tfcompat import tf
from .tftypes import KerasLayer, KerasModel, TfmotRegistry, TfmotScheme

TESTED_VERSIONS = ("0.8.1",)


def check_version(version: str) -> None:
    """Raise DependencyError unless ``version`` is a TFMOT version the code here was written for."""
    if version not in TESTED_VERSIONS:
        raise DependencyError(
            f"tensorflow-model-optimization {version} is installed, but edgefin's compression relies on internals "
            f"and bug workarounds of version {', '.join(TESTED_VERSIONS)} (edgefin/tfmot_compat.py); install it with "
            f"pip install 'tensorflow-model-optimization=={TESTED_VERSIONS[-1]}'"
        )


import tensorflow_model_optimization as tfmot  # noqa: E402 - after tfcompat set TF_USE_LEGACY_KERAS

check_version(str(getattr(tfmot, "__version__", "unknown")))

# ---------------------------------------------------------------- internals (no public name in TFMOT)
# (imported after the version check, so another version fails there, not here)
from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import (  # noqa: E402
    ClusteringRegistry,
)
from tensorflow_model_optimization.python.core.clustering.keras.experimental.cluster import (  # noqa: E402
    cluster_weights as cluster_weights_preserving_sparsity,  # public tfmot.clustering.keras.experimental is empty
)
from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer  # noqa: E402
from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry  # noqa: E402
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_utils import is_pruned_m_by_n  # noqa: E402
from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude  # noqa: E402

# ---------------------------------------------------------------- public names used as types
QuantizeWrapper = tfmot.quantization.keras.QuantizeWrapper
PrunableLayer = tfmot.sparsity.keras.PrunableLayer
Default8BitQuantizeRegistry = tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry
Default8BitQuantizeScheme = tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme


# ---------------------------------------------------------------- QAT models and the .keras format
_lock = threading.RLock()


def _short(name: str) -> str:
    return name.split(":")[0].split("/")[-1]


def _own_variables(wrapper: KerasLayer) -> list[Any]:
    """The wrapper's own variables (quantiser state), without the wrapped layer's weights."""
    inner = {id(v) for v in wrapper.layer.weights}
    seen: set[int] = set()
    out = []
    for v in list(wrapper._trainable_weights) + list(wrapper._non_trainable_weights):
        if id(v) in inner or id(v) in seen:
            continue
        seen.add(id(v))
        out.append(v)
    return out


def _wrapper_save(self: Any, store: Any) -> None:
    for i, v in enumerate(_own_variables(self)):
        store[f"{i}:{_short(v.name)}"] = v.numpy()


def _wrapper_load(self: Any, store: Any) -> None:
    own = _own_variables(self)
    keys = sorted(store.keys(), key=lambda k: int(str(k).split(":")[0]))
    names = [str(k).split(":", 1)[1] for k in keys]
    if names != [_short(v.name) for v in own]:
        raise ValueError(
            f"layer '{self.name}': saved quantiser variables {names} do not match the "
            f"model's {[_short(v.name) for v in own]}"
        )
    for k, v in zip(keys, own):
        v.assign(store[k])


def _quantize_layer_build_from_config(self: Any, config: Any) -> None:
    input_shape = config.get("input_shape")
    if input_shape is not None and not self.built:
        self.build(input_shape)
        self.built = True


@contextlib.contextmanager
def tfmot_saving() -> Iterator[None]:
    """Within this block, TFMOT quantisation models save and load correctly as ``.keras``.

    TFMOT 0.8.1's quantisation-aware models do not survive a tf_keras 2.21 ``.keras`` round trip as
    shipped: ``QuantizeLayer.build`` never sets ``built`` (so loading builds it twice and expects five
    variables instead of three), and ``QuantizeWrapperV2`` lists the wrapped layer's kernel twice in its
    own variables, so Keras' index-based weight matching breaks. This patches exactly those three
    methods for the duration of the block (and restores them afterwards): the wrapper then stores only
    its own quantiser variables, by name, and the wrapped layer stores its kernel and bias itself. The
    block is also TFMOT's ``quantize_scope``, so the quantisation layers deserialise.
    """
    with _lock:
        saved = {
            (QuantizeWrapper, "save_own_variables"): QuantizeWrapper.__dict__.get("save_own_variables"),
            (QuantizeWrapper, "load_own_variables"): QuantizeWrapper.__dict__.get("load_own_variables"),
            (QuantizeLayer, "build_from_config"): QuantizeLayer.__dict__.get("build_from_config"),
        }
        QuantizeWrapper.save_own_variables = _wrapper_save
        QuantizeWrapper.load_own_variables = _wrapper_load
        QuantizeLayer.build_from_config = _quantize_layer_build_from_config
        try:
            with tfmot.quantization.keras.quantize_scope():
                yield
        finally:
            for (cls, attr), fn in saved.items():
                if fn is None:
                    delattr(cls, attr)
                else:
                    setattr(cls, attr, fn)


# ---------------------------------------------------------------- quantisation schemes
def strict_scheme(scheme: TfmotScheme) -> TfmotScheme:
    """The scheme with a registry whose ``supports`` is honest.

    The collaborative (prune/cluster-preserving) registries of TFMOT 0.8.1 say they support any layer
    (a Lambda, say) and then fail in ``get_quantize_config``; ``quantize_apply`` relies on
    ``supports`` to leave a skipped layer in float, so it must also ask the default 8-bit registry.
    """

    class StrictRegistry:
        def __init__(self, inner: TfmotRegistry) -> None:
            self._inner, self._base = inner, Default8BitQuantizeRegistry()

        def supports(self, layer: KerasLayer) -> bool:
            return bool(self._inner.supports(layer) and self._base.supports(layer))

        def __getattr__(self, attr: str) -> Any:
            return getattr(self._inner, attr)

    class StrictScheme(type(scheme)):  # type: ignore[misc]
        def __init__(self) -> None:  # noqa: D107 - state lives in the wrapped scheme
            pass

        def get_layout_transformer(self) -> Any:
            return scheme.get_layout_transformer()

        def get_quantize_registry(self) -> TfmotRegistry:
            return StrictRegistry(scheme.get_quantize_registry())

    StrictScheme.__name__ = type(scheme).__name__
    return StrictScheme()


def own_cluster_quantizers(model: KerasModel) -> None:
    """Give every layer its own cluster-preserving quantiser.

    TFMOT 0.8.1 shares one quantiser object between all layers and switches its
    ``preserve_sparsity`` off for good when any layer (typically the unpruned output layer) has no
    zeros, so the zero centroid of the pruned layers drifts and the sparsity is lost in training.
    """
    for layer in model.layers:
        if not isinstance(layer, QuantizeWrapper):
            continue
        fixed = []
        for weight, quantizer, qvars in layer._weight_vars:
            if hasattr(quantizer, "preserve_sparsity"):
                quantizer = copy.copy(quantizer)
                quantizer.preserve_sparsity = isinstance(qvars, dict) and "sparsity_mask" in qvars
            fixed.append((weight, quantizer, qvars))
        layer._weight_vars = fixed


def snap_to_centroids(model: KerasModel) -> None:
    """Write a CQAT model's clustered weights into each kernel exactly as a CQAT training step does, so
    inference (which reads the kernel) holds the centroids, not the last optimizer update.

    Reads the cluster-preserving quantiser's private state (``_weight_vars``, ``clst_impl``,
    ``ori_weights_vars_tf``, ``pulling_indices_tf``) as TFMOT 0.8.1 lays it out.
    """
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
            qvars["pulling_indices_tf"].assign(tf.cast(idx, qvars["pulling_indices_tf"].dtype))
            weight.assign(impl.get_clustered_weight(idx, ori))


__all__ = [
    "TESTED_VERSIONS",
    "check_version",
    "tfmot",
    "ClusteringRegistry",
    "cluster_weights_preserving_sparsity",
    "QuantizeLayer",
    "PruneRegistry",
    "is_pruned_m_by_n",
    "PruneLowMagnitude",
    "QuantizeWrapper",
    "PrunableLayer",
    "Default8BitQuantizeRegistry",
    "Default8BitQuantizeScheme",
    "tfmot_saving",
    "strict_scheme",
    "own_cluster_quantizers",
    "snap_to_centroids",
]
