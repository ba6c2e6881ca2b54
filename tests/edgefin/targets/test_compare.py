"""Judging a bundle on a target from synthetic scores: identical passes, a shifted engine fails."""

from __future__ import annotations

import numpy as np
import pytest

from edgefin.targets import compare as cmp

T = 0.4


def _ref(n: int = 64, *, source_shift: float = 0.0, tol: float = 1e-2) -> cmp.ReferenceSet:
    rng = np.random.default_rng(0)
    build = np.concatenate([rng.uniform(0.02, 0.98, n // 2), T + rng.uniform(-0.01, 0.01, n - n // 2)])
    build = np.where(np.abs(build - T) < 2e-3, T + 3e-3, build)  # none sits exactly at the threshold
    return cmp.ReferenceSet(
        "acceptance", tuple({"x": i} for i in range(n)), build, np.clip(build + source_shift, 0, 1), "dense", tol, T
    )


def _entry(scores: np.ndarray) -> dict:
    s = [float(v) for v in scores]
    return {"single": s, "batch": list(s), "rejected": 0}


def test_identical_scores_pass() -> None:
    ref = _ref()
    out = cmp.judge_reference(ref, _entry(ref.build_scores))
    assert out["passed"], out["failures"]
    assert out["build_machine"]["max_abs_delta"] == 0.0 and out["build_machine"]["flips"] == 0


def test_noise_within_the_tolerance_passes() -> None:
    ref = _ref(tol=1e-2)
    out = cmp.judge_reference(ref, _entry(ref.build_scores + 4e-3))
    assert out["passed"], out["failures"]


def test_a_shift_of_002_near_the_threshold_fails() -> None:
    ref = _ref(tol=1e-2)
    shifted = ref.build_scores.copy()
    near = np.abs(shifted - T) <= 0.02
    shifted[near] -= 0.02
    out = cmp.judge_reference(ref, _entry(shifted))
    assert not out["passed"]
    assert any("build machine" in f for f in out["failures"])
    assert out["build_machine"]["max_abs_delta"] == pytest.approx(0.02)


def test_a_rejected_record_fails() -> None:
    ref = _ref()
    e = _entry(ref.build_scores)
    e["single"][3] = None
    e["rejected"] = 1
    out = cmp.judge_reference(ref, e)
    assert not out["passed"]


def test_golden_only_bundle_is_judged_against_the_build_machine() -> None:
    ref = _ref()
    golden = cmp.ReferenceSet("golden", ref.records[:8], ref.build_scores[:8], None, "dense", 1e-5, T)
    out = cmp.judge_reference(golden, _entry(golden.build_scores + 5e-5))
    assert not out["passed"] and out["source_model"] is None
    assert cmp.judge_reference(golden, _entry(golden.build_scores))["passed"]


def test_engine_error_is_a_failure() -> None:
    out = cmp.judge_reference(_ref(), {"error": {"type": "BackendError", "message": "boom"}})
    assert not out["passed"] and "BackendError" in out["failures"][0]


def _test_split(n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, n)
    source = np.clip(0.3 * y + rng.uniform(0.05, 0.7, n), 0, 1)
    return source, y


def test_test_split_uses_converts_quantized_gate() -> None:
    source, y = _test_split()
    gate = {"kind": "quantized", "max_auc_drop": 0.005, "max_flip_rate": 0.01}
    same = cmp.judge_test("onnx-int8", gate, "dense", source, y, T, _entry(source), _entry(source))
    assert same["passed"] and same["vs_source"]["flips"] == 0 and same["vs_build"]["max_abs_delta"] == 0
    moved = source.copy()
    moved[np.abs(source - T) < 0.03] += 0.03  # pushes >1% of the decisions across the threshold
    bad = cmp.judge_test("onnx-int8", gate, "dense", source, y, T, _entry(moved), _entry(source))
    assert not bad["passed"]
    assert any("flip" in f for f in bad["failures"])
    assert bad["vs_build"]["flips"] > 0


def test_test_split_exact_gate_catches_small_drift() -> None:
    source, y = _test_split()
    gate = {"kind": "exact", "max_abs_delta": 1e-5}
    out = cmp.judge_test("onnx-fp32", gate, "dense", source, y, T, _entry(source + 1e-4), None)
    assert not out["passed"] and out["vs_build"] is None
    only_single = {"single": [float(v) for v in source + 1e-4], "batch": [float(v) for v in source], "rejected": 0}
    out = cmp.judge_test("onnx-fp32", gate, "dense", source, y, T, only_single, None)
    assert not out["passed"]
    assert all("single-record path" in f for f in out["failures"]), out["failures"]


def test_gates_from_recorded_gate() -> None:
    assert cmp.gates_from({"kind": "exact", "max_abs_delta": 2e-5}).exact_max_delta == 2e-5
    assert cmp.gates_from({"kind": "quantized", "max_flip_rate": 0.02}).max_flip_rate == 0.02
    with pytest.raises(ValueError, match="unknown gate kind"):
        cmp.gates_from({"kind": "nope"})


def test_cell_headline_and_failures() -> None:
    ref = _ref()
    r = cmp.judge_reference(ref, _entry(ref.build_scores))
    ok = cmp.cell("b", "x86-64-v2", {"loaded": True, "sets": {}}, None, r, None)
    assert ok["passed"] and ok["max_abs_delta"] == 0.0 and ok["flips"] == 0
    refused = cmp.cell(
        "b",
        "x86-64-v2",
        {"loaded": False, "error": {"type": "SelfTestError", "message": "golden"}, "sets": {}},
        None,
        r,
        None,
    )
    assert not refused["passed"] and "SelfTestError" in refused["failures"][0]
    died = cmp.cell("b", "arm64", None, "the probe process was killed by SIGILL", None, None)
    assert not died["passed"] and "SIGILL" in died["failures"][0]
    assert cmp.summarise([died]) == ["b on arm64: the probe process was killed by SIGILL while checking this bundle"]
