"""Manifest mutants that are re-hashed consistently (the archive is valid, the hashes match) but
describe something the model is not: rejected at load (ManifestError/VersionError) or by the
golden self-test (SelfTestError); a bad acceptance set (its own member, which scoring never reads) when
the set is first read (``edgefin-run verify``). Also version skew, and a structural fuzz of
Manifest.from_dict."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifest_mutants import MUTANTS, set_at

import edgefin_runtime
from edgefin_runtime import acceptance
from edgefin_runtime.bundle import read_bundle
from edgefin_runtime.errors import ManifestError, VersionError
from edgefin_runtime.manifest import Manifest
from edgefin_runtime.version import __version__, version_tuple

VARIANTS = ("tflite-fp32", "tflite-int8-io", "onnx-fp32")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name, mutate, error, fragment", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_consistent_mutant_rejected(rebundle, variant, name, mutate, error, fragment):
    data = rebundle(variant, mutate)
    if name.startswith("acceptance"):  # loads and scores; refused where the set is read (verify)
        predictor = edgefin_runtime.load(data)
        with pytest.raises(error) as info:
            predictor.info.acceptance  # noqa: B018
        assert "acceptance.json" in str(info.value)
        with pytest.raises(error, match=re.escape(fragment)):
            acceptance.check(predictor)
    else:
        with pytest.raises(error) as info:
            edgefin_runtime.load(data)
    assert fragment.lower() in str(info.value).lower(), str(info.value)


@pytest.mark.parametrize("name, mutate, error, fragment", [m for m in MUTANTS if m[0].startswith("acceptance")])
def test_an_embedded_acceptance_mutant_is_rejected_at_load(rebundle, name, mutate, error, fragment):
    """Bundles built before acceptance.json embed the set in manifest.json: parsed and checked at load."""
    with pytest.raises(error, match=re.escape(fragment)):
        edgefin_runtime.load(rebundle("onnx-fp32", mutate, embed_acceptance=True))


@pytest.mark.parametrize("quant", [{"scale": 0.5, "zero_point": 0}, {"scale": 0.00390625, "zero_point": 7}])
def test_wrong_quantisation_parameters_rejected(rebundle, quant):
    data = rebundle("tflite-int8-io", set_at("model.inputs.0.quantization", quant))
    with pytest.raises(ManifestError, match="quantization"):
        edgefin_runtime.load(data)


def test_unchanged_rebundle_still_loads(rebundle):
    """The control: the re-hashing itself is not what gets mutants rejected."""
    for v in VARIANTS:
        assert edgefin_runtime.load(rebundle(v, lambda d: None)).info.model.variant == v


def test_version_errors_say_what_to_upgrade(rebundle):
    newer = ".".join(str(p + 1) if i == 0 else "0" for i, p in enumerate(version_tuple(__version__)[:3]))
    with pytest.raises(VersionError) as info:
        edgefin_runtime.load(rebundle("onnx-fp32", set_at("min_runtime_version", newer)))
    msg = str(info.value)
    assert newer in msg and __version__ in msg and "pip install" in msg
    with pytest.raises(VersionError, match=r"format_version 7 is newer.*upgrade"):
        edgefin_runtime.load(rebundle("onnx-fp32", set_at("format_version", 7)))


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
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["onnx", "litert", "numeric", "categorical", "onehot", "index", "float32", "int8", "model.onnx", "1.0", "0.1.0"]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


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
