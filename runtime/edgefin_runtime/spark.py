"""Score a Spark DataFrame with a bundle: ``edgefin_runtime.spark.score(df, bundle)`` (extra ``[spark]``).

The bundle travels as bytes in a broadcast variable; each Python worker loads it once (hashes,
versions, golden self-test, one engine thread) and keeps the Predictor for every later batch and
task of the same bundle (:func:`edgefin_runtime.scale.worker_predictor`, keyed by sha256). Batches
arrive as Arrow record batches through ``mapInArrow`` (default) or as pandas frames through
``mapInPandas`` and are scored by ``score_columns``, the runtime's vectorised path, so each row's
score is the one a single process gives. Rejected rows stay in the output with their error.

    from edgefin_runtime import spark as efspark
    scored = efspark.score(df, "tflite-int8.efb", key_columns=["id"])
    scored.write.parquet("scores/")
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .scale import (
    BundleSource,
    bundle_bytes,
    key_columns_for,
    score_block,
    to_arrow,
    to_pandas,
    worker_predictor,
    worker_predictor_loaded,
)

APIS = ("arrow", "pandas")


class ScoreMetrics:
    """Spark accumulators a scoring job adds to: bundle loads (one per Python worker process that
    scored), batches and rows. Read them after an action; a retried task may count twice."""

    def __init__(self, spark: Any) -> None:
        sc = spark.sparkContext
        self.loads = sc.accumulator(0)
        self.batches = sc.accumulator(0)
        self.rows = sc.accumulator(0)

    def to_dict(self) -> dict[str, int]:
        return {"loads": self.loads.value, "batches": self.batches.value, "rows": self.rows.value}


def output_schema(df: Any, keys: Sequence[str], reasons: bool = False) -> Any:
    """The Spark schema of the scored output: the key columns as in ``df``, then the output columns."""
    from pyspark.sql import types as T

    fields = [df.schema[k] for k in keys]
    fields += [
        T.StructField("score", T.FloatType(), True),
        T.StructField("decision", T.BooleanType(), True),
    ]
    fields += [T.StructField(name, T.StringType(), True) for name in ("label", "flags", "error_type", "field", "error")]
    if reasons:
        fields.append(T.StructField("reasons", T.StringType(), True))
    return T.StructType(fields)


def score(
    df: Any,
    bundle: BundleSource,
    *,
    reasons: bool = False,
    key_columns: Sequence[str] | None = None,
    backend: str | None = None,
    policy: str = "lenient",
    api: str = "arrow",
    metrics: ScoreMetrics | None = None,
    max_reasons: int = 4,
) -> Any:
    """A DataFrame of the key columns, score, decision, label, flags, error_type, field, error.

    ``key_columns`` default to every column of ``df`` the bundle's schema does not use. The bundle
    is loaded here once first, so a bad bundle fails before any task starts. ``api``: 'arrow'
    (mapInArrow, no pandas conversion) or 'pandas' (mapInPandas). ``reasons``: a ``reasons`` column
    too, each scored row's ``max_reasons`` principal reasons as JSON (the bundle needs an explain
    section; checked here).
    """
    if api not in APIS:
        raise ValueError(f"api: expected one of {APIS}, got {api!r}")
    data, sha = bundle_bytes(bundle)
    predictor = worker_predictor(data, sha, backend, policy)  # the driver checks the bundle first
    if reasons:
        predictor.explainer()  # a bundle without an explain section fails here, not in a task
    k = max_reasons if reasons else 0
    keys = key_columns_for(df.columns, predictor.schema.names, key_columns)
    names = [c for c in df.columns if c in set(predictor.schema.names)]
    schema = output_schema(df, keys, reasons)
    shipped = df.sparkSession.sparkContext.broadcast(data)

    def batches(items: Iterator[Any], arrow: bool) -> Iterator[Any]:
        p, loaded = worker_predictor_loaded(lambda: shipped.value, sha, backend, policy)
        if metrics is not None and loaded:
            metrics.loads.add(1)
        for batch in items:
            n = batch.num_rows if arrow else len(batch)
            if arrow:
                cols = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in names}
                key_cols = {k: batch.column(k) for k in keys}
            else:
                cols = {c: batch[c].to_numpy() for c in names}
                key_cols = {k: batch[k] for k in keys}
            out = score_block(p, cols, n, k)
            if metrics is not None:
                metrics.batches.add(1)
                metrics.rows.add(n)
            yield to_arrow(out, key_cols) if arrow else to_pandas(out, key_cols)

    if api == "arrow":
        return df.mapInArrow(lambda it: batches(it, True), schema)
    return df.mapInPandas(lambda it: batches(it, False), schema)


__all__ = ["APIS", "ScoreMetrics", "output_schema", "score"]
