"""Does training-split augmentation help the dense model on the bundled credit data? Measured on validation.

One stratified split (seed 42, as `edgefin train` makes it), preprocessing fitted on the real training
rows, then for each method (none, smote, jitter, smote+jitter) and each seed: augment the training
split with that seed, train the default DenseClassifier (64-32, class weights, early stopping on
validation AUC) with that seed, and score validation and test. Validation and test rows are never
augmented. Reported: mean and standard deviation over seeds of validation AUC (the question asked),
test AUC and validation Brier, and the per-seed paired difference to 'none'. Numbers are measured,
never edited.

    uv run --no-sync python benchmarks/augmentation.py                    # 4 methods x 5 seeds
    uv run --no-sync python benchmarks/augmentation.py --seeds 0 1 --methods none smote
    ... --json benchmarks/results/augmentation.json --markdown benchmarks/results/augmentation.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DATA = REPO / "edgefin" / "datasets" / "credit_scoring.csv"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare(split_seed: int) -> dict[str, Any]:
    from edgefin.data import (
        encode_frame,
        fit_preprocess,
        fit_schema,
        infer_kinds,
        make_preprocessor,
        read_table,
        resolve_target,
        split_indices,
        target_vector,
    )
    from edgefin.data.schema import missing_fields

    frame = read_table(DATA)
    target = resolve_target(frame, "Status", "bad", str(DATA))
    kinds = infer_kinds(frame, target="Status", source=str(DATA))
    y, has = target_vector(frame, target, str(DATA))
    frame, y = frame[has], y[has].astype(np.int64)
    idx = split_indices(y, seed=split_seed)
    parts = {s: (frame.iloc[getattr(idx, s)], y[getattr(idx, s)]) for s in ("train", "validation", "test")}
    schema = fit_schema(
        parts["train"][0], kinds, target, source=str(DATA), allow_missing=missing_fields([frame], kinds)
    )
    spec = fit_preprocess(parts["train"][0], schema, source=str(DATA))
    pre = make_preprocessor(schema, spec)
    enc = {s: encode_frame(f, schema, pre, source=str(DATA)) for s, (f, _) in parts.items()}
    return {"parts": parts, "schema": schema, "pre": pre, "enc": enc}


def one(ctx: dict[str, Any], method: str, seed: int) -> dict[str, Any]:
    from edgefin.data import encode_frame
    from edgefin.data.augment import augment
    from edgefin.metrics import auc, brier
    from edgefin.model import DenseClassifier

    frame, y = ctx["parts"]["train"]
    t0 = time.perf_counter()
    aug, ya = augment(frame, y, method=method, schema=ctx["schema"], seed=seed)
    x = encode_frame(aug, ctx["schema"], ctx["pre"], source="augmented training split")
    aug_s = time.perf_counter() - t0
    clf = DenseClassifier(seed=seed)
    (xv, yv), (xt, yt) = (
        (ctx["enc"]["validation"], ctx["parts"]["validation"][1]),
        (ctx["enc"]["test"], ctx["parts"]["test"][1]),
    )
    clf.fit(x, ya, validation_data=(xv, yv))
    pv, pt = clf.predict_score(xv), clf.predict_score(xt)
    return {
        "method": method,
        "seed": seed,
        "train_rows": int(len(ya)),
        "positive_share": float(np.mean(ya)),
        "augment_seconds": round(aug_s, 3),
        "epochs": clf.epochs_run_,
        "best_epoch": clf.best_epoch_,
        "validation_auc": auc(yv, pv),
        "test_auc": auc(yt, pt),
        "validation_brier": brier(yv, pv),
        "test_brier": brier(yt, pt),
    }


def summarise(rows: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    base = {r["seed"]: r for r in rows if r["method"] == "none"}
    out = []
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        s: dict[str, Any] = {"method": m, "seeds": len(rs), "train_rows": rs[0]["train_rows"]}
        for key in ("validation_auc", "test_auc", "validation_brier"):
            v = np.array([r[key] for r in rs])
            s[key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0}
        if base and m != "none":
            d = np.array([r["validation_auc"] - base[r["seed"]]["validation_auc"] for r in rs if r["seed"] in base])
            s["validation_auc_vs_none"] = {
                "mean": float(d.mean()),
                "min": float(d.min()),
                "max": float(d.max()),
                "better_in": int((d > 0).sum()),
                "of": int(d.size),
            }
        out.append(s)
    return out


def markdown(summary: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"Augmentation on the bundled credit data ({meta['rows']['train']} training rows, "
        f"{meta['rows']['validation']} validation, {meta['rows']['test']} test; {meta['seeds']} seeds; "
        f"default DenseClassifier: {meta['model']}). Mean +- std over seeds.",
        "",
        "| method | train rows | validation AUC | vs none (paired) | test AUC | validation Brier |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in summary:
        vs = s.get("validation_auc_vs_none")
        vs_txt = f"{vs['mean']:+.4f} (better in {vs['better_in']}/{vs['of']})" if vs else "-"
        lines.append(
            f"| {s['method']} | {s['train_rows']} | {s['validation_auc']['mean']:.4f} +- "
            f"{s['validation_auc']['std']:.4f} | {vs_txt} | {s['test_auc']['mean']:.4f} +- "
            f"{s['test_auc']['std']:.4f} | {s['validation_brier']['mean']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--methods", nargs="+", default=["none", "smote", "jitter", "smote+jitter"])
    ap.add_argument("--split-seed", type=int, default=42)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()

    ctx = prepare(args.split_seed)
    rows = []
    for seed in args.seeds:
        for m in args.methods:
            r = one(ctx, m, seed)
            log(
                f"seed {seed} {m:13s} rows {r['train_rows']:5d}  val AUC {r['validation_auc']:.4f}  "
                f"test AUC {r['test_auc']:.4f}  val Brier {r['validation_brier']:.4f}  ({r['epochs']} epochs)"
            )
            rows.append(r)
    summary = summarise(rows, args.methods)
    from edgefin.model import DenseClassifier

    meta = {
        "data": str(DATA.relative_to(REPO)),
        "split_seed": args.split_seed,
        "seeds": len(args.seeds),
        "model": {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in DenseClassifier().get_params().items()
            if k not in ("seed", "verbose")
        },
        "rows": {s: int(len(ctx["parts"][s][1])) for s in ("train", "validation", "test")},
    }
    md = markdown(summary, meta)
    print(md)
    from edgefin.atomic import write_json, write_text

    if args.json:
        write_json(args.json, {"meta": meta, "summary": summary, "runs": rows})
    if args.markdown:
        write_text(args.markdown, md)


if __name__ == "__main__":
    main()
