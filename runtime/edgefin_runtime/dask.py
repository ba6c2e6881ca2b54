"""Score a Dask DataFrame with a bundle: ``edgefin_runtime.dask.score(ddf, bundle)`` (extra ``[dask]``).

``map_partitions`` with an explicit ``meta``. The bundle's bytes enter the task graph once (one
delayed key every partition depends on, so a worker receives them once); each worker process loads
them once (hashes, versions, golden self-test, one engine thread) and keeps the Predictor, keyed by
sha256 (:func:`edgefin_runtime.scale.worker_predictor`). Partitions are scored by
``score_columns``, so each row's score is the one a single process gives; rejected rows stay in the
output with their error. Works with any scheduler: a ``LocalCluster``
(``threads_per_worker=1``: engines oversubscribe otherwise) or a ``Client("tcp://host:8786")``.

    from edgefin_runtime import dask as efdask
    scored = efdask.score(dd.read_parquet("applications/"), "tflite-int8.efb", key_columns=["id"])
    scored.to_parquet("scores/")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .scale import BundleSource, bundle_bytes, key_columns_for, score_block, to_pandas, worker_predictor


def _score_partition(
    part: Any, data: bytes, sha: str, backend: str | None, policy: str, names: list[str], keys: list[str], k: int
) -> Any:
    p = worker_predictor(data, sha, backend, policy)
    out = score_block(p, {c: part[c].to_numpy() for c in names}, len(part), k)
    return to_pandas(out, {k: part[k] for k in keys}, part.index)


def score(
    ddf: Any,
    bundle: BundleSource,
    *,
    reasons: bool = False,
    key_columns: Sequence[str] | None = None,
    backend: str | None = None,
    policy: str = "lenient",
    max_reasons: int = 4,
) -> Any:
    """A Dask DataFrame of the key columns, score, decision, label, flags, error_type, field, error,
    partition by partition with the input's index.

    ``key_columns`` default to every column the bundle's schema does not use. The bundle is loaded
    here once first, so a bad bundle fails before any task runs. ``reasons``: a ``reasons`` column
    too, each scored row's ``max_reasons`` principal reasons as JSON (the bundle needs an explain
    section; checked here).
    """
    import dask

    data, sha = bundle_bytes(bundle)
    predictor = worker_predictor(data, sha, backend, policy)
    if reasons:
        predictor.explainer()  # a bundle without an explain section fails here, not in a task
    k = max_reasons if reasons else 0
    columns = list(ddf.columns)
    keys = key_columns_for(columns, predictor.schema.names, key_columns)
    names = [c for c in columns if c in set(predictor.schema.names)]
    empty = ddf._meta
    meta = to_pandas(score_block(predictor, {c: empty[c].to_numpy() for c in names}, 0, k), {c: empty[c] for c in keys})
    shipped = dask.delayed(data, pure=True, traverse=False)
    return ddf.map_partitions(
        _score_partition, shipped, sha, backend, policy, names, keys, k, meta=meta, align_dataframes=False
    )


__all__ = ["score"]
