"""The harness on a tiny real run directory: each variant in its own pinned, capped worker process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgefin.bench.harness import BenchOptions, list_variants, measure_variant, run_bench, select_variants
from edgefin.bench.profiles import Profile
from edgefin.bench.settings import Settings
from edgefin.errors import RunDirError, UsageError
from edgefin.rundir import RunDir
from tests.edgefin.bench_rundir import bench_run, bench_run_cached  # noqa: F401 - fixtures

FAST = Settings(
    warmup=5,
    blocks=2,
    block_size=30,
    batch_sizes=(1, 64),
    min_block_s=0.005,
    keras_calls=5,
    keras_predict_calls=2,
    timeout_s=120,
)


def _inputs(run: Path, tmp: Path) -> Path:
    from edgefin.bench.harness import write_inputs

    p = tmp / "inputs.json"
    write_inputs(RunDir.at(run), p)
    return p


def test_worker_runs_pinned_to_the_profile_cpus(bench_run: Path, tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    res = measure_variant(
        "tflite-fp32",
        bench_run / "bundles" / "tflite-fp32.efb",
        _inputs(bench_run, tmp_path),
        Profile("pin", cores=1, threads=1, memory_mib=512),
        FAST,
        tmp_path,
    )
    assert res["status"] == "ok", res.get("error")
    applied = res["profile_applied"]
    assert applied["cpus"] == cpus[:1]  # what the worker itself read back after pinning
    assert applied["ran_on_cpu"] == cpus[0]  # and where the kernel really ran it
    assert applied["rlimit_as_mib"] == 512 and applied["threads"] == 1
    assert res["memory"]["peak_vm_mib"] <= 512
    lat = res["latency"]["runtime"]
    assert lat["n"] == FAST.blocks * FAST.block_size
    assert 0 < lat["p50_us"] <= lat["p95_us"] <= lat["p99_us"] <= lat["max_us"]
    assert len(lat["quantiles_us"]) == 101
    assert {t["batch"] for t in res["throughput"]["engine"]} == {1, 64}
    assert res["cold_start"]["spawn_to_first_score_ms"] > res["cold_start"]["load_ms"] > 0
    assert res["heavy_modules_loaded"] == []  # no TensorFlow, pandas or training code in the worker


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to the second")
def test_a_two_core_profile_gets_both_cores(bench_run: Path, tmp_path: Path) -> None:
    res = measure_variant(
        "onnx-fp32",
        bench_run / "bundles" / "onnx-fp32.efb",
        _inputs(bench_run, tmp_path),
        Profile("two", cores=2, threads=2),
        FAST,
        tmp_path,
    )
    assert res["status"] == "ok", res.get("error")
    assert res["profile_applied"]["cpus"] == sorted(os.sched_getaffinity(0))[:2]
    assert res["profile_applied"]["rlimit_as_mib"] is None


def test_a_tiny_memory_cap_is_does_not_fit_not_a_crash(bench_run: Path, tmp_path: Path) -> None:
    res = measure_variant(
        "onnx-fp32",
        bench_run / "bundles" / "onnx-fp32.efb",
        _inputs(bench_run, tmp_path),
        Profile("tiny", cores=1, memory_mib=90),
        FAST,
        tmp_path,
    )
    assert res["status"] == "does_not_fit", res
    assert "memory" in res["error"].lower() or "map" in res["error"].lower() or "cap" in res["error"].lower()


def test_a_broken_bundle_under_a_cap_is_an_error_not_a_memory_verdict(bench_run: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.efb"
    data = bytearray((bench_run / "bundles" / "tflite-fp32.efb").read_bytes())
    data[-40] ^= 0xFF
    bad.write_bytes(bytes(data))
    res = measure_variant(
        "bad", bad, _inputs(bench_run, tmp_path), Profile("cap", cores=1, memory_mib=512), FAST, tmp_path
    )
    assert res["status"] == "error", res


def test_unknown_variants_and_missing_bundles_are_clear_errors(bench_run: Path, tmp_path: Path) -> None:
    found = list_variants(RunDir.at(bench_run))
    with pytest.raises(UsageError, match="tflite-fp32"):
        select_variants(found, ["tflite-fp99"])
    with pytest.raises(RunDirError, match="edgefin convert"):
        list_variants(RunDir.at(tmp_path))


def test_run_bench_measures_every_variant_and_keras(bench_run: Path) -> None:
    opts = BenchOptions(profile=Profile("kiosk", cores=1, threads=1, memory_mib=256), settings=FAST)
    rep = run_bench(bench_run, opts)
    names = [v["name"] for v in rep["variants"]]
    assert names == ["onnx-fp32", "tflite-fp32", "tflite-int8"]
    metrics = json.loads((bench_run / "metrics.json").read_text())
    for v in rep["variants"]:
        assert v["status"] == "ok", v.get("error")
        q = v["quality"]
        assert 0.0 <= q["auc"] <= 1.0 and q["gini"] == pytest.approx(2 * q["auc"] - 1)
        assert 0.0 <= q["flip_rate_vs_dense"] <= 1.0
        assert v["bundle_gzip_bytes"] < v["bundle_bytes"] * 1.1 and v["model_bytes"] > 0
        assert v["ratios"]["keras_call_over_runtime"] > 1  # the runtime beats model(x) on one record
    # the float variants score like the dense model they came from
    fp32 = next(v for v in rep["variants"] if v["name"] == "tflite-fp32")
    assert fp32["quality"]["max_abs_delta_vs_dense"] < 1e-4
    # the Keras worker scores the same test rows as training did (rank ties may move by float rounding)
    assert rep["source"]["auc"] == pytest.approx(metrics["test"]["auc"], abs=1e-3)
    assert rep["source"]["keras"]["status"] == "ok"
    assert rep["recommendation"]["chosen"] in names
    assert rep["machine"]["cpu_count"] >= 1 and rep["versions"]["onnxruntime"] != "not installed"
    assert set(rep["curves"]) >= {"dense (Keras)", rep["recommendation"]["chosen"]}
    json.dumps(rep, allow_nan=False)  # strict JSON all the way
