"""`edgefin train` end to end on small data: the run directory contract, config files, bad input -> exit 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from edgefin_runtime.manifest import PreprocessSpec, Schema

from edgefin.cli.main import cli
from edgefin.data import encode, load_split, run_preprocessor
from edgefin.data.io import file_sha256
from edgefin.rundir import RunDir
from tests.fixtures.tabular import loans, write_csv

FAST = ["--hidden", "8", "--epochs", "3", "--patience", "2", "-q"]


def run(args):
    result = CliRunner().invoke(cli, ["train", *map(str, args)])
    return result


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    return write_csv(loans(300, seed=3), tmp_path_factory.mktemp("data") / "loans.csv")


@pytest.fixture(scope="module")
def trained(csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r1"
    result = run([csv, "--target", "default", "--positive", "yes", "--drop", "debt", *FAST, "--json", "--out", out])
    assert result.exit_code == 0, result.output
    return RunDir.at(out), json.loads(result.stdout)


def test_run_directory_contract(trained, csv):
    run, stdout_metrics = trained
    for p in (
        run.schema_json,
        run.preprocess_json,
        run.quality_json,
        run.metrics_json,
        run.run_json,
        run.model_path("dense"),
        *(run.split_path(s) for s in ("train", "validation", "test")),
    ):
        assert p.exists(), p
    metrics = json.loads(run.metrics_json.read_text())
    assert metrics == stdout_metrics  # --json prints exactly metrics.json
    for split in ("test", "validation"):
        for k in ("auc", "gini", "ks", "brier", "logloss", "n", "accuracy", "precision", "recall", "f1"):
            assert isinstance(metrics[split][k], (int, float)), (split, k)
    assert metrics["threshold_method"] == "max_ks" and 0 <= metrics["threshold"] <= 1
    assert 0.5 < metrics["baseline"]["logistic_regression"]["test_auc"] <= 1
    assert metrics["model"]["hidden"] == [8] and metrics["model"]["epochs_run"] <= 3
    assert metrics["test"]["n"] + metrics["validation"]["n"] + metrics["splits"]["train"] == 300

    info = json.loads(run.run_json.read_text())
    assert info["data_sha256"] == file_sha256(csv)
    assert (info["target"], info["positive_label"], info["negative_label"]) == ("default", "yes", "no")
    assert info["seed"] == 42 and info["options"]["drop"] == ["debt"]
    assert {"tensorflow", "tf_keras", "numpy", "scikit_learn"} <= set(info["versions"])

    schema = Schema.from_dict(json.loads(run.schema_json.read_text()))
    assert "debt" not in schema.names and schema.positive_label == "yes"
    spec = PreprocessSpec.from_dict(json.loads(run.preprocess_json.read_text()))
    assert spec.n_features == metrics["model"]["n_features"]
    quality = json.loads(run.quality_json.read_text())
    assert quality["rows"] == 300 and "warnings" in quality


def test_later_steps_can_reload_the_same_features_and_scores(trained):
    run, metrics = trained
    frame, y = load_split(run, "test")
    assert "default" in frame.columns and "debt" in frame.columns  # raw rows as read
    assert set(np.unique(y)) == {0, 1} and y.sum() == (frame["default"] == "yes").sum()
    X = encode(run, frame)
    assert X.dtype == np.float32 and X.shape == (len(frame), run_preprocessor(run).n_features)
    from edgefin.metrics import auc
    from edgefin.model import DenseClassifier

    clf = DenseClassifier.load(run.model_path("dense"))
    assert clf.model_.inputs[0].name.startswith("features")
    assert auc(y, clf.predict_score(X)) == pytest.approx(metrics["test"]["auc"], abs=1e-9)
    assert list(frame.index) == sorted(frame.index)  # file row numbers survive the round trip


def test_config_file_supplies_options_and_flags_win(csv, tmp_path):
    cfg = tmp_path / "train.toml"
    cfg.write_text(
        'drop = "debt"\n[train]\ntarget = "default"\npositive = "yes"\nhidden = [8]\nepochs = 9\n'
        "patience = 2\nthreshold = 0.4\n"
    )
    result = run([csv, "--config", cfg, "--epochs", "2", "-q", "--json", "--out", tmp_path / "r"])
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert m["model"]["max_epochs"] == 2 and m["model"]["hidden"] == [8]
    assert (m["threshold"], m["threshold_method"]) == (0.4, "fixed")
    assert json.loads((tmp_path / "r" / "run.json").read_text())["options"]["drop"] == ["debt"]


def test_explicit_test_file_rate_threshold_and_index_encoding(tmp_path):
    train_csv = write_csv(loans(300, seed=4), tmp_path / "train.csv")
    test_pq = tmp_path / "holdout.parquet"
    loans(120, seed=5).to_parquet(test_pq, index=False)
    result = run(
        [
            train_csv,
            "--target",
            "default",
            "--positive",
            "yes",
            "--test-data",
            test_pq,
            "--threshold",
            "rate:0.25",
            "--encoding",
            "index",
            *FAST,
            "--json",
            "--out",
            tmp_path / "r",
        ]
    )
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert m["test"]["n"] == 120 and m["splits"]["train"] + m["splits"]["validation"] == 300
    assert m["threshold_method"] == "rate" and m["validation"]["positive_rate"] <= 0.25
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    assert info["test_data"]["sha256"] == file_sha256(test_pq)
    spec = json.loads((tmp_path / "r" / "data" / "preprocess.json").read_text())
    assert {s["encoding"] for s in spec["steps"] if s["kind"] == "categorical"} == {"index"}


def test_auto_bins_trains_both_inputs_and_keeps_the_validation_winner(trained):
    run_dir, metrics = trained
    m = metrics["model"]
    trials = m["bins_validation_auc"]
    assert m["bins_option"] == "auto" and set(trials) == {"0", "16"}
    assert m["bins"] == (16 if trials["16"] > trials["0"] + 0.002 else 0)
    kept = m["candidates_validation_auc"][str(m["bins"])]
    assert m["best_val_auc"] == kept["dense"] and trials[str(m["bins"])] == kept["chosen"]
    assert kept["chosen"] == pytest.approx(metrics["validation"]["auc"], abs=1e-4)  # the model written is the one kept
    spec = PreprocessSpec.from_dict(json.loads(run_dir.preprocess_json.read_text()))
    assert spec.n_features == m["n_features"]
    assert any(s.kind == "numeric" and s.edges for s in spec.steps) == (m["bins"] == 16)


def test_auto_bins_trains_once_when_no_numeric_column_can_be_binned(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "flag": rng.integers(0, 2, 300),
            "region": rng.choice(["n", "s", "e"], 300),
            "default": rng.choice(["yes", "no"], 300),
        }
    )
    data = write_csv(frame, tmp_path / "d.csv")
    result = run([data, "--target", "default", "--positive", "yes", *FAST, "--json", "--out", tmp_path / "r"])
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)["model"]
    assert m["bins"] == 0 and list(m["bins_validation_auc"]) == ["0"]


@pytest.mark.parametrize("bins", ["0", "6"])
def test_a_fixed_bin_count_is_used_as_given(csv, tmp_path, bins):
    result = run(
        [csv, "--target", "default", "--positive", "yes", "--bins", bins, *FAST, "--json", "--out", tmp_path / "r"]
    )
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)["model"]
    assert m["bins"] == int(bins) and list(m["bins_validation_auc"]) == [bins]
    spec = PreprocessSpec.from_dict(json.loads((tmp_path / "r" / "data" / "preprocess.json").read_text()))
    income = next(s for s in spec.steps if s.field == "income")
    assert (len(income.edges) - 1 if income.edges else 0) == (0 if bins == "0" else 6)
    assert ("income__bin0" in spec.feature_names) == (bins != "0")


def test_retraining_removes_stale_later_step_artefacts(csv, tmp_path):
    out = tmp_path / "r"
    (out / "bundles").mkdir(parents=True)
    (out / "bundles" / "old.efb").write_bytes(b"x")
    (out / "compress.json").write_text("{}")
    result = run([csv, "--target", "default", "--positive", "yes", *FAST, "--out", out])
    assert result.exit_code == 0, result.output
    assert not (out / "bundles").exists() and not (out / "compress.json").exists()


def test_augmentation_touches_only_the_training_rows_the_model_sees(csv, tmp_path):
    out = tmp_path / "r"
    result = run(
        [csv, "--target", "default", "--positive", "yes", "--augment", "jitter", *FAST, "--json", "--out", out]
    )
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    assert m["model"]["augment"] == "jitter" and m["model"]["train_rows"] > m["splits"]["train"]
    assert len(pd.read_parquet(out / "data" / "train.parquet")) == m["splits"]["train"]  # raw rows only


# ---------------------------------------------------------------- bad input: exit 2, a message, no traceback
def bad(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text) if isinstance(text, str) else p.write_bytes(text)
    return p


TWO = "x,y\n" + "".join(f"{i},{'a' if i % 2 else 'b'}\n" for i in range(40))


@pytest.mark.parametrize(
    "make, args, expected",
    [
        (lambda t: t / "missing.csv", ["--target", "y"], "missing.csv not found"),
        (lambda t: bad(t, "e.csv", ""), ["--target", "y"], "is empty"),
        (lambda t: bad(t, "b.parquet", b"PAR1 garbage"), ["--target", "y"], "cannot be read as Parquet"),
        (lambda t: bad(t, "d.csv", TWO), ["--target", "status"], "target column 'status' is not in"),
        (lambda t: bad(t, "one.csv", "x,y\n1,a\n2,a\n3,a\n"), ["--target", "y"], "only one class"),
        (lambda t: bad(t, "three.csv", "x,y\n1,a\n2,b\n3,c\n"), ["--target", "y"], "has 3 classes"),
        (lambda t: bad(t, "d.csv", TWO), ["--target", "y"], "with --positive"),
        (
            lambda t: bad(t, "d.csv", TWO.replace("\n7,", "\nseven,")),
            ["--target", "y", "--positive", "a"],
            "column 'x' is mixed",
        ),
        (lambda t: bad(t, "d.csv", TWO), ["--target", "y", "--positive", "a", "--drop", "nope"], "given to --drop"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path, make, args, expected):
    result = run([make(tmp_path), *args, "-q", "--out", tmp_path / "out"])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "run.json").exists()


def test_bad_options_exit_2(csv, tmp_path):
    for opts in (
        ["--hidden", "8,x"],
        ["--threshold", "1.5"],
        ["--threshold", "rate:2"],
        ["--dropout", "1"],
        ["--test-size", "0"],
        ["--test-size", "0.5", "--validation-size", "0.45"],
        ["--bins", "-1"],
        ["--bins", "257"],
        ["--bins", "x"],
        ["--bins", "1"],
    ):
        result = run([csv, "--target", "default", "--positive", "yes", *opts, "--out", tmp_path / "o"])
        assert result.exit_code == 2, (opts, result.output)


@pytest.mark.slow
def test_default_model_beats_logistic_regression_on_the_bundled_credit_data(tmp_path):
    """The quality bar, with default options (one real training run, ~20 s)."""
    from pathlib import Path

    data = Path(__file__).resolve().parents[2] / "edgefin" / "datasets" / "credit_scoring.csv"
    result = run([data, "--target", "Status", "--positive", "bad", "-q", "--json", "--out", tmp_path / "credit"])
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout)
    lr = m["baseline"]["logistic_regression"]["test_auc"]
    assert lr > 0.8
    assert m["test"]["auc"] >= lr, (m["test"]["auc"], lr)
    assert pd.read_parquet(tmp_path / "credit" / "data" / "test.parquet")["Status"].isin(["good", "bad"]).all()


def test_cli_library_and_model_defaults_agree():
    import dataclasses

    from edgefin.cli.train import train as command
    from edgefin.model import DenseClassifier
    from edgefin.train import TrainOptions

    opts = {f.name: f.default for f in dataclasses.fields(TrainOptions)}
    cli_defaults = {p.name: p.default for p in command.params}
    model = DenseClassifier().get_params()
    for name in ("dropout", "l2", "learning_rate", "batch_size", "epochs", "patience", "class_weight", "seed"):
        assert cli_defaults[name] == opts[name] == model[name], name
    assert tuple(int(h) for h in cli_defaults["hidden"].split(",")) == opts["hidden"] == model["hidden"]
    for name in ("encoding", "bins", "threshold", "augment"):
        assert cli_defaults[name] == opts[name], name
