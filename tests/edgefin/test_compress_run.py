"""The run-directory step and `edgefin compress`: files, compress.json, reproducibility, usage errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edgefin.cli.main import cli
from edgefin.compress import compress_run
from edgefin.errors import UsageError
from edgefin.keras_io import load_model
from edgefin.rundir import RunDir
from tests.edgefin.compress_helpers import tiny_run

FAST = {"epochs": 4, "qat_epochs": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("compress") / "run")


@pytest.fixture(scope="module")
def compressed(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("compressed") / "run"
    shutil.copytree(trained, root)
    report = compress_run(root, **FAST)
    return root, report


def test_writes_models_and_report(compressed):
    root, report = compressed
    rd = RunDir.at(root)
    for stage in ("dense", "pruned", "qat"):
        assert rd.model_path(stage).exists()
    assert not rd.model_path("clustered").exists() and rd.latest_stage() == "qat"
    on_disk = json.loads(rd.compress_json.read_text())
    assert on_disk["stages"].keys() == {"dense", "pruned", "qat"} and on_disk["final_stage"] == "qat"
    metrics = json.loads(rd.metrics_json.read_text())
    assert on_disk["threshold"] == metrics["threshold"]
    for st in on_disk["stages"].values():
        for key in ("auc", "gini", "ks", "brier"):
            assert np.isfinite(st["test"][key])
        assert st["test"]["gini"] == pytest.approx(2 * st["test"]["auc"] - 1)
        assert 0.0 <= st["flip_rate_vs_dense"] <= 1.0
        assert {"weights_bytes", "weights_gzip_bytes", "file_bytes", "file_gzip_bytes"} <= st["size"].keys()
        assert st["sparsity"]["params"] > 0 and st["sparsity"]["layers"]
    assert on_disk["stages"]["dense"]["flip_rate_vs_dense"] == 0.0
    assert on_disk["stages"]["dense"]["test"]["auc"] == pytest.approx(metrics["test"]["auc"], abs=1e-6)
    assert "steps" in json.loads(rd.run_json.read_text()) and "compress" in json.loads(rd.run_json.read_text())["steps"]


def test_sparsity_is_measured_on_the_saved_weights(compressed):
    root, report = compressed
    rd = RunDir.at(root)
    pruned = load_model(rd.model_path("pruned"))
    zeros = [
        np.mean(pruned.get_layer(n).kernel.numpy() == 0) for n in report["stages"]["pruned"]["details"]["pruned_layers"]
    ]
    assert min(zeros) >= 0.79  # target 0.8 - 1% on every stripped kernel
    assert report["stages"]["pruned"]["sparsity"]["pruned_layers_kernel_sparsity"] >= 0.79
    qat = load_model(rd.model_path("qat"))  # reloaded QAT model: the zeros are in the file
    for layer in qat.layers:
        for w in layer.weights:
            if w.name.endswith("kernel:0") and layer.layer.name in zeros_layers(report):
                assert np.mean(w.numpy() == 0) >= 0.79
    assert report["stages"]["qat"]["sparsity"]["quantized_kernel_sparsity"] >= 0.7
    # pruning leaves the float32 tensors their size; gzip is where it shows
    dense_sz, pruned_sz = report["stages"]["dense"]["size"], report["stages"]["pruned"]["size"]
    assert pruned_sz["weights_bytes"] == dense_sz["weights_bytes"]
    assert pruned_sz["weights_gzip_bytes"] < 0.6 * dense_sz["weights_gzip_bytes"]
    names = [c["name"] for c in report["quality_bar"]["checks"]]
    assert any("keeps the pruned zeros" in n for n in names)


def zeros_layers(report):
    return set(report["stages"]["pruned"]["details"]["pruned_layers"])


def test_reproducible_with_a_seed(trained, compressed, tmp_path):
    _, first = compressed
    root = tmp_path / "again"
    shutil.copytree(trained, root)
    second = compress_run(root, **FAST)
    for stage in ("pruned", "qat"):
        assert second["stages"][stage]["test"] == first["stages"][stage]["test"]
        assert (
            second["stages"][stage]["sha256"] != ""
            and second["stages"][stage]["sparsity"] == first["stages"][stage]["sparsity"]
        )
    a = load_model(RunDir.at(compressed[0]).model_path("pruned")).get_weights()
    b = load_model(RunDir.at(root).model_path("pruned")).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_no_qat_removes_a_stale_qat_model(trained, tmp_path):
    root = tmp_path / "noqat"
    shutil.copytree(trained, root)
    rd = RunDir.at(root)
    rd.model_path("qat").parent.mkdir(parents=True, exist_ok=True)
    rd.model_path("qat").write_bytes(b"stale")
    (root / "bundles").mkdir()
    report = compress_run(root, epochs=3, qat=False)
    assert not rd.model_path("qat").exists() and not (root / "bundles").exists()
    assert report["final_stage"] == "pruned" and rd.latest_stage() == "pruned"


def test_library_usage_errors(trained, tmp_path):
    with pytest.raises(UsageError, match="`sparsity`"):
        compress_run(trained, sparsity=1.0)
    with pytest.raises(UsageError, match="unknown compress option"):
        compress_run(trained, target="default")  # the library takes CompressOptions fields only
    # the command refuses the user-model-only flags for a run directory, naming what they are for
    res = CliRunner().invoke(cli, ["compress", str(trained), "--target", "default"])
    assert res.exit_code == 2 and "--target" in res.output and "MODEL.keras" in res.output
    with pytest.raises(UsageError, match="not a run directory"):
        compress_run(tmp_path / "nothing")


def test_cli_sparsity_outside_range_is_exit_2(trained):
    runner = CliRunner()
    for bad in ("0", "1", "1.5", "-0.1"):
        res = runner.invoke(cli, ["compress", str(trained), "--sparsity", bad])
        assert res.exit_code == 2, res.output
    res = runner.invoke(cli, ["compress", str(trained), "--block", "2:4", "--sparsity", "0.8"])
    assert res.exit_code == 2 and "2:4" in res.output


def test_cli_run_dir_json(trained, tmp_path):
    root = tmp_path / "cli"
    shutil.copytree(trained, root)
    res = CliRunner().invoke(
        cli, ["compress", str(root), "--epochs", "3", "--no-qat", "--sparsity", "0.6", "--json", "-q"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["options"]["sparsity"] == 0.6 and out["final_stage"] == "pruned"
    assert out["stages"]["pruned"]["sparsity"]["pruned_layers_kernel_sparsity"] >= 0.59


def test_cli_gate_exit_3_when_the_bar_is_missed(trained, tmp_path):
    root = tmp_path / "gate"
    shutil.copytree(trained, root)
    # 99% sparsity on every layer of a 16-8 model cannot keep the AUC within 0.005: the gate must say so
    # (98% on the hidden layers alone kept it on this data once bin edges were published rounded)
    res = CliRunner().invoke(
        cli,
        ["compress", str(root), "--sparsity", "0.99", "--prune-output", "--epochs", "3", "--no-qat", "--gate", "-q"],
    )
    assert res.exit_code == 3, res.output
    assert (root / "compress.json").exists()


def test_fine_tuning_sees_the_training_rows_the_dense_model_saw(tmp_path):
    """A run trained with --augment smote is fine-tuned on the same augmented rows (never val/test)."""
    root = tiny_run(tmp_path / "aug", augment="smote")
    metrics = json.loads((root / "metrics.json").read_text())
    report = compress_run(root, epochs=3, qat=False)
    assert report["fine_tune_rows"]["train"] == metrics["model"]["train_rows"] > metrics["splits"]["train"]
    assert report["fine_tune_rows"]["validation"] == metrics["splits"]["validation"]
    assert report["fine_tune_rows"]["test"] == metrics["splits"]["test"]


def test_a_refused_compression_leaves_the_previous_one_alone(compressed, tmp_path):
    root = tmp_path / "keep"
    shutil.copytree(compressed[0], root)
    before = (root / "compress.json").read_bytes()
    with pytest.raises(Exception, match="no such layer"):
        compress_run(root, epochs=3, skip_layers=("nope",))
    with pytest.raises(UsageError, match="`epochs`"):
        compress_run(root, epochs=2, end_step=10_000)
    assert (root / "compress.json").read_bytes() == before
    assert RunDir.at(root).model_path("qat").exists()
