"""`edgefin convert MODEL.keras --data FILE --target COL`: a user's own model, numeric inputs in the
model's order (identity preprocessing) or with an edgefin schema; unsupported layers/ops are named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from edgefin.cli.main import cli
from edgefin.rundir import RunDir
from tests.converters.util import FIXTURE_FLIP_RATE, manifest_of

COLUMNS = ["x1", "x2", "x3", "x4"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def numeric_data(tmp_path_factory):
    rng = np.random.default_rng(7)
    n = 1500
    x = rng.normal(size=(n, 4))
    y = (x @ np.array([1.5, -1.0, 0.5, 0.0]) + rng.logistic(size=n) * 0.5 > 0).astype(int)
    frame = pd.DataFrame(x, columns=COLUMNS)
    frame.loc[rng.random(n) < 0.03, "x2"] = np.nan  # rows a model without imputation cannot score
    frame["label"] = y
    path = tmp_path_factory.mktemp("user") / "data.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _dense(n_in=4):
    from edgefin.tfcompat import keras

    inp = keras.Input((n_in,), name="inputs")
    h = keras.layers.Dense(8, activation="relu")(inp)
    return inp, keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h))


@pytest.fixture(scope="module")
def user_model(numeric_data, tmp_path_factory):
    from edgefin.tfcompat import seed_everything

    _, frame = numeric_data
    seed_everything(0)
    _, model = _dense()
    model.compile(optimizer="adam", loss="binary_crossentropy")
    ok = frame[COLUMNS].notna().all(axis=1)
    model.fit(
        frame.loc[ok, COLUMNS].to_numpy("float32"), frame.loc[ok, "label"].to_numpy("float32"), epochs=15, verbose=0
    )
    path = tmp_path_factory.mktemp("user") / "scorer.keras"
    model.save(path)
    return path


def test_user_model_with_numeric_inputs(user_model, numeric_data, tmp_path):
    data, frame = numeric_data
    result = run(
        "convert",
        user_model,
        "--data",
        data,
        "--target",
        "label",
        "--variants",
        "tflite-fp32,tflite-int8,onnx-fp32",
        "--max-flip-rate",
        FIXTURE_FLIP_RATE,
        "--out",
        tmp_path,
        "--json",
    )
    assert result.exit_code == 0, result.output + result.stderr
    doc = json.loads(result.stdout)
    assert doc["stage"] == "dense" and doc["passed"]  # the user model is its run's dense stage
    m = manifest_of(tmp_path / "tflite-int8.efb")
    assert [f["name"] for f in m["schema"]["fields"]] == COLUMNS  # the file's order = the model's order
    # the one behaviour for user models (edgefin.ingest): gaps filled with the training median, the
    # threshold at max-KS on the validation split, parity on the 20% test split
    assert [f["allow_missing"] for f in m["schema"]["fields"]] == [False, True, False, False]
    assert all((s["mean"], s["scale"]) == (0.0, 1.0) for s in m["preprocessing"]["steps"])
    assert (m["schema"]["target"], m["schema"]["positive_label"]) == ("label", "1")
    assert m["decision"]["method"] == "max_ks"
    assert m["parity"]["excluded_rows"] == 0 and m["parity"]["n"] == int(round(len(frame) * 0.2))
    assert m["source"]["source_file"] == "scorer.keras" and m["source"]["source_format"] == "keras"
    assert m["model"]["source_stage"] == "dense"


def test_user_model_threshold_can_be_fixed(user_model, numeric_data, tmp_path):
    data, _ = numeric_data
    result = run(
        "convert",
        user_model,
        "--data",
        data,
        "--target",
        "label",
        "--variants",
        "onnx-fp32",
        "--threshold",
        "0.35",
        "--run-dir",
        tmp_path / "run",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.stderr
    d = manifest_of(tmp_path / "onnx-fp32.efb")["decision"]
    assert d["method"] == "fixed" and d["threshold"] == 0.35


def test_user_model_needs_data_and_target(user_model):
    result = run("convert", user_model)
    assert result.exit_code == 2 and "--data FILE and --target COLUMN" in result.stderr


def test_feature_count_must_match_the_model(user_model, numeric_data, tmp_path):
    _, frame = numeric_data
    extra = frame.assign(x5=1.0)
    path = tmp_path / "extra.csv"
    extra.to_csv(path, index=False)
    result = run("convert", user_model, "--data", path, "--target", "label", "--variants", "tflite-fp32")
    assert result.exit_code == 2
    assert "5 numeric feature columns" in result.stderr and "takes 4 input features" in result.stderr


def test_non_numeric_column_needs_a_schema(user_model, numeric_data, tmp_path):
    _, frame = numeric_data
    text = frame.assign(x4=np.where(frame["x1"] > 0, "a", "b"))
    path = tmp_path / "text.csv"
    text.to_csv(path, index=False)
    result = run("convert", user_model, "--data", path, "--target", "label", "--variants", "tflite-fp32")
    assert result.exit_code == 2 and "column 'x4'" in result.stderr and "not numeric" in result.stderr


def test_user_model_with_an_edgefin_schema(run_dir, loans_csv, tmp_path):
    """A model trained on edgefin-encoded features converts from raw columns with its schema + spec."""
    rd = RunDir.at(run_dir)
    result = run(
        "convert",
        rd.model_path("dense"),
        "--data",
        loans_csv,
        "--target",
        "default",
        "--positive",
        "yes",
        "--schema",
        rd.schema_json,
        "--variants",
        "tflite-fp32",
        "--out",
        tmp_path,
    )
    assert result.exit_code == 0, result.stderr
    m = manifest_of(tmp_path / "tflite-fp32.efb")
    assert m["preprocessing"] == json.loads(rd.preprocess_json.read_text())
    assert m["parity"]["passed"] and m["parity"]["excluded_rows"] == 0


def test_two_class_softmax_output_is_refused(numeric_data, tmp_path):
    from edgefin.tfcompat import keras

    data, _ = numeric_data
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(inp))
    path = tmp_path / "softmax.keras"
    model.save(path)
    result = run("convert", path, "--data", data, "--target", "label", "--variants", "tflite-fp32")
    assert result.exit_code == 2
    assert "expected an output of shape (batch, 1)" in result.stderr and "sigmoid" in result.stderr


def _string_op_model(path):
    """A model whose graph needs TensorFlow string ops: TFOpLambda layers, loadable in safe mode."""
    from edgefin.tfcompat import keras, tf

    inp = keras.Input((4,), name="inputs")
    h = tf.strings.to_number(tf.strings.as_string(inp))
    keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h)).save(path)
    return path


def test_unsupported_op_is_named_for_tflite(numeric_data, tmp_path):
    data, _ = numeric_data
    model = _string_op_model(tmp_path / "strings.keras")
    result = run("convert", model, "--data", data, "--target", "label", "--variants", "tflite-fp32")
    assert result.exit_code == 2, result.output + result.stderr
    err = result.stderr
    assert "tflite-fp32" in err and "'AsString'" in err and "'StringToNumber'" in err
    assert "layer 'tf.strings.as_string'" in err and "Traceback" not in err


def test_unsupported_op_is_named_for_onnx(numeric_data, tmp_path):
    from edgefin.tfcompat import keras, tf

    data, _ = numeric_data
    inp = keras.Input((4,), name="inputs")
    h = tf.cast(tf.strings.to_hash_bucket_fast(tf.strings.as_string(inp), 7), tf.float32)
    path = tmp_path / "hash.keras"
    keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h)).save(path)
    result = run("convert", path, "--data", data, "--target", "label", "--variants", "onnx-fp32")
    assert result.exit_code == 2, result.output + result.stderr
    assert "'StringToHashBucketFast'" in result.stderr and "layer 'tf.strings.to_hash_bucket_fast'" in result.stderr


def test_lambda_layer_is_named_by_the_library():
    """In memory (a Lambda cannot be reloaded from a file in safe mode) the layer's own name is given."""
    from edgefin_converters import UnsupportedOpError
    from edgefin_converters.tflite import to_tflite_fp32

    from edgefin.tfcompat import keras, tf

    inp = keras.Input((4,))
    h = keras.layers.Lambda(lambda x: tf.strings.to_number(tf.strings.as_string(x)), name="stringify")(inp)
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(h))
    with pytest.raises(UnsupportedOpError) as exc:
        to_tflite_fp32(model)
    assert exc.value.layer == "stringify" and exc.value.op in ("AsString", "StringToNumber")
    assert "layer 'stringify'" in str(exc.value)
