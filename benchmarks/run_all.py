"""Regenerate the README's performance tables (``make bench``).

1. makes sure the demo run exists (``edgefin demo --out runs/demo``; resumes, so a finished demo is reused);
2. benchmarks every variant of it with ``edgefin bench --repeat thorough`` under each profile (each
   variant in its own fresh, pinned, memory-capped process, beside the Keras model in the same run);
3. runs ``benchmarks/runtime_bench.py`` (the runtime engineer's suite: runtime vs bare engine vs Keras,
   batches, columns, cold start, memory) on the demo's tflite-int8 and onnx-fp32 bundles;
4. writes benchmarks/results/*.json (the measurements, machine included) and
   benchmarks/results/tables.md, the Markdown that goes into the README.

Run it on an otherwise idle machine: the numbers are wall-clock and every core counts.

    uv run --no-sync python benchmarks/run_all.py                  # everything (~5-10 minutes)
    uv run --no-sync python benchmarks/run_all.py --profiles kiosk-1core --skip-runtime-bench
    uv run --no-sync python benchmarks/run_all.py --tables-only    # re-render tables.md from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: Sequence[str], timeout: float, ok: tuple[int, ...] = (0,)) -> int:
    log("$ " + " ".join(cmd))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1"}
    proc = subprocess.run(list(cmd), cwd=REPO, env=env, timeout=timeout, check=False)
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd[:4])} failed with exit code {proc.returncode}")
    return proc.returncode


def bench_profile(run_dir: Path, profile: str, repeat: str) -> Path:
    """`edgefin bench` with the thorough preset; its report.json becomes results/bench-PROFILE.json."""
    from edgefin.atomic import write_json
    from edgefin.bench.harness import run_bench
    from edgefin.reporter import Silent
    from edgefin.steps.bench import Options, resolve

    class Progress(Silent):
        def advanced(self, task: str, done: int, total: int | None = None, info: str = "") -> None:
            log(f"  [{done}/{total}] {info}")

    log(f"bench {run_dir} under {profile} ({repeat}) ...")
    report = run_bench(run_dir, resolve(Options(profile=profile, repeat=repeat)), Progress())
    out = RESULTS / f"bench-{profile}.json"  # `edgefin report` renders it as Markdown/HTML when wanted
    write_json(out, report)
    return out


# ---------------------------------------------------------------- tables
def _f(v: Any, spec: str) -> str:
    if v is None:
        return "-"
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def _thr(row: dict[str, Any], kind: str, batch: int, key: str = "records_per_s") -> float | None:
    for t in (row.get("throughput") or {}).get(kind, []):
        if t.get("batch") == batch:
            return t.get(key)
    return None


def _rate(row: dict[str, Any], kind: str, batch: int) -> str:
    wall, cpu = _thr(row, kind, batch), _thr(row, kind, batch, "cpu_records_per_s")
    return _f(wall, ",.0f") + (f" ({_f(cpu, ',.0f')})" if cpu is not None else "")


def bench_tables(report: dict[str, Any]) -> str:
    p, m, k = report["profile"], report["machine"], report["source"].get("keras", {})
    lines = [
        f"### Every variant, profile `{p['name']}` ({p.get('description', '')})",
        "",
        "| variant | bundle KiB | gzip KiB | AUC | flips vs dense | p50 us | p95 us | p99 us | spread of p50 | "
        "bare engine p50 us | cold start ms | peak RSS MiB | x Keras model(x) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["variants"]:
        if r.get("status") != "ok":
            lines.append(
                f"| {r['name']} | {_f(r.get('bundle_bytes', 0) / 1024, '.1f')} | - | - | - | "
                f"{r.get('status')} | | | | | | | |"
            )
            continue
        lat, eng = r["latency"]["runtime"], r["latency"]["engine"]
        lines.append(
            f"| {r['name']} | {r['bundle_bytes'] / 1024:.1f} | {r['bundle_gzip_bytes'] / 1024:.1f} | "
            f"{r['quality']['auc']:.4f} | {_f(r['quality'].get('flip_rate_vs_dense'), '.2%')} | {lat['p50_us']:.1f} | "
            f"{lat['p95_us']:.1f} | {lat['p99_us']:.1f} | "
            f"{lat['block_p50_min_us']:.1f}-{lat['block_p50_max_us']:.1f} | "
            f"{eng['p50_us']:.1f} | {r['cold_start']['spawn_to_first_score_ms']:.0f} | "
            f"{r['memory']['peak_rss_mib']:.1f} | {_f(r.get('ratios', {}).get('keras_call_over_runtime'), ',.0f')}x |"
        )
    batches = report["settings"]["batch_sizes"]
    lines += [
        "",
        f"Throughput (records/s, median of timed blocks; wall clock, CPU-time rate in brackets), "
        f"profile `{p['name']}`:",
        "",
        "| variant | path | " + " | ".join(f"batch {b}" for b in batches) + " |",
        "|---|---|" + "---|" * len(batches),
    ]
    for r in report["variants"]:
        if r.get("status") != "ok":
            continue
        for kind, label in (
            ("runtime_records", "runtime, dicts"),
            ("runtime_columns", "runtime, columns"),
            ("engine", "bare engine"),
        ):
            lines.append(f"| {r['name']} | {label} | " + " | ".join(_rate(r, kind, b) for b in batches) + " |")
    if k.get("status") == "ok":
        kt = {t["batch"]: t["records_per_s"] for t in k["throughput"]["keras_call"]}
        lines.append("| dense (Keras) | model(x) | " + " | ".join(_f(kt.get(b), ",.0f") for b in batches) + " |")
        lines += [
            "",
            f"Keras on one record, same run and profile: `model(x)` p50 "
            f"{k['latency']['keras_call']['p50_us']:,.0f} us, `model.predict` p50 "
            f"{k['latency']['keras_predict']['p50_us']:,.0f} us.",
        ]
    s = report["settings"]
    lines += [
        "",
        f"Measured {report['created_at']} on {m['cpu_model']} ({m['cpus_available']} CPUs, "
        f"{_f(m.get('memory_total_mib'), ',.0f')} MiB), {m['os']}, Python {m['python']}; "
        f"{s['blocks']} blocks x {s['block_size']:,} timed calls per path after {s['warmup']:,} warm-up calls; "
        f"each variant in its own fresh process pinned to {p.get('cores') or 'all'} core(s), "
        f"{p['threads']} engine thread(s), address-space cap "
        f"{str(p['memory_mib']) + ' MiB' if p.get('memory_mib') else 'none'}. Load average (1/5/15 min) "
        f"at the start: {m.get('load_average_at_start')}, at the end: {m.get('load_average')}"
        " - figures from a machine with a load above its core count are slowed by the other work.",
        "",
    ]
    return "\n".join(lines)


def runtime_tables(res: dict[str, Any]) -> str:
    lines = [
        "### edgefin-runtime against its targets (benchmarks/runtime_bench.py)",
        "",
        "| measure | measured | target | met |",
        "|---|---|---|---|",
    ]
    for name, t in sorted((res.get("targets") or {}).items()):
        lines.append(
            f"| {name} | {_f(t.get('measured'), ',.2f')} | {_f(t.get('target'), ',')} | "
            f"{'yes' if t.get('met') else 'NO'} |"
        )
    m = res.get("machine", {})
    lines += [
        "",
        f"Pinned to CPU {res.get('pinned_cpu')}; machine: "
        + ", ".join(f"{k} {v}" for k, v in sorted(m.items()) if not isinstance(v, (dict, list))),
        "",
    ]
    return "\n".join(lines)


def write_tables() -> Path:
    from edgefin.atomic import write_text

    parts = ["<!-- generated by benchmarks/run_all.py from benchmarks/results/*.json; do not edit by hand -->", ""]
    for f in sorted(RESULTS.glob("bench-*.json")):
        parts.append(bench_tables(json.loads(f.read_text(encoding="utf-8"))))
    rt = RESULTS / "runtime.json"
    if rt.is_file():
        parts.append(runtime_tables(json.loads(rt.read_text(encoding="utf-8"))))
    out = RESULTS / "tables.md"
    write_text(out, "\n".join(parts) + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", type=Path, default=REPO / "runs" / "demo", help="the demo run (made if missing)")
    ap.add_argument("--profiles", default="kiosk-1core,teller-2core", help="comma-separated hardware profiles")
    ap.add_argument("--repeat", default="thorough", choices=("quick", "default", "thorough"))
    ap.add_argument("--skip-runtime-bench", action="store_true", help="do not run benchmarks/runtime_bench.py")
    ap.add_argument("--runtime-bench-args", default="", help="extra arguments for runtime_bench.py (quoted)")
    ap.add_argument("--skip-demo", action="store_true", help="benchmark --run-dir as it is (no demo run first)")
    ap.add_argument("--tables-only", action="store_true", help="only re-render tables.md from existing JSON")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if not args.tables_only:
        if not args.skip_demo:
            # exit 3 = a parity gate failed: every bundle was still written and is benchmarked (and marked)
            if (
                run(
                    [sys.executable, "-m", "edgefin.cli.main", "demo", "--out", str(args.run_dir), "-q"],
                    timeout=1800,
                    ok=(0, 3),
                )
                == 3
            ):
                log("note: the demo's parity gate failed for a variant; see runs/demo/bundles/parity.json")
        for profile in [p.strip() for p in args.profiles.split(",") if p.strip()]:
            bench_profile(args.run_dir, profile, args.repeat)
        if not args.skip_runtime_bench:
            bundles = [args.run_dir / "bundles" / f"{v}.efb" for v in ("tflite-int8", "onnx-fp32")]
            cmd = [sys.executable, str(REPO / "benchmarks" / "runtime_bench.py")]
            for b in bundles:
                if b.is_file():
                    cmd += ["--bundle", str(b)]
            cmd += ["--keras", str(args.run_dir / "models" / "dense.keras"), "--out", str(RESULTS / "runtime.json")]
            cmd += args.runtime_bench_args.split()
            run(cmd, timeout=3600)
    out = write_tables()
    log(f"wrote {out} ({time.time() - started:.0f} s)")
    print(out.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
