"""The security sweep: every category of the threat model, run in worker processes so that a native
crash is seen (and counted) instead of killing the sweep. Produces the figures in SECURITY.md.

    uv run --no-sync python benchmarks/security_sweep.py            # the default sweep (~1 min)
    uv run --no-sync python benchmarks/security_sweep.py --long     # the soak (~1 h): every byte value,
                                                                    # 200k hostile records, 50k mutants
    ... --categories corruption,truncation --bundles DIR --json out.json --markdown out.md

Bundles: the tiny TFLite/ONNX fixture bundles (built once with TensorFlow by
``tests/fixtures/bundles.py`` into ``.cache/security-sweep``, or taken from ``--bundles DIR``), a
few-hundred-byte ONNX bundle, and a signed copy checked with its trusted key.
Exit status 0 when every property holds: no crash, no untyped error, no damaged or hostile bundle
accepted, no non-finite score, rows in = scored + rejected.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "tests" / "runtime"), str(HERE)]

from security_cases import CATEGORIES  # noqa: E402 - the worker's list is the one list of categories

#: outcomes that break a guarantee, per category (anything 'untyped' or a crash always does)
FORBIDDEN = {
    "corruption": {"accepted"},
    "truncation": {"accepted"},
    "signature": {"accepted"},
    "hostile-archive": {"accepted"},
    "manifest-mutant": {"accepted"},
    "version-skew": {"accepted"},
    "manifest-fuzz": set(),
    "hostile-input": {"bad-score", "batch-mismatch", "engine-error"},
    "resource": {"batch-mismatch", "engine-error"},
}
MAX_CRASH_RETRIES = 25


def fixture_bundles(dest: Path | None) -> list[Path]:
    """The tiny TF-built fixture bundles: from ``dest`` if given, else built once into .cache."""
    if dest is None:
        dest = REPO / ".cache" / "security-sweep"
    found = sorted(dest.glob("tiny-*.efb"))
    if not found:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(REPO)}
        print(f"building fixture bundles into {dest} (TensorFlow, once)...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "tests.fixtures.bundles", str(dest)],
            cwd=REPO,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        found = sorted(dest.glob("tiny-*.efb"))
    return found


def make_plan(work: Path, bundles_dir: Path | None, long: bool, stride: int) -> dict[str, Any]:
    from security_bundles import tiny_onnx_bundle

    from edgefin_runtime.signing import generate_keypair, sign_bundle

    items = [{"path": str(p)} for p in fixture_bundles(bundles_dir)]
    small = work / "micro-onnx.efb"
    small.write_bytes(tiny_onnx_bundle(seed=0))
    items.append({"path": str(small)})
    priv, pub = generate_keypair()
    source = next((Path(i["path"]) for i in items if "tflite-int8" in i["path"]), small)
    signed = work / f"signed-{source.name}"
    signed.write_bytes(sign_bundle(source.read_bytes(), priv))
    (work / "trusted.pub").write_bytes(pub)
    items.append({"path": str(signed), "key": str(work / "trusted.pub")})
    return {"bundles": items, "long": long, "stride": stride}


def run_category(category: str, plan_path: Path, work: Path, quiet: bool) -> dict[str, Any]:
    """Run one category in a worker; a worker that dies is rerun with the fatal case skipped."""
    skip: list[int] = []
    crashes: list[dict[str, Any]] = []
    progress, result = work / f"{category}.progress", work / f"{category}.json"
    while True:
        progress.write_bytes(struct.pack("<q", -1))
        result.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            str(HERE / "security_cases.py"),
            category,
            "--plan",
            str(plan_path),
            "--skip",
            ",".join(map(str, skip)),
            "--progress",
            str(progress),
            "--result",
            str(result),
        ]
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode == 0 and result.exists():
            out = json.loads(result.read_text())
            break
        at = struct.unpack("<q", progress.read_bytes()[:8])[0]
        crashes.append({"case": at, "returncode": proc.returncode, "stderr": proc.stderr[-800:]})
        if not quiet:
            print(f"  {category}: worker died at case {at} (exit {proc.returncode})", file=sys.stderr)
        if at < 0 or at in skip or len(crashes) > MAX_CRASH_RETRIES:
            out = {"counts": {}, "errors": {}, "examples": {}, "seconds": 0.0, "aborted": True}
            break
        skip.append(at)
    out["crashes"] = crashes
    counts = out["counts"]
    out["cases"] = sum(counts.values()) + len(crashes)
    bad = {k: v for k, v in counts.items() if k == "untyped" or k in FORBIDDEN[category]}
    out["ok"] = not bad and not crashes and not out.get("aborted")
    return out


def render_markdown(results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Sweep: `{meta['command']}` on {meta['date']} ({meta['seconds']:.0f} s, Python "
        f"{meta['python']}, edgefin-runtime {meta['runtime']}).",
        "",
        "| category | cases | rejected (typed) | accepted | scored | untyped errors | engine errors | crashes "
        "| errors seen |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for cat, r in results.items():
        c = r["counts"]
        accepted = sum(v for k, v in c.items() if k.startswith("accepted"))
        acc = f"{accepted}" + (
            f" ({c.get('accepted-different', 0)} change a score or decision)" if cat == "manifest-fuzz" else ""
        )
        errs = ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items(), key=lambda kv: -kv[1]))
        lines.append(
            f"| {cat} | {r['cases']} | {c.get('rejected', 0)} | {acc} | {c.get('scored', 0)} | "
            f"{c.get('untyped', 0)} | {c.get('engine-error', 0)} | {len(r['crashes'])} | {errs} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--long",
        action="store_true",
        help="the soak: every byte value, 200k records, 50k manifest mutants, 1M-row resource cases",
    )
    ap.add_argument("--categories", default=",".join(CATEGORIES), help="comma-separated subset")
    ap.add_argument("--bundles", type=Path, default=None, help="a folder with tiny-*.efb fixture bundles")
    ap.add_argument("--stride", type=int, default=1, help="flip every n-th byte only (corruption)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures as JSON here")
    ap.add_argument("--markdown", type=Path, default=None, help="write the figures as a Markdown table here")
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    cats = [c for c in a.categories.split(",") if c]
    unknown = sorted(set(cats) - set(CATEGORIES))
    if unknown:
        ap.error(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
    t0 = time.time()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="edgefin-sweep-") as tmp:
        work = Path(tmp)
        plan = make_plan(work, a.bundles, a.long, a.stride)
        plan_path = work / "plan.json"
        plan_path.write_text(json.dumps(plan))
        for cat in cats:
            t = time.time()
            results[cat] = r = run_category(cat, plan_path, work, a.quiet)
            if not a.quiet:
                print(
                    f"{cat:16s} {r['cases']:>9d} cases  {json.dumps(r['counts'])}  crashes {len(r['crashes'])}"
                    f"  {time.time() - t:6.1f} s  {'ok' if r['ok'] else 'FAILED ' + json.dumps(r['examples'])}",
                    file=sys.stderr,
                )
    import platform

    import edgefin_runtime

    meta = {
        "command": "python benchmarks/security_sweep.py" + (" --long" if a.long else ""),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": time.time() - t0,
        "python": platform.python_version(),
        "runtime": edgefin_runtime.__version__,
        "bundles": [Path(i["path"]).name for i in plan["bundles"]],
    }
    doc = {"meta": meta, "results": results, "ok": all(r["ok"] for r in results.values())}
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    if a.markdown:
        a.markdown.write_text(render_markdown(results, meta))
    if not a.quiet:
        print(render_markdown(results, meta))
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
