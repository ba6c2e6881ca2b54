"""Pipeline resume: a second run skips every step; a changed option reruns the steps it affects.

The resume logic is tested with fast stand-in steps (the real step functions are swapped for ones that
write the same artefacts from their options), then once end to end with the real steps on tiny data.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edgefin import pipeline as P
from edgefin.cli.main import cli
from edgefin.compress.options import CompressOptions
from edgefin.convert import ConvertOptions
from edgefin.errors import UsageError
from edgefin.reporter import Silent
from edgefin.rundir import RunDir
from edgefin.steps import bench as bench_step
from edgefin.steps import compress as compress_step
from edgefin.steps import train as train_step
from edgefin.steps.train import TrainOptions

KEEP: Any = object()


class Log(Silent):
    def __init__(self) -> None:
        self.ran: list[str] = []
        self.skipped: dict[str, str] = {}

    def step_started(self, step: str, index: int, total: int) -> None:
        self.ran.append(step)

    def step_skipped(self, step: str, reason: str) -> None:
        self.skipped[step] = reason


def _fake_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps that write their real outputs, with contents that depend on their options and inputs."""

    def train(run_dir: Path, opts: train_step.Options, rep: Any) -> None:
        rd = RunDir.at(run_dir)
        text = Path(opts.data).read_text() + json.dumps(asdict(opts.training), sort_keys=True)  # type: ignore[arg-type]
        for p in P.step_outputs("train", rd):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        rd.run_json.write_text(json.dumps({"steps": {"train": {"fingerprint": "x"}}}))

    def compress(run_dir: Path, opts: compress_step.Options, rep: Any) -> None:
        rd = RunDir.at(run_dir)
        rd.model_path("pruned").write_text(rd.model_path("dense").read_text() + str(opts.compression.sparsity))
        rd.compress_json.write_text(json.dumps({"stages": {"dense": {}, "pruned": {}}, "final_stage": "pruned"}))

    def convert(run_dir: Path, opts: ConvertOptions, rep: Any) -> None:
        rd = RunDir.at(run_dir)
        rd.bundles_dir.mkdir(exist_ok=True)
        (rd.bundles_dir / "tflite-fp32.efb").write_text(rd.model_path(rd.latest_stage()).read_text())
        rd.parity_json.write_text("{}")

    def bench(run_dir: Path, opts: bench_step.Options, rep: Any) -> None:
        rd = RunDir.at(run_dir)
        rd.report_dir.mkdir(exist_ok=True)
        (rd.report_dir / "report.json").write_text(
            json.dumps(asdict(opts)) + (rd.bundles_dir / "tflite-fp32.efb").read_text()
        )

    def report(run_dir: Path, opts: Any, rep: Any) -> None:
        rd = RunDir.at(run_dir)
        for n in ("report.md", "report.html"):
            (rd.report_dir / n).write_text((rd.report_dir / "report.json").read_text())

    monkeypatch.setattr(
        P, "RUNNERS", {"train": train, "compress": compress, "convert": convert, "bench": bench, "report": report}
    )


def _cfg(
    data: Path | None, *, train: dict[str, Any] | None = None, compress: Any = KEEP, bench: dict[str, Any] | None = None
) -> P.PipelineOptions:
    """The test pipeline's options; ``compress=None`` disables compression, a dict overrides its options."""
    training = TrainOptions(**{"target": "Status", "epochs": 3, **(train or {})})
    comp = (
        None
        if compress is None
        else compress_step.Options(CompressOptions(**{"sparsity": 0.5, **({} if compress is KEEP else compress)}))
    )
    return P.PipelineOptions(
        train=train_step.Options(training, None if data is None else str(data)),
        compress=comp,
        convert=ConvertOptions(variants="tflite-fp32"),
        bench=bench_step.Options(**{"profile": "unconstrained", **(bench or {})}),
    )


def test_second_run_skips_every_step_and_option_changes_rerun_what_they_affect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_steps(monkeypatch)
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    out = tmp_path / "run"

    first = Log()
    P.run_pipeline(out, _cfg(data), reporter=first)
    assert first.ran == list(P.STEPS)
    steps = json.loads((out / "run.json").read_text())["steps"]
    assert set(steps) == set(P.STEPS) and steps["train"]["fingerprint"] == "x"  # train's own record is kept

    again = Log()
    res = P.run_pipeline(out, _cfg(data), reporter=again)
    assert again.ran == [] and set(again.skipped) == set(P.STEPS)
    assert all(s["status"] == "skipped" for s in res["steps"].values())

    # the same effective options spelled differently (a default given explicitly) still skip
    same = Log()
    P.run_pipeline(out, _cfg(data, bench={"repeat": "default"}), reporter=same)
    assert same.ran == []

    # a bench option reruns bench and report only
    bench_changed = Log()
    P.run_pipeline(out, _cfg(data, bench={"profile": "kiosk-1core"}), reporter=bench_changed)
    assert bench_changed.ran == ["bench", "report"]

    # a compress option reruns compress, and the changed model reruns convert, bench, report
    comp = Log()
    P.run_pipeline(out, _cfg(data, compress={"sparsity": 0.7}, bench={"profile": "kiosk-1core"}), reporter=comp)
    assert comp.ran == ["compress", "convert", "bench", "report"]

    # changing the data file reruns everything
    data.write_text("a,b\n1,3\n")
    d = Log()
    P.run_pipeline(out, _cfg(data, compress={"sparsity": 0.7}, bench={"profile": "kiosk-1core"}), reporter=d)
    assert d.ran == list(P.STEPS)


def test_replaced_or_missing_outputs_rerun_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_steps(monkeypatch)
    data = tmp_path / "d.csv"
    data.write_text("x\n")
    out = tmp_path / "run"
    P.run_pipeline(out, _cfg(data))
    (out / "report" / "report.html").unlink()
    log = Log()
    P.run_pipeline(out, _cfg(data), reporter=log)
    assert log.ran == ["report"]
    (out / "compress.json").write_text('{"by": "hand"}')  # someone ran `edgefin compress` by hand
    log = Log()
    P.run_pipeline(out, _cfg(data), reporter=log)
    # compress reruns; it rewrites the very same model, so nothing downstream needs to run again
    assert log.ran == ["compress"]
    log = Log()
    P.run_pipeline(out, _cfg(data), reporter=log, force=True)
    assert log.ran == list(P.STEPS)


def test_disabled_compression_and_bad_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_steps(monkeypatch)
    data = tmp_path / "d.csv"
    data.write_text("x\n")
    log = Log()
    P.run_pipeline(tmp_path / "r", _cfg(data, compress=None), reporter=log)
    assert "compress" not in log.ran and log.skipped["compress"] == "disabled"
    # every step's options are checked before anything runs: a bad bench option costs no training run
    log = Log()
    with pytest.raises(UsageError, match="nope"):
        P.run_pipeline(tmp_path / "r2", _cfg(data, bench={"profile": "nope"}), reporter=log)
    with pytest.raises(UsageError, match="sparsity"):
        P.run_pipeline(tmp_path / "r2", _cfg(data, compress={"sparsity": 1.5}), reporter=log)
    assert log.ran == [] and not (tmp_path / "r2").exists()
    # the pipeline command: unknown options and a missing --target are usage errors (exit 2)
    res = CliRunner().invoke(cli, ["pipeline", str(data), "--out", str(tmp_path / "r3"), "-q"])
    assert res.exit_code == 2 and "--target" in res.output
    res = CliRunner().invoke(
        cli, ["pipeline", str(data), "--target", "Status", "--epochz", "3", "--out", str(tmp_path / "r3")]
    )
    assert res.exit_code == 2 and "epochz" in res.output
    res = P.run_pipeline(tmp_path / "r3", _cfg(data, train={"epochs": 2}))
    assert res["steps"]["train"]["status"] == "ran"


def test_config_file_tables_feed_the_pipeline_command(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text('[train]\ntarget = "Status"\nepochs = 7\n[compress]\nepochs = 3\n[bench]\nprofile = "nope"\n')
    res = CliRunner().invoke(
        cli, ["pipeline", str(tmp_path / "missing.csv"), "--config", str(cfg), "--out", str(tmp_path / "r"), "-q"]
    )
    # the bench profile from the file is checked before any step runs
    assert res.exit_code == 2 and "nope" in res.output and "kiosk-1core" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nepochz = 3\n")
    res = CliRunner().invoke(cli, ["pipeline", "x.csv", "--config", str(bad), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "epochz" in res.output


@pytest.mark.slow
def test_real_pipeline_end_to_end_then_resume(tmp_path: Path) -> None:
    """train -> compress -> convert -> bench -> report with the real steps on tiny data, then a resume."""
    from tests.edgefin.bench_rundir import synthetic_csv

    data = synthetic_csv(tmp_path / "d.csv", n=400)
    out = tmp_path / "run"
    args = [
        "pipeline",
        str(data),
        "--target",
        "Status",
        "--positive",
        "bad",
        "--hidden",
        "8",
        "--epochs",
        "3",
        "--patience",
        "2",
        "--compress-epochs",
        "2",
        "--qat-epochs",
        "1",
        "--variants",
        "tflite-fp32,onnx-fp32",
        "--repeat",
        "quick",
        "--no-keras",
        "--profile",
        "unconstrained",
        "--out",
        str(out),
        "--json",
        "-q",
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    first = json.loads(res.stdout)
    assert all(s["status"] == "ran" for s in first["pipeline"]["steps"].values())
    assert {v["variant"] for v in first["variants"]} == {"tflite-fp32", "onnx-fp32"}
    assert Path(first["report"]["report.html"]).is_file()
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    second = json.loads(res.stdout)
    assert all(s["status"] == "skipped" for s in second["pipeline"]["steps"].values())
    res = CliRunner().invoke(cli, [*args[:-2], "--max-size-kb", "1000", "--json", "-q"])
    assert res.exit_code == 0, res.output
    third = json.loads(res.stdout)["pipeline"]["steps"]
    assert [k for k, s in third.items() if s["status"] == "ran"] == ["bench", "report"]


def test_a_failed_parity_gate_still_benches_and_reports_then_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgefin.errors import QualityGateError

    _fake_steps(monkeypatch)
    convert = P.RUNNERS["convert"]

    def failing_convert(run_dir: Path, opts: ConvertOptions, rep: Any) -> None:
        convert(run_dir, opts, rep)  # bundles and parity.json are written first, as the real step does
        raise QualityGateError("onnx-int8: 1.01% of decisions flip (at most 1.00% allowed)")

    monkeypatch.setitem(P.RUNNERS, "convert", failing_convert)
    data = tmp_path / "d.csv"
    data.write_text("x\n")
    out = tmp_path / "run"
    log = Log()
    with pytest.raises(P.PipelineGateError, match="onnx-int8") as err:
        P.run_pipeline(out, _cfg(data), reporter=log)
    assert log.ran == list(P.STEPS)
    assert err.value.result["steps"]["convert"]["status"] == "gate_failed"
    assert (out / "report" / "report.html").is_file()
    # convert is not recorded as done: a rerun converts again (and fails again), nothing else reruns
    again = Log()
    with pytest.raises(P.PipelineGateError):
        P.run_pipeline(out, _cfg(data), reporter=again)
    assert again.ran == ["convert"]


def _options_from_command(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> Any:
    """The PipelineOptions `edgefin pipeline ARGS` hands to run_pipeline (which is not run)."""
    seen: list[Any] = []

    def capture(out: Any, options: P.PipelineOptions, **kw: Any) -> None:
        seen.append(options)
        raise RuntimeError("captured")

    monkeypatch.setattr(P, "run_pipeline", capture)
    res = CliRunner().invoke(cli, ["pipeline", *args])
    if not seen:
        return res
    assert isinstance(res.exception, RuntimeError)
    return seen[0]


def test_pipeline_config_from_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "p.toml"
    f.write_text(
        '[train]\ntarget = "Status"\nhidden = [16, 8]\n[compress]\nqat-epochs = 2\nskip-layer = "d1"\n'
        '[convert]\nno-gate = true\nmax-delta = 1e-4\n[bench]\nprofile = "kiosk-1core"\n'
    )
    base = ["d.csv", "--out", str(tmp_path / "r"), "--config", str(f)]
    opts = _options_from_command(monkeypatch, [*base, "--repeat", "quick"])  # flags win over the file
    assert opts.train.training.target == "Status" and opts.train.training.hidden == (16, 8)
    assert opts.train.data == "d.csv"
    assert opts.compress.compression.qat_epochs == 2 and opts.compress.compression.skip_layers == ("d1",)
    assert opts.convert.gate is False and opts.convert.exact_max_delta == 1e-4
    assert (opts.bench.profile, opts.bench.repeat) == ("kiosk-1core", "quick")
    f.write_text("compress = false\n[train]\ntarget = 'y'\n")
    assert _options_from_command(monkeypatch, base).compress is None
    f.write_text("[train]\n= broken\n")
    res = _options_from_command(monkeypatch, base)
    assert res.exit_code == 2 and "not valid TOML" in res.output


def test_demo_uses_the_bundled_credit_data_and_validates_its_options() -> None:
    from edgefin.cli.options import pipeline_options
    from edgefin.cli.pipeline import DEMO_DATA, DEMO_OPTIONS

    assert DEMO_DATA.is_file() and DEMO_DATA.name == "credit_scoring.csv"
    pipeline_options(DEMO_DATA, DEMO_OPTIONS).check()  # every demo option is one the steps accept
    res = CliRunner().invoke(cli, ["demo", "--profile", "nope", "-q"])
    assert res.exit_code == 2 and "kiosk-1core" in res.output
