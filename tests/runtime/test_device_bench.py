"""``edgefin-run bench``: bundles measured on this machine by the runtime alone, results in a versioned JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edgefin_runtime.benchmark.device import SCHEMA, SCHEMA_VERSION, bench_bundles, read_results, validate
from edgefin_runtime.errors import BenchResultsError

# the CLI in a process where importing TensorFlow (or the toolkit) fails loudly: proves the parent needs
# neither; the measuring workers report what they loaded themselves (heavy_modules_loaded)
BLOCKED = r"""
import sys
for name in ("tensorflow", "tf_keras", "keras", "edgefin", "edgefin_converters", "pandas"):
    sys.modules[name] = None
from edgefin_runtime.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKED, "bench", *args], capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def results(tiny_bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("devbench") / "device.json"
    proc = _run_cli(
        str(tiny_bundles["tflite-int8"]), "--repeat", "quick", "--name", "kiosk-07", "--output", str(out), "-q"
    )
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    doc["_stdout"] = proc.stdout
    return doc


def test_a_bundle_is_measured_without_tensorflow(results: dict[str, Any]) -> None:
    (b,) = results["bundles"]
    assert b["status"] == "ok", b.get("error")
    assert b["heavy_modules_loaded"] == []
    for path in ("runtime", "engine"):
        lat = b["latency"][path]
        assert 0 < lat["p50_us"] <= lat["p95_us"] <= lat["p99_us"]
    assert b["cold_start"]["spawn_to_first_score_ms"] > 0
    assert b["memory"]["peak_rss_mib"] > 0
    assert {t["batch"] for t in b["throughput"]["runtime_columns"]} == {1, 64, 1024}
    assert "tflite-int8" in results["_stdout"]  # the summary table


def test_the_acceptance_set_is_timed_and_matches_the_build_machine(results: dict[str, Any]) -> None:
    (b,) = results["bundles"]
    assert b["status"] == "ok", b.get("error")
    assert b["records"]["source"] == "acceptance" and b["records"]["count"] > 8
    # same machine, same engine: the device reproduces the scores the bundle recorded when it was built
    assert b["acceptance"]["n"] == b["records"]["count"]
    assert b["acceptance"]["max_abs_diff"] <= 1e-6
    assert "scores" not in b  # no per-row output in a results file


def test_the_results_follow_the_documented_schema(results: dict[str, Any], tiny_bundles: dict[str, Path]) -> None:
    from edgefin_runtime.bundle import read_bundle

    assert results["schema"] == SCHEMA and results["schema_version"] == SCHEMA_VERSION
    assert validate(results, "results") is results
    assert results["device"]["name"] == "kiosk-07"
    m = results["device"]["machine"]
    for key in ("cpu_model", "cpu_features", "cpu_count", "memory_total_mib", "os", "python", "machine"):
        assert key in m
    assert results["device"]["versions"]["edgefin-runtime"] != "not installed"
    (b,) = results["bundles"]
    assert b["sha256"] == read_bundle(tiny_bundles["tflite-int8"]).sha256
    assert b["variant"] == "tflite-int8" and b["engine"] == "litert"


def test_the_devices_own_rows_are_never_written(tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("Income,Age,Home,Job\n123.5,41,rent,fixed\n77.25,29,owner,partime\nbad,33,rent,fixed\n")
    doc = bench_bundles([str(tiny_bundles["tflite-int8"])], data=None, records=4, repeat="quick")
    assert doc["bundles"][0]["records"]["count"] == 4
    out = tmp_path / "d.json"
    proc = _run_cli(str(tiny_bundles["tflite-int8"]), "--data", str(data), "--repeat", "quick", "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    doc = json.loads(text)
    (b,) = doc["bundles"]
    assert b["status"] == "ok", b.get("error")
    assert b["records"] == {"source": "data", "count": 2, "rejected": 0}  # the unreadable row is skipped
    assert "acceptance" not in b and "scores" not in b
    assert "123.5" not in text and "77.25" not in text


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda d: d.update(schema="something-else"), "'schema'"),
        (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "'schema_version'"),
        (lambda d: d["device"].update(name=""), "device.name"),
        (lambda d: d["bundles"][0].pop("sha256"), "bundles[0].sha256"),
        (lambda d: d.update(bundles={}), "'bundles'"),
    ],
)
def test_a_bad_results_file_is_refused_naming_the_key(results: dict[str, Any], mutate: Any, key: str) -> None:
    doc = json.loads(json.dumps({k: v for k, v in results.items() if k != "_stdout"}))
    mutate(doc)
    with pytest.raises(BenchResultsError, match=key.replace("[", r"\[").replace("]", r"\]")):
        validate(doc, "dev.json")


def test_unreadable_results_and_bundles_are_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BenchResultsError, match="not valid JSON"):
        read_results(str(bad))
    with pytest.raises(BenchResultsError, match="cannot read"):
        read_results(str(tmp_path / "missing.json"))
    proc = _run_cli(str(tmp_path / "missing.efb"), "-q")
    assert proc.returncode == 2, proc.stderr
    assert "missing.efb" in proc.stderr
