"""The converters' quality bar on the bundled credit data, measured end to end and reproducibly.

1. ``edgefin train`` (default options) and ``edgefin compress`` (prune 80% -> PQAT) into a run
   directory, unless it already has a compressed model (``--reuse``);
2. ``edgefin convert RUN --json`` twice into two folders (all eight variants);
3. checks the bar: every variant passes its parity gate, tflite-int8 is at most 45% of tflite-fp32,
   and the two conversions give identical model bytes and manifests that differ only in created_at;
4. writes ``benchmarks/results/convert-credit.json`` and ``.md`` (the Markdown table for the README).

    uv run --no-sync python benchmarks/convert_credit.py                    # ~3-5 minutes
    uv run --no-sync python benchmarks/convert_credit.py --reuse --run-dir runs/demo

Exit code 0 when the bar is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CREDIT = REPO / "edgefin" / "datasets" / "credit_scoring.csv"
RESULTS = REPO / "benchmarks" / "results"
INT8_SIZE_BAR = 0.45


def sh(*args: str) -> str:
    print("$ " + " ".join(args), file=sys.stderr, flush=True)
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    if done.returncode not in (0, 3):
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"command failed with exit code {done.returncode}")
    return done.stdout


def manifests(folder: Path) -> dict[str, tuple[bytes, dict[str, Any]]]:
    out = {}
    for p in sorted(folder.glob("*.efb")):
        with zipfile.ZipFile(p) as z:
            model = next(n for n in z.namelist() if n.startswith("model."))
            out[p.stem] = (z.read(model), json.loads(z.read("manifest.json")))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default="runs/convert-credit", help="run directory to (re)use")
    ap.add_argument("--reuse", action="store_true", help="keep an existing trained/compressed run")
    ap.add_argument("--out", default=str(RESULTS / "convert-credit.json"))
    a = ap.parse_args()
    run = Path(a.run_dir)
    edgefin = [sys.executable, "-m", "edgefin.cli.main"]
    if not (a.reuse and (run / "models" / "qat.keras").exists()):
        sh(*edgefin, "train", str(CREDIT), "--target", "Status", "--positive", "bad", "--out", str(run), "-q")
        sh(*edgefin, "compress", str(run), "-q")
    first = json.loads(sh(*edgefin, "convert", str(run), "--json", "-q", "--no-gate"))
    second_dir = run / "bundles-again"
    sh(*edgefin, "convert", str(run), "--json", "-q", "--no-gate", "--out", str(second_dir))

    a_m, b_m = manifests(Path(first["out_dir"])), manifests(second_dir)
    deterministic = {}
    for name, (model, man) in a_m.items():
        other_model, other = b_m[name]
        same_rest = {k: v for k, v in man.items() if k != "created_at"} == {
            k: v for k, v in other.items() if k != "created_at"
        }
        deterministic[name] = model == other_model and same_rest
    rows = {v["variant"]: v for v in first["variants"]}
    ratio = rows["tflite-int8"]["size"] / rows["tflite-fp32"]["size"]
    bar = {
        "every_variant_passes": all(v["passed"] for v in rows.values()),
        "tflite_int8_size_ratio": ratio,
        "tflite_int8_at_most_45_percent": ratio <= INT8_SIZE_BAR,
        "deterministic": all(deterministic.values()),
    }
    result = {
        "run_dir": str(run),
        "variants": first["variants"],
        "deterministic": deterministic,
        "bar": bar,
        "stage": first["stage"],
        "failures": first["failures"],
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    lines = [
        "| variant | from | size | gzip | AUC | AUC delta | flip rate | max abs dp | parity |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for v in first["variants"]:
        lines.append(
            f"| {v['variant']} | {v['source_stage']} | {v['size'] / 1024:.1f} KB | "
            f"{v['gzip_size'] / 1024:.1f} KB | {v['auc']:.4f} | {v['auc_delta']:+.4f} | "
            f"{v['flip_rate']:.2%} | {v['max_abs_delta']:.1e} | {'pass' if v['passed'] else 'FAIL'} |"
        )
    lines.append(
        f"\ntflite-int8 / tflite-fp32 size: {ratio:.1%} (bar {INT8_SIZE_BAR:.0%}); "
        f"deterministic: {bar['deterministic']}; every gate passed: {bar['every_variant_passes']}"
    )
    text = "\n".join(lines) + "\n"
    Path(a.out).with_suffix(".md").write_text(text, encoding="utf-8")
    print(text, end="")
    return 0 if all(v for k, v in bar.items() if k != "tflite_int8_size_ratio") else 1


if __name__ == "__main__":
    raise SystemExit(main())
