"""Which ONNX Runtime int8 settings give the same scores on every CPU? Measured, reproducibly.

ONNX Runtime's int8 GEMM kernels (MLAS) differ by instruction set: U8S8 (uint8 activations, int8
weights) runs on ``vpmaddubsw`` on AVX2 and AVX-512 without VNNI, which adds two u8*s8 products into a
*saturating* int16; SSE4.2 widens to int16 first (exact), AVX-512-VNNI/AVX-VNNI use ``vpdpbusd(s)``
(int32, exact for these sizes), ARM64 NEON widens or uses ``sdot``/``udot`` (exact). S8S8 on x86
without AVX-VNNI-INT8 runs on the same U8S8 kernels. U8U8 widens to int16 and uses ``vpmaddwd`` on
every x86 level (exact). So a setting is ISA-stable by construction when no u8*s8 pair can exceed
int16: U8U8, or U8S8 with 7-bit weights (``reduce_range``: |w| <= 64, 2*255*64 = 32640 < 32767).

For every candidate setting of ``onnx-dynamic`` (``quantize_dynamic``) and ``onnx-int8``
(``quantize_static``) this script builds the model from a run's float Keras model with the
converters' own functions, then scores the run's test rows one record at a time (as the runtime does)
on several CPUs, each in a child process that imports only numpy and onnxruntime:

* ``native`` - this machine;
* ``x86-64-v2`` - ``qemu-x86_64 -cpu Nehalem-v1`` (SSE4.2, no AVX);
* ``x86-64-v3`` - ``qemu-x86_64 -cpu Haswell-v4`` (AVX2 + FMA, emulated);
* ``arm64`` / ``arm64-dotprod`` - ``qemu-aarch64-static -cpu cortex-a72`` / ``neoverse-n1`` inside the
  cached Debian arm64 root when ``/root/.cache/edgefin/targets/READY`` exists (built by ``edgefin
  targets``; needs root for chroot); skipped and said so otherwise.

QEMU 7.2's TCG cannot emulate AVX-512 or VNNI: the child reports the CPUID features numpy sees, so the
table shows what each CPU really offered. Per setting and ONNX Runtime graph-optimisation level it
reports: max |dp| and decision flips of every CPU against native, AUC and flips against the Keras
model, the static "can a u8*s8 pair saturate int16" check on the model's integer weights, model size,
and a rough native single-record latency (a shared machine: +-30%).

    TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/isa_quant.py --run-dir /tmp/demo-ref --stage pruned
    .venv/bin/python benchmarks/isa_quant.py --child MODELS_DIR OUT.json   # (internal) scoring only

Writes ``benchmarks/results/isa_quant.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
TARGETS_CACHE = Path("/root/.cache/edgefin/targets")
QEMU_CPUS = {"x86-64-v2": "Nehalem-v1", "x86-64-v3": "Haswell-v4"}
#: cortex-a72: NEON without the dot-product extension; neoverse-n1: with it (sdot/udot kernels)
ARM64_CPUS = {"arm64": "cortex-a72", "arm64-dotprod": "neoverse-n1"}
OPT_LEVELS = ("all", "basic", "disabled")
FEATURES = (
    "SSE41",
    "SSE42",
    "AVX",
    "FMA3",
    "AVX2",
    "AVX512F",
    "AVX512_SKX",
    "AVX512_CLX",
    "AVX512_ICL",
    "AVX512VNNI",
    "AVXVNNI",
    "ASIMD",
    "ASIMDDP",
    "ASIMDHP",
)

_DYN = {"weight_type": "int8", "reduce_range": False, "per_channel": False, "batch1": True}
_STATIC = {
    "activation_type": "int8",
    "weight_type": "int8",
    "reduce_range": False,
    "per_channel": False,
    "quant_format": "qdq",
}


def _dyn(**kw: Any) -> tuple[str, dict[str, Any]]:
    return "onnx-dynamic", {**_DYN, **kw}


def _static(**kw: Any) -> tuple[str, dict[str, Any]]:
    return "onnx-int8", {**_STATIC, **kw}


# name -> (variant, every converter keyword spelled out, so a change of the converters' defaults cannot
# change what a row measures); dyn-u8s8 and qdq-s8s8 were the defaults before this benchmark
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "dyn-u8s8": _dyn(),  # the default before this benchmark
    "dyn-u8s8-rr": _dyn(reduce_range=True),
    "dyn-u8u8": _dyn(weight_type="uint8"),
    "dyn-u8s8-pc": _dyn(per_channel=True),
    "dyn-u8s8-pc-rr": _dyn(per_channel=True, reduce_range=True),
    "dyn-u8u8-pc": _dyn(weight_type="uint8", per_channel=True),
    "dyn-u8s8-batchN": _dyn(batch1=False),
    "dyn-u8u8-batchN": _dyn(weight_type="uint8", batch1=False),
    "qdq-s8s8": _static(),
    "qdq-s8s8-rr": _static(reduce_range=True),
    "qdq-s8s8-pc": _static(per_channel=True),
    "qdq-u8s8": _static(activation_type="uint8"),
    "qdq-u8s8-rr": _static(activation_type="uint8", reduce_range=True),
    "qdq-u8s8-pc-rr": _static(activation_type="uint8", per_channel=True, reduce_range=True),
    "qdq-u8u8": _static(activation_type="uint8", weight_type="uint8"),
    "qdq-u8u8-pc": _static(activation_type="uint8", weight_type="uint8", per_channel=True),
    "qop-s8s8": _static(quant_format="qoperator"),
    "qop-u8s8": _static(quant_format="qoperator", activation_type="uint8"),
    "qop-u8u8": _static(quant_format="qoperator", activation_type="uint8", weight_type="uint8"),
    "qop-u8u8-pc": _static(quant_format="qoperator", activation_type="uint8", weight_type="uint8", per_channel=True),
}


# ============================================================== child (numpy + onnxruntime only)
def child(models_dir: Path, out: Path, latency: int) -> int:
    import onnxruntime as ort

    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as feats
    x = np.load(models_dir / "x.npy")
    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }
    result: dict[str, Any] = {
        "cpu_features": sorted(k for k in FEATURES if feats.get(k)),
        "onnxruntime": ort.__version__,
        "scores": {},
        "latency_us": {},
        "errors": {},
    }
    for path in sorted(models_dir.glob("*.onnx")):
        for level in OPT_LEVELS:
            so = ort.SessionOptions()  # as runtime/edgefin_runtime/backends/onnx.py, plus the level
            so.intra_op_num_threads = 1
            so.inter_op_num_threads = 1
            so.log_severity_level = 3
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.graph_optimization_level = levels[level]
            key = f"{path.stem}@{level}"
            try:
                sess = ort.InferenceSession(path.read_bytes(), so, providers=["CPUExecutionProvider"])
                name = sess.get_inputs()[0].name
                p = np.array(
                    [sess.run(None, {name: x[i : i + 1]})[0].reshape(-1)[0] for i in range(len(x))], dtype=np.float32
                )
            except Exception as exc:  # noqa: BLE001 - recorded per model
                result["errors"][key] = f"{type(exc).__name__}: {str(exc)[:300]}"
                continue
            result["scores"][key] = [float(v) for v in p]
            if latency and level == "all":
                row = {name: x[:1].copy()}
                for _ in range(200):
                    sess.run(None, row)
                times = []
                for _ in range(latency):
                    t = time.perf_counter_ns()
                    sess.run(None, row)
                    times.append(time.perf_counter_ns() - t)
                result["latency_us"][path.stem] = float(np.median(times)) / 1000
    out.write_text(json.dumps(result), encoding="utf-8")
    return 0


# ============================================================== parent
def _saturation(model_bytes: bytes) -> dict[str, Any]:
    """Integer MatMul weights of a model and whether vpmaddubsw (u8 activation in [0, 255] times two
    adjacent int8 weights along K) could leave int16 for any of them."""
    import onnx
    from onnx import numpy_helper

    g = onnx.load_from_string(model_bytes).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    worst, types = 0, set()
    for n in g.node:
        if n.op_type in ("MatMulInteger", "QLinearMatMul", "QGemm", "DequantizeLinear", "MatMulIntegerToFloat"):
            for name in n.input:
                w = inits.get(name)
                if w is None or w.ndim != 2 or w.dtype not in (np.int8, np.uint8):
                    continue
                types.add(str(w.dtype))
                if w.dtype == np.int8:
                    k = w.astype(np.int64)
                    k = np.vstack([k, np.zeros((1, k.shape[1]), np.int64)]) if len(k) % 2 else k
                    pos = np.clip(k, 0, None)[0::2] + np.clip(k, 0, None)[1::2]
                    neg = np.clip(k, None, 0)[0::2] + np.clip(k, None, 0)[1::2]
                    worst = max(worst, int(255 * pos.max()), int(-255 * neg.min()))
    return {
        "weight_dtypes": sorted(types),
        "max_pair_sum_u8s8": worst,
        "can_saturate_int16": bool(worst > 32767) if "int8" in types else False,
    }


def _arm64_root() -> dict[str, Any] | None:
    """The READY record of the arm64 root ``edgefin targets`` builds (None when it is not complete)."""
    ready = TARGETS_CACHE / "READY"
    if not ready.is_file():
        return None
    try:
        return json.loads(ready.read_text(encoding="utf-8"))
    except ValueError:
        return None


def _run_child(label: str, cmd: list[str], models: Path, latency: int, env: dict[str, str]) -> dict[str, Any]:
    out = models / f"scores-{label}.json"
    args = [*cmd, str(Path(__file__).resolve()), "--child", str(models), str(out), "--latency", str(latency)]
    print(f"[{label}] {' '.join(cmd[:3])} ...", file=sys.stderr, flush=True)
    t = time.time()
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not out.exists():
        tail = "\n".join(line for line in done.stderr.splitlines() if "TCG doesn't support" not in line)[-1500:]
        return {"error": f"exit {done.returncode}: {tail}"}
    res = json.loads(out.read_text(encoding="utf-8"))
    res["seconds"] = round(time.time() - t, 1)
    res["qemu_warnings"] = sorted(
        {line.split("feature: ")[-1] for line in done.stderr.splitlines() if "TCG doesn't support" in line}
    )
    return res


def _check_vnni() -> dict[str, Any]:
    """Ask QEMU for a VNNI CPU model and report what the emulated CPUID actually offers."""
    code = (
        "import numpy._core._multiarray_umath as m; f=m.__cpu_features__; "
        "print(','.join(k for k in ('AVX2','AVX512F','AVX512VNNI','AVXVNNI') if f.get(k)))"
    )
    out = {}
    for cpu in ("Cascadelake-Server-v1", "Icelake-Server-v1"):
        done = subprocess.run(["qemu-x86_64", "-cpu", cpu, sys.executable, "-c", code], capture_output=True, text=True)
        missing = sorted(
            {
                line.split("feature: ")[-1].split(" [")[0]
                for line in done.stderr.splitlines()
                if "TCG doesn't support" in line and ("avx512" in line or "vnni" in line)
            }
        )
        out[cpu] = {"features_seen": done.stdout.strip(), "unsupported_by_tcg": missing}
    return out


def parent(a: argparse.Namespace) -> int:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from edgefin_converters import onnx as oc
    from edgefin_converters.export import ExportOptions, _calibration_rows
    from edgefin_converters.keras_io import predict
    from edgefin_converters.parity import basic_metrics
    from edgefin_runtime.preprocess import Preprocessor

    from edgefin.data.rundata import load_split, run_schema, run_spec
    from edgefin.data.schema import to_columns
    from edgefin.keras_io import load_model as load_keras
    from edgefin.rundir import RunDir

    run = RunDir.at(a.run_dir)
    schema, spec = run_schema(run), run_spec(run)
    pre = Preprocessor(schema, spec)
    train, _ = load_split(run, "train")
    test, y = load_split(run, "test")
    cal = _calibration_rows(pre, to_columns(train, schema, "train"), ExportOptions())
    cols = to_columns(test, schema, "test")
    res = pre.columns({f.name: cols[f.name] for f in schema.fields if f.name in cols})
    ok = np.ones(len(res.matrix), dtype=bool)
    ok[list(res.errors)] = False
    x, y = np.ascontiguousarray(res.matrix[ok], dtype=np.float32), np.asarray(y)[ok]
    threshold = float(json.loads((run.root / "metrics.json").read_text())["threshold"])
    model = load_keras(run.model_path(a.stage))
    ref = predict(model, x).astype(np.float64)
    ref_auc = basic_metrics(y, ref, threshold)["auc"]
    fp32 = oc.to_onnx_fp32(model, x.shape[1])

    work = Path(tempfile.mkdtemp(prefix="isa-quant-"))
    np.save(work / "x.npy", x)
    built: dict[str, bytes] = {}
    for name, (variant, kw) in SETTINGS.items():
        print(f"build {name}", file=sys.stderr, flush=True)
        built[name] = oc.to_onnx_dynamic(fp32, **kw) if variant == "onnx-dynamic" else oc.to_onnx_int8(fp32, cal, **kw)
        (work / f"{name}.onnx").write_bytes(built[name])

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "PYTHON"))}
    env["PYTHONPATH"] = ""
    cpus: dict[str, dict[str, Any]] = {"native": _run_child("native", [sys.executable], work, a.latency, env)}
    for label, qcpu in QEMU_CPUS.items():
        if label in a.cpus:
            cpus[label] = _run_child(label, ["qemu-x86_64", "-cpu", qcpu, sys.executable], work, 0, env)
    ready = _arm64_root()
    for label, core in ARM64_CPUS.items():
        if label not in a.cpus:
            continue
        if ready is None:
            cpus[label] = {"error": f"no arm64 root with a READY marker under {TARGETS_CACHE}; not measured"}
        else:
            cpus[label] = _run_arm64(ready, core, work)

    table = []
    native = cpus["native"]["scores"]
    for name, (variant, kw) in SETTINGS.items():
        for level in OPT_LEVELS:
            key = f"{name}@{level}"
            if key not in native:
                continue
            p = np.asarray(native[key], dtype=np.float64)
            m = basic_metrics(y, p, threshold)
            row: dict[str, Any] = {
                "setting": name,
                "variant": variant,
                "options": kw,
                "ort_opt_level": level,
                "size": len(built[name]),
                "auc": m["auc"],
                "auc_delta_vs_keras": m["auc"] - ref_auc,
                "flips_vs_keras": int(((p >= threshold) != (ref >= threshold)).sum()),
                "max_dp_vs_keras": float(np.abs(p - ref).max()),
                "latency_us_native": cpus["native"].get("latency_us", {}).get(name) if level == "all" else None,
                **_saturation(built[name]),
                "per_cpu": {},
            }
            worst_dp, flip_rows, flips_keras_any = 0.0, np.zeros(len(p), bool), row["flips_vs_keras"]
            for label, got in cpus.items():
                if label == "native":
                    continue
                if "error" in got:
                    row["per_cpu"][label] = {"error": "not measured"}
                    continue
                if key in got.get("errors", {}):
                    row["per_cpu"][label] = {"error": got["errors"][key]}
                    continue
                q = np.asarray(got["scores"][key], dtype=np.float64)
                flips = (q >= threshold) != (p >= threshold)
                dp = float(np.abs(q - p).max())
                fk = int(((q >= threshold) != (ref >= threshold)).sum())
                row["per_cpu"][label] = {
                    "max_dp": dp,
                    "flips_vs_native": int(flips.sum()),
                    "identical": bool(np.array_equal(q, p)),
                    "flips_vs_keras": fk,
                }
                worst_dp, flip_rows = max(worst_dp, dp), flip_rows | flips
                flips_keras_any = max(flips_keras_any, fk)
            row["max_dp_across_cpus"] = worst_dp
            row["flips_across_cpus"] = int(flip_rows.sum())
            row["worst_flips_vs_keras"] = flips_keras_any
            row["passes_gate_everywhere"] = bool(m["auc"] - ref_auc >= -0.005 and flips_keras_any <= 0.01 * len(p))
            table.append(row)

    defaults = {"onnx-dynamic": oc.to_onnx_dynamic(fp32), "onnx-int8": oc.to_onnx_int8(fp32, cal)}
    deterministic = {
        k: v == (oc.to_onnx_dynamic(fp32) if k == "onnx-dynamic" else oc.to_onnx_int8(fp32, cal))
        for k, v in defaults.items()
    }
    summary = {
        "run_dir": str(run.root),
        "stage": a.stage,
        "rows": int(len(x)),
        "threshold": threshold,
        "keras_auc": ref_auc,
        "host": {"platform": sys.platform, "machine": os.uname().machine},
        "cpus": {
            k: {kk: v.get(kk) for kk in ("cpu_features", "onnxruntime", "seconds", "error", "qemu_warnings")}
            for k, v in cpus.items()
        },
        "vnni_emulation": _check_vnni(),
        "arm64_root": ready,
        "defaults_deterministic": deterministic,
        "results": table,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(a.out)
    out.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(_markdown(summary), encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)
    print(out.with_suffix(".md").read_text(), file=sys.stderr)
    return 0


def _run_arm64(ready: dict[str, Any], cpu: str, work: Path) -> dict[str, Any]:
    """Score inside the cached Debian arm64 root under ``qemu-aarch64-static -cpu CPU`` (its README's recipe:
    chroot without the host's /sys and /proc; files copied into the root's /tmp and removed after)."""
    root = Path(ready["root"])
    inside = root / "tmp" / "isa-quant-h1"
    shutil.rmtree(inside, ignore_errors=True)
    shutil.copytree(work, inside, ignore=shutil.ignore_patterns("scores-*.json"))
    shutil.copy(Path(__file__), inside / "isa_quant.py")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": ready.get("site_packages", "/opt/edgefin/site-packages"),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        "/usr/sbin/chroot",
        str(root),
        ready.get("qemu", "/usr/bin/qemu-aarch64-static"),
        "-cpu",
        cpu,
        f"/usr/bin/python{ready.get('python', '3.11')[:4].rstrip('.')}",
        "/tmp/isa-quant-h1/isa_quant.py",
        "--child",
        "/tmp/isa-quant-h1",
        "/tmp/isa-quant-h1/scores.json",
        "--latency",
        "0",
    ]
    print(f"[arm64 {cpu}] chroot {root} ...", file=sys.stderr, flush=True)
    t = time.time()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        out = inside / "scores.json"
        if done.returncode != 0 or not out.exists():
            return {"error": f"exit {done.returncode}: {done.stderr[-1500:]}"}
        res = json.loads(out.read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(inside, ignore_errors=True)
    res["seconds"] = round(time.time() - t, 1)
    res["emulated_cpu"] = cpu
    return res


def _markdown(s: dict[str, Any]) -> str:
    cpu_labels = [c for c in s["cpus"] if c != "native"]
    lines = [
        f"# ONNX int8 settings across CPUs ({s['rows']} test rows, stage {s['stage']}, threshold "
        f"{s['threshold']:.4f}, Keras AUC {s['keras_auc']:.4f})",
        "",
    ]
    for label, c in s["cpus"].items():
        lines.append(
            f"- **{label}**: "
            + (
                c["error"]
                if c.get("error")
                else f"CPUID features seen: {', '.join(c['cpu_features'] or [])}; onnxruntime {c['onnxruntime']}"
            )
        )
    for cpu, v in s["vnni_emulation"].items():
        lines.append(
            f"- qemu `-cpu {cpu}`: features seen {v['features_seen'] or '-'}; TCG cannot emulate "
            f"{', '.join(v['unsupported_by_tcg']) or 'nothing reported'}"
        )
    lines += [
        "",
        "Latency: native, one record, median, single thread, on a shared 2-core machine (rough).",
        "",
        "| setting | ORT opt | size | AUC | dAUC vs Keras | flips vs Keras (native / worst CPU) | "
        "max dp across CPUs | flips across CPUs | "
        + " | ".join(f"{c} identical" for c in cpu_labels)
        + " | u8s8 int16 saturation possible | latency us |",
        "|---" * (10 + len(cpu_labels)) + "|",
    ]
    for r in s["results"]:
        ident = []
        for c in cpu_labels:
            v = r["per_cpu"].get(c, {})
            ident.append("n/a" if "error" in v else ("yes" if v.get("identical") else f"no ({v['max_dp']:.2g})"))
        lat = r["latency_us_native"]
        lines.append(
            f"| {r['setting']} | {r['ort_opt_level']} | {r['size']} | {r['auc']:.4f} | "
            f"{r['auc_delta_vs_keras']:+.4f} | {r['flips_vs_keras']} / {r['worst_flips_vs_keras']} | "
            f"{r['max_dp_across_cpus']:.3g} | {r['flips_across_cpus']} | "
            + " | ".join(ident)
            + f" | {'yes' if r['can_saturate_int16'] else 'no'} ({r['max_pair_sum_u8s8']}) | "
            f"{'' if lat is None else f'{lat:.0f}'} |"
        )
    lines += ["", f"Default conversions byte-deterministic: {s['defaults_deterministic']}", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("MODELS_DIR", "OUT_JSON"), help=argparse.SUPPRESS)
    ap.add_argument("--latency", type=int, default=2000, help="single-record timing runs per model (native)")
    ap.add_argument("--run-dir", default="runs/demo", help="a trained and compressed run directory")
    ap.add_argument("--stage", default="pruned", help="the float model to convert (pruned or dense)")
    ap.add_argument("--cpus", default="x86-64-v2,x86-64-v3,arm64,arm64-dotprod", help="targets besides native")
    ap.add_argument("--out", default=str(RESULTS / "isa_quant.json"))
    a = ap.parse_args()
    if a.child:
        return child(Path(a.child[0]), Path(a.child[1]), a.latency)
    a.cpus = [c.strip() for c in a.cpus.split(",") if c.strip()]
    return parent(a)


if __name__ == "__main__":
    raise SystemExit(main())
