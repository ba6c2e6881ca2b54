"""edgefin-runtime performance: latency, throughput, cold start, memory and installed size.

Reproducible: one pinned core (os.sched_setaffinity), one engine thread, warm-up before every timed
loop, the same real records (the bundled credit data) for every variant, and the Keras baseline in
the same process and run. Numbers are measured, never edited; the JSON says which targets were met.

    uv run --no-sync python benchmarks/runtime_bench.py                      # builds demo-like bundles
    uv run --no-sync python benchmarks/runtime_bench.py --bundle runs/demo/bundles/tflite-int8.efb \
        --keras runs/demo/model.keras --out benchmarks/results/runtime.json
    ... --install-size     # also build fresh venvs (uv) with runtime[litert] / runtime[onnx]: size, cold start

What is timed:
  single      Predictor.score(dict) -> Score, one call per sample (perf_counter_ns), >= 20k samples
  engine      the engine alone on an already encoded row (run_one), same loop
  batch       Predictor.score_batch(1,024 dicts) -> list[Result]
  columns     Predictor.score_columns(dict of numpy arrays: float64 with NaN, fixed-width strings)
  keras       model(x) and model.predict(x) on one encoded record (tf_keras, 1 thread)
  cold start  a fresh `python -c` child: process start -> import -> load (hashes, self-test) -> first
              score; peak RSS from getrusage in the child
  vs bare     the same, interleaved with a bare engine child (numpy + the engine + load + invoke of the
              same model file, same kernels), same pinning, bytecode cached for both as an installed
              wheel has it: cold_start_ratio_vs_bare_engine = median(runtime) / median(bare); the
              median of each runtime child's ratio to the bare child after it, and the ratio of
              the children's CPU times (user + sys), are reported beside it as load-robust checks.
"""

from __future__ import annotations

import argparse
import ast
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TARGETS = {
    "single_p50_us": 5.0,
    "single_p99_us": 10.0,
    "keras_speedup": 100.0,
    "batch_records_per_s": 500_000,
    "columns_records_per_s": 5_000_000,
    "cold_start_ms": 150.0,
    "cold_start_rss_mib": 60.0,
    "cold_start_ratio_vs_bare_engine": 1.1,
}

# Peak RSS comes from VmHWM (this process's own high-water mark): ru_maxrss would include the
# parent's peak, which Linux carries across vfork/exec.
COLD_CHILD = r"""
import time, sys, json
t_start = time.time_ns()
import numpy
t_numpy = time.time_ns()
import edgefin_runtime
t_import = time.time_ns()
p = edgefin_runtime.load(sys.argv[1])
t_load = time.time_ns()
s = p.score(json.loads(sys.argv[2]))
t_first = time.time_ns()
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"interp_start_ns": t_start, "numpy_ns": t_numpy - t_start, "import_ns": t_import - t_start,
                  "load_ns": t_load - t_import, "first_ns": t_first, "rss_kib": hwm,
                  "p": s.probability, "tf": "tensorflow" in sys.modules}))
"""


# ---------------------------------------------------------------- helpers
def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def percentiles(ns: Sequence[int]) -> dict[str, float]:
    s = sorted(ns)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))] / 1000.0  # noqa: E731
    return {
        "p50_us": pick(0.50),
        "p95_us": pick(0.95),
        "p99_us": pick(0.99),
        "min_us": s[0] / 1000.0,
        "mean_us": sum(s) / len(s) / 1000.0,
        "samples": len(s),
    }


def time_calls(fn: Callable[[Any], Any], args: Sequence[Any], reps: int, warmup: int) -> dict[str, float]:
    """Latency of fn(arg) per call, cycling through args; each call timed on its own."""
    n = len(args)
    for i in range(warmup):
        fn(args[i % n])
    pc = time.perf_counter_ns
    out = [0] * reps
    for i in range(reps):
        a = args[i % n]
        t0 = pc()
        fn(a)
        out[i] = pc() - t0
    return percentiles(out)


def throughput(fn: Callable[[], Any], n: int, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Wall-clock rates (best and median of ``repeats``) and the CPU-time rate (best): on a shared
    machine the CPU time shows what the code costs when another process takes the core."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "records_per_s_best": n / min(times),
        "records_per_s_median": n / statistics.median(times),
        "records_per_cpu_s_best": n / max(min(cpu), 1e-9),
        "rows": n,
        "repeats": repeats,
    }


def timer_overhead_ns() -> float:
    pc = time.perf_counter_ns
    ts = []
    for _ in range(20000):
        t0 = pc()
        ts.append(pc() - t0)
    return float(statistics.median(ts))


def load_records(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def typed_columns(records: list[dict[str, Any]], schema: Any, rows: int) -> dict[str, Any]:
    """Numpy columns as an application would hold them: float64 with NaN, fixed-width strings."""
    import numpy as np

    out = {}
    n = len(records)
    for f in schema.fields:
        vals = [records[i % n].get(f.name) for i in range(rows)]
        if f.kind == "numeric":
            out[f.name] = np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)
        else:
            out[f.name] = np.array(["" if v is None else str(v) for v in vals])
    return out


def default_records(bundle: Path) -> list[dict[str, Any]]:
    """The bundled credit data when the bundle's schema fits it (the demo does), else its golden records."""
    from edgefin_runtime.bundle import read_bundle

    from tests.fixtures.bundles import read_credit

    m = read_bundle(bundle).manifest
    _, cols, _ = read_credit()
    if set(m.schema.names) <= set(cols):
        n = len(next(iter(cols.values())))
        return [{k: cols[k][i] for k in m.schema.names} for i in range(n)]
    log("the bundle's schema does not match the credit data: timing its golden records")
    return [dict(g.record) for g in m.golden]


# ---------------------------------------------------------------- bundles
def build_demo(work: Path) -> tuple[dict[str, Path], Path, Path]:
    """Demo-like bundles from the bundled credit data (TensorFlow runs in a child process)."""
    paths = {v: work / f"credit-{v}.efb" for v in ("tflite-int8", "tflite-fp32", "onnx-fp32")}
    keras_path, sample = work / "credit-keras.h5", work / "credit-sample.jsonl"
    if not all(p.exists() for p in [*paths.values(), keras_path, sample]):
        log(f"building demo-like bundles in {work} (tf_keras 64-32 model on the credit data) ...")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        subprocess.run(
            [sys.executable, "-m", "tests.fixtures.bundles", str(work), "--family", "credit"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return paths, keras_path, sample


# ---------------------------------------------------------------- measurements
def bench_bundle(path: Path, records: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    import edgefin_runtime

    pred = edgefin_runtime.load(path, threads=1)
    out: dict[str, Any] = {
        "bundle": str(path),
        "variant": pred.info.model.variant,
        "engine": pred.engine.describe(),
        "n_features": pred.info.preprocessing.n_features,
    }
    recs = records[:2000]
    out["single"] = time_calls(pred.score, recs, args.reps, args.warmup)
    gc.disable()
    try:
        out["single_gc_off"] = time_calls(pred.score, recs, args.reps, args.warmup)
    finally:
        gc.enable()
    rows = [pred._pre.record(r)[0] for r in recs]  # encoded once, outside the timing
    out["engine_run_one"] = time_calls(pred.engine.run_one, rows, args.reps, args.warmup)
    out["preprocess_record"] = time_calls(pred._pre.record, recs, args.reps, args.warmup)
    batch = recs[:1024]
    out["batch_1024"] = throughput(lambda: pred.score_batch(batch), len(batch), args.batch_repeats)
    cols = typed_columns(records, pred.schema, args.columns_rows)
    out["columns"] = throughput(lambda: pred.score_columns(cols), args.columns_rows, args.columns_repeats, 1)
    obj = {k: (v if v.dtype.kind == "f" else v.astype(object)) for k, v in cols.items()}
    out["columns_object_strings"] = throughput(
        lambda: pred.score_columns(obj), args.columns_rows, args.columns_repeats, 1
    )
    x = np.array(rows * (args.columns_rows // len(rows) + 1), dtype=np.float32)[: args.columns_rows]
    out["engine_matrix"] = throughput(lambda: pred.engine.run(x), len(x), args.columns_repeats, 1)
    out["encoded_row"] = rows[0]
    return out


def bench_keras(keras_path: Path, encoded_row: list[float], reps: int) -> dict[str, Any]:
    import numpy as np

    from edgefin.tfcompat import keras, tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = keras.models.load_model(keras_path, compile=False)
    x = np.array([encoded_row], dtype=np.float32)
    call = time_calls(lambda a: model(a, training=False), [x], reps, 50)
    predict = time_calls(lambda a: model.predict(a, verbose=0), [x], max(30, reps // 20), 5)
    return {
        "model": str(keras_path),
        "call": call,
        "predict": predict,
        "tensorflow": tf.__version__,
        "probability": float(np.asarray(model(x, training=False))[0, 0]),
    }


def cold_start(
    python: str, bundle: Path, record: dict[str, Any], runs: int, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Spawn -> import -> load -> first score in a fresh interpreter, several times."""
    samples = []
    for _ in range(runs):
        t0 = time.time_ns()
        proc = subprocess.run(
            [python, "-c", COLD_CHILD, str(bundle), json.dumps(record)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"cold-start child failed: {proc.stderr[-2000:]}")
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        samples.append(
            {
                "total_ms": (child["first_ns"] - t0) / 1e6,
                "interpreter_ms": (child["interp_start_ns"] - t0) / 1e6,
                "numpy_import_ms": child["numpy_ns"] / 1e6,
                "import_ms": child["import_ns"] / 1e6,
                "load_ms": child["load_ns"] / 1e6,
                "rss_mib": child["rss_kib"] / 1024,
                "imported_tensorflow": child["tf"],
            }
        )
    med = {k: statistics.median(s[k] for s in samples) for k in samples[0] if k != "imported_tensorflow"}
    baseline = []
    for _ in range(runs):
        t0 = time.time_ns()
        subprocess.run([python, "-c", "pass"], check=True, env=env)
        baseline.append((time.time_ns() - t0) / 1e6)
    return {
        "median": med,
        "min_total_ms": min(s["total_ms"] for s in samples),
        "runs": runs,
        "bare_interpreter_ms": statistics.median(baseline),
        "python": python,
        "imported_tensorflow": any(s["imported_tensorflow"] for s in samples),
    }


# Process start -> first score, the runtime and a bare engine on the same model. Both print the wall clock
# at the first score and their own CPU time (taken after it). The record is a literal in the runtime
# child's code (the bare child feeds zeros): reading it must not make the child import a parser.
COLD_RUNTIME = r"""
import time, sys
import edgefin_runtime
s = edgefin_runtime.load(sys.argv[1]).score(__RECORD__)
t = time.time_ns()
import resource
r = resource.getrusage(resource.RUSAGE_SELF)
print(t, int((r.ru_utime + r.ru_stime) * 1e9), s.probability)
"""
COLD_BARE = {
    "litert": r"""
import time, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if sys.argv[2] == "reference" else {}
with open(sys.argv[1], "rb") as fh:
    it = Interpreter(model_content=fh.read(), num_threads=1, **kw)
it.allocate_tensors()
d = it.get_input_details()[0]
it.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
it.invoke()
p = float(it.get_tensor(it.get_output_details()[0]["index"]).reshape(-1)[0])
t = time.time_ns()
import resource
r = resource.getrusage(resource.RUSAGE_SELF)
print(t, int((r.ru_utime + r.ru_stime) * 1e9), p)
""",
    "onnx": r"""
import time, sys
import numpy as np
import onnxruntime as ort
so = ort.SessionOptions()
so.intra_op_num_threads = so.inter_op_num_threads = 1
with open(sys.argv[1], "rb") as fh:
    s = ort.InferenceSession(fh.read(), so, providers=["CPUExecutionProvider"])
i = s.get_inputs()[0]
p = float(s.run(None, {i.name: np.zeros((1, i.shape[-1]), dtype=np.float32)})[0].reshape(-1)[0])
t = time.time_ns()
import resource
r = resource.getrusage(resource.RUSAGE_SELF)
print(t, int((r.ru_utime + r.ru_stime) * 1e9), p)
""",
}


def cold_start_vs_bare(python: str, bundle: Path, record: dict[str, Any], runs: int, work: Path) -> dict[str, Any]:
    """Runtime vs bare engine, process start -> first score, interleaved fresh children (``runs`` >= 9 each).

    Children inherit this process's CPU pinning. Bytecode is cached in ``work`` for both (two warm-up
    runs each), as pip leaves it for an installed package; PYTHONDONTWRITEBYTECODE would otherwise make
    every child recompile the runtime's sources and measure the compiler.
    """
    from edgefin_runtime.bundle import read_bundle

    b = read_bundle(bundle)
    model = work / f"bare-{b.manifest.model.variant}-{b.manifest.model.file}"
    model.write_bytes(b.model_bytes)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    literal = repr(record)
    if ast.literal_eval(literal) != record:
        raise ValueError("the cold-start record must be made of JSON-like values (no NaN)")
    runtime_cmd = [python, "-c", COLD_RUNTIME.replace("__RECORD__", literal), str(bundle)]
    bare_cmd = [python, "-c", COLD_BARE[b.manifest.model.engine], str(model), b.manifest.model.kernels]

    def once(cmd: list[str]) -> tuple[float, float]:
        t0 = time.time_ns()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"cold-start child failed: {proc.stderr[-2000:]}")
        first, cpu, _ = proc.stdout.split()
        return (int(first) - t0) / 1e6, int(cpu) / 1e6

    for _ in range(2):
        once(runtime_cmd), once(bare_cmd)
    rt, bare = [], []
    load_before = os.getloadavg()
    for _ in range(max(runs, 9)):
        rt.append(once(runtime_cmd))
        bare.append(once(bare_cmd))
    med = {
        name: {
            "wall_ms": statistics.median(s[0] for s in rows),
            "cpu_ms": statistics.median(s[1] for s in rows),
            "wall_ms_all": [round(s[0], 2) for s in rows],
        }
        for name, rows in (("runtime", rt), ("bare", bare))
    }
    return {
        "runtime": med["runtime"],
        "bare_engine": med["bare"],
        "runs": len(rt),
        "ratio": med["runtime"]["wall_ms"] / med["bare"]["wall_ms"],
        "cpu_ratio": med["runtime"]["cpu_ms"] / med["bare"]["cpu_ms"],
        # each runtime child and the bare child after it ran seconds apart: their ratio and difference
        # are steadier than the medians' ratio when the host's speed drifts during the run
        "pair_ratio_median": statistics.median(r[0] / b[0] for r, b in zip(rt, bare)),
        "pair_extra_ms_median": statistics.median(r[0] - b[0] for r, b in zip(rt, bare)),
        "pinned_cpus": sorted(os.sched_getaffinity(0)),
        "load_average": [load_before, os.getloadavg()],
        "bytecode": "cached (PYTHONPYCACHEPREFIX, 2 warm-up runs each)",
        "variant": b.manifest.model.variant,
    }


def fresh_venvs(work: Path, bundles: dict[str, Path], record: dict[str, Any], runs: int) -> dict[str, Any]:
    """uv venv + uv pip install ./runtime[extra]; installed size and cold start in that venv."""
    uv = shutil.which("uv")
    if uv is None:
        return {"error": "uv not found on PATH"}
    out: dict[str, Any] = {}
    for extra, variant in (("litert", "tflite-int8"), ("onnx", "onnx-fp32")):
        venv = work / f"venv-{extra}"
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        py = str(venv / "bin" / "python")
        subprocess.run([uv, "pip", "install", "-q", "--python", py, f"{REPO / 'runtime'}[{extra}]"], check=True)
        site = Path(
            subprocess.run(
                [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        pkgs = {p.name: _du(p) for p in site.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")}
        entry: dict[str, Any] = {
            "site_packages_mib": _du(site) / 2**20,
            "venv_mib": _du(venv) / 2**20,
            "largest_mib": {k: round(v / 2**20, 1) for k, v in sorted(pkgs.items(), key=lambda kv: -kv[1])[:5]},
        }
        if variant in bundles:
            entry["cold_start"] = cold_start(py, bundles[variant], record, runs, env={"PATH": os.environ["PATH"]})
        out[extra] = entry
    return out


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


# ---------------------------------------------------------------- report
def verdicts(res: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    lead = res["bundles"].get("tflite-int8") or next(iter(res["bundles"].values()), None)
    if lead is not None:  # absent with --cold-only
        single = lead["single"]
        out["single_p50_us"] = (single["p50_us"], single["p50_us"] <= TARGETS["single_p50_us"])
        out["single_p99_us"] = (single["p99_us"], single["p99_us"] <= TARGETS["single_p99_us"])
        if "keras" in res:
            ratio = res["keras"]["call"]["p50_us"] / single["p50_us"]
            out["keras_speedup"] = (ratio, ratio >= TARGETS["keras_speedup"])
        b = lead["batch_1024"]["records_per_s_best"]
        out["batch_records_per_s"] = (b, b >= TARGETS["batch_records_per_s"])
        c = lead["columns"]["records_per_s_best"]
        out["columns_records_per_s"] = (c, c >= TARGETS["columns_records_per_s"])
    cs = res.get("fresh_venv", {}).get("litert", {}).get("cold_start") or res.get("cold_start", {}).get("litert")
    if cs:
        out["cold_start_ms"] = (cs["median"]["total_ms"], cs["median"]["total_ms"] <= TARGETS["cold_start_ms"])
        out["cold_start_rss_mib"] = (cs["median"]["rss_mib"], cs["median"]["rss_mib"] <= TARGETS["cold_start_rss_mib"])
    vb = res.get("cold_start_vs_bare", {})
    vs = vb.get("litert") or next(iter(vb.values()), None)
    if vs:
        ratio = vs["ratio"]
        out["cold_start_ratio_vs_bare_engine"] = (ratio, ratio <= TARGETS["cold_start_ratio_vs_bare_engine"])
    return {k: {"measured": v, "target": TARGETS[k], "met": ok} for k, (v, ok) in out.items()}


def machine() -> dict[str, Any]:
    import numpy as np

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "load_average_at_start": load,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", action="append", type=Path, default=[], help="bundle(s) to measure")
    ap.add_argument("--keras", type=Path, help="the Keras model the bundle came from (baseline)")
    ap.add_argument("--records", type=Path, help="JSON Lines records to score (default: the credit data)")
    ap.add_argument("--work", type=Path, help="where demo-like bundles and venvs are built (default: temp)")
    ap.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last allowed)")
    ap.add_argument("--reps", type=int, default=50_000, help="timed single-record calls (>= 20,000)")
    ap.add_argument("--warmup", type=int, default=5_000)
    ap.add_argument("--batch-repeats", type=int, default=200)
    ap.add_argument("--columns-rows", type=int, default=1 << 20)
    ap.add_argument("--columns-repeats", type=int, default=7)
    ap.add_argument("--cold-runs", type=int, default=9, help="fresh processes per cold-start measure (>= 9 vs bare)")
    ap.add_argument("--cold-only", action="store_true", help="only the cold-start measures (no latency loops)")
    ap.add_argument("--install-size", action="store_true", help="build fresh venvs with uv (needs a package index)")
    ap.add_argument("--no-keras", action="store_true")
    ap.add_argument("--out", type=Path, help="write the JSON here (default: stdout)")
    args = ap.parse_args(argv)
    if args.reps < 20_000:
        ap.error("--reps must be at least 20,000 for a meaningful p99")
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    work = args.work or Path(tempfile.mkdtemp(prefix="edgefin-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    keras_path, sample = args.keras, args.records
    if args.bundle:
        bundles = {}
        for p in args.bundle:
            from edgefin_runtime.bundle import read_bundle

            bundles[read_bundle(p).manifest.model.variant] = p
    else:
        bundles, demo_keras, demo_sample = build_demo(work)
        keras_path = keras_path or demo_keras
        sample = sample or demo_sample
    records = load_records(sample) if sample else default_records(next(iter(bundles.values())))
    res: dict[str, Any] = {
        "machine": machine(),
        "pinned_cpu": cpu,
        "timer_overhead_ns": timer_overhead_ns(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "bundle"},
        "bundles": {},
    }
    for variant, path in bundles.items() if not args.cold_only else ():
        log(f"measuring {variant} ...")
        res["bundles"][variant] = bench_bundle(path, records, args)
    res["cold_start"] = {}
    for engine, variant in (("litert", "tflite-int8"), ("onnx", "onnx-fp32")):
        if variant in bundles:
            log(f"cold start {engine} (this environment) ...")
            res["cold_start"][engine] = cold_start(sys.executable, bundles[variant], records[0], args.cold_runs)
    res["cold_start_vs_bare"] = {}
    for engine, variant in (("litert", "tflite-int8"), ("onnx", "onnx-fp32")):
        if variant in bundles:
            log(f"cold start {engine}: runtime vs bare engine ...")
            res["cold_start_vs_bare"][engine] = cold_start_vs_bare(
                sys.executable, bundles[variant], records[0], args.cold_runs, work
            )
    if args.install_size:
        log("fresh venvs (uv) for installed size and cold start ...")
        res["fresh_venv"] = fresh_venvs(work, bundles, records[0], args.cold_runs)
    if keras_path and not args.no_keras and not args.cold_only:
        log("Keras baseline (same run, 1 thread) ...")
        lead = res["bundles"].get("tflite-int8") or next(iter(res["bundles"].values()))
        res["keras"] = bench_keras(keras_path, lead["encoded_row"], max(2000, args.reps // 10))
    for b in res["bundles"].values():
        b.pop("encoded_row", None)
    res["machine"]["load_average_at_end"] = os.getloadavg()
    res["targets"] = verdicts(res)
    text = json.dumps(res, indent=1, sort_keys=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(args.out.suffix + ".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, args.out)
    else:
        print(text)
    for name, t in res["targets"].items():
        log(f"{name:24s} {t['measured']:>14,.2f}  target {t['target']:>12,}  {'met' if t['met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
