"""report.json / report.md / report.html, and the `edgefin bench` / `edgefin report` commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from edgefin.bench.harness import BenchOptions, run_bench
from edgefin.bench.profiles import Profile
from edgefin.bench.report import load_report, rebuild, write_report
from edgefin.bench.settings import Settings
from edgefin.cli.main import cli
from tests.edgefin.bench_rundir import bench_run, bench_run_cached  # noqa: F401 - fixtures

FAST = Settings(warmup=5, blocks=2, block_size=30, batch_sizes=(1, 64), min_block_s=0.005, timeout_s=120)


def _assert_self_contained(html: str) -> None:
    assert not re.search(r"https?://", html), "the report must not reference the network"
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#|data:)""", html), "no external src/href"
    assert "<link" not in html.lower()


def test_report_files_are_written_and_the_html_is_self_contained(bench_run: Path) -> None:
    rep = run_bench(bench_run, BenchOptions(profile=Profile("p", cores=1), settings=FAST, keras=False))
    paths = write_report(rep, bench_run / "report")
    for name in ("report.json", "report.md", "report.html"):
        assert paths[name].is_file() and paths[name].stat().st_size > 0
    data = json.loads(paths["report.json"].read_text())
    assert data["profile"]["name"] == "p" and {v["name"] for v in data["variants"]} == {
        "onnx-fp32",
        "tflite-fp32",
        "tflite-int8",
    }
    html = paths["report.html"].read_text()
    _assert_self_contained(html)
    assert html.count("<svg") >= 5  # two Pareto charts, two latency distributions, ROC, calibration
    for name in ("onnx-fp32", "tflite-fp32", "tflite-int8", "Data-quality warnings", "Compression", "ROC"):
        assert name in html
    md = paths["report.md"].read_text()
    assert "| variant |" in md and "tflite-int8" in md and data["machine"]["cpu_model"] in md
    # report.md / report.html are rebuilt from report.json alone
    paths["report.html"].unlink()
    rebuilt = rebuild(bench_run)
    assert rebuilt["report.html"].read_text() == html


def test_report_shows_quality_warnings_and_escapes_text(bench_run: Path) -> None:
    rep = run_bench(
        bench_run, BenchOptions(profile=Profile("p", cores=1), settings=FAST, keras=False, variants=["tflite-fp32"])
    )
    rep["data_quality"] = {"warnings": ["column <Id> looks like an identifier"]}
    rep["compression"] = {"stages": {"dense": {"auc": 0.8, "sparsity": 0.0}, "pruned": {"auc": 0.79, "sparsity": 0.8}}}
    html = write_report(rep, bench_run / "report")["report.html"].read_text()
    assert "column &lt;Id&gt; looks like an identifier" in html
    assert "pruned" in html and "sparsity" in html
    _assert_self_contained(html)


def test_bench_cli_json_and_the_none_fits_exit_code(bench_run: Path) -> None:
    res = CliRunner().invoke(
        cli,
        [
            "bench",
            str(bench_run),
            "--repeat",
            "quick",
            "--no-keras",
            "--profile",
            "unconstrained",
            "--variants",
            "tflite-fp32,onnx-fp32",
            "--max-latency-us",
            "0.001",
            "--json",
            "-q",
        ],
    )
    assert res.exit_code == 3, res.output
    out = json.loads(res.stdout)
    assert out["recommendation"]["chosen"] is None
    assert out["recommendation"]["nearest"] in ("tflite-fp32", "onnx-fp32")
    assert all("latency p99" in v["failed"][0] for v in out["recommendation"]["verdicts"].values())
    assert Path(out["report"]["report.html"]).is_file()
    # `edgefin report` rebuilds from report.json and prints the same recommendation
    res2 = CliRunner().invoke(cli, ["report", str(bench_run), "--json", "-q"])
    assert res2.exit_code == 0, res2.output
    assert json.loads(res2.stdout)["recommendation"] == out["recommendation"]


def test_bench_cli_errors_are_clear(bench_run: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["bench", str(bench_run), "--profile", "mainframe"])
    assert res.exit_code == 2 and "kiosk-1core" in res.output
    res = CliRunner().invoke(cli, ["bench", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "edgefin convert" in res.output
    res = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "edgefin bench" in res.output
    assert load_report  # imported API stays available
