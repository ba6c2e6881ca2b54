"""The manifest is the contract: round trips, strict validation, version skew."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from edgefin_runtime.errors import ManifestError, VersionError
from edgefin_runtime.manifest import (
    FORMAT_VERSION,
    MAX_ACCEPTANCE,
    AcceptanceSet,
    CategoricalStep,
    Decision,
    FieldSpec,
    GoldenVector,
    Manifest,
    ModelSpec,
    NumericStep,
    PreprocessSpec,
    Quantization,
    Schema,
    TensorSpec,
)


def make_manifest(**over) -> Manifest:
    schema = Schema(
        fields=(
            FieldSpec("Income", "numeric", True, min=0.0, max=900.0, missing_share=0.1),
            FieldSpec("Home", "categorical", False, categories=("own", "rent")),
        ),
        target="Status",
        positive_label="bad",
        negative_label="good",
    )
    pre = PreprocessSpec(
        steps=(
            NumericStep("Income", 120.0, 130.0, 80.0, indicator=True),
            CategoricalStep("Home", ("own", "rent"), "own"),
        )
    )
    model = ModelSpec(
        engine="litert",
        variant="tflite-int8",
        file="model.tflite",
        inputs=(TensorSpec("features", (1, 5), "float32"),),
        outputs=(TensorSpec("score", (1, 1), "float32", Quantization(0.0039, -128)),),
    )
    m = Manifest(
        schema=schema,
        preprocessing=pre,
        model=model,
        decision=Decision(0.31, "probability that Status is 'bad'", "max_ks"),
        members={"model.tflite": "a" * 64},
        golden=(GoldenVector({"Income": 10.0, "Home": "own"}, 0.25),),
    )
    return replace(m, **over)


def roundtrip(m: Manifest) -> Manifest:
    return Manifest.from_dict(json.loads(m.to_json_bytes()))


def test_roundtrip_is_lossless_and_canonical():
    m = make_manifest()
    back = roundtrip(m)
    assert back == m
    assert back.to_json_bytes() == m.to_json_bytes()
    assert m.preprocessing.n_features == 5
    assert m.preprocessing.feature_names == ("Income", "Income__missing", "Home=own", "Home=rent", "Home=__other__")


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda d: d["decision"].update(threshold=1.5), "decision.threshold"),
        (lambda d: d["model"]["inputs"][0].update(shape=[1, 4]), "model.inputs[0].shape"),
        (lambda d: d["model"]["inputs"][0].update(dtype="complex64"), "dtype"),
        (lambda d: d["model"].update(engine="tensorflow"), "model.engine"),
        (lambda d: d["model"].update(file="model.onnx"), "model.file"),
        (lambda d: d["model"]["inputs"].append(d["model"]["inputs"][0]), "exactly one input"),
        (lambda d: d["schema"]["fields"].pop(), "no field in the schema"),
        (lambda d: (d["preprocessing"]["steps"].pop(), d["preprocessing"].pop("n_features")), "steps cover"),
        (lambda d: d["preprocessing"]["steps"][0].update(scale=0), "scale"),
        (lambda d: d["preprocessing"].update(n_features=9), "n_features"),
        (lambda d: d["members"].update({"model.tflite": "xyz"}), "sha256"),
        (lambda d: d.update(members={}), "no hash for the model"),
        (lambda d: d["golden"][0].update(score=2.0), "golden[0].score"),
        (lambda d: d["schema"]["fields"][1].update(categories=["own", "rent", "x"]), "categories"),
        (lambda d: d.pop("schema"), "'schema' is missing"),
        (lambda d: d.update(min_runtime_version="abc"), "min_runtime_version"),
        (lambda d: d["preprocessing"]["steps"][0].update(edges=[1.0, 1.0, 2.0]), "steps[0].edges"),
        (lambda d: d["preprocessing"]["steps"][0].update(edges=[3.0, 2.0]), "strictly increasing"),
        (lambda d: d["preprocessing"]["steps"][0].update(edges=[-1.7e308, 1.7e308]), "finite gaps"),
        (lambda d: d["preprocessing"]["steps"][0].update(edges=[1.0]), "2 to 257 bin edges"),
        (lambda d: d["preprocessing"]["steps"][0].update(edges=list(range(300))), "2 to 257 bin edges"),
        (lambda d: d["preprocessing"]["steps"][0].update(edges=[0.0, "1"]), "steps[0].edges[1]"),
        (lambda d: d["preprocessing"]["steps"][0].update(edges={"a": 1}), "steps[0].edges"),
        (lambda d: d["preprocessing"]["steps"][0].update(edges=[0.0, 1.0, 2.0]), "n_features"),
        (lambda d: d["preprocessing"]["steps"][0].update(fill=1e300), "standard deviations"),
        (lambda d: d["model"].update(kernels="fast"), "model.kernels"),
        (lambda d: d["model"].update(kernels=None), "model.kernels"),
        (lambda d: d["model"].update(engine="onnx", file="model.onnx", kernels="reference"), "litert engine only"),
    ],
)
def test_contract_violations_name_the_key(mutate, fragment):
    d = json.loads(make_manifest().to_json_bytes())
    mutate(d)
    with pytest.raises(ManifestError, match=None) as info:
        Manifest.from_dict(d)
    assert fragment in str(info.value)


def test_kernels_default_for_older_manifests_and_round_trip():
    d = json.loads(make_manifest().to_json_bytes())
    d["model"].pop("kernels")
    assert Manifest.from_dict(d).model.kernels == "default"
    m = make_manifest()
    m = replace(m, model=replace(m.model, kernels="reference"))
    assert roundtrip(m).model.kernels == "reference"


def test_binned_numeric_steps_round_trip_and_name_their_columns():
    m = make_manifest()
    pre = PreprocessSpec(
        steps=(
            NumericStep("Income", 120.0, 130.0, 80.0, indicator=True, edges=(0.0, 50.0, 900.0)),
            CategoricalStep("Home", ("own", "rent"), "own"),
        )
    )
    m = replace(m, preprocessing=pre, model=replace(m.model, inputs=(TensorSpec("features", (1, 7), "float32"),)))
    back = roundtrip(m)
    assert back == m and back.preprocessing.steps[0].edges == (0.0, 50.0, 900.0)
    assert back.preprocessing.feature_names[:4] == ("Income", "Income__bin0", "Income__bin1", "Income__missing")
    # a step without bins serialises as it always did (no "edges" key): older manifests read unchanged
    assert "edges" not in json.loads(make_manifest().to_json_bytes())["preprocessing"]["steps"][0]


def test_newer_format_says_upgrade():
    d = json.loads(make_manifest().to_json_bytes())
    d["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(VersionError, match="upgrade edgefin-runtime"):
        Manifest.from_dict(d)


def test_newer_min_runtime_says_upgrade():
    d = json.loads(make_manifest().to_json_bytes())
    d["min_runtime_version"] = "99.0.0"
    with pytest.raises(VersionError, match=r"edgefin-runtime >= 99.0.0"):
        Manifest.from_dict(d)


# ---------------------------------------------------------------- the acceptance set
ACCEPTANCE = AcceptanceSet(
    records=({"Income": 10.0, "Home": "own"}, {"Income": None, "Home": "rent"}, {"Income": 300.5, "Home": "own"}),
    scores=(0.25, 0.5, 0.75),
    source_scores=(0.26, 0.49, 0.75),
    source_stage="qat",
    kinds=("spread", "edge", "near"),
    seed=7,
)


def test_acceptance_round_trips_one_record_per_line():
    m = make_manifest(acceptance=ACCEPTANCE)
    back = roundtrip(m)
    assert back == m and back.acceptance == ACCEPTANCE and back.to_json_bytes() == m.to_json_bytes()
    text = m.to_json_bytes().decode()
    assert '\n   [10.0,"own"],\n   [null,"rent"],\n' in text  # compact rows, one per line
    assert json.loads(text)["acceptance"]["fields"] == ["Income", "Home"]
    assert roundtrip(make_manifest()).acceptance is None  # optional: older bundles have none
    assert "acceptance" not in json.loads(make_manifest().to_json_bytes())


def test_an_older_runtime_ignores_the_acceptance_key():
    """format_version stays 1: a reader that knows no 'acceptance' key sees the manifest it always did."""
    with_acc = json.loads(make_manifest(acceptance=ACCEPTANCE).to_json_bytes())
    without = json.loads(make_manifest().to_json_bytes())
    with_acc.pop("acceptance")
    assert with_acc == without and without["format_version"] == FORMAT_VERSION == 1


def _acc_dict() -> dict:
    return json.loads(make_manifest(acceptance=ACCEPTANCE).to_json_bytes())


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda a: a.update(records="x"), "acceptance.records: expected"),
        (lambda a: a.update(records=[]), "expected 1 to"),
        (
            lambda a: a.update(
                records=[[1.0, "own"]] * (MAX_ACCEPTANCE + 1),
                scores=[0.5] * (MAX_ACCEPTANCE + 1),
                source_scores=[0.5] * (MAX_ACCEPTANCE + 1),
            ),
            f"expected 1 to {MAX_ACCEPTANCE} records",
        ),
        (lambda a: a["records"].__setitem__(1, {"Income": 1.0, "Home": "own"}), "acceptance.records[1]: expected"),
        (lambda a: a["records"].__setitem__(1, [1.0]), "acceptance.records[1]: expected 2 values"),
        (lambda a: a["records"][2].__setitem__(0, [1, 2]), "acceptance.records[2] (Income)"),
        (lambda a: a["records"][2].__setitem__(1, {"x": 1}), "acceptance.records[2] (Home)"),
        (lambda a: a.pop("fields"), "'fields' is missing"),
        (lambda a: a.update(fields=["Income", "Salary"]), "'Salary' is not a field of the schema"),
        (lambda a: a.update(fields=["Income", "Income"]), "duplicate field names"),
        (lambda a: a["scores"].pop(), "acceptance.scores: expected 3 scores"),
        (lambda a: a.update(scores="0.5"), "acceptance.scores"),
        (lambda a: a["scores"].__setitem__(0, -0.1), "acceptance.scores[0]: expected a probability"),
        (lambda a: a["source_scores"].__setitem__(2, 1.01), "acceptance.source_scores[2]"),
        (lambda a: a["source_scores"].__setitem__(1, "0.5"), "acceptance.source_scores[1]"),
        (lambda a: a["scores"].__setitem__(0, True), "acceptance.scores[0]"),
        (lambda a: a.pop("source_scores"), "'source_scores' is missing"),
        (lambda a: a.pop("source_stage"), "'source_stage' is missing"),
        (lambda a: a.update(source_stage=3), "acceptance.source_stage"),
        (lambda a: a.update(kinds=["near"]), "acceptance.kinds: expected 3 entries"),
        (lambda a: a.update(seed="7"), "acceptance.seed"),
    ],
)
def test_acceptance_violations_name_the_key(mutate, fragment):
    d = _acc_dict()
    mutate(d["acceptance"])
    with pytest.raises(ManifestError) as info:
        Manifest.from_dict(d)
    assert fragment in str(info.value)


def test_acceptance_that_is_not_an_object_names_the_key():
    d = _acc_dict()
    d["acceptance"] = [1, 2]
    with pytest.raises(ManifestError, match=r"manifest acceptance: expected an object"):
        Manifest.from_dict(d)
