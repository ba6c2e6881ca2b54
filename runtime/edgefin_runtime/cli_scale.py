"""``edgefin-run score BUNDLE INPUT --engine local|dask|spark --output DIR``: Parquet in, Parquet out.

INPUT is a Parquet file, a directory of them or a glob; it may be larger than memory. ``local``
streams record batches through one process (pyarrow.dataset); ``dask`` and ``spark`` start a local
cluster of ``--workers`` processes, or join ``--cluster ADDRESS`` (a Dask scheduler, a Spark master).
Every engine scores with the same bundle and ``score_columns``. DIR receives Parquet part files (the
key columns, score, decision, label, flags, error_type, field, error) and ``_summary.json``; it is
written beside DIR first and renamed into place when complete. Rows in (from the Parquet metadata)
must equal scored + rejected: a bad row is written with its error, never dropped.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from .cli_io import UsageProblem

ENGINES = ("local", "dask", "spark")
#: rows per record batch read by the local engine (and per output row group)
LOCAL_BATCH = 65536
#: rows per output part file of the local engine
LOCAL_PART_ROWS = 1 << 21


def is_parquet_input(path: str | None) -> bool:
    """True for a .parquet/.pq file, a directory or a glob: inputs only the scale-out path reads."""
    if not path or path == "-":
        return False
    if path.lower().endswith((".parquet", ".pq")) or os.path.isdir(path):
        return True
    return not os.path.exists(path) and _has_magic(path)  # a CSV named data[1].csv stays a CSV


def _has_magic(path: str) -> bool:
    return any(c in path for c in "*?[")


def input_files(path: str) -> list[str]:
    """The Parquet files of INPUT (a file, a directory searched recursively, or a glob), sorted."""
    import glob

    if _has_magic(path):
        files = sorted(f for f in glob.glob(path, recursive=True) if os.path.isfile(f))
    elif os.path.isdir(path):
        files = sorted(
            os.path.join(root, f)
            for root, dirs, names in os.walk(path)
            for f in names
            if f.lower().endswith((".parquet", ".pq")) and not f.startswith(("_", "."))
        )
    elif os.path.isfile(path):
        files = [path]
    else:
        raise UsageProblem(f"input {path} does not exist")
    if not files:
        raise UsageProblem(f"input {path} holds no Parquet files (*.parquet)")
    return files


def run_scaled(args: argparse.Namespace) -> int:
    """The --engine path of ``edgefin-run score``."""
    import json
    import shutil
    import tempfile

    engine = args.engine or "local"
    if args.input is None or args.input == "-":
        raise UsageProblem("--engine needs an INPUT path (a Parquet file, directory or glob), not stdin")
    if not args.output:
        raise UsageProblem("--engine needs --output DIR (a directory for the Parquet part files)")
    if args.cluster and engine == "local":
        raise UsageProblem("--cluster needs --engine dask or --engine spark")
    if args.strict:
        raise UsageProblem("--strict stops at a row; with --engine every row is scored or rejected (drop --strict)")
    files = input_files(args.input)
    out_dir = os.path.abspath(args.output)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise UsageProblem(f"output {args.output} exists and is not an empty directory; choose a new --output DIR")
    parent = os.path.dirname(out_dir)
    if not os.path.isdir(parent):
        raise UsageProblem(f"cannot write output {args.output}: {parent} is not a directory")
    t_start = time.perf_counter()
    rows_in = _count_rows(files)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out_dir) + ".", dir=parent)
    try:
        t0 = time.perf_counter()
        stage = os.path.join(tmp, "out")
        if engine == "local":
            timing = _score_local(args, files, stage)
        elif engine == "dask":
            timing = _score_dask(args, files, stage)
        else:
            timing = _score_spark(args, files, stage)
        seconds = time.perf_counter() - t0
        t_count = time.perf_counter()
        counts = output_counts(stage)
        timing["count_input"] = round(t0 - t_start, 3)
        timing["count_output"] = round(time.perf_counter() - t_count, 3)
        summary = _summary(engine, args, rows_in, counts, seconds, timing)
        if counts["rows"] != rows_in:
            raise RuntimeError(f"the output holds {counts['rows']} rows but the input {rows_in}; no output written")
        with open(os.path.join(stage, "_summary.json"), "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)  # empty (checked above)
        os.replace(stage, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not args.quiet:
        rejected = ", ".join(f"{n} {t}" for t, n in sorted(summary["rejected_by_type"].items())) or "none"
        print(
            f"edgefin-run score --engine {engine}: {rows_in} rows in, {summary['scored']} scored, "
            f"{summary['rejected']} rejected ({rejected}) in {seconds:.3f} s "
            f"({summary['rows_per_second']:,.0f} rows/s) -> {args.output}",
            file=sys.stderr,
        )
    return 0


def _summary(
    engine: str, args: argparse.Namespace, rows_in: int, counts: dict[str, Any], seconds: float, timing: dict[str, Any]
) -> dict[str, Any]:
    return {
        "engine": engine,
        "workers": None if engine == "local" else args.workers,
        "cluster": args.cluster,
        "rows_in": rows_in,
        "scored": counts["scored"],
        "rejected": counts["rejected"],
        "rejected_by_type": counts["by_type"],
        "seconds": round(seconds, 3),
        "rows_per_second": rows_in / seconds if seconds > 0 else 0.0,
        "timing": timing,
    }


def _count_rows(files: list[str]) -> int:
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    total = 0
    for f in files:
        try:
            total += pq.ParquetFile(f).metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise UsageProblem(f"input {f} is not a readable Parquet file ({type(exc).__name__})") from None
    return total


def output_counts(directory: str) -> dict[str, Any]:
    """Rows, scored, rejected and rejected by error type in a scored output directory (read back
    from its error_type column, so the count is the output's, whichever engine wrote it)."""
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.dataset as ds  # type: ignore[import-untyped,unused-ignore]

    data = ds.dataset(input_files(directory), format="parquet")
    col = data.to_table(columns=["error_type"]).column("error_type")
    by_type = {}
    for item in pc.value_counts(col.drop_null()).to_pylist():
        by_type[item["values"]] = item["counts"]
    rejected = sum(by_type.values())
    return {"rows": len(col), "scored": len(col) - rejected, "rejected": rejected, "by_type": by_type}


def _load(args: argparse.Namespace) -> tuple[bytes, str, Any]:
    from .cli import _quiet_native_stderr
    from .scale import bundle_bytes, worker_predictor

    data, sha = bundle_bytes(args.bundle)
    with _quiet_native_stderr():
        if args.key or args.require_signature:  # the signature is checked here, on the driver, once
            from .predictor import load

            load(data, args.backend, policy=args.policy, trusted_keys=args.key or None, require_signature=True)
        predictor = worker_predictor(data, sha, args.backend, args.policy)
        if _reasons(args):
            predictor.explainer()  # a bundle without an explain section fails before any work
        return data, sha, predictor


def _reasons(args: argparse.Namespace) -> int:
    """--max-reasons when --reasons was given, else 0."""
    return int(args.max_reasons) if getattr(args, "reasons", False) else 0


# ---------------------------------------------------------------- local: one process, streamed
def _score_local(args: argparse.Namespace, files: list[str], out: str) -> dict[str, Any]:
    import pyarrow.dataset as ds  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    from .scale import key_columns_for, score_block, to_arrow

    t_load = time.perf_counter()
    _, _, predictor = _load(args)
    t = {"load": time.perf_counter() - t_load, "read": 0.0, "score": 0.0, "write": 0.0}
    data = ds.dataset(files, format="parquet")
    keys = key_columns_for(data.schema.names, predictor.schema.names, None)
    names = [c for c in data.schema.names if c in set(predictor.schema.names)]
    os.makedirs(out)
    writer = None
    part, in_part = 0, 0
    batches: Iterator[Any] = data.to_batches(columns=keys + names, batch_size=LOCAL_BATCH)
    try:
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            t1 = time.perf_counter()
            t["read"] += t1 - t0
            if batch is None:
                break
            cols = {c: batch.column(c).to_numpy(zero_copy_only=False) for c in names}
            out_cols = score_block(predictor, cols, batch.num_rows, _reasons(args))
            result = to_arrow(out_cols, {k: batch.column(k) for k in keys})
            t2 = time.perf_counter()
            t["score"] += t2 - t1
            if writer is None or in_part >= LOCAL_PART_ROWS:
                if writer is not None:
                    writer.close()
                    part += 1
                writer = pq.ParquetWriter(os.path.join(out, f"part-{part:05d}.parquet"), result.schema)
                in_part = 0
            writer.write_batch(result)
            in_part += batch.num_rows
            t["write"] += time.perf_counter() - t2
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # an empty input still gives a readable (empty) output
        empty = to_arrow(score_block(predictor, {c: [] for c in names}, 0, _reasons(args)), {k: [] for k in keys})
        pq.write_table(empty.schema.empty_table(), os.path.join(out, "part-00000.parquet"))
    return {k: round(v, 3) for k, v in t.items()}


# ---------------------------------------------------------------- dask
def _score_dask(args: argparse.Namespace, files: list[str], out: str) -> dict[str, Any]:
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster

    from . import dask as efdask

    t_import = time.perf_counter()
    data, _, _ = _load(args)
    t0 = time.perf_counter()
    if args.cluster:
        client = Client(args.cluster)  # type: ignore[no-untyped-call]
        cluster = None
    else:
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
        )
        client = Client(cluster)  # type: ignore[no-untyped-call]
    t1 = time.perf_counter()
    try:
        ddf = dd.read_parquet(files)
        scored = efdask.score(
            ddf,
            data,
            backend=args.backend,
            policy=args.policy,
            reasons=bool(_reasons(args)),
            max_reasons=args.max_reasons,
        )
        scored.to_parquet(out, write_index=False)
        t2 = time.perf_counter()
    finally:
        client.close()  # type: ignore[no-untyped-call]
        if cluster is not None:
            cluster.close()
    return {
        "load": round(t0 - t_import, 3),
        "start": round(t1 - t0, 3),
        "job": round(t2 - t1, 3),
        "stop": round(time.perf_counter() - t2, 3),
    }


# ---------------------------------------------------------------- spark
def spark_session(master: str, app: str = "edgefin-score") -> Any:
    """A Spark session for scoring: quiet logs, no UI, workers on this interpreter (local masters)."""
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _score_spark(args: argparse.Namespace, files: list[str], out: str) -> dict[str, Any]:
    from pyspark.sql import SparkSession

    from . import spark as efspark

    t_import = time.perf_counter()
    data, _, _ = _load(args)
    t0 = time.perf_counter()
    active = SparkSession.getActiveSession()  # a caller's session (a notebook, a test) is used, not stopped
    spark = active or spark_session(args.cluster or f"local[{args.workers}]")
    t1 = time.perf_counter()
    try:
        df = spark.read.parquet(*[os.path.abspath(f) for f in files])
        metrics = efspark.ScoreMetrics(spark)
        scored = efspark.score(
            df,
            data,
            backend=args.backend,
            policy=args.policy,
            metrics=metrics,
            reasons=bool(_reasons(args)),
            max_reasons=args.max_reasons,
        )
        scored.write.parquet(out)
        t2 = time.perf_counter()
    finally:
        if active is None:
            spark.stop()
    return {
        "load": round(t0 - t_import, 3),
        "start": round(t1 - t0, 3),
        "job": round(t2 - t1, 3),
        "stop": round(time.perf_counter() - t2, 3),
        **metrics.to_dict(),
    }
