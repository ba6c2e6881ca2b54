"""Tiny, fast bundles for the security tests: a logistic model written with onnx.helper (no TF).

The model is real (ONNX Runtime loads and runs it) and a few hundred bytes, so sweeps over every
byte of a bundle stay fast. Golden scores are computed here with the same preprocessing the
runtime uses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from edgefin_runtime.bundle import build_bundle
from edgefin_runtime.manifest import (
    CategoricalStep,
    Decision,
    FieldSpec,
    GoldenVector,
    Manifest,
    ModelSpec,
    NumericStep,
    PreprocessSpec,
    Schema,
    TensorSpec,
)
from edgefin_runtime.preprocess import Preprocessor

FIELDS = (
    FieldSpec("Income", "numeric", True, min=0.0, max=500.0, missing_share=0.05),
    FieldSpec("Age", "numeric", False, min=18.0, max=90.0),
    FieldSpec("Home", "categorical", True, categories=("own", "rent", "other")),
)
STEPS = (
    NumericStep("Income", fill=120.0, mean=130.0, scale=80.0, indicator=True),
    NumericStep("Age", fill=40.0, mean=41.0, scale=12.0),
    CategoricalStep("Home", ("own", "rent", "other"), fill="own", encoding="onehot"),
)
N_FEATURES = 2 + 1 + 4
GOLDEN_RECORDS = (
    {"Income": 100.0, "Age": 30, "Home": "rent"},
    {"Income": None, "Age": 55, "Home": "own"},
    {"Income": 420.5, "Age": 71, "Home": None},
)


def onnx_model(weights: np.ndarray, bias: float, n_features: int = N_FEATURES) -> bytes:
    """sigmoid(x @ w + b) as a tiny ONNX model (opset 17), input 'features' [N, n_features]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.asarray(weights, dtype=np.float32).reshape(n_features, 1), "w")
    b = numpy_helper.from_array(np.asarray([bias], dtype=np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "w"], ["z0"]),
            helper.make_node("Add", ["z0", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["score"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgefin-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def reference_scores(weights: np.ndarray, bias: float, x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64) @ np.asarray(weights, dtype=np.float64) + bias
    return 1.0 / (1.0 + np.exp(-z))


def make_manifest(weights: np.ndarray, bias: float, *, variant: str = "onnx-fp32") -> Manifest:
    schema = Schema(fields=FIELDS, target="Status", positive_label="bad", negative_label="good")
    spec = PreprocessSpec(steps=STEPS)
    pre = Preprocessor(schema, spec)
    golden = []
    for rec in GOLDEN_RECORDS:
        x = pre.transform_record(rec)
        golden.append(GoldenVector(dict(rec), float(reference_scores(weights, bias, x)[0])))
    model = ModelSpec(
        engine="onnx",
        variant=variant,
        file="model.onnx",
        inputs=(TensorSpec("features", (-1, N_FEATURES), "float32"),),
        outputs=(TensorSpec("score", (-1, 1), "float32"),),
    )
    return Manifest(
        schema=schema,
        preprocessing=spec,
        model=model,
        decision=Decision(0.5, "probability that Status is 'bad'"),
        members={},
        golden=tuple(golden),
        golden_tolerance=1e-5,
        producer={"tool": "edgefin-tests"},
        created_at="2026-01-01T00:00:00Z",
    )


def weights_for(seed: int) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.8, N_FEATURES).astype(np.float32), float(rng.normal(0, 0.3))


def tiny_onnx_bundle(seed: int = 0, **manifest_over: Any) -> bytes:
    """A complete, valid bundle (a few hundred bytes) whose model differs per seed."""
    w, b = weights_for(seed)
    manifest = make_manifest(w, b)
    if manifest_over:
        manifest = replace(manifest, **manifest_over)
    data, _ = build_bundle(manifest, onnx_model(w, b))
    return data


def expected_score(seed: int, record: dict[str, Any]) -> float:
    """The float64 reference score of ``record`` under the model of ``seed``."""
    w, b = weights_for(seed)
    pre = Preprocessor(
        Schema(fields=FIELDS, target="Status", positive_label="bad", negative_label="good"), PreprocessSpec(steps=STEPS)
    )
    return float(reference_scores(w, b, pre.transform_record(record))[0])


assert N_FEATURES == PreprocessSpec(steps=STEPS).n_features
