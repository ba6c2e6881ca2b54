"""Weight clustering (``tfmot.clustering.keras``): every kernel keeps at most N distinct values.

Runs after pruning, so it is the sparsity-preserving variant: the zero weights stay zero and the
zero centroid stays at zero. Clustered float32 weights compress much better (few distinct values),
and a later QAT phase keeps them on their centroids (CQAT, see :mod:`edgefin.compress.qat`).
"""

from __future__ import annotations

from typing import Any

from ..tftypes import KerasLayer, KerasModel
from .finetune import EpochHook, FitData, fine_tune
from .prune import copy_model
from .support import _kernels, check_model, check_skip, clone, output_layer_name, tfmot_errors


def cluster(
    model: KerasModel,
    data: FitData,
    *,
    clusters: int,
    epochs: int,
    learning_rate: float,
    seed: int,
    skip_layers: tuple[str, ...] = (),
    include_output: bool = False,
    on_epoch: EpochHook | None = None,
) -> tuple[KerasModel, dict[str, Any]]:
    """Cluster each kernel to ``clusters`` centroids (k-means++), fine-tune, strip; return (model, details)."""
    from ..errors import UnsupportedLayerError
    from ..tfcompat import keras
    from ..tfmot_compat import ClusteringRegistry, cluster_weights_preserving_sparsity, tfmot

    check_model(model, label="model to cluster")
    check_skip(model, skip_layers)
    skip = set(skip_layers)
    if not include_output:
        skip.add(output_layer_name(model))
    sparse = any((k.numpy() == 0).any() for layer in model.layers for k in _kernels(layer))
    targets, bad = [], []
    for layer in model.layers:
        if layer.name in skip or isinstance(layer, keras.layers.InputLayer) or not _kernels(layer):
            continue
        if not ClusteringRegistry.supports(layer):
            bad.append(layer)
        elif all(int(k.shape.num_elements()) > clusters for k in _kernels(layer)):
            targets.append(layer.name)
    if bad:
        names = ", ".join(f"'{b.name}' ({type(b).__name__})" for b in bad)
        raise UnsupportedLayerError(
            f"TFMOT cannot cluster {names}; pass "
            f"{' '.join(f'`skip_layers={b.name}`' for b in bad)} or leave out `cluster`"
        )
    if not targets:
        raise UnsupportedLayerError(f"no layer has enough weights for {clusters} clusters; lower `cluster`")
    params = {
        "number_of_clusters": int(clusters),
        "cluster_centroids_init": tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS,
        "preserve_sparsity": bool(sparse),
    }

    def wrap(layer: KerasLayer) -> KerasLayer:
        if layer.name in targets:
            return cluster_weights_preserving_sparsity(layer, **params)
        return layer

    with tfmot_errors("clustering"):
        wrapped = clone(copy_model(model), clone_function=wrap)
    fit = fine_tune(
        wrapped, data, stage="cluster", epochs=epochs, learning_rate=learning_rate, seed=seed, on_epoch=on_epoch
    )
    with tfmot_errors("strip_clustering"):
        stripped = tfmot.clustering.keras.strip_clustering(wrapped)
    return stripped, {
        "clusters": int(clusters),
        "centroid_init": "kmeans++",
        "preserve_sparsity": bool(sparse),
        "clustered_layers": targets,
        "skipped_layers": sorted(skip),
        "fine_tune": fit,
    }
