"""Does a device figure mean what a build-machine figure means? ``edgefin-run bench`` vs ``edgefin bench``.

One run, one machine: the same bundles measured by the toolkit (``edgefin bench RUN --profile
kiosk-1core``, which pins the first allowed core, 1 engine thread) and by the runtime alone
(``edgefin-run bench --cpus`` the same core), then the ratio of every figure (1.0 = identical; both
spawn the same measuring worker, so the ratios show run-to-run noise, not a method difference). With
``--arm64``, the same bundles are measured by ``edgefin-run bench`` inside the emulated ARM64 root
that ``make targets`` builds (qemu-user, Cortex-A72): this proves the device path on a genuinely
different CPU architecture; emulated latency is NOT device latency (qemu translates every
instruction; a real Cortex-A72 is much faster). Both device files are then merged into the report
with ``edgefin report --device`` to show the path end to end.

    python benchmarks/device_bench.py [RUN_DIR] [--variants tflite-int8,onnx-int8] [--repeat quick] [--arm64]

Writes benchmarks/results/device-bench.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from edgefin.bench.report import _get, _thr

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
FIGURES = (  # label, path into a bundle's figures, higher is better
    ("runtime p50 us", ("latency", "runtime", "p50_us")),
    ("runtime p99 us", ("latency", "runtime", "p99_us")),
    ("engine p50 us", ("latency", "engine", "p50_us")),
    ("cold start ms", ("cold_start", "spawn_to_first_score_ms")),
    ("peak RSS MiB", ("memory", "peak_rss_mib")),
)


def _run(argv: list[str], **kw: Any) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def _arm64(bundles: list[Path], repeat: str, out: Path) -> None:
    """edgefin-run bench inside the emulated ARM64 root (staged like edgefin targets stages its probe)."""
    from edgefin.targets import arm64root
    from edgefin.targets.launch import runtime_dir

    info = arm64root.read_ready()
    if info is None:
        raise SystemExit("the arm64 root is not built: run 'make targets' first (root needed)")
    inner = f"/tmp/edgefin-devbench-{uuid.uuid4().hex[:12]}"
    stage = info.root / inner.lstrip("/")
    try:
        (stage / "bundles").mkdir(parents=True)
        shutil.copytree(runtime_dir() / "edgefin_runtime", stage / "runtime" / "edgefin_runtime")
        for b in bundles:
            shutil.copy2(b, stage / "bundles" / b.name)
        argv, env = arm64root.python_command(
            info.root,
            ["-m", "edgefin_runtime.cli", "bench", *(f"{inner}/bundles/{b.name}" for b in bundles)]
            + ["--repeat", repeat, "--name", "arm64-emulated-cortex-a72", "-o", f"{inner}/out.json", "-q"],
            extra_path=[f"{inner}/runtime"],
        )
        # without binfmt the emulated Python cannot exec another emulated binary: name the emulator
        env["EDGEFIN_BENCH_PYTHON"] = f"/usr/bin/{arm64root.QEMU} -cpu {arm64root.CPU} {arm64root.PYTHON}"
        _run(argv, env=env, timeout=7200)
        shutil.copy2(stage / "out.json", out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", nargs="?", default=str(REPO / "runs" / "demo"))
    ap.add_argument("--variants", default="tflite-int8,onnx-int8")
    ap.add_argument("--repeat", default="quick", choices=("quick", "default", "thorough"))
    ap.add_argument("--arm64", action="store_true", help="also measure inside the emulated ARM64 root")
    args = ap.parse_args(argv)
    run = Path(args.run_dir)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bundles = [run / "bundles" / f"{n}.efb" for n in names]
    cpu = sorted(os.sched_getaffinity(0))[0]  # what the kiosk-1core profile pins to
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="edgefin-devbench-") as tmp:
        work = Path(tmp)
        shutil.copytree(run, work / "run", ignore=shutil.ignore_patterns("report"))
        _run(
            [str(bin_dir / "edgefin"), "bench", str(work / "run"), "--profile", "kiosk-1core", "--variants"]
            + [",".join(names), "--repeat", args.repeat, "--no-keras", "--no-explain", "-q"]
        )
        _run(
            [str(bin_dir / "edgefin-run"), "bench", *map(str, bundles), "--cpus", str(cpu), "--repeat", args.repeat]
            + ["--name", "build-machine-as-device", "-o", str(work / "host.json"), "-q"]
        )
        devices = [work / "host.json"]
        if args.arm64:
            _arm64(bundles, args.repeat, work / "arm64.json")
            devices.append(work / "arm64.json")
        _run(
            [str(bin_dir / "edgefin"), "report", str(work / "run"), "-q"]
            + [a for d in devices for a in ("--device", str(d))]
        )
        report = json.loads((work / "run" / "report" / "report.json").read_text())
    rows = {r["name"]: r for r in report["variants"]}
    by_device = {d["name"]: d["variants"] for d in report["devices"]}
    out: dict[str, Any] = {
        "machine": report["machine"],
        "repeat": args.repeat,
        "pinned_cpu": cpu,
        "variants": {},
        "devices": {d["name"]: {"machine": d["machine"]} for d in report["devices"]},
    }
    lines = [
        "# edgefin-run bench vs edgefin bench (same machine, one run)\n",
        f"Machine: {report['machine'].get('cpu_model')}, load average {report['machine'].get('load_average')}; "
        f"both pinned to CPU {cpu}, 1 engine thread, `--repeat {args.repeat}`. Ratio = edgefin-run bench / "
        "edgefin bench (1.0 = identical).\n",
        "| variant | figure | edgefin bench | edgefin-run bench | ratio |"
        + (" arm64 (emulated) |" if args.arm64 else ""),
        "|---|---|---|---|---|" + ("---|" if args.arm64 else ""),
    ]
    for n in names:
        tool, dev = rows[n], by_device["build-machine-as-device"][n]
        arm = by_device.get("arm64-emulated-cortex-a72", {}).get(n)
        figs: dict[str, Any] = {}
        for label, keys in (*FIGURES, ("columns rows/s @1024", None)):
            a = _thr(tool, "runtime_columns", 1024) if keys is None else _get(tool, *keys)
            b = _thr(dev, "runtime_columns", 1024) if keys is None else _get(dev, *keys)
            c = None if arm is None else (_thr(arm, "runtime_columns", 1024) if keys is None else _get(arm, *keys))
            ratio = b / a if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else None
            figs[label] = {"edgefin_bench": a, "edgefin_run_bench": b, "ratio": ratio, "arm64_emulated": c}
            cell = (
                f"| {n} | {label} | {a:,.1f} | {b:,.1f} | {ratio:.2f} |"
                if ratio is not None
                else f"| {n} | {label} | - | - | - |"
            )
            if args.arm64:
                cell += f" {c:,.1f} |" if isinstance(c, (int, float)) else " - |"
            lines.append(cell)
        out["variants"][n] = figs
    if args.arm64:
        lines.append(
            "\nThe arm64 column is `edgefin-run bench` inside a Debian bookworm arm64 root under qemu-user "
            "(-cpu cortex-a72): it proves the device path on another architecture; emulated latency is not "
            "device latency."
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "device-bench.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    (RESULTS / "device-bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
