"""The runtime on each Python 3.9-3.13 (issue 19): cold start and single-record latency, one run, one core.

For every Python found the way the test matrix finds them (noxfile.find_interpreters), a fresh uv venv
gets the runtime's wheel with both engines (uv resolves the newest engine each Python has); then, with
this process and its children pinned to one core:
  cold start   runtime_bench.cold_start_vs_bare: fresh `python -c` children, process start -> import ->
               load (hashes, self-test) -> first score, interleaved with a bare engine child on the same
               model (numpy + engine + load + invoke), bytecode cached; medians of --cold-runs (>= 9)
  single       Predictor.score(dict) p50/p99 (runtime_bench.time_calls) in a child of that venv

    uv run --no-sync python benchmarks/python_versions.py --bundle B.efb [--bundle B2.efb] \
        --out benchmarks/results/runtime-python-versions.json

Records default to the bundled credit data (runtime_bench.default_records). The figures are what this
machine did in this run: the JSON carries the load average before and after each Python.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from runtime_bench import (  # noqa: E402
    cold_start_vs_bare,
    default_records,
    load_records,
    log,
)

#: run inside each venv (Python 3.9+): load once, time Predictor.score per record
LATENCY_CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[4])
from runtime_bench import time_calls
import edgefin_runtime
pred = edgefin_runtime.load(sys.argv[1], threads=1)
with open(sys.argv[2], encoding="utf-8") as fh:
    recs = [json.loads(l) for l in fh if l.strip()][:2000]
reps = int(sys.argv[3])
out = time_calls(pred.score, recs, reps, max(2000, reps // 10))
out["engine"] = pred.engine.describe()
out["python"] = sys.version.split()[0]
print(json.dumps(out))
"""

VERSIONS_CHILD = r"""
import json, sys
from importlib.metadata import version
out = {"python": sys.version.split()[0], "numpy": version("numpy")}
for d in ("ai-edge-litert", "onnxruntime", "edgefin-runtime"):
    out[d] = version(d)
print(json.dumps(out))
"""


def build_wheel(work: Path) -> Path:
    out = work / "dist"
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run(
        ["uv", "build", "--wheel", "--package", "edgefin-runtime", "--out-dir", str(out), "--quiet"],
        cwd=REPO,
        check=True,
    )
    return next(out.glob("edgefin_runtime-*.whl"))


def make_venv(interpreter: str, wheel: Path, venv: Path) -> str:
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(["uv", "venv", "-q", "--python", interpreter, str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run(["uv", "pip", "install", "-q", "--python", py, f"{wheel}[litert,onnx]"], check=True)
    return py


def measure(py: str, bundles: dict[str, Path], records: Path, record: dict[str, Any], args: Any) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="pyver-", dir=args.work))
    res: dict[str, Any] = {"load_average_before": os.getloadavg()}
    res["versions"] = json.loads(
        subprocess.run([py, "-c", VERSIONS_CHILD], check=True, capture_output=True, text=True).stdout
    )
    for variant, path in bundles.items():
        log(f"  {variant}: cold start vs bare engine, single-record latency ...")
        lat = subprocess.run(
            [py, "-c", LATENCY_CHILD, str(path), str(records), str(args.reps), str(REPO / "benchmarks")],
            check=True,
            capture_output=True,
            text=True,
        )
        res[variant] = {
            "cold_start_vs_bare": cold_start_vs_bare(py, path, record, args.cold_runs, work),
            "single": json.loads(lat.stdout.strip().splitlines()[-1]),
        }
    res["load_average_after"] = os.getloadavg()
    return res


def table(results: dict[str, Any], variants: list[str]) -> str:
    head = (
        "| Python | engines | "
        + " | ".join(f"{v} cold start ms: runtime / bare engine (ratio) | {v} p50 / p99 us" for v in variants)
        + " | load avg |"
    )
    lines = [head, "|" + "---|" * (3 + 2 * len(variants))]
    for pyv, r in results.items():
        if "error" in r:
            lines.append(f"| {pyv} | {r['error']} |")
            continue
        vers = r["versions"]
        cells = [f"{pyv} ({vers['python']})", f"litert {vers['ai-edge-litert']}, ort {vers['onnxruntime']}"]
        for v in variants:
            x = r[v]
            c = x["cold_start_vs_bare"]
            cells.append(f"{c['runtime']['wall_ms']:.0f} / {c['bare_engine']['wall_ms']:.0f} ({c['ratio']:.2f})")
            cells.append(f"{x['single']['p50_us']:.1f} / {x['single']['p99_us']:.1f}")
        cells.append(f"{r['load_average_before'][0]:.1f}-{r['load_average_after'][0]:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", action="append", type=Path, required=True, help="bundle(s) to measure")
    ap.add_argument("--records", type=Path, help="JSON Lines records (default: the bundled credit data)")
    ap.add_argument("--pythons", default="3.9,3.10,3.11,3.12,3.13")
    ap.add_argument("--wheel", type=Path, help="the runtime wheel (default: built with uv)")
    ap.add_argument("--work", type=Path, default=None, help="venvs and scratch (default: temp)")
    ap.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last allowed)")
    ap.add_argument("--cold-runs", type=int, default=9)
    ap.add_argument("--reps", type=int, default=20_000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    args.work = args.work or Path(tempfile.mkdtemp(prefix="edgefin-pyver-"))
    args.work.mkdir(parents=True, exist_ok=True)
    from edgefin_runtime.bundle import read_bundle

    bundles = {read_bundle(p).manifest.model.variant: p for p in args.bundle}
    recs = load_records(args.records) if args.records else default_records(next(iter(bundles.values())))
    records = args.work / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in recs[:2000]))
    from noxfile import find_interpreters  # the matrix's interpreter discovery (it also puts uv on PATH)

    wheel = args.wheel or build_wheel(args.work)
    found = find_interpreters()
    results: dict[str, Any] = {}
    for pyv in args.pythons.split(","):
        if not found.get(pyv):
            results[pyv] = {"error": "interpreter not found"}
            continue
        log(f"Python {pyv} ({found[pyv]}) ...")
        py = make_venv(str(found[pyv]), wheel, args.work / f"venv-{pyv}")
        results[pyv] = measure(py, bundles, records, recs[0], args)
    out = {"pinned_cpu": cpu, "wheel": wheel.name, "bundles": {k: str(v) for k, v in bundles.items()},
           "settings": {"cold_runs": args.cold_runs, "reps": args.reps}, "pythons": results,
           "table": table(results, list(bundles))}  # fmt: skip
    text = json.dumps(out, indent=1)
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(text + "\n")
        os.replace(tmp, args.out)
    else:
        print(text)
    log(out["table"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
