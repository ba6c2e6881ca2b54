"""`edgefin targets`: exit codes 0/2/3 and what it prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import edgefin.targets as targets_pkg
from edgefin.cli.main import cli
from edgefin.targets import registry
from edgefin.targets.errors import TargetGateError
from edgefin.targets.run import TargetsResult


def _invoke(*args: str):
    return CliRunner().invoke(cli, ["targets", *args])


def test_list_shows_every_target_and_why_v4_is_unavailable() -> None:
    res = _invoke("--list", "--json")
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert set(rows) == {"native", "x86-64-v2", "x86-64-v3", "x86-64-v4", "arm64"}
    assert "AVX-512" in rows["x86-64-v4"]["unavailable"] and rows["x86-64-v2"]["unavailable"] is None


def test_unknown_target_exits_2_listing_valid_ones(tmp_path: Path) -> None:
    res = _invoke(str(tmp_path), "--target", "native,sparc")
    assert res.exit_code == 2
    assert "unknown target 'sparc'" in res.output and "x86-64-v3" in res.output


def test_unavailable_target_exits_2(tmp_path: Path) -> None:
    res = _invoke(str(tmp_path), "--target", "x86-64-v4")
    assert res.exit_code == 2 and "AVX-512" in res.output


def test_missing_run_dir_exits_2(tmp_path: Path) -> None:
    res = _invoke(str(tmp_path / "nope"), "--target", "native")
    assert res.exit_code == 2 and "does not exist" in res.output
    assert _invoke("--target", "native").exit_code == 2  # no RUN_DIR at all


def test_missing_qemu_exits_2_naming_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bundles").mkdir()
    (tmp_path / "bundles" / "x.efb").write_bytes(b"not read before the tool check")
    monkeypatch.setattr(registry.shutil, "which", lambda _n: None)
    res = _invoke(str(tmp_path), "--target", "native,x86-64-v2")
    assert res.exit_code == 2 and "apt-get install qemu-user" in res.output


def test_a_failing_cell_exits_3_after_printing_the_grid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cell = {
        "passed": False,
        "loaded": False,
        "max_abs_delta": 0.03,
        "flips": 2,
        "test_flips_vs_source": 1,
        "failures": ["does not load: SelfTestError: golden"],
    }
    data = {
        "targets": {"x86-64-v2": {"seconds": 3.0}},
        "bundles": {"onnx-dynamic": {"cells": {"x86-64-v2": cell}}},
        "failures": ["onnx-dynamic on x86-64-v2: does not load: SelfTestError: golden"],
        "passed": False,
    }

    def fake(*_a, **_k):
        raise TargetGateError(
            data["failures"], result=TargetsResult(data=data, path=tmp_path / "targets.json", failures=data["failures"])
        )

    monkeypatch.setattr(targets_pkg, "run_targets", fake)
    res = _invoke(str(tmp_path), "--target", "x86-64-v2", "--json")
    assert res.exit_code == 3
    assert json.loads(res.stdout)["passed"] is False
    assert "quality gate failed" in res.stderr and "onnx-dynamic" in res.stderr and "FAIL" in res.stderr


def test_all_pass_exits_0(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cell = {"passed": True, "loaded": True, "max_abs_delta": 0.0, "flips": 0, "test_flips_vs_source": 0, "failures": []}
    data = {
        "targets": {"native": {"seconds": 1.0}},
        "bundles": {"onnx-int8": {"cells": {"native": cell}}},
        "failures": [],
        "passed": True,
    }
    monkeypatch.setattr(targets_pkg, "run_targets", lambda *_a, **_k: TargetsResult(data=data, path=None))
    res = _invoke(str(tmp_path), "--target", "native")
    assert res.exit_code == 0, res.output
    assert "pass" in res.stderr
