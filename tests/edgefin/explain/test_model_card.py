"""The model card: every section present, aggregates only (no training row's value, no data path)."""

from __future__ import annotations

import json

import numpy as np

from edgefin.bench.explainreport import card_html, render_html, render_markdown
from edgefin.explain.model_card import build_card, compact
from edgefin.explain.model_card import render_markdown as card_markdown
from edgefin.explain.slices import slice_table
from edgefin.metrics import bootstrap_ci


def _inputs():
    rng = np.random.default_rng(5)
    n = 600
    income = rng.gamma(4.0, 31.7, n) + rng.random(n) * 1e-3  # high-precision values: a leak would show
    home = rng.choice(np.array(["owner", "rent", "parents"], dtype=object), n)
    y = (rng.random(n) < 0.3).astype(int)
    p = np.clip(0.3 + 0.3 * (y - 0.3) + rng.normal(0, 0.2, n), 0.001, 0.999)
    run = {
        "data": {"path": "/home/analyst/secret-folder/loans_2025.csv", "format": "csv", "rows": n, "sha256": "ab" * 32},
        "edgefin_version": "0.1.0",
        "options": {"hidden": [64, 32], "l2": 0.003, "protected": ["Age"]},
        "seed": 42,
    }
    schema = {
        "target": "Status",
        "positive_label": "bad",
        "negative_label": "good",
        "fields": [
            {"name": "Income", "kind": "numeric", "min": 20.0, "max": 400.0, "missing_share": 0.01},
            {"name": "Home", "kind": "categorical", "categories": ["owner", "parents", "rent"], "missing_share": 0.0},
            {"name": "Age", "kind": "numeric", "min": 18.0, "max": 70.0, "missing_share": 0.0},
        ],
    }
    metrics = {
        "threshold": 0.3446,
        "threshold_method": "max_ks",
        "test": {"n": n, "positives": int(y.sum())},
        "model": {"hidden": [64, 32], "params": 4289},
        "splits": {"train": {"n": 2000}, "test": {"n": n}},
    }
    compress = {
        "stages": {
            "dense": {"test": {"auc": 0.85}},
            "pruned": {"test": {"auc": 0.851}, "sparsity": {"kernel_sparsity": 0.794}},
        }
    }
    parity = {
        "variants": {"tflite-int8": {"source_stage": "qat", "passed": True, "auc_delta": 0.001, "flip_rate": 0.004}},
        "explain_top4": {"variants": {"tflite-int8": {"set": 0.97}}},
    }
    slices = [slice_table("Home", home, y, p, {"tflite-int8": p + 0.01}, 0.3446)]
    expl = {
        "method": "Baseline-Shapley",
        "reference_rule": "mean applicant just above the threshold",
        "reference": {"Income": round(float(np.mean(income)), 1), "Home": "owner", "Age": 38.0},
        "validation": {
            "tflite-int8": {
                "top4_set_agreement_default_method": 0.81,
                "top4_set_agreement_exact_method": 0.97,
                "deletion_test": 1.0,
            }
        },
        "validation_rows": 300,
    }
    card = build_card(
        run=run,
        schema=schema,
        metrics=metrics,
        test_ci=bootstrap_ci(y, p, n_boot=100),
        compress=compress,
        parity=parity,
        explanation=expl,
        slices=slices,
        protected=["Age"],
        drift={"text": "bins frozen"},
    )
    return card, income


def test_every_section_is_there() -> None:
    card, _ = _inputs()
    for key in (
        "intended_use",
        "data",
        "schema",
        "training",
        "metrics",
        "slices",
        "explanation",
        "drift",
        "compression",
        "limitations",
        "protected_fields",
    ):
        assert card[key], key
    assert card["protected_fields"] == ["Age"] and card["schema"][2]["protected"]
    assert set(card["metrics"]["values"]["auc"]) == {"value", "lo", "hi"}
    assert card["compression"]["variants"]["tflite-int8"]["top4_agreement_vs_float32"] == 0.97
    md = card_markdown(card)
    for heading in (
        "## Intended use",
        "## Data",
        "## Schema",
        "## Training",
        "## Metrics",
        "## Slices",
        "## Explanations",
        "## Drift reference",
        "## Compression lineage and parity",
        "## Limitations",
    ):
        assert heading in md
    assert "Protected fields (never given as a reason): Age" in md
    assert "| tflite-int8 | 0.81 | 0.97 | 1 |" in md
    small = compact(card)
    assert len(json.dumps(small)) < 8192 and small["protected_fields"] == ["Age"]
    assert "schema" not in small
    assert "Model card" in card_html(card) and "<svg" not in card_html(card)


def test_no_row_of_the_data_and_no_path_in_any_rendering() -> None:
    card, income = _inputs()
    texts = [json.dumps(card), card_markdown(card), json.dumps(compact(card)), card_html(card)]
    for text in texts:
        assert "/home/analyst" not in text and "secret-folder" not in text
        assert "loans_2025.csv" in text or text is texts[2]  # the file's name (and hash) identify the data
        for v in income:  # no applicant's income, at the precision it was recorded or rounded to 4 digits
            assert repr(float(v)) not in text and f"{v:.4f}" not in text


def test_small_slice_groups_show_no_rates_in_the_card() -> None:
    y = np.array([0, 1] * 100 + [1, 0, 1])
    p = np.linspace(0.01, 0.99, len(y))
    g = np.array(["a"] * 200 + ["tiny"] * 3, dtype=object)
    card = build_card(run={}, schema={}, metrics={}, slices=[slice_table("G", g, y, p, {}, 0.5)])
    tiny = next(x for x in card["slices"][0]["groups"] if x["group"] == "tiny")
    assert tiny["n"] == "< 10" and tiny["approval_rate"] is None and tiny["auc"] is None


def test_report_sections_render_from_report_json_alone() -> None:
    card, _ = _inputs()
    report = {
        "explain": {
            "float_model": "models/pruned.keras",
            "rows": 3,
            "seed": 0,
            "reference": {"record": {"Income": 120.0}, "rule": "r", "protected": ["Age"]},
            "float": {"additivity_gap": 1e-9, "deletion": {"rate": 0.95, "lowered": 19, "with_reason": 20}},
            "mean_abs_attribution": {"Income": 0.1, "Home": 0.05, "Age": 0.0},
            "permutation_importance": {
                "rows": 600,
                "fields": {
                    "Income": {"auc_loss": 0.1, "sd": 0.01},
                    "Home": {"auc_loss": 0.02, "sd": 0.005},
                    "Age": {"auc_loss": 0.0, "sd": 0.0},
                },
            },
            "pdp": [
                {
                    "field": "Income",
                    "kind": "numeric",
                    "grid": [10.0, 20.0, 40.0],
                    "pd": [0.2, 0.3, 0.5],
                    "ice": [[0.0, 0.1, 0.2]],
                },
                {"field": "Home", "kind": "categorical", "grid": ["owner", "rent"], "pd": [0.2, 0.4], "ice": []},
            ],
            "variants": {
                "tflite-int8": {
                    "default": {
                        "methods_used": {"paired": 3},
                        "additivity_gap": 1e-7,
                        "agreement_vs_exact_float": {"set": 1.0, "ordered": 0.66, "top1": 1.0, "overlap": 1.0},
                    },
                    "exact": {"agreement_vs_exact_float": {"set": 1.0, "ordered": 1.0, "top1": 1.0, "overlap": 1.0}},
                    "deletion": {"rate": 0.8, "lowered": 4, "with_reason": 5},
                },
                "old": {"error": "no explain section in this bundle"},
            },
            "quantisation": {"variants": {"tflite-int8": {"set": 0.96}}},
        },
        "slices": card["slices"]
        and [
            slice_table(
                "Home",
                np.array(["a", "b"] * 60, dtype=object),
                np.array([0, 1, 1, 0] * 30),
                np.linspace(0, 1, 120),
                {"tflite-int8": np.linspace(0, 1, 120)},
                0.5,
            )
        ],
        "model_card": card,
    }
    md = render_markdown(report)
    assert "| tflite-int8 | paired 3 | 100.0% / 66.0% / 100.0% | 100.0% / 100.0% / 100.0% | 96.0% |" in md
    assert "80.0% (4/5) | yes | no |" in md  # the deletion target missed is shown as missed
    assert "## Slice: Home" in md and "## Global view" in md
    html = render_html(report)
    assert html.count("<svg") == 4  # two importance bar charts, two PDP charts
    assert ">owner</text>" in html  # categorical PDP labels
    assert "no explain section in this bundle" in html
