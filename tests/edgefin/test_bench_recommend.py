"""The recommendation rule: best AUC among the variants that fit, ties to smaller/faster, and 'none fits'."""

from __future__ import annotations

from typing import Any

import pytest

from edgefin.bench.recommend import Constraints, explain, recommend
from edgefin.errors import UsageError


def row(name: str, auc: float, kib: float, p99: float, status: str = "ok") -> dict[str, Any]:
    r: dict[str, Any] = {"name": name, "status": status, "bundle_bytes": int(kib * 1024)}
    if status == "ok":
        r["quality"] = {"auc": auc}
        r["latency"] = {"runtime": {"p50_us": p99 / 2, "p95_us": p99 * 0.8, "p99_us": p99}}
    return r


ROWS = [
    row("tflite-fp32", 0.840, 20, 8),
    row("tflite-int8", 0.8405, 8, 6),
    row("onnx-fp32", 0.841, 22, 40),
    row("onnx-int8", 0.830, 9, 35),
    row("huge", 0.9, 5000, 5, status="does_not_fit"),
]


def test_without_constraints_the_best_auc_wins_with_ties_to_the_smaller_bundle() -> None:
    rec = recommend(ROWS, Constraints(), source_auc=0.841)
    # 0.841 and 0.8405 tie within 0.001 (0.840 does not) -> the smaller bundle: tflite-int8
    assert rec["chosen"] == "tflite-int8"
    assert "huge" not in rec["fits"]  # does not fit the memory: never chosen, whatever its AUC


def test_constraints_filter_then_best_auc() -> None:
    rec = recommend(ROWS, Constraints(max_latency_us=30, max_auc_drop=0.0003), source_auc=0.841)
    assert rec["fits"] == []
    rec = recommend(ROWS, Constraints(max_latency_us=30, max_auc_drop=0.0012), source_auc=0.841)
    assert rec["fits"] == ["tflite-fp32", "tflite-int8"]
    assert rec["chosen"] == "tflite-int8"  # AUC tie with fp32, smaller bundle
    rec = recommend(ROWS, Constraints(max_size_kb=21, max_auc_drop=0.0008), source_auc=0.841)
    assert rec["fits"] == ["tflite-int8"]
    assert any("AUC drop" in f for f in rec["verdicts"]["tflite-fp32"]["failed"])
    assert any("bundle size" in f for f in rec["verdicts"]["onnx-fp32"]["failed"])


def test_latency_percentile_is_respected() -> None:
    c = Constraints(max_latency_us=5, latency_percentile="p50")
    rec = recommend(ROWS, c, source_auc=0.841)
    assert set(rec["fits"]) == {"tflite-fp32", "tflite-int8"}  # p50 = 4 and 3 us


def test_none_fits_names_each_failed_constraint_and_the_nearest_variant() -> None:
    rec = recommend(ROWS, Constraints(max_latency_us=5, max_size_kb=6), source_auc=0.841)
    assert rec["chosen"] is None
    v = rec["verdicts"]
    assert v["tflite-int8"]["failed"] == ["latency p99 6 us > 5 us", "bundle size 8 KiB > 6 KiB"]
    assert v["huge"]["failed"] == ["does not fit the profile's memory cap"]
    # tflite-int8 exceeds by 20% + 33%; tflite-fp32 by 60% + 233%; the ONNX ones far more
    assert rec["nearest"] == "tflite-int8"
    text = "\n".join(explain(rec))
    assert "nearest is tflite-int8" in text and "onnx-fp32:" in text and "huge:" in text


def test_nothing_measured_says_so() -> None:
    rec = recommend([row("a", 0, 1, 1, status="error")], Constraints(max_size_kb=1), source_auc=None)
    assert rec["chosen"] is None and rec["nearest"] is None
    assert "could be measured" in rec["summary"]


def test_bad_constraints_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="`max_latency_us`"):  # the CLI's --max-latency-us: test_cli_option_names
        Constraints(max_latency_us=-1)
    with pytest.raises(UsageError, match="`latency_percentile`"):
        Constraints(latency_percentile="p90")


def test_a_variant_that_failed_its_parity_gate_is_never_recommended() -> None:
    rows = [row("onnx-int8", 0.99, 1, 1), row("tflite-fp32", 0.80, 20, 8)]
    rows[0]["parity"] = {"passed": False}
    rows[1]["parity"] = {"passed": True}
    rec = recommend(rows, Constraints(), source_auc=0.8)
    assert rec["chosen"] == "tflite-fp32"
    assert "parity" in rec["verdicts"]["onnx-int8"]["failed"][0]
