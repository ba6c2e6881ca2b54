"""Reason codes and drift on the device: explain latency beside score's, method agreement, PSI figures.

    uv run --no-sync python benchmarks/explain_bench.py --run runs/demo --out benchmarks/results/explain-demo.json

Needs a run directory whose bundles carry the explain and drift sections (built by ``edgefin convert``).
Everything is measured through the runtime (``edgefin_runtime``), on one pinned core with one engine thread:

* latency: ``Predictor.score(dict)`` and ``Predictor.explain(dict)`` (the bundle's default method, then
  ``paired`` and ``exact``), interleaved per round on the same test records, perf_counter_ns per call,
  p50/p95 over all calls; the JSON keeps each round's p50 so load on the host shows as spread; with
  ``--default-kernels`` the same bundle loaded on LiteRT's default (XNNPACK) kernels instead of the
  reference kernels its manifest names is timed in the same rounds (what the kernels cost, not a
  configuration the runtime offers); ``breakdown``: where one ``paired`` explain's time goes
  (encoding, engine invoke of the 2k + 1 coalition rows in place, the rest);
* agreement: top-4 reasons (positive contributions, the runtime's rule) of each method against
  ``method="exact"`` on the same bundle, and, when a float bundle is given (``--float-variant``), against
  that bundle's exact Shapley values: ``set`` (same fields, order ignored), ``ordered``, ``overlap``; on
  every test record and on the declined ones;
* drift: PSI per field and for the score of the test split against training (should be small), and
  of a copy shifted on purpose (Income x 0.7, Age + 5 years), with the 95% critical values.

No protected field is excluded when agreement is measured (the bundle's list is emptied in memory):
the figures compare attributions, not the policy on top of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

import edgefin_runtime
from edgefin_runtime.bundle import build_bundle, read_bundle
from edgefin_runtime.drift import DriftMonitor


def load_without_protected(path: Path, kernels: Literal["default", "reference"] | None = None) -> Any:
    """The bundle with its explain section's protected list emptied (in memory only); ``kernels``
    overrides the manifest's model.kernels ("default" / "reference") in memory."""
    b = read_bundle(str(path))
    ex = dict(b.manifest.explain or {})
    if not ex:
        raise SystemExit(f"{path}: no explain section; rebuild the bundles with edgefin convert")
    ex["protected"] = []
    m = dataclasses.replace(b.manifest, explain=ex)
    if kernels is not None:
        m = dataclasses.replace(m, model=dataclasses.replace(m.model, kernels=kernels))
    data, _ = build_bundle(m, b.model_bytes)
    return edgefin_runtime.load(data)


def records_of(frame: pd.DataFrame, names: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for row in frame[list(names)].itertuples(index=False):
        rec: dict[str, Any] = {}
        for n, v in zip(names, row):
            if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
                rec[n] = None
            elif isinstance(v, np.integer):
                rec[n] = int(v)
            elif isinstance(v, np.floating):
                rec[n] = float(v)
            else:
                rec[n] = v
        out.append(rec)
    return out


def p50_p95(samples: list[int]) -> tuple[float, float]:
    s = sorted(samples)
    return s[len(s) // 2] / 1000, s[int(len(s) * 0.95)] / 1000


def time_calls(fn: Callable[[Any], Any], recs: Sequence[Any], reps: int) -> list[int]:
    out = []
    clock = time.perf_counter_ns
    for _ in range(reps):
        for r in recs:
            t0 = clock()
            fn(r)
            out.append(clock() - t0)
    return out


def latency(
    pred: Any, recs: Sequence[dict[str, Any]], rounds: int, reps: int, other_kernels: Any | None = None
) -> dict[str, Any]:
    """score and explain interleaved per round; p50/p95 over all calls and each round's p50."""
    default = pred.explainer().method
    calls: dict[str, Callable[[Any], Any]] = {
        "score": pred.score,
        f"explain ({default})": pred.explain,
        "explain (paired)": lambda r: pred.explain(r, method="paired"),
    }
    if other_kernels is not None:
        calls["score (default kernels)"] = other_kernels.score
        calls[f"explain ({default}, default kernels)"] = other_kernels.explain
        calls["explain (paired, default kernels)"] = lambda r: other_kernels.explain(r, method="paired")
    for fn in calls.values():  # warm-up: interpreters, plans
        for r in recs:
            fn(r)
    samples: dict[str, list[int]] = {k: [] for k in calls}
    per_round: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for k, fn in calls.items():
            s = time_calls(fn, recs, reps)
            samples[k] += s
            per_round[k].append(p50_p95(s)[0])
    exact = time_calls(lambda r: pred.explain(r, method="exact"), recs[: max(5, len(recs) // 10)], 1)
    out: dict[str, Any] = {}
    for k in calls:
        p50, p95 = p50_p95(samples[k])
        out[k] = {
            "p50_us": round(p50, 2),
            "p95_us": round(p95, 2),
            "round_p50s_us": [round(x, 2) for x in per_round[k]],
        }
    p50, p95 = p50_p95(exact)
    out["explain (exact)"] = {"p50_us": round(p50, 1), "p95_us": round(p95, 1), "calls": len(exact)}
    score = out["score"]["p50_us"]
    for k in out:
        out[k]["x_score_p50"] = round(out[k]["p50_us"] / score, 2)
    return out


def breakdown(pred: Any, recs: Sequence[dict[str, Any]], reps: int, method: str = "paired") -> dict[str, Any]:
    """Where one explain goes, each stage timed on its own (p50 us over the records), as
    ``Explainer.explain`` runs them: encoding the record into the thread's buffer, finding its plan,
    filling the coalition rows (one gather; in place on LiteRT), the engine invoke with the range
    check of its scores, and the attribution with its reasons and Explanation; and the whole call."""
    from edgefin_runtime.explain import _ONE_BITS

    ex = pred.explainer()
    pred.explain(recs[0], method=method)  # this thread's buffers
    local = ex._local
    stages: dict[str, list[int]] = {k: [] for k in ("encode", "plan", "fill", "engine_invoke", "attribute_and_reasons")}
    whole, rows, in_place = [], [], []
    clock = time.perf_counter_ns
    for _ in range(reps):
        for r in recs:
            t0 = clock()
            both, x, raw, features, differs = local.row
            raw[:] = ex._zero
            flags = ex._pre.encode_into(r, features)
            t1 = clock()
            np.not_equal(x, ex._ref, out=differs)
            plan = ex._patterns[method].get(differs.tobytes()) or ex._plan_of(x, method)
            slot = ex._slot(len(plan.mask))
            t2 = clock()
            if slot is None or plan.gather is None:
                raise SystemExit(f"breakdown: {len(plan.mask)} rows take the batch path; no stages to time")
            both.take(plan.gather, out=slot.flat, mode="wrap")
            t3 = clock()
            if slot.peak is not None:
                slot.invoke()
                v = slot.out
                if slot.peak() > _ONE_BITS:
                    ex._check_range(v)
            else:
                v = pred.engine.run(slot.inp)
                ex._check_range(v)
            t4 = clock()
            e = ex._from_scores(r, flags, plan, v, slot.full, 4)
            t5 = clock()
            if e != pred.explain(r, method=method):
                raise SystemExit("breakdown: the stages disagree with explain()")
            t6 = clock()
            pred.explain(r, method=method)
            t7 = clock()
            for k, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                stages[k].append(dt)
            whole.append(t7 - t6)
            rows.append(len(plan.mask))
            in_place.append(slot.peak is not None)
    out: dict[str, Any] = {f"{k}_us": p50_p95(v)[0] for k, v in stages.items()}
    out["explain_call_us"] = p50_p95(whole)[0]
    out["rows_mean"] = round(float(np.mean(rows)), 2)
    out["in_place"] = all(in_place)
    return out


def top4(
    pred: Any, recs: Sequence[dict[str, Any]], method: str | None
) -> tuple[list[tuple[str, ...]], list[bool], dict[str, int]]:
    reasons: list[tuple[str, ...]] = []
    declined: list[bool] = []
    used: dict[str, int] = {}
    for r in recs:
        e = pred.explain(r, max_reasons=4, method=method)
        reasons.append(tuple(x.field for x in e.reasons))
        declined.append(e.score.decision)
        used[e.method] = used.get(e.method, 0) + 1
    return reasons, declined, used


def agree(
    a: Sequence[tuple[str, ...]], b: Sequence[tuple[str, ...]], mask: Sequence[bool] | None = None
) -> dict[str, Any]:
    idx = [i for i in range(len(a)) if mask is None or mask[i]]
    if not idx:
        return {"n": 0}
    same = sum(set(a[i]) == set(b[i]) for i in idx)
    ordered = sum(a[i] == b[i] for i in idx)
    overlap = sum(len(set(a[i]) & set(b[i])) / max(len(a[i]), len(b[i])) if (a[i] or b[i]) else 1.0 for i in idx)
    return {
        "n": len(idx),
        "set": round(same / len(idx), 4),
        "ordered": round(ordered / len(idx), 4),
        "overlap": round(overlap / len(idx), 4),
    }


def agreement(pred: Any, recs: Sequence[dict[str, Any]], float_pred: Any | None) -> dict[str, Any]:
    exact, declined, _ = top4(pred, recs, "exact")
    out: dict[str, Any] = {}
    ref_float = top4(float_pred, recs, "exact")[0] if float_pred is not None else None
    for method in (None, "paired", "stratified", "sampled", "exact"):
        got, _, used = top4(pred, recs, method) if method != "exact" else (exact, declined, {"exact": len(recs)})
        name = method or f"default ({pred.explainer().method})"
        entry: dict[str, Any] = {
            "methods_used": used,
            "vs_exact_same_bundle": agree(got, exact),
            "vs_exact_same_bundle_declined": agree(got, exact, declined),
        }
        if ref_float is not None:
            entry["vs_exact_float_bundle"] = agree(got, ref_float)
            entry["vs_exact_float_bundle_declined"] = agree(got, ref_float, declined)
        out[name] = entry
    ks = [sum(1 for v in pred.explain(r, method="paired").contributions.values() if v != 0.0) for r in recs]
    out["fields_differing_from_reference"] = {
        "mean": round(float(np.mean(ks)), 2),
        "max": int(max(ks)),
        "of": len(pred.schema.names),
    }
    return out


def kernels_agreement(pred: Any, other: Any, recs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Bundle kernels vs default kernels, bit for bit: every coalition row the records' explanations score
    (``paired`` and ``stratified``), the records' own scores, and whole explanations (``to_dict``)."""
    ex = pred.explainer()
    out: dict[str, Any] = {}
    for method in ("paired", "stratified"):
        mats = []
        for r in recs:
            x = np.array(ex._pre.record(r)[0], dtype=np.float32)
            mats.append(np.where(ex._plan_of(x, method).mask, x, ex._ref))
        a, b = pred.engine.run(np.concatenate(mats)), other.engine.run(np.concatenate(mats))
        ends = np.cumsum([len(m) for m in mats])
        differs = np.flatnonzero(a != b)
        out[f"{method}_coalition_rows"] = {
            "rows": int(len(a)),
            "differing": int(len(differs)),
            "records_affected": int(len(np.unique(np.searchsorted(ends, differs, side="right")))),
            "max_abs_diff": float(np.abs(a - b).max()),
        }
        same = sum(
            repr(pred.explain(r, method=method).to_dict()) == repr(other.explain(r, method=method).to_dict())
            for r in recs
        )
        out[f"{method}_explanations_identical"] = {"n": len(recs), "identical": int(same)}
    rows = np.array([ex._pre.record(r)[0] for r in recs], dtype=np.float32)
    out["record_scores"] = {
        "rows": len(rows),
        "differing": int((pred.engine.run(rows) != other.engine.run(rows)).sum()),
    }
    return out


def drift_figures(pred: Any, test: pd.DataFrame) -> dict[str, Any]:
    out = {}
    shifted = test.copy()
    shifted["Income"] = shifted["Income"] * 0.7
    shifted["Age"] = shifted["Age"] + 5
    for name, frame in (("test split", test), ("shifted copy (Income x 0.7, Age + 5)", shifted)):
        mon = DriftMonitor(pred)
        mon.observe(frame)
        rep = mon.report()
        out[name] = {
            "n": rep.n,
            "drifted": rep.drifted,
            "fields": {
                k: {"psi": round(v.psi, 4), "critical_95": round(v.critical, 4), "level": v.level}
                for k, v in rep.fields.items()
            },
            "score": None
            if rep.score is None
            else {
                "psi": round(rep.score.psi, 4),
                "critical_95": round(rep.score.critical, 4),
                "level": rep.score.level,
            },
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--run", type=Path, required=True, help="run directory (bundles/ with explain sections, data/test.parquet)"
    )
    ap.add_argument("--variant", default="tflite-int8")
    ap.add_argument(
        "--float-variant",
        default="tflite-fp32",
        help="bundle whose exact Shapley values are the float reference ('' for none)",
    )
    ap.add_argument("--records", type=int, default=50, help="test records in the latency loop")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--agreement-records", type=int, default=0, help="0: the whole test split")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this core (default: the last one)")
    ap.add_argument(
        "--default-kernels",
        action="store_true",
        help="also time the bundle on LiteRT's default (XNNPACK) kernels in the same rounds",
    )
    ap.add_argument("--no-agreement", action="store_true", help="latency only (skip agreement and drift)")
    ap.add_argument(
        "--no-latency", action="store_true", help="agreement and drift only (run under nice, apart from the timing)"
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the sections this run skips (--no-latency / --no-agreement) from the existing --out file",
    )
    args = ap.parse_args(argv)
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    pred = load_without_protected(args.run / "bundles" / f"{args.variant}.efb")
    float_pred = (
        load_without_protected(args.run / "bundles" / f"{args.float_variant}.efb") if args.float_variant else None
    )
    other = (
        load_without_protected(args.run / "bundles" / f"{args.variant}.efb", kernels="default")
        if args.default_kernels
        else None
    )
    test = pd.read_parquet(args.run / "data" / "test.parquet")
    names = list(pred.schema.names)
    recs = records_of(test, names)
    lat_recs = recs[:: max(1, len(recs) // args.records)][: args.records]
    agree_recs = recs if not args.agreement_records else recs[: args.agreement_records]
    result: dict[str, Any] = {
        "bundle": str(args.run / "bundles" / f"{args.variant}.efb"),
        "engine": pred.engine.describe(),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "pinned_core": cpu,
            "loadavg_start": os.getloadavg(),
        },
    }
    if not args.no_latency:
        result["latency"] = latency(pred, lat_recs, args.rounds, args.reps, other)
        result["breakdown"] = {
            f"{m}, bundle kernels": breakdown(pred, lat_recs, args.reps, m) for m in ("paired", "stratified")
        }
        if other is not None:
            for m in ("paired", "stratified"):
                result["breakdown"][f"{m}, default kernels"] = breakdown(other, lat_recs, args.reps, m)
    if not args.no_agreement:
        result["agreement"] = agreement(pred, agree_recs, float_pred)
        if other is not None:
            result["default_kernels_vs_bundle_kernels"] = kernels_agreement(pred, other, agree_recs)
        result["drift"] = drift_figures(pred, test[names])
    result["machine"]["loadavg_end"] = os.getloadavg()
    if args.merge and args.out and args.out.is_file():
        old = json.loads(args.out.read_text(encoding="utf-8"))
        for key in ("latency", "breakdown", "agreement", "default_kernels_vs_bundle_kernels", "drift"):
            if key not in result and key in old:
                result[key] = old[key]
        for key, value in old.get("machine", {}).items():  # the skipped part's load, kept apart
            if key.startswith("loadavg"):
                result["machine"].setdefault("merged_from_previous_run", {})[key] = value
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    lat = result.get("latency", {})
    print("\n| call | p50 us | p95 us | x score p50 |\n|---|---|---|---|", file=sys.stderr)
    for k, v in lat.items():
        print(f"| {k} | {v['p50_us']} | {v['p95_us']} | {v['x_score_p50']} |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
