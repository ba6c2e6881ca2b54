"""Manifest mutants that stay internally consistent (re-hashed) but describe something the model
is not, with the error each must raise. Shared by test_manifest_mutants.py and the security sweep."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from edgefin_runtime.errors import ManifestError, SelfTestError, VersionError

Mutation = Callable[[dict[str, Any]], None]


def set_at(path: str, value: Any) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        *head, last = path.split(".")
        for k in head:
            d = d[int(k)] if k.isdigit() else d[k]  # type: ignore[assignment]
        d[int(last) if last.isdigit() else last] = value  # type: ignore[index]

    return mutate


def _add_field(d: dict[str, Any]) -> None:
    """A schema with one more field than the model was trained on (shape updated consistently)."""
    d["schema"]["fields"].append(
        {
            "name": "Debt",
            "kind": "numeric",
            "allow_missing": False,
            "categories": [],
            "min": 0.0,
            "max": 1.0,
            "missing_share": 0.0,
        }
    )
    d["preprocessing"]["steps"].append(
        {"kind": "numeric", "field": "Debt", "fill": 0.0, "mean": 0.0, "scale": 1.0, "indicator": False}
    )
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
    ("no output tensor", set_at("model.outputs", []), ManifestError, "exactly one input and one output"),
    ("input dtype int32", set_at("model.inputs.0.dtype", "int32"), ManifestError, "dtype"),
    ("input dtype float64", set_at("model.inputs.0.dtype", "float64"), ManifestError, "unsupported dtype"),
    ("output dtype float16", set_at("model.outputs.0.dtype", "float16"), ManifestError, "dtype"),
    ("output shape [batch, 2]", set_at("model.outputs.0.shape", [-1, 2]), ManifestError, "outputs[0].shape"),
    ("input shape rank 3", set_at("model.inputs.0.shape", [-1, 1, 9]), ManifestError, "inputs[0].shape"),
    ("threshold 1.5", set_at("decision.threshold", 1.5), ManifestError, "threshold"),
    ("threshold -0.1", set_at("decision.threshold", -0.1), ManifestError, "threshold"),
    ("threshold as text", set_at("decision.threshold", "0.5"), ManifestError, "threshold"),
    ("extra schema field, shape updated", _add_field, ManifestError, "features"),
    ("schema missing a field", _drop_field, ManifestError, "features"),
    (
        "n_features off by one",
        lambda d: d["preprocessing"].__setitem__("n_features", d["preprocessing"]["n_features"] + 1),
        ManifestError,
        "n_features",
    ),
    ("engine swapped", set_at("model.engine", "litert-x"), ManifestError, "engine"),
    (
        "golden score changed",
        _golden(0, lambda g: g.__setitem__("score", round(1 - g["score"], 6))),
        SelfTestError,
        "golden[0]",
    ),
    (
        "golden score nudged beyond tolerance",
        _golden(1, lambda g: g.__setitem__("score", g["score"] + 1e-3)),
        SelfTestError,
        "golden[1]",
    ),
    ("golden score not a probability", _golden(0, lambda g: g.__setitem__("score", 1.2)), ManifestError, "probability"),
    (
        "golden record off-schema",
        _golden(0, lambda g: g["record"].__setitem__("Age", "old")),
        SelfTestError,
        "golden[0]",
    ),
    ("no golden vectors", set_at("golden", []), SelfTestError, "no golden vectors"),
    ("preprocessing mean shifted", _shift_mean, SelfTestError, "golden"),
    ("category order swapped", _swap_categories, SelfTestError, "golden"),
    ("tolerance 0.5", set_at("golden_tolerance", 0.5), ManifestError, "golden_tolerance"),
    ("scale zero", lambda d: d["preprocessing"]["steps"][0].__setitem__("scale", 0.0), ManifestError, "scale"),
    ("format_version 2", set_at("format_version", 2), VersionError, "upgrade edgefin-runtime"),
    ("format_version 0", set_at("format_version", 0), VersionError, "format_version"),
    ("min_runtime_version 99.0", set_at("min_runtime_version", "99.0"), VersionError, "upgrade edgefin-runtime"),
    ("min_runtime_version garbage", set_at("min_runtime_version", "latest"), ManifestError, "min_runtime_version"),
    # the acceptance set (its own member, checked when first read - by verify - and at load when embedded
    # in manifest.json by an older bundle; its scores are gated by verify)
    ("acceptance score missing", lambda d: d["acceptance"]["scores"].pop(), ManifestError, "acceptance.scores"),
    (
        "acceptance source score not a probability",
        lambda d: d["acceptance"]["source_scores"].__setitem__(2, 1.5),
        ManifestError,
        "acceptance.source_scores[2]",
    ),
    (
        "acceptance record not a row",
        lambda d: d["acceptance"]["records"].__setitem__(0, {"Age": 30}),
        ManifestError,
        "acceptance.records[0]",
    ),
    (
        "acceptance field not in the schema",
        lambda d: d["acceptance"]["fields"].__setitem__(0, "Salary"),
        ManifestError,
        "acceptance.fields",
    ),
    ("acceptance empty", set_at("acceptance.records", []), ManifestError, "acceptance.records"),
]
