"""Every step module has the same contract, and declares what it reads and writes in RunDir terms."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from edgefin.rundir import RunDir
from edgefin.steps import STEPS


@pytest.mark.parametrize("step", STEPS)
def test_each_step_declares_options_inputs_outputs_and_run(step: str, tmp_path) -> None:
    module = importlib.import_module(f"edgefin.steps.{step}")
    for name in ("Options", "Result", "check", "inputs", "outputs", "run"):
        assert hasattr(module, name), f"edgefin.steps.{step} has no {name}"
    assert dataclasses.is_dataclass(module.Options) and module.Options.__dataclass_params__.frozen
    rd = RunDir.at(tmp_path)
    outs = module.outputs(rd)
    assert outs and all(p.is_relative_to(tmp_path) for p in outs)  # a step writes only into its run directory


def test_declared_paths_are_the_run_directorys_names(tmp_path) -> None:
    from edgefin.pipeline import PipelineOptions, step_inputs, step_outputs
    from edgefin.steps import bench, train

    rd = RunDir.at(tmp_path)
    opts = PipelineOptions(
        train=train.Options(train.TrainOptions(target="y", test_data="t.csv"), data="d.csv"),
        bench=bench.Options(profiles_file="p.toml"),
    )
    rel = {
        s: [str(p.relative_to(tmp_path)) if p.is_relative_to(tmp_path) else str(p) for p in step_inputs(s, rd, opts)]
        for s in STEPS
    }
    assert rel["train"] == ["d.csv", "t.csv"]
    assert rel["compress"][0] == "models/dense.keras" and "data/schema.json" in rel["compress"]
    assert rel["bench"][-1] == "p.toml" and "bundles/parity.json" in rel["bench"]
    assert [str(p.relative_to(tmp_path)) for p in step_outputs("convert", rd)] == [
        "bundles/parity.json",
        "bundles/*.efb",
    ]
    (tmp_path / "bundles").mkdir()
    (tmp_path / "bundles" / "a.efb").write_bytes(b"x")
    assert [p.name for p in step_outputs("convert", rd)] == ["parity.json", "a.efb"]


def test_convert_progress_tells_each_repair_attempt_to_the_reporter() -> None:
    from edgefin_converters.repair import Attempt

    from edgefin.steps.convert import progress_for

    notes: list[str] = []

    class Notes:
        def note(self, message: str) -> None:
            notes.append(message)

    att = Attempt(step="per-channel", per_channel=True, calibration_rows=500, kept_float=(), passed=False)
    progress_for(Notes()).repairing("tflite-int8-ptq", att)  # type: ignore[arg-type]
    skipped = Attempt(step="calibration-rows", per_channel=True, calibration_rows=2000, kept_float=(), note="skipped")
    progress_for(Notes()).repairing("tflite-int8-ptq", skipped)  # type: ignore[arg-type]
    assert notes == [
        "repairing tflite-int8-ptq: per-channel (per-channel weights, 500 calibration rows)"
        " -> fails (AUC n/a, n/a flipped)",
        "repairing tflite-int8-ptq: calibration-rows (per-channel weights, 2000 calibration rows) -> skipped",
    ]
