"""Scale-out scoring throughput: one process, Dask (1 and 2 workers), Spark (local[1], local[2]).

    python benchmarks/scale_out.py --run runs/demo --bundle runs/demo/bundles/tflite-int8.efb \\
        --rows 1000000 --work /tmp/scale --json benchmarks/results/scale_out-1m.json

For ROWS synthetic rows (``edgefin synth`` from the run, 1% bad rows, made once into WORK), every engine
runs ``edgefin-run score INPUT --engine E --output DIR`` in a fresh process (what a user runs: cluster
start, read, score, write) and reports its summary: total seconds, cluster start, job seconds and
rows/s. Then, in this process:

* where the time goes in one process: read (pyarrow.dataset batches), preprocess (the columns
  encoder), engine (the model), write (Parquet), measured per block on the same data;
* the fixed cost per job: a 1,000-row single-partition job on a running cluster (Dask: 2 workers,
  Spark: local[2]);
* the cost per partition: the same 200,000 rows in 2 and in 50 partitions (Dask: from_pandas; Spark:
  repartition, so a shuffle is part of it), (t50 - t2) / 48.

Timing on a shared machine is noisy: read the figures as ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def synth(run: str, rows: int, work: Path) -> Path:
    out = work / f"synth-{rows}"
    if not (out / "_synth.json").is_file():
        cmd = [str(BIN / "edgefin"), "synth", run, "--rows", str(rows), "--out", str(out), "--bad-share", "0.01", "-q"]
        subprocess.run(cmd, check=True)
    return out


def engine_run(bundle: str, data: Path, work: Path, engine: str, workers: int) -> dict[str, Any]:
    out = work / f"out-{data.name}-{engine}-{workers}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    cmd = [str(BIN / "edgefin-run"), "score", bundle, str(data), "--engine", engine, "--output", str(out), "-q"]
    if engine != "local":
        cmd += ["--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} x{workers} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads((out / "_summary.json").read_text())
    subprocess.run(["rm", "-rf", str(out)], check=True)
    summary["process_wall_seconds"] = round(wall, 3)
    summary["process_tree_cpu_seconds"] = round(cpu, 3)  # every process of the run (JVM, workers) reaped
    summary["rows_per_cpu_second"] = round(summary["rows_in"] / cpu) if cpu > 0 else None
    return summary


def where_time_goes(bundle: str, data: Path) -> dict[str, float]:
    """CPU seconds (this process; the engine runs one thread) spent reading, converting to numpy,
    preprocessing, in the engine, building the output columns and writing, for one process on
    ``data`` - CPU time, so the shares hold on a loaded machine where wall time does not."""
    import tempfile

    import numpy as np
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    import edgefin_runtime
    from edgefin_runtime.cli_scale import input_files
    from edgefin_runtime.scale import score_block, to_arrow

    clock = time.process_time
    p = edgefin_runtime.load(bundle, threads=1)
    names = list(p.schema.names)
    t = {"read": 0.0, "to_numpy": 0.0, "preprocess": 0.0, "engine": 0.0, "output_columns": 0.0, "write": 0.0}
    rows = 0
    with tempfile.TemporaryDirectory() as tmp:
        writer = None
        batches = ds.dataset(input_files(str(data)), format="parquet").to_batches(batch_size=65536)
        while True:
            t0 = clock()
            b = next(batches, None)
            t1 = clock()
            t["read"] += t1 - t0
            if b is None:
                break
            cols = {c: b.column(c).to_numpy(zero_copy_only=False) for c in names}
            t2 = clock()
            t["to_numpy"] += t2 - t1
            for start in range(0, b.num_rows, 16384):  # score_columns' blocks, timed apart
                block = {c: v[start : start + 16384] for c, v in cols.items()}
                t3 = clock()
                res = p._pre.columns(block)
                t4 = clock()
                keep = np.ones(len(res.matrix), dtype=bool)
                keep[list(res.errors)] = False
                p.engine.run(res.matrix[keep])
                t5 = clock()
                t["preprocess"] += t4 - t3
                t["engine"] += t5 - t4
            t6 = clock()
            out = to_arrow(score_block(p, cols, b.num_rows), {"id": b.column("id")})
            t7 = clock()
            # score_block repeats preprocess + engine: what it adds beyond them is the output columns
            t["output_columns"] += t7 - t6
            if writer is None:
                writer = pq.ParquetWriter(os.path.join(tmp, "out.parquet"), out.schema)
            writer.write_batch(out)
            t["write"] += clock() - t7
            rows += b.num_rows
        if writer is not None:
            writer.close()
    t["output_columns"] = max(0.0, t["output_columns"] - t["preprocess"] - t["engine"])
    total = sum(t.values())
    return {
        "rows": rows,
        "cpu_seconds": round(total, 3),
        "rows_per_cpu_second": round(rows / total),
        **{k: round(v, 3) for k, v in t.items()},
    }


def dask_overheads(bundle: str, data: Path) -> dict[str, float]:
    import dask.dataframe as dd
    import pandas as pd
    from dask.distributed import Client, LocalCluster

    from edgefin_runtime import dask as efdask

    pdf = pd.read_parquet(data).iloc[:200_000]
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=50) as c, Client(c):
        efdask.score(dd.from_pandas(pdf.iloc[:1000], npartitions=2), bundle).compute()  # warm: loads, imports
        job = _best(lambda: efdask.score(dd.from_pandas(pdf.iloc[:1000], npartitions=1), bundle).compute())
        t2 = _best(lambda: efdask.score(dd.from_pandas(pdf, npartitions=2), bundle).compute())
        t50 = _best(lambda: efdask.score(dd.from_pandas(pdf, npartitions=50), bundle).compute())
    return {"job_seconds": round(job, 4), "per_partition_seconds": round((t50 - t2) / 48, 4), "t2": t2, "t50": t50}


def spark_overheads(bundle: str, data: Path) -> dict[str, float]:
    from edgefin_runtime import spark as efspark
    from edgefin_runtime.cli_scale import input_files, spark_session

    spark = spark_session("local[2]", app="scale-out-bench")
    try:
        df = spark.read.parquet(*[os.path.abspath(f) for f in input_files(str(data))]).limit(200_000).cache()
        df.count()
        small = df.limit(1000).coalesce(1).cache()
        small.count()
        efspark.score(small, bundle).write.format("noop").mode("overwrite").save()  # warm
        job = _best(lambda: efspark.score(small, bundle).write.format("noop").mode("overwrite").save())
        t2 = _best(lambda: efspark.score(df.repartition(2), bundle).write.format("noop").mode("overwrite").save())
        t50 = _best(lambda: efspark.score(df.repartition(50), bundle).write.format("noop").mode("overwrite").save())
    finally:
        spark.stop()
    return {"job_seconds": round(job, 4), "per_partition_seconds": round((t50 - t2) / 48, 4), "t2": t2, "t50": t50}


def _save(path: str | None, result: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


def _best(fn: Any, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="run directory synth draws from")
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--work", default="/tmp/edgefin-scale-out")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--engines", default="local:1,dask:1,dask:2,spark:1,spark:2")
    ap.add_argument("--overheads", action="store_true", help="also measure the split and the fixed costs")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = synth(args.run, args.rows, work)
    result: dict[str, Any] = {
        "rows": args.rows,
        "bundle": os.path.basename(args.bundle),
        "synth_seconds": round(time.perf_counter() - t0, 1),
        "cpus": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "engines": {},
    }
    for spec in args.engines.split(","):
        engine, workers = spec.split(":")
        s = engine_run(args.bundle, data, work, engine, int(workers))
        result["engines"][spec] = s
        _save(args.json, result)  # after every engine: a long run that is stopped keeps what it measured
        print(
            f"{spec:8s} {s['rows_per_second']:>10,.0f} rows/s  {s['seconds']:7.1f} s  timing {s['timing']}",
            file=sys.stderr,
        )
    if args.overheads:
        result["split"] = where_time_goes(args.bundle, data)
        print("split", result["split"], file=sys.stderr)
        result["dask_overheads"] = dask_overheads(args.bundle, data)
        print("dask", result["dask_overheads"], file=sys.stderr)
        result["spark_overheads"] = spark_overheads(args.bundle, data)
        print("spark", result["spark_overheads"], file=sys.stderr)
    result["load_average_end"] = os.getloadavg()
    _save(args.json, result)
    print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
