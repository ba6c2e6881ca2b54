"""The fast single-record explain path gives bit for bit what the straightforward computation gives.

``Predictor.explain`` fills a per-thread coalition buffer with one gather (in place on LiteRT), checks
the scores' range on their bit patterns and attributes with precomputed plans; the oracle
(tests/runtime/explain_oracle.py) encodes, builds every coalition row, scores through ``engine.run`` and
attributes in plain Python/numpy. Every attribution, reason (order, direction, text), score and method
must be identical: compared as ``repr`` of ``to_dict()`` (so -0.0 and 0.0 differ) and as objects.

The tiny fixture bundles have 4 fields (``stratified`` is ``exact`` there); a 14-field ONNX bundle
built here without TensorFlow (a random two-layer network) covers the methods at k up to 14.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from explain_fixtures import fixture_module, with_sections
from explain_oracle import oracle_explain
from hostile_records import dict_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgefin_runtime
from edgefin_runtime.bundle import build_bundle, read_bundle
from edgefin_runtime.errors import InputError
from edgefin_runtime.explain import METHODS
from edgefin_runtime.manifest import FieldSpec, Schema

TINY_VARIANTS = ("tflite-fp32", "tflite-int8", "tflite-int8-io", "onnx-fp32")
_HC = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
CHECK = settings(max_examples=120, deadline=None, suppress_health_check=_HC)


def same(pred: Any, rec: Any, method: str | None, max_reasons: int = 4) -> None:
    """explain == the oracle, bit for bit; or both refuse the record with the same typed error."""
    try:
        want = oracle_explain(pred, rec, method, max_reasons)
    except InputError as err:
        with pytest.raises(type(err)) as got:
            pred.explain(rec, method=method, max_reasons=max_reasons)
        assert str(got.value) == str(err)
        return
    e = pred.explain(rec, method=method, max_reasons=max_reasons)
    assert repr(e.to_dict()) == repr(want.to_dict())
    assert e == want and e.score == pred.score(rec)


# ---------------------------------------------------------------- the tiny bundles (4 fields)
def tiny_records() -> st.SearchStrategy[dict[str, Any]]:
    """Mostly valid records: in and out of the training range, ints and floats, missing values,
    unknown categories, blank strings (hostile ones: test_hostile_records_are_refused_alike)."""
    number = (
        st.floats(-50.0, 400.0, allow_nan=False)
        | st.integers(0, 120)
        | st.sampled_from([None, math.nan, 0.0, -0.0, 1e30, "", " "])
    )
    category = st.sampled_from(["owner", "rent", "parents", "fixed", "freelance", "partime", "castle", None, "", " "])
    age = st.floats(10.0, 90.0) | st.integers(18, 75)
    home = st.sampled_from(["owner", "rent", "parents", "castle"])
    valid = st.fixed_dictionaries({"Income": number, "Age": age | number, "Home": home | category, "Job": category})
    return valid


@pytest.fixture(scope="module")
def tiny(tiny_bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("identity")
    preds = {v: edgefin_runtime.load(str(with_sections(tiny_bundles[v], d / f"{v}.efb"))) for v in TINY_VARIANTS}
    protected = with_sections(tiny_bundles["tflite-int8"], d / "protected.efb", protected=("Age", "Home"))
    preds["protected"] = edgefin_runtime.load(str(protected))
    return preds


@pytest.mark.parametrize("variant", [*TINY_VARIANTS, "protected"])
@CHECK
@given(rec=tiny_records(), method=st.sampled_from([None, *METHODS]), max_reasons=st.integers(-1, 5))
def test_tiny_bundles_explain_like_the_oracle(
    tiny: dict[str, Any], variant: str, rec: dict[str, Any], method: str | None, max_reasons: int
) -> None:
    same(tiny[variant], rec, method, max_reasons)


@CHECK
@given(rec=dict_records(("Income", "Age", "Home", "Job")), method=st.sampled_from([None, *METHODS]))
def test_hostile_records_are_refused_alike(tiny: dict[str, Any], rec: dict[str, Any], method: str | None) -> None:
    same(tiny["tflite-int8"], rec, method)


def test_the_in_place_buffers_are_refilled_between_plans(tiny: dict[str, Any]) -> None:
    """Records of different plans (and row counts) alternate on one thread's buffers: nothing leaks."""
    pred = tiny["tflite-int8"]
    reference = dict(pred.info.explain["reference"]["record"])  # type: ignore[index]
    recs = [
        {"Income": 12.0, "Age": 22, "Home": "rent", "Job": "partime"},
        {**reference, "Age": 74},
        reference,
        {**reference, "Home": "parents", "Income": None},
        {"Income": 250.0, "Age": 70, "Home": "owner", "Job": "fixed"},
    ]
    for _ in range(3):
        for rec in recs:
            for method in METHODS:
                same(pred, rec, method)
    slots = pred.explainer()._local.slots
    assert any(s is not None and s.out is not None for s in slots.values())  # LiteRT filled in place


def test_an_unknown_method_is_refused(tiny: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="method: expected one of"):
        tiny["tflite-fp32"].explain({"Income": 12.0, "Age": 22, "Home": "rent", "Job": "partime"}, method="shap")


# ---------------------------------------------------------------- a 14-field ONNX bundle (no TensorFlow)
WIDE_NUMERIC = 8
WIDE_CATEGORIES = {"C0": ("a", "b", "c"), "C1": ("x", "y"), "C2": ("p", "q", "r", "s"), "C3": ("u", "v", "w")}
WIDE_CATEGORIES.update({"C4": ("k", "l"), "C5": ("m", "n", "o")})


def wide_schema() -> Schema:
    fields = [
        FieldSpec(
            f"N{i}", "numeric", allow_missing=i % 3 == 0, min=-5.0, max=5.0, missing_share=0.1 if i % 3 == 0 else 0
        )
        for i in range(WIDE_NUMERIC)
    ]
    fields += [
        FieldSpec(
            name, "categorical", allow_missing=name == "C2", categories=cats, missing_share=0.05 if name == "C2" else 0
        )
        for name, cats in WIDE_CATEGORIES.items()
    ]
    return Schema(tuple(fields), target="Status", positive_label="bad", negative_label="good")


def wide_data(n: int, seed: int) -> dict[str, list[Any]]:
    rng = random.Random(seed)
    cols: dict[str, list[Any]] = {}
    for i in range(WIDE_NUMERIC):
        missing = 0.1 if i % 3 == 0 else 0.0
        cols[f"N{i}"] = [None if rng.random() < missing else round(rng.gauss(0.0, 1.5), 2) for _ in range(n)]
    for name, cats in WIDE_CATEGORIES.items():
        missing = 0.05 if name == "C2" else 0.0
        cols[name] = [None if rng.random() < missing else rng.choice(cats) for _ in range(n)]
    return cols


def onnx_network(n_features: int, seed: int = 7) -> bytes:
    """features (N, n) -> relu(x W1 + b1) -> tanh(. W2 + b2) -> sigmoid(. w3 + b3): (N, 1) float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = {
        "W1": rng.normal(0, 0.6, (n_features, 16)),
        "b1": rng.normal(0, 0.2, 16),
        "W2": rng.normal(0, 0.5, (16, 8)),
        "b2": rng.normal(0, 0.2, 8),
        "W3": rng.normal(0, 1.0, (8, 1)),
        "b3": np.array([-0.3]),
    }
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items()]
    nodes = [
        helper.make_node("MatMul", ["features", "W1"], ["h1"]),
        helper.make_node("Add", ["h1", "b1"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("MatMul", ["r1", "W2"], ["h2"]),
        helper.make_node("Add", ["h2", "b2"], ["a2"]),
        helper.make_node("Tanh", ["a2"], ["t2"]),
        helper.make_node("MatMul", ["t2", "W3"], ["h3"]),
        helper.make_node("Add", ["h3", "b3"], ["a3"]),
        helper.make_node("Sigmoid", ["a3"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "wide",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("onnxruntime")
    from edgefin_converters import sections

    fx = fixture_module()
    schema, cols = wide_schema(), wide_data(400, seed=1)
    spec = fx.fit_spec(schema, cols, index_fields=("C5",))
    golden = [{k: v[i] for k, v in cols.items()} for i in range(3)]
    data, m = fx.make_bundle(schema, spec, "onnx-fp32", onnx_network(spec.n_features), golden_records=golden)
    pred = edgefin_runtime.load(data, self_test=False)
    scores = np.asarray(pred.score_columns(cols).probabilities, dtype=np.float64)
    threshold = float(np.quantile(scores, 0.5))
    m = replace(m, decision=replace(m.decision, threshold=threshold))
    explain = sections.explain_section(schema, spec, cols, scores, threshold, protected=("N5",))
    data, _ = build_bundle(replace(m, explain=explain), read_bundle(data).model_bytes)
    path = tmp_path_factory.mktemp("wide") / "wide.efb"
    path.write_bytes(data)
    return edgefin_runtime.load(str(path))


def wide_records(n: int, seed: int) -> list[dict[str, Any]]:
    """Records of the wide schema with 0 to 14 fields away from the reference applicant."""
    rng = random.Random(seed)
    cols = wide_data(n, seed)
    return [{k: v[i] for k, v in cols.items()} for i in range(n)] + [
        {k: (v[i] if rng.random() < 0.5 else None if k == "N0" else v[0]) for k, v in cols.items()} for i in range(n)
    ]


@pytest.mark.parametrize("method", [None, "paired", "stratified", "sampled", "auto"])
def test_wide_bundle_explains_like_the_oracle(wide: Any, method: str | None) -> None:
    reference = dict(wide.info.explain["reference"]["record"])
    recs = [reference, {**reference, "N1": 4.0}, *wide_records(40, seed=3)]
    ks = set()
    for rec in recs:
        same(wide, rec, method)
        ks.add(sum(c != 0.0 for c in wide.explain(rec, method=method).contributions.values()))
    assert max(ks) >= 12 and min(ks) == 0  # the methods' big tables ran, and the all-null record


def test_wide_bundle_exact_and_reason_counts(wide: Any) -> None:
    for rec in wide_records(3, seed=5):
        same(wide, rec, "exact")  # up to 2**14 coalitions: the batch path
        for max_reasons in (0, 1, 4, 20):
            same(wide, rec, "paired", max_reasons)


def test_wide_bundle_score_batch_with_reasons(wide: Any) -> None:
    recs = wide_records(25, seed=9)
    out = wide.score_batch(recs, reasons=True)
    for rec, r in zip(recs, out):
        assert r.ok and repr(r.explanation.to_dict()) == repr(oracle_explain(wide, rec).to_dict())
