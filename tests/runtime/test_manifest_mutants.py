"""Manifest mutants that are re-hashed consistently (the archive is valid, the hashes match) but
describe something the model is not: rejected at load (ManifestError/VersionError) or by the
golden self-test (SelfTestError). Also version skew, and a structural fuzz of Manifest.from_dict."""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgefin_runtime
from edgefin_runtime.bundle import read_bundle
from edgefin_runtime.errors import ManifestError, SelfTestError, VersionError
from edgefin_runtime.manifest import Manifest
from edgefin_runtime.version import __version__, version_tuple

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        *head, last = path.split(".")
        for k in head:
            d = d[int(k)] if k.isdigit() else d[k]  # type: ignore[assignment]
        d[int(last) if last.isdigit() else last] = value  # type: ignore[index]
    return mutate


def _add_field(d: dict[str, Any]) -> None:
    """A schema with one more field than the model was trained on (shape updated consistently)."""
    d["schema"]["fields"].append({"name": "Debt", "kind": "numeric", "allow_missing": False, "categories": [],
                                  "min": 0.0, "max": 1.0, "missing_share": 0.0})
    d["preprocessing"]["steps"].append({"kind": "numeric", "field": "Debt", "fill": 0.0, "mean": 0.0,
                                        "scale": 1.0, "indicator": False})
    d["preprocessing"]["n_features"] += 1
    d["model"]["inputs"][0]["shape"][-1] += 1


def _drop_field(d: dict[str, Any]) -> None:
    name = d["schema"]["fields"][0]["name"]
    d["schema"]["fields"].pop(0)
    d["preprocessing"]["steps"] = [s for s in d["preprocessing"]["steps"] if s["field"] != name]
    d["preprocessing"].pop("n_features")


def _golden(i: int, fn: Callable[[dict[str, Any]], None]) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        fn(d["golden"][i])
    return mutate


def _shift_mean(d: dict[str, Any]) -> None:
    step = next(s for s in d["preprocessing"]["steps"] if s["kind"] == "numeric" and s["field"] == "Age")
    step["mean"] += 3 * step["scale"]


def _swap_categories(d: dict[str, Any]) -> None:
    for obj in (*d["schema"]["fields"], *d["preprocessing"]["steps"]):
        if obj.get("field", obj.get("name")) == "Home" and obj.get("categories"):
            obj["categories"] = list(reversed(obj["categories"]))


def _double_input(d: dict[str, Any]) -> None:
    d["model"]["inputs"].append(copy.deepcopy(d["model"]["inputs"][0]))


# (name, mutation, expected error, message fragment)
MUTANTS: list[tuple[str, Mutation, type, str]] = [
    ("two input tensors", _double_input, ManifestError, "exactly one input"),
    ("no output tensor", _set("model.outputs", []), ManifestError, "exactly one input and one output"),
    ("input dtype int32", _set("model.inputs.0.dtype", "int32"), ManifestError, "dtype"),
    ("input dtype float64", _set("model.inputs.0.dtype", "float64"), ManifestError, "unsupported dtype"),
    ("output dtype float16", _set("model.outputs.0.dtype", "float16"), ManifestError, "dtype"),
    ("output shape [batch, 2]", _set("model.outputs.0.shape", [-1, 2]), ManifestError, "outputs[0].shape"),
    ("input shape rank 3", _set("model.inputs.0.shape", [-1, 1, 9]), ManifestError, "inputs[0].shape"),
    ("threshold 1.5", _set("decision.threshold", 1.5), ManifestError, "threshold"),
    ("threshold -0.1", _set("decision.threshold", -0.1), ManifestError, "threshold"),
    ("threshold as text", _set("decision.threshold", "0.5"), ManifestError, "threshold"),
    ("extra schema field, shape updated", _add_field, ManifestError, "features"),
    ("schema missing a field", _drop_field, ManifestError, "features"),
    ("n_features off by one", lambda d: d["preprocessing"].__setitem__("n_features",
                                                                      d["preprocessing"]["n_features"] + 1),
     ManifestError, "n_features"),
    ("engine swapped", _set("model.engine", "litert-x"), ManifestError, "engine"),
    ("golden score changed", _golden(0, lambda g: g.__setitem__("score", round(1 - g["score"], 6))),
     SelfTestError, "golden[0]"),
    ("golden score nudged beyond tolerance", _golden(1, lambda g: g.__setitem__("score", g["score"] + 1e-3)),
     SelfTestError, "golden[1]"),
    ("golden score not a probability", _golden(0, lambda g: g.__setitem__("score", 1.2)), ManifestError,
     "probability"),
    ("golden record off-schema", _golden(0, lambda g: g["record"].__setitem__("Age", "old")), SelfTestError,
     "golden[0]"),
    ("no golden vectors", _set("golden", []), SelfTestError, "no golden vectors"),
    ("preprocessing mean shifted", _shift_mean, SelfTestError, "golden"),
    ("category order swapped", _swap_categories, SelfTestError, "golden"),
    ("tolerance 0.5", _set("golden_tolerance", 0.5), ManifestError, "golden_tolerance"),
    ("scale zero", lambda d: d["preprocessing"]["steps"][0].__setitem__("scale", 0.0), ManifestError, "scale"),
    ("format_version 2", _set("format_version", 2), VersionError, "upgrade edgefin-runtime"),
    ("format_version 0", _set("format_version", 0), VersionError, "format_version"),
    ("min_runtime_version 99.0", _set("min_runtime_version", "99.0"), VersionError,
     "upgrade edgefin-runtime"),
    ("min_runtime_version garbage", _set("min_runtime_version", "latest"), ManifestError,
     "min_runtime_version"),
]

VARIANTS = ("tflite-fp32", "tflite-int8-io", "onnx-fp32")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name, mutate, error, fragment", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_consistent_mutant_rejected(rebundle, variant, name, mutate, error, fragment):
    data = rebundle(variant, mutate)
    with pytest.raises(error) as info:
        edgefin_runtime.load(data)
    assert fragment.lower() in str(info.value).lower(), str(info.value)


@pytest.mark.parametrize("quant", [{"scale": 0.5, "zero_point": 0}, {"scale": 0.00390625, "zero_point": 7}])
def test_wrong_quantisation_parameters_rejected(rebundle, quant):
    data = rebundle("tflite-int8-io", _set("model.inputs.0.quantization", quant))
    with pytest.raises(ManifestError, match="quantization"):
        edgefin_runtime.load(data)


def test_unchanged_rebundle_still_loads(rebundle):
    """The control: the re-hashing itself is not what gets mutants rejected."""
    for v in VARIANTS:
        assert edgefin_runtime.load(rebundle(v, lambda d: None)).info.model.variant == v


def test_version_errors_say_what_to_upgrade(rebundle):
    newer = ".".join(str(p + 1) if i == 0 else "0" for i, p in enumerate(version_tuple(__version__)[:3]))
    with pytest.raises(VersionError) as info:
        edgefin_runtime.load(rebundle("onnx-fp32", _set("min_runtime_version", newer)))
    msg = str(info.value)
    assert newer in msg and __version__ in msg and "pip install" in msg
    with pytest.raises(VersionError, match=r"format_version 7 is newer.*upgrade"):
        edgefin_runtime.load(rebundle("onnx-fp32", _set("format_version", 7)))


def test_version_is_checked_before_the_rest_of_the_contract(rebundle):
    """A newer bundle may use fields this runtime does not know: the message must be 'upgrade',
    not a confusing contract error about those fields."""
    def future(d: dict[str, Any]) -> None:
        d["format_version"] = 2
        d["model"]["engine"] = "tpu-v9"
        d["schema"]["fields"][0]["kind"] = "embedding"

    with pytest.raises(VersionError, match="upgrade"):
        edgefin_runtime.load(rebundle("onnx-fp32", future))


# ---------------------------------------------------------------- structural fuzz of the contract
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10 ** 400), max_value=10 ** 400)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
    | st.sampled_from(["onnx", "litert", "numeric", "categorical", "onehot", "index", "float32", "int8",
                       "model.onnx", "1.0", "0.1.0"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


@pytest.fixture(scope="module")
def base_manifest(tiny_bundles) -> dict[str, Any]:
    return json.loads(read_bundle(tiny_bundles["onnx-fp32"]).manifest_bytes)


def _paths(o: Any, p: tuple = ()) -> list[tuple]:
    out = [p] if p else []
    if isinstance(o, dict):
        for k, v in o.items():
            out += _paths(v, p + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            out += _paths(v, p + (i,))
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_contract_never_raises_untyped_errors(base_manifest, data):
    d = copy.deepcopy(base_manifest)
    paths = _paths(d)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = d
        try:
            for k in path[:-1]:
                parent = parent[k]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue
    try:
        Manifest.from_dict(d)
    except (ManifestError, VersionError):
        pass
