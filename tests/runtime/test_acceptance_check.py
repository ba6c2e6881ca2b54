"""The acceptance set on a device: check() against both references, the gates, and verify's exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

import edgefin_runtime
from edgefin_runtime import acceptance
from edgefin_runtime.cli import main
from edgefin_runtime.errors import SelfTestError

from tests.fixtures.engines import ShiftedEngine, perturbed


def test_every_fixture_bundle_passes_on_the_machine_that_built_it(predictors, variant):
    rep = acceptance.check(predictors[variant])
    assert rep is not None and rep.passed and rep.failures == []
    assert rep.records == 64 and set(rep.kinds) == {"edge", "near", "spread"}
    assert rep.build.paths["single"].max_abs_delta == 0.0  # the references were scored on this path
    assert rep.build.max_abs_delta <= rep.tolerance
    assert rep.source_stage == "dense"
    json.dumps(rep.to_dict(), allow_nan=False)


def test_a_shift_of_002_near_the_threshold_fails_both_paths(predictors, variant):
    bad = perturbed(predictors[variant], shift=0.02, window=0.05)
    rep = acceptance.check(bad)
    assert not rep.passed and not rep.build.passed
    for path in ("single", "batch"):
        assert rep.build.paths[path].max_abs_delta == pytest.approx(0.02, abs=1e-3)
        assert any(f.startswith(f"{path} path: max |dp|") for f in rep.build.failures)
    assert rep.build.flips > 0  # records placed just below the threshold now flip
    with pytest.raises(SelfTestError, match="acceptance set fails"):
        acceptance.require(bad)


def test_noise_within_the_tolerance_passes_and_beyond_it_fails(predictors):
    pred = predictors["onnx-fp32"]
    tol = pred.info.golden_tolerance
    assert acceptance.check(perturbed(pred, shift=0.0, noise=0.9 * tol)).passed
    rep = acceptance.check(perturbed(pred, shift=0.0, noise=3 * tol))
    assert not rep.passed and rep.build.max_abs_delta > tol


def test_source_gate_fails_when_the_device_strays_further_than_the_build_machine(rebundle):
    """Recorded scores 0.2 below what this engine computes: the device is 0.2 from both references,
    beyond the tolerance on the build gate and beyond build distance (0) + tolerance on the source gate."""

    def pull(d: dict[str, Any]) -> None:
        d["acceptance"]["source_scores"] = [max(0.0, s - 0.2) for s in d["acceptance"]["scores"]]
        d["acceptance"]["scores"] = [max(0.0, s - 0.2) for s in d["acceptance"]["scores"]]

    pred = edgefin_runtime.load(rebundle("onnx-fp32", pull), self_test=False)
    rep = acceptance.check(pred)
    assert not rep.build.passed and not rep.source.passed
    assert rep.source.limits["build_max_abs_delta"] == 0.0
    assert any("against the source model exceeds" in f for f in rep.source.failures)


def test_a_bundle_without_an_acceptance_set_reports_none(rebundle, tiny_bundles):
    def drop(d: dict[str, Any]) -> None:
        del d["acceptance"]

    data = rebundle("tflite-fp32", drop)
    assert acceptance.check(edgefin_runtime.load(data)) is None
    assert acceptance.require(edgefin_runtime.load(data)) is None


def test_a_record_the_bundles_schema_rejects_is_a_self_test_error(rebundle):
    def bad(d: dict[str, Any]) -> None:
        i = d["acceptance"]["fields"].index("Age")
        d["acceptance"]["records"][3][i] = "old"

    pred = edgefin_runtime.load(rebundle("onnx-fp32", bad))
    with pytest.raises(SelfTestError, match=r"acceptance record 3 is rejected by the bundle's own schema"):
        acceptance.check(pred)


# ---------------------------------------------------------------- the CLI
def _verify(path: Any, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["verify", str(path), *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_verify_prints_both_references(tiny_bundles, capsys):
    code, out, _ = _verify(tiny_bundles["tflite-int8"], capsys)
    assert code == 0
    assert "acceptance set: 64 synthetic records" in out
    assert "vs build machine" in out and "vs source model (dense)" in out and out.count("PASS") == 2
    code, out, _ = _verify(tiny_bundles["tflite-int8"], capsys, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True and doc["acceptance"]["passed"] is True
    assert doc["acceptance"]["build_machine"]["max_abs_delta"] == 0.0
    assert set(doc["acceptance"]["source_model"]) >= {"max_abs_delta", "mean_abs_delta", "flips", "limits"}


@pytest.fixture
def shifted_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every engine the CLI builds moves scores near 0.5 (the tiny bundles' threshold) by 0.02."""
    import edgefin_runtime.predictor as predictor_mod

    real = predictor_mod.create_engine

    def create(*args: Any, **kw: Any) -> Any:
        return ShiftedEngine(real(*args, **kw), 0.5, shift=0.02, window=0.05)

    monkeypatch.setattr(predictor_mod, "create_engine", create)


def test_verify_exits_3_when_the_engine_is_shifted(tiny_bundles, capsys, shifted_engines):
    code, out, err = _verify(tiny_bundles["onnx-fp32"], capsys)
    assert code == 3
    assert "FAIL" in out and "vs build machine" in out and "max |dp| 0.02" in out
    assert "SelfTestError" in err and "do not deploy it" in err
    code, out, _ = _verify(tiny_bundles["onnx-fp32"], capsys, "--json")
    doc = json.loads(out)
    assert code == 3 and doc["ok"] is False and doc["exit_code"] == 3 and doc["acceptance"]["passed"] is False


def test_verify_of_a_bundle_without_acceptance_runs_the_self_test_only(rebundle, tmp_path, capsys):
    def drop(d: dict[str, Any]) -> None:
        del d["acceptance"]

    path = tmp_path / "old.efb"
    path.write_bytes(rebundle("onnx-fp32", drop))
    code, out, _ = _verify(path, capsys)
    assert code == 0 and "acceptance set: none in this bundle" in out
    code, out, _ = _verify(path, capsys, "--json")
    assert code == 0 and json.loads(out)["acceptance"] is None


def test_info_shows_the_acceptance_set(tiny_bundles, capsys):
    assert main(["info", str(tiny_bundles["onnx-fp32"])]) == 0
    out = capsys.readouterr().out
    assert "acceptance 64 synthetic records (6 edge, 32 near, 26 spread)" in out
    assert main(["info", str(tiny_bundles["onnx-fp32"]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["bundle"]["acceptance_records"] == 64 and len(doc["manifest"]["acceptance"]["records"]) == 64
