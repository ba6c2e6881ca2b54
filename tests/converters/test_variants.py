"""Every variant on a tiny real run: converted, verified and scored by the runtime, parity passed,
quantisation recorded, and conversion deterministic (same model bytes; manifests differ only in
created_at)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from edgefin_converters import VARIANT_NAMES

from edgefin.convert import ConvertOptions, convert_run
from edgefin.rundir import RunDir
from tests.converters.util import FIXTURE_FLIP_RATE, manifest_of, split_columns


@pytest.fixture(scope="session")
def converted(run_dir, tmp_path_factory):
    return convert_run(run_dir, _opts(out=tmp_path_factory.mktemp("bundles") / "first"))


def _opts(**kw):
    return ConvertOptions(max_flip_rate=FIXTURE_FLIP_RATE, **kw)


@pytest.fixture(scope="session")
def test_split(run_dir):
    return split_columns(run_dir, "test")


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_variant_bundle_loads_self_tests_and_passes_parity(converted, run_dir, name):
    import edgefin_runtime

    path = converted.bundles[name]
    assert path.name == f"{name}.efb" and path.parent == converted.out_dir
    predictor = edgefin_runtime.load(path)  # verifies hashes and runs the golden self-test
    m = manifest_of(path)
    run = RunDir.at(run_dir)
    assert m["model"]["variant"] == name
    assert m["model"]["engine"] == ("litert" if name.startswith("tflite") else "onnx")
    assert m["model"]["source_stage"] == "dense"
    assert m["parity"]["passed"] is True and m["parity"]["failures"] == [] and m["parity"]["gated"] is True
    assert m["parity"]["n"] == m["metrics"]["n"] > 300
    assert m["source"]["model_sha256"] == hashlib.sha256(run.model_path("dense").read_bytes()).hexdigest()
    assert m["source"]["data_sha256"] == json.loads(run.run_json.read_text())["data_sha256"]
    assert m["decision"]["threshold"] == json.loads(run.metrics_json.read_text())["threshold"]
    assert "'yes'" in m["decision"]["positive_means"]
    assert m["created_at"] and m["producer"]["libraries"]["tensorflow"]
    assert m["producer"]["conversion"]["variant"] == name
    golden = m["golden"]
    assert 6 <= len(golden) <= 8
    assert any(v is None for g in golden for v in g["record"].values())  # missing values are covered
    assert predictor.self_test()["golden"] == len(golden)


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_runtime_scores_equal_the_parity_scores(converted, test_split, name):
    """What the manifest reports is exactly what the runtime computes on the held-out rows."""
    from sklearn.metrics import roc_auc_score

    import edgefin_runtime

    cols, y = test_split
    m = manifest_of(converted.bundles[name])
    scored = edgefin_runtime.load(converted.bundles[name]).score_columns(cols)
    ok = ~scored.rejected
    p = scored.probabilities[ok]
    assert ok.sum() == m["metrics"]["n"]
    assert roc_auc_score(y[ok], p) == m["metrics"]["auc"] == m["parity"]["auc_variant"]
    assert float(np.mean(p >= m["decision"]["threshold"])) == pytest.approx(m["metrics"]["positive_rate"])


def test_float_variants_match_the_keras_model(converted):
    for name in ("tflite-fp32", "onnx-fp32"):
        assert converted.export.results[VARIANT_NAMES.index(name)].parity.max_abs_delta <= 1e-5
    fp16 = converted.export.results[VARIANT_NAMES.index("tflite-fp16")].parity
    assert 0 < fp16.max_abs_delta <= 1e-3


def _quant(name, converted):
    return manifest_of(converted.bundles[name])["producer"]["conversion"]["quantization"]


def test_quantisation_parameters_are_recorded(converted):
    assert "float16" in _quant("tflite-fp16", converted)["tensor_dtypes"]
    for name in ("tflite-int8", "tflite-int8-ptq"):
        q = _quant(name, converted)
        assert q["int8_weight_tensors"] and all("scale" in w for w in q["int8_weight_tensors"])
        assert q["input_quantization"]["dtype"] == "int8" and q["input_quantization"]["scale"] > 0
        assert q["output_quantization"]["scale"] == pytest.approx(1 / 256)  # a sigmoid output in int8
        m = manifest_of(converted.bundles[name])
        assert m["producer"]["conversion"]["calibration"]["split"] == "train"
        assert m["model"]["inputs"][0]["dtype"] == "float32"  # float I/O by default
    q = _quant("onnx-int8", converted)
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(q["ops"]) and q["int8_weight_tensors"]
    assert q["input_quantization"]["scale"] > 0
    assert "MatMulInteger" in _quant("onnx-dynamic", converted)["ops"]


def test_onnx_dynamic_scores_each_record_alone(converted, test_split):
    """ORT dynamic quantisation ranges a whole batch; the bundle has a fixed batch of 1 so a record's
    score never depends on its neighbours."""
    import edgefin_runtime

    m = manifest_of(converted.bundles["onnx-dynamic"])
    assert m["model"]["inputs"][0]["shape"][0] == 1
    cols, _ = test_split
    pred = edgefin_runtime.load(converted.bundles["onnx-dynamic"])
    all_rows = pred.score_columns(cols).probabilities
    first_ten = pred.score_columns({k: v[:10] for k, v in cols.items()}).probabilities
    np.testing.assert_array_equal(all_rows[:10], first_ten)
    assert m["parity"]["single_row"]["max_abs_delta_vs_batch"] == 0.0


def test_parity_report_lists_every_variant(converted):
    report = json.loads(converted.parity_path.read_text())
    assert report["passed"] is True and report["failures"] == []
    assert sorted(report["variants"]) == sorted(VARIANT_NAMES)
    assert report["bundles"] == {n: f"{n}.efb" for n in VARIANT_NAMES}
    for name, v in report["variants"].items():
        assert v["size"] == len(converted.export.results[VARIANT_NAMES.index(name)].model_bytes)
        assert 0 < v["gzip_size"] and "auc" in v["metrics"]


def test_converting_twice_is_deterministic(converted, run_dir, tmp_path):
    again = convert_run(run_dir, _opts(out=tmp_path / "second"))
    for first, second in zip(converted.export.results, again.export.results, strict=True):
        assert first.name == second.name
        assert first.model_bytes == second.model_bytes, first.name
        a, b = manifest_of(first.bundle), manifest_of(second.bundle)
        assert a["created_at"] and b["created_at"]
        a.pop("created_at"), b.pop("created_at")
        assert a == b, first.name


def test_int8_io_records_io_quantisation(run_dir, tmp_path):
    import edgefin_runtime

    res = convert_run(run_dir, _opts(variants="tflite-int8", int8_io=True, out=tmp_path))
    m = manifest_of(res.bundles["tflite-int8"])
    tin, tout = m["model"]["inputs"][0], m["model"]["outputs"][0]
    assert tin["dtype"] == tout["dtype"] == "int8"
    assert tin["quantization"]["scale"] > 0 and tout["quantization"]["zero_point"] == -128
    assert m["producer"]["conversion"]["int8_io"] is True and m["parity"]["passed"]
    edgefin_runtime.load(res.bundles["tflite-int8"])  # the runtime quantises the input itself


def test_qat_run_converts_int8_from_the_qat_model(qat_run_dir, tmp_path):
    run = RunDir.at(qat_run_dir)
    res = convert_run(qat_run_dir, _opts(variants="tflite-fp32,tflite-int8,tflite-int8-ptq,onnx-int8", out=tmp_path))
    assert res.stage == "qat"
    stages = {n: manifest_of(p)["model"]["source_stage"] for n, p in res.bundles.items()}
    assert stages == {"tflite-fp32": "dense", "tflite-int8": "qat", "tflite-int8-ptq": "dense", "onnx-int8": "dense"}
    m = manifest_of(res.bundles["tflite-int8"])
    conv = m["producer"]["conversion"]
    assert conv["from_qat"] is True and "calibration" not in conv and "quantisation-aware" in conv["ranges"]
    assert m["source"]["model_sha256"] == hashlib.sha256(run.model_path("qat").read_bytes()).hexdigest()
    assert m["source"]["qat"] is True and m["parity"]["passed"]
    assert m["parity"]["source_stage"] == "qat"  # compared with the QAT Keras model it came from
    assert manifest_of(res.bundles["tflite-fp32"])["parity"]["max_abs_delta"] <= 1e-5


def test_explicit_stage_wins_over_the_latest(qat_run_dir, tmp_path):
    res = convert_run(qat_run_dir, _opts(variants="tflite-int8", stage="dense", out=tmp_path))
    assert res.stage == "dense"
    m = manifest_of(res.bundles["tflite-int8"])
    assert m["model"]["source_stage"] == "dense" and m["producer"]["conversion"]["from_qat"] is False


def test_qat_int8_uses_the_learned_ranges_not_the_calibration_rows(qat_run_dir):
    from edgefin_converters.tflite import to_tflite_int8

    from edgefin.data.rundata import encoded_split
    from edgefin.keras_io import load_model

    qat = load_model(RunDir.at(qat_run_dir).model_path("qat"))
    x, _ = encoded_split(RunDir.at(qat_run_dir), "train")
    assert to_tflite_int8(qat, x[:200]) == to_tflite_int8(qat, x[:200] * 5.0)
