"""The whole explain analysis on a tiny real run: train, convert (bundles with explain sections), analyse.

Trains a model, so it is slow (marked by hand; the module imports no TensorFlow at import time)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _csv(path: Path, n: int = 700, seed: int = 4) -> Path:
    rng = np.random.default_rng(seed)
    income = rng.gamma(4.0, 30.0, n).round(1)
    age = rng.integers(18, 75, n)
    debt = rng.gamma(2.0, 400.0, n).round(0)
    home = rng.choice(["owner", "rent", "parents"], n, p=[0.5, 0.35, 0.15])
    logit = -0.025 * (income - 120) - 0.02 * (age - 45) + 1.2 * (home == "rent") + 0.001 * (debt - 800)
    bad = rng.random(n) < 1 / (1 + np.exp(-logit))
    lines = ["Status,Income,Age,Debt,Home"] + [
        f"{'bad' if bad[i] else 'good'},{'' if i % 41 == 0 else income[i]},{age[i]},{debt[i]},{home[i]}"
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgefin.convert import ConvertOptions, convert_run
    from edgefin.train import train

    root = tmp_path_factory.mktemp("explain-run")
    out = root / "run"
    train(
        _csv(root / "data.csv"),
        out,
        target="Status",
        positive="bad",
        hidden=(16,),
        epochs=8,
        seed=1,
        protected=("Age",),
    )
    convert_run(out, ConvertOptions(variants="tflite-fp32,tflite-int8", gate=False))
    return out


def test_convert_writes_top4_agreement_and_a_model_card(run_dir: Path) -> None:
    from edgefin_runtime import load

    parity = json.loads((run_dir / "bundles" / "parity.json").read_text())
    top4 = parity["explain_top4"]
    assert top4["reference_variant"] == "tflite-fp32"
    assert top4["variants"]["tflite-fp32"]["set"] == 1.0
    assert 0.0 <= top4["variants"]["tflite-int8"]["set"] <= 1.0
    card = load(run_dir / "bundles" / "tflite-int8.efb").info.model_card
    assert card["protected_fields"] == ["Age"]
    assert set(card["metrics"]["values"]["auc"]) == {"value", "lo", "hi"}
    assert "data.csv" == card["data"]["file"] and str(run_dir.parent) not in json.dumps(card)


def test_analysis_validates_the_device_against_exact_float_shapley(run_dir: Path) -> None:
    from edgefin.bench.report import write_report
    from edgefin.explain.analysis import AnalysisOptions, analyse_run, refresh_slices

    out = analyse_run(run_dir, AnalysisOptions(rows=60, slices=("Home", "Income"), n_boot=200, repeats=2))
    ex = out["explain"]
    assert ex["rows"] == 60 and ex["float"]["additivity_gap"] < 1e-6
    assert ex["reference"]["protected"] == ["Age"]
    fp32 = ex["variants"]["tflite-fp32"]
    # the float32 bundle is the float model: its exact explanations name the same reasons
    assert fp32["exact"]["agreement_vs_exact_float"]["set"] >= 0.95
    assert fp32["exact"]["additivity_gap"] < 1e-4
    assert fp32["deletion"]["with_reason"] > 0 and 0.0 <= fp32["deletion"]["rate"] <= 1.0
    assert ex["quantisation"]["variants"]["tflite-fp32"]["set"] == 1.0
    imp = ex["permutation_importance"]["fields"]
    assert set(imp) == {"Income", "Age", "Debt", "Home"}
    assert max(imp, key=lambda k: imp[k]["auc_loss"]) in ("Income", "Home")  # the strongest effects
    assert len(ex["pdp"]) == 4 and all(p["grid"] for p in ex["pdp"])
    assert [s["column"] for s in out["slices"]] == ["Home", "Income"]
    assert out["model_card"]["protected_fields"] == ["Age"]
    report = {"variants": [], "recommendation": {}, "run_dir": str(run_dir), **out}
    paths = write_report(report, run_dir / "report")
    html = paths["report.html"].read_text()
    assert "Explanations: reason codes validated" in html and "Slice: Home" in html and "Model card" in html
    assert paths["model_card.md"].read_text().startswith("# Model card")
    refresh_slices(run_dir, ["Debt"])
    again = json.loads(paths["report.json"].read_text())
    assert [s["column"] for s in again["slices"]] == ["Debt"]
    assert again["model_card"]["slices"][0]["column"] == "Debt"
