"""The compression quality bar on the bundled credit data, measured: prune 80% -> PQAT (and variants).

For each training seed: `edgefin train` with default options (``--bins auto``: the "bins" column says
what it chose), then `edgefin compress` configurations
on copies of that run (default: 80% unstructured + PQAT; also 2:4 + PQAT, 90% + PQAT, and 80% +
16 clusters + CQAT). Reported per configuration: test AUC of dense / pruned / final stage, the AUC
drop, decision flips against the dense model, kernel sparsity measured on the stripped weights and
kept through QAT (float kernels and int8 fake-quantised kernels), and the gzip size of the weights.
The quality bar: final-stage AUC within 0.005 of dense, sparsity of the stripped kernels >= 79%,
gzip of the pruned weights under half the dense model's. Numbers are measured, never edited.

    uv run --no-sync python benchmarks/compression.py                         # seeds 42 1 2, all configs
    uv run --no-sync python benchmarks/compression.py --seeds 42 --configs default
    ... --json benchmarks/results/compression.json --markdown benchmarks/results/compression.md
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DATA = REPO / "edgefin" / "datasets" / "credit_scoring.csv"
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},  # 80%, 1x1, PQAT
    "2:4": {"block": "2:4"},
    "90%": {"sparsity": 0.9},
    "80%+cluster16": {"cluster": 16},
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def row(seed: int, name: str, r: dict[str, Any], seconds: float, bins: int) -> dict[str, Any]:
    st = r["stages"]
    final = r["final_stage"]
    d, p, f = st["dense"], st["pruned"], st[final]
    return {
        "seed": seed,
        "config": name,
        "bins": bins,
        "final_stage": final,
        "seconds": round(seconds, 1),
        "dense_auc": d["test"]["auc"],
        "pruned_auc": p["test"]["auc"],
        "final_auc": f["test"]["auc"],
        "auc_drop": d["test"]["auc"] - f["test"]["auc"],
        "final_flip_rate": f["flip_rate_vs_dense"],
        "pruned_layers_sparsity": p["sparsity"]["pruned_layers_kernel_sparsity"],
        "all_kernels_sparsity": p["sparsity"]["kernel_sparsity"],
        "final_kernel_sparsity": f["sparsity"]["kernel_sparsity"],
        "final_int8_kernel_sparsity": f["sparsity"].get("quantized_kernel_sparsity"),
        "dense_weights_gzip": d["size"]["weights_gzip_bytes"],
        "pruned_weights_gzip": p["size"]["weights_gzip_bytes"],
        "final_weights_gzip": f["size"]["weights_gzip_bytes"],
        "gzip_ratio": p["size"]["weights_gzip_bytes"] / d["size"]["weights_gzip_bytes"],
        "final_int8_weights_gzip": f["size"].get("int8_weights_gzip_bytes"),
        "quality_bar_passed": r["quality_bar"]["passed"],
        "failed_checks": [c["name"] for c in r["quality_bar"]["checks"] if not c["passed"]],
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| seed | bins | config | dense AUC | final AUC | drop | flips | sparsity (pruned layers / all kernels / "
        "final float / final int8) | weights gzip dense -> pruned -> final (ratio) | bar |",
        "|---:|---:|---|---:|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        q = r["final_int8_kernel_sparsity"]
        lines.append(
            f"| {r['seed']} | {r['bins']} | {r['config']} | {r['dense_auc']:.4f} | {r['final_auc']:.4f} | "
            f"{r['auc_drop']:+.4f} | "
            f"{r['final_flip_rate']:.1%} | {r['pruned_layers_sparsity']:.2%} / {r['all_kernels_sparsity']:.2%} / "
            f"{r['final_kernel_sparsity']:.2%} / {'-' if q is None else f'{q:.2%}'} | "
            f"{r['dense_weights_gzip']} -> {r['pruned_weights_gzip']} -> {r['final_weights_gzip']} B "
            f"({r['gzip_ratio']:.3f}) | "
            f"{'pass' if r['quality_bar_passed'] else 'FAIL: ' + '; '.join(r['failed_checks'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()

    from edgefin.atomic import write_json, write_text
    from edgefin.compress import compress_run
    from edgefin.train import train

    rows = []
    with tempfile.TemporaryDirectory(prefix="edgefin-compress-bench-") as tmp:
        for seed in args.seeds:
            base = Path(tmp) / f"train-{seed}"
            log(f"seed {seed}: edgefin train (default options)")
            bins = train(DATA, base, target="Status", positive="bad", seed=seed)["model"]["bins"]
            for name in args.configs:
                run = Path(tmp) / f"{name.replace(':', '-').replace('%', 'pct')}-{seed}"
                shutil.copytree(base, run)
                t0 = time.perf_counter()
                report = compress_run(run, **CONFIGS[name])
                r = row(seed, name, report, time.perf_counter() - t0, bins)
                log(
                    f"  {name:14s} dense {r['dense_auc']:.4f} final {r['final_auc']:.4f} drop {r['auc_drop']:+.4f} "
                    f"sparsity {r['pruned_layers_sparsity']:.2%}/{r['all_kernels_sparsity']:.2%} -> "
                    f"{r['final_kernel_sparsity']:.2%} gzip ratio {r['gzip_ratio']:.3f} "
                    f"{'pass' if r['quality_bar_passed'] else 'FAIL ' + str(r['failed_checks'])}"
                )
                rows.append(r)
    md = markdown(rows)
    print(md)
    if args.json:
        write_json(args.json, {"data": str(DATA.relative_to(REPO)), "rows": rows})
    if args.markdown:
        write_text(args.markdown, md)


if __name__ == "__main__":
    main()
