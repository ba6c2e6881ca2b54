"""`edgefin compress MODEL.keras --data FILE --target COL --out RUN_DIR`: a user's own model."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgefin.cli.main import cli
from edgefin.rundir import RunDir
from tests.fixtures.tabular import loans, write_csv


def raw_model(path, k=3, seed=0):
    """A user's model over the raw numeric columns (income, age, debt), scaled inside by a Dense layer."""
    from edgefin.tfcompat import keras, seed_everything

    seed_everything(seed)
    inp = keras.Input((k,), name="x")
    h = keras.layers.Dense(
        16, activation="relu", name="h1", kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3)
    )(inp)
    h = keras.layers.Dense(8, activation="relu", name="h2")(h)
    model = keras.Model(inp, keras.layers.Dense(1, activation="sigmoid", name="p")(h))
    model.save(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("byo")
    return raw_model(d / "mine.keras"), write_csv(loans(400, seed=5), d / "loans.csv")


def run(*args):
    return CliRunner().invoke(cli, ["compress", *map(str, args)])


def test_raw_features_model_becomes_a_run(files, tmp_path):
    model, data = files
    out = tmp_path / "run"
    res = run(
        model,
        "--data",
        data,
        "--target",
        "default",
        "--positive",
        "yes",
        "--raw-features",
        "--out",
        out,
        "--epochs",
        "3",
        "--qat-epochs",
        "1",
        "--json",
        "-q",
    )
    assert res.exit_code == 0, res.output
    rd = RunDir.at(out)
    schema = json.loads(rd.schema_json.read_text())
    assert [f["name"] for f in schema["fields"]] == ["income", "age", "debt"]
    steps = json.loads(rd.preprocess_json.read_text())["steps"]
    assert all(s["mean"] == 0.0 and s["scale"] == 1.0 for s in steps)  # the model takes raw values
    for stage in ("dense", "pruned", "qat"):
        assert rd.model_path(stage).exists()
    report = json.loads(res.stdout)
    assert report["stages"]["pruned"]["sparsity"]["pruned_layers_kernel_sparsity"] >= 0.79
    assert json.loads(rd.run_json.read_text())["steps"]["import"]["fingerprint"]
    # the same model and data again: the run is reused, compression runs again
    res = run(
        model,
        "--data",
        data,
        "--target",
        "default",
        "--positive",
        "yes",
        "--raw-features",
        "--out",
        out,
        "--epochs",
        "3",
        "--no-qat",
        "-q",
    )
    assert res.exit_code == 0, res.output
    assert not rd.model_path("qat").exists()


def test_width_mismatch_is_a_clear_usage_error(files, tmp_path):
    model, data = files
    res = run(model, "--data", data, "--target", "default", "--positive", "yes", "--out", tmp_path / "x")
    assert res.exit_code == 2
    assert "takes 3 input features" in res.output and "--raw-features" in res.output
    assert "Traceback" not in res.output


def test_missing_data_and_foreign_out(files, tmp_path):
    model, data = files
    res = run(model, "--target", "default")
    assert res.exit_code == 2 and "--data" in res.output
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something.txt").write_text("x")
    res = run(model, "--data", data, "--target", "default", "--positive", "yes", "--raw-features", "--out", busy)
    assert res.exit_code == 2 and "already holds" in res.output
    res = run(tmp_path / "nope.txt")
    assert res.exit_code == 2


def test_unloadable_model_file(files, tmp_path):
    _, data = files
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    res = run(bad, "--data", data, "--target", "default", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "cannot load Keras model" in res.output
