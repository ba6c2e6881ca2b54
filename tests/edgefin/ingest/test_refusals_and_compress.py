"""What ingest refuses, each with a typed error naming the file, column or layer; compress of user models;
run.json has one writer."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgefin.cli.main import cli
from edgefin.rundir import RunDir


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_unreadable_model_files_are_refused(user_data, tmp_path):
    data, _ = user_data
    junk = tmp_path / "model.keras"
    junk.write_bytes(b"not a model at all")
    res = run("convert", junk, "--data", data, "--target", "label", "--run-dir", tmp_path / "r1")
    assert res.exit_code == 2 and "is not a model edgefin can read" in res.stderr and "Traceback" not in res.stderr
    archive = tmp_path / "archive.keras"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("hello.txt", "x")
    res = run("convert", archive, "--data", data, "--target", "label", "--run-dir", tmp_path / "r2")
    assert res.exit_code == 2 and "not a Keras model (no config.json and metadata.json)" in res.stderr


def test_mismatched_and_non_numeric_columns_are_refused(models, user_data, tmp_path):
    _, frame = user_data
    extra = tmp_path / "extra.csv"
    frame.assign(e=1.0).to_csv(extra, index=False)
    res = run("convert", models["tf_keras-h5"], "--data", extra, "--target", "label", "--run-dir", tmp_path / "r1")
    assert res.exit_code == 2
    assert "takes 4 input features" in res.stderr and "5 numeric feature columns" in res.stderr
    text = tmp_path / "text.csv"
    frame.assign(region="north").to_csv(text, index=False)
    res = run("convert", models["onnx"], "--data", text, "--target", "label", "--run-dir", tmp_path / "r2")
    assert res.exit_code == 2 and "column 'region'" in res.stderr and "not numeric" in res.stderr
    # raw_features leaves it out
    res = run("convert", models["onnx"], "--data", text, "--target", "label", "--raw-features",
              "--variants", "onnx-fp32", "--run-dir", tmp_path / "r3", "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert any("left out" in n and "region" in n for n in json.loads(res.stdout)["notes"])


def test_tflite_from_onnx_is_refused_with_the_reason(models, user_data, tmp_path):
    data, _ = user_data
    res = run("convert", models["onnx"], "--data", data, "--target", "label", "--variants", "tflite-fp32",
              "--run-dir", tmp_path / "r")  # fmt: skip
    assert res.exit_code == 2 and "TFLite variants are not built from an ONNX model" in res.stderr


def test_compress_refuses_models_without_keras_layers(models, user_data, tmp_path):
    data, _ = user_data
    res = run("compress", models["onnx"], "--data", data, "--target", "label", "--out", tmp_path / "r")
    assert res.exit_code == 2 and "needs Keras layers" in res.output


def test_keras3_compress_refuses_an_unmappable_layer_by_name(keras3_unmappable, user_data, tmp_path):
    data, _ = user_data
    res = run("compress", keras3_unmappable, "--data", data, "--target", "label", "--out", tmp_path / "r")
    assert res.exit_code == 2, res.output
    assert "layer 'ln' (LayerNormalization)" in res.output and "cannot be rebuilt in tf_keras" in res.output
    # the same model still converts as it is
    res = run("convert", keras3_unmappable, "--data", data, "--target", "label", "--variants", "tflite-fp32,onnx-fp32",
              "--run-dir", tmp_path / "c")  # fmt: skip
    assert res.exit_code == 0, res.stderr


@pytest.mark.parametrize(("kind", "skip"), [("keras3-functional", ["bn"]), ("tf_keras-h5", ["bn_h"])])
def test_compress_a_users_model(kind, skip, models, user_data, tmp_path):
    """TFMOT's QAT has no quantiser for a BatchNormalization that follows no Dense: compress names it, and
    with those layers skipped (kept float) the model compresses. The leading Normalization / input
    BatchNormalization ('bn_in') is lifted into the spec at ingest, so it is neither named nor compressed."""
    data, _ = user_data
    rd = RunDir.at(tmp_path / "run")
    base = ("compress", models[kind], "--data", data, "--target", "label", "--out", rd.root, "--epochs", "2",
            "--qat-epochs", "1", "--json", "-q")  # fmt: skip
    refused = run(*base)
    assert refused.exit_code == 2 and f"layer{'s' if len(skip) > 1 else ''} '{skip[0]}' (BatchNormalization)" in (
        refused.output
    )
    res = run(*base, *[a for name in skip for a in ("--skip-layer", name)])
    assert res.exit_code == 0, res.output
    for stage in ("dense", "pruned", "qat"):
        assert rd.model_path(stage).exists()
    assert "bn_in" not in refused.output and "'norm'" not in refused.output
    lineage = json.loads(rd.run_json.read_text())["lineage"]
    assert lineage["lifted"]["class"] in ("Normalization", "BatchNormalization")
    assert lineage["compress"]["possible"]
    assert lineage["stages"]["pruned"]["from"] == "dense" and lineage["stages"]["qat"]["from"] == "pruned"
    if kind.startswith("keras3"):
        assert lineage["compress"]["rebuild_max_abs_delta"] <= 1e-6


def test_run_json_has_one_writer():
    """Only RunDir.write_record writes run.json: no other module names run_json in a write."""
    root = Path(__file__).resolve().parents[3]
    writes = re.compile(r"write_\w+\(\s*[\w.]*run_json")
    offenders = [
        str(p.relative_to(root))
        for base in ("edgefin", "converters", "benchmarks")
        for p in (root / base).rglob("*.py")
        if writes.search(p.read_text(encoding="utf-8")) and p.name != "rundir.py"
    ]
    assert offenders == []


def test_an_input_of_several_columns_beside_a_lookup_is_refused_with_the_reason(tmp_path):
    """A StringLookup inside a Keras 3 model is lifted when each input is one data column
    (test_lookup.py); an input that takes two columns at once cannot be matched to the data: convert
    refuses it, naming the input (no Traceback)."""
    import keras
    import pandas as pd

    num = keras.Input((2,), name="amounts")
    region = keras.Input((1,), dtype="string", name="region")
    onehot = keras.layers.StringLookup(vocabulary=["north", "south"], output_mode="one_hot", name="lookup")(region)
    h = keras.layers.Concatenate()([num, onehot])
    path = tmp_path / "lookup.keras"
    keras.Model([num, region], keras.layers.Dense(1, activation="sigmoid")(h)).save(path)
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": range(40), "b": range(40), "region": ["north", "south"] * 20, "label": [0, 1] * 20}).to_csv(
        data, index=False
    )
    res = run("convert", path, "--data", data, "--target", "label", "--run-dir", tmp_path / "r")
    assert res.exit_code == 2 and "Traceback" not in res.stderr, res.output
    assert "input 'amounts' has shape [None, 2]" in res.stderr and "one input per data column" in res.stderr


def test_a_string_input_reaching_the_converters_directly_is_refused_with_the_reason():
    """Outside ingest, the converters take one float matrix: a model with a string input is refused
    naming the input and the lookup layer."""
    import keras

    from edgefin_converters.errors import ModelInputError
    from edgefin_converters.sources import from_keras3

    region = keras.Input((1,), dtype="string", name="region")
    onehot = keras.layers.StringLookup(vocabulary=["north", "south"], output_mode="one_hot")(region)
    model = keras.Model(region, keras.layers.Dense(1, activation="sigmoid")(onehot))
    with pytest.raises(ModelInputError, match=r"input 'region' takes string values \(encoded inside the model by"):
        from_keras3(model)
