"""check_bundles with a fake probe: the targets.json shape, failures, and a probe that dies (SIGILL)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgefin.bench.htmlreport import _targets_section
from edgefin.bench.report import md_targets
from edgefin.errors import RunDirError
from edgefin.targets import compare as cmp
from edgefin.targets import get_target
from edgefin.targets import run as run_mod
from edgefin.targets.launch import ProbeRun

T = 0.4


def _case(name: str, n: int = 32) -> run_mod.BundleCase:
    build = np.linspace(0.05, 0.95, n)
    ref = cmp.ReferenceSet(
        "acceptance", tuple({"x": float(i)} for i in range(n)), build, build.copy(), "dense", 1e-2, T
    )
    return run_mod.BundleCase(
        name=name,
        path=Path(f"/nonexistent/{name}.efb"),
        variant=name,
        gate={"kind": "quantized", "max_auc_drop": 0.005, "max_flip_rate": 0.01},
        source_stage="dense",
        ref=ref,
    )


def _output(cases: list[run_mod.BundleCase], shift: dict[str, float]) -> dict[str, Any]:
    bundles = {}
    for c in cases:
        s = [float(v) for v in np.clip(c.ref.build_scores + shift.get(c.name, 0.0), 0, 1)]
        bundles[c.name] = {
            "loaded": True,
            "error": None,
            "engine": "onnx",
            "bundle_sha256": "ab" * 32,
            "sets": {f"ref:{c.name}": {"single": s, "batch": list(s), "rejected": 0}},
        }
    return {"probe": 1, "platform": {"machine": "x86_64", "cpu_features": ["SSE42"]}, "bundles": bundles}


def test_targets_json_shape_and_a_failing_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [_case("onnx-int8"), _case("tflite-int8")]

    def fake(target, job, **_k):
        assert [b["name"] for b in job["bundles"]] == ["onnx-int8", "tflite-int8"]
        assert job["bundles"][0]["sets"] == ["ref:onnx-int8"]  # no test split given
        shift = {"onnx-int8": 0.03} if target.name == "x86-64-v2" else {}
        return ProbeRun(target.name, _output(cases, shift), 0, 1.5)

    monkeypatch.setattr(run_mod, "run_probe", fake)
    result = run_mod.check_bundles(cases, [get_target("native"), get_target("x86-64-v2")])
    data = json.loads(json.dumps(result.data, allow_nan=False))  # strict JSON
    assert data["format"] == 1 and data["test_rows"] is None and "latency" in data["note"]
    assert set(data["targets"]) == {"native", "x86-64-v2"}
    assert data["targets"]["x86-64-v2"]["cpu"] == "Nehalem-v1" and data["targets"]["x86-64-v2"]["seconds"] >= 0
    cells = data["bundles"]["onnx-int8"]["cells"]
    assert cells["native"]["passed"] and cells["native"]["max_abs_delta"] == 0.0
    bad = cells["x86-64-v2"]
    assert not bad["passed"] and bad["loaded"] and bad["max_abs_delta"] == pytest.approx(0.03)
    assert data["bundles"]["tflite-int8"]["cells"]["x86-64-v2"]["passed"]
    assert not data["passed"] and all(f.startswith("onnx-int8 on x86-64-v2: ") for f in data["failures"])
    summary = run_mod.report_summary(data)
    md = md_targets(summary)
    assert "## CPU targets" in md and "| onnx-int8 |" in md and "FAIL" in md
    html = _targets_section(summary)
    assert "class='fail'" in html and "class='pass'" in html


def test_a_probe_that_dies_is_rerun_per_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [_case("a"), _case("b")]
    calls: list[list[str]] = []

    def fake(target, job, **_k):
        names = [b["name"] for b in job["bundles"]]
        calls.append(names)
        if names == ["a"] or len(names) > 1:  # bundle a executes an instruction the CPU lacks
            return ProbeRun(target.name, None, -signal.SIGILL, 0.5, ["qemu: uncaught target signal 4"])
        return ProbeRun(target.name, _output([c for c in cases if c.name in names], {}), 0, 0.5)

    monkeypatch.setattr(run_mod, "run_probe", fake)
    result = run_mod.check_bundles(cases, [get_target("x86-64-v2")])
    assert calls == [["a", "b"], ["a"], ["b"]]
    cells = {b: result.data["bundles"][b]["cells"]["x86-64-v2"] for b in ("a", "b")}
    assert not cells["a"]["passed"] and "SIGILL" in cells["a"]["failures"][0]
    assert cells["b"]["passed"]
    assert result.data["targets"]["x86-64-v2"]["probe_runs"] == 3


def test_run_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="does not exist"):
        run_mod.run_targets(tmp_path / "nope", "native")
    (tmp_path / "run").mkdir()
    with pytest.raises(RunDirError, match="no .efb bundles.*edgefin convert"):
        run_mod.run_targets(tmp_path / "run", "native")
