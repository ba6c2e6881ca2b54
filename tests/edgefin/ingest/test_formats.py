"""`edgefin convert MODEL --data --target`: each format and Keras flavour a user brings, detected by content.

Float variants must reproduce the user's own scores (computed by the user's own framework) to 1e-5 on
the held-out rows; int8 variants must pass the usual gates; run.json records the lineage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from edgefin.cli.main import cli
from edgefin.rundir import RunDir

COLUMNS = ["a", "b", "c", "d"]
KINDS = ["keras3-sequential", "keras3-functional", "tf_keras-keras", "tf_keras-h5", "tf_keras-savedmodel", "onnx"]
FORMAT = {
    "keras3-sequential": ("keras", "keras3"),
    "keras3-functional": ("keras", "keras3"),
    "tf_keras-keras": ("keras", "tf_keras"),
    "tf_keras-h5": ("h5", "tf_keras"),
    "tf_keras-savedmodel": ("saved_model", "tf_keras"),
    "onnx": ("onnx", None),
}

LIFTED = {
    "keras3-sequential": "Normalization",
    "keras3-functional": "Normalization",
    "tf_keras-keras": "BatchNormalization",
    "tf_keras-h5": "BatchNormalization",
    "tf_keras-savedmodel": "BatchNormalization",
    "onnx": "ONNX Mul+Add",
}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("kind", KINDS)
def test_every_format_converts_and_reproduces_the_users_scores(kind, models, user_data, own, tmp_path):
    from edgefin_runtime import load
    from edgefin_runtime.bundle import read_bundle

    data, _ = user_data
    variants = "all" if kind == "onnx" else "tflite-fp32,tflite-int8,onnx-fp32,onnx-int8"
    rd = RunDir.at(tmp_path / "run")
    # every model starts with its own per-column standardisation (Normalization in the Keras 3 models,
    # BatchNormalization on the raw inputs in the tf_keras ones, the Mul/Add it became in the ONNX one):
    # ingest lifts it into the bundle's spec, so int8 input quantisation sees standardised columns
    res = run("convert", models[kind], "--data", data, "--target", "label", "--variants", variants,
              "--run-dir", rd.root, "--json")  # fmt: skip
    assert res.exit_code == 0, res.output + res.stderr
    doc = json.loads(res.stdout)
    assert doc["passed"], doc
    names = {v["variant"] for v in doc["variants"]}
    if kind == "onnx":  # ONNX variants only, and the notes say why
        assert names == {"onnx-fp32", "onnx-dynamic", "onnx-int8"}
        assert any("TFLite variants are not built from an ONNX model" in n for n in doc["notes"])
    else:
        assert names == {"tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8"}

    record = json.loads(rd.run_json.read_text())
    source = record["lineage"]["source"]
    assert (source["format"], source["keras_flavour"]) == FORMAT[kind]
    assert len(source["sha256"]) == 64 and record["lineage"]["stages"]["dense"]["from"] == "source"
    split = {s: len(pd.read_parquet(rd.split_path(s))) for s in ("train", "validation", "test")}
    assert split["test"] == split["validation"] == 240  # the one split: 60/20/20, as edgefin train

    test = pd.read_parquet(rd.split_path("test"))
    complete = test[COLUMNS].notna().all(axis=1).to_numpy()
    x = test.loc[complete, COLUMNS].to_numpy("float32")
    mine = own(kind, models[kind], x)
    for v in doc["variants"]:
        predictor = load(v["bundle"])
        got = predictor.score_columns({c: test[c].to_numpy() for c in COLUMNS}).probabilities
        assert np.isfinite(got).all()  # rows with a gap in b are scored too (training median)
        if v["variant"] in ("tflite-fp32", "onnx-fp32"):
            assert np.max(np.abs(got[complete] - mine)) <= 1e-5, v["variant"]
        else:
            assert v["passed"] and abs(v["auc_delta"]) <= 0.005 and v["flip_rate"] <= 0.01, v
    manifest = read_bundle(doc["variants"][0]["bundle"]).manifest
    assert manifest.source["source_format"] == FORMAT[kind][0]
    b = next(f for f in manifest.schema.fields if f.name == "b")
    assert b.allow_missing and not next(f for f in manifest.schema.fields if f.name == "a").allow_missing
    # the leading layer (or the ONNX nodes it became) is lifted into the bundle's spec, proven on the training rows
    lifted = record["lineage"]["lifted"]
    assert lifted["class"] == LIFTED[kind] and lifted["max_abs_delta"] <= 1e-6 and lifted["rows"] == split["train"]
    steps = {s.field: s for s in manifest.preprocessing.steps}
    # the layer's own statistics (a BatchNormalization's gamma and beta move them a little): the columns'
    # scales, 1, 10, 100 and 0.1, standardised in the spec
    assert steps["d"].scale < steps["a"].scale / 3 < steps["b"].scale / 9 < steps["c"].scale / 90
    assert abs(steps["c"].mean - 50) < 30 and abs(steps["a"].mean) < 0.5
    assert "lifted into the bundle's spec" in manifest.source["model_preprocessing"]
    inspect = run("inspect", doc["variants"][0]["bundle"], "--no-self-test")
    assert "model preprocessing: lifted into the bundle's spec" in inspect.output
    assert f"({LIFTED[kind]})" in inspect.output
    # and per field, beside its encoding: lifted from the model (none is the identity here)
    assert inspect.output.count(f"({LIFTED[kind]}) -> (x - mean) / scale]") == len(COLUMNS)
    assert record["lineage"]["field_preprocessing"]["c"].startswith("lifted from the model: ")


def test_a_saved_model_directory_is_never_a_run_directory(models, user_data, tmp_path):
    data, _ = user_data
    res = run("convert", models["tf_keras-savedmodel"], "--variants", "onnx-fp32")
    assert res.exit_code == 2 and "--data FILE and --target COLUMN" in res.stderr  # a model, asked for data


def test_ingest_is_reused_for_the_same_model_and_data(models, user_data, tmp_path):
    data, _ = user_data
    args = ("convert", models["tf_keras-h5"], "--data", data, "--target", "label", "--variants", "onnx-fp32",
            "--run-dir", tmp_path / "run")  # fmt: skip
    assert run(*args).exit_code == 0
    again = run(*args, "--json")
    assert again.exit_code == 0, again.stderr
    assert any("already holds this model and data" in n for n in json.loads(again.stdout)["notes"])
