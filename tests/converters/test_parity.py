"""Parity arithmetic and gates on synthetic score vectors (no models needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefin_converters.parity import Gates, basic_metrics, compare


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y = (rng.random(1000) < 0.3).astype(int)
    ref = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.15, 1000), 0.001, 0.999)
    return y, ref


def test_identical_scores_pass_every_gate(scores):
    y, ref = scores
    for kind in ("exact", "fp16", "quantized"):
        p = compare("v", kind, "dense", ref, ref.copy(), y, 0.5)
        assert p.passed and p.failures == []
        assert p.max_abs_delta == 0 and p.flip_rate == 0 and p.auc_delta == 0
    json.dumps(p.to_dict(), allow_nan=False)


def test_exact_gate_fails_just_above_its_bound(scores):
    y, ref = scores
    assert compare("tflite-fp32", "exact", "dense", ref, ref + 0.9e-5, y, 0.5).passed
    p = compare("tflite-fp32", "exact", "dense", ref, ref + 2e-5, y, 0.5)
    assert not p.passed
    assert "tflite-fp32" in p.failures[0] and "exceeds 1e-05" in p.failures[0] and "dense Keras model" in p.failures[0]


def test_fp16_gate_is_looser(scores):
    y, ref = scores
    assert compare("tflite-fp16", "fp16", "dense", ref, ref + 5e-4, y, 0.5).passed
    assert not compare("tflite-fp16", "fp16", "dense", ref, ref + 2e-3, y, 0.5).passed


def test_quantized_gate_ignores_small_deltas_but_catches_flips_and_auc(scores):
    y, ref = scores
    rng = np.random.default_rng(1)
    noisy = ref + rng.normal(0, 1e-3, ref.size)  # far above 1e-5, but decisions barely change
    ok = compare("tflite-int8", "quantized", "dense", ref, noisy, y, 0.5)
    assert ok.passed, ok.failures
    near = np.argsort(np.abs(ref - 0.5))[:30]  # push the 30 rows nearest the threshold across it
    flipped = ref.copy()
    flipped[near] = np.where(ref[near] >= 0.5, 0.49, 0.51)
    bad = compare("tflite-int8", "quantized", "dense", ref, flipped, y, 0.5)
    assert bad.flips == 30 and bad.flip_rate == pytest.approx(0.03)
    assert any("30 of 1000 decisions (3.00%) flip" in f for f in bad.failures)


def test_every_failure_is_collected_not_just_the_first(scores):
    y, ref = scores
    shuffled = np.random.default_rng(2).permutation(ref)  # destroys the ranking and many decisions
    p = compare("onnx-int8", "quantized", "qat", ref, shuffled, y, 0.5)
    assert len(p.failures) == 2
    assert any("AUC" in f for f in p.failures) and any("flip" in f for f in p.failures)
    assert p.auc_delta < -0.005


def test_auc_improvement_is_not_a_failure(scores):
    y, ref = scores
    better = np.where(y == 1, np.maximum(ref, 0.5), np.minimum(ref, 0.49))
    p = compare("v", "quantized", "dense", ref, better, y, 0.5, Gates(max_flip_rate=1.0))
    assert p.auc_delta > 0 and p.passed


def test_nan_scores_fail_and_stay_strict_json(scores):
    y, ref = scores
    got = ref.copy()
    got[3] = np.nan
    p = compare("v", "quantized", "dense", ref, got, y, 0.5)
    assert not p.passed and "NaN or infinite" in p.failures[0]
    json.dumps(p.to_dict(), allow_nan=False)


def test_no_rows_is_a_failure_with_strict_json():
    p = compare("v", "exact", "dense", np.array([]), np.array([]), np.array([]), 0.5)
    assert not p.passed and "no held-out rows" in p.failures[0]
    json.dumps(p.to_dict(), allow_nan=False)


def test_single_record_path_is_compared_and_labelled(scores):
    y, ref = scores
    single = ref + 5e-5  # the batch path matches exactly; the one-record path does not
    p = compare("onnx-fp32", "exact", "dense", ref, ref.copy(), y, 0.5, single=single)
    assert not p.passed
    assert p.failures == [f for f in p.failures if f.endswith("(single-record path)")]
    assert p.single_row["max_abs_delta_vs_batch"] == pytest.approx(5e-5)


def test_one_class_rows_have_no_auc_but_are_still_gated_on_flips():
    y = np.zeros(200, dtype=int)
    ref = np.linspace(0.01, 0.99, 200)
    p = compare("v", "quantized", "dense", ref, ref, y, 0.5)
    assert p.auc_source is None and p.auc_delta is None and p.passed


def test_basic_metrics(scores):
    y, ref = scores
    m = basic_metrics(y, ref, 0.5)
    assert m["n"] == 1000 and m["positives"] == int(y.sum())
    assert 0.5 < m["auc"] <= 1 and m["gini"] == pytest.approx(2 * m["auc"] - 1)
    assert 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1
