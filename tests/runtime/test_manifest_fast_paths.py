"""The load path's fast checks (C-speed float parsing, whole-acceptance-set type checks) must refuse
exactly what the slow, per-value checks refuse, and name the same place."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from edgefin_runtime.bundle import read_bundle
from edgefin_runtime.errors import BundleFormatError, ManifestError
from edgefin_runtime.jsonutil import strict_loads
from edgefin_runtime.manifest import Manifest


@pytest.fixture(scope="module")
def manifest_dict(tiny_bundles) -> dict[str, Any]:
    """The manifest with its acceptance set embedded (as bundles built before acceptance.json held it):
    the same ``AcceptanceSet.from_dict`` reads both forms."""
    b = read_bundle(tiny_bundles["tflite-fp32"])
    return {**json.loads(b.manifest_bytes), "acceptance": json.loads(b.acceptance_bytes)}


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1e999}',
        b'{"a": -2.5E+400}',
        b'{"a": 1' + b"0" * 320 + b".5}",
        b'{"a": ' + b"9" * 250 + b".0e99}",  # overflows only with its exponent
        b'{"a": [0.5, {"b": 1e309}]}',
        b'{"a":[1,2e400]}',
        b"1e999",
        b"\n-1E+999",
    ],
)
def test_numbers_that_overflow_a_float_are_refused(text):
    with pytest.raises(BundleFormatError, match="overflows to infinity"):
        strict_loads(text, "m.json")


def test_large_but_finite_numbers_and_big_exponent_text_in_strings_parse():
    text = b'{"a": 1.5e300, "b": -2.5e-300, "note": "e999 1e999", "sha": "b204e805", "c": 12, "d": 1e-310}'
    got = strict_loads(text, "m.json")
    assert got == {"a": 1.5e300, "b": -2.5e-300, "note": "e999 1e999", "sha": "b204e805", "c": 12, "d": 1e-310}
    assert type(got["a"]) is float and type(got["c"]) is int


@pytest.mark.parametrize("text", [b'{"a": 1, "a": 2}', b'{"x": [{"b": 1, "c": 2, "b": 3}]}'])
def test_duplicate_keys_are_refused_at_any_depth(text):
    with pytest.raises(BundleFormatError, match="duplicate key"):
        strict_loads(text, "m.json")


@pytest.mark.parametrize(
    "where, value",
    [(3, math.nan), (0, math.inf), (5, -math.inf), (2, [1.0]), (4, {"v": 1})],
    ids=["nan", "inf", "-inf", "list", "object"],
)
def test_a_bad_acceptance_value_is_found_and_named(manifest_dict, where, value):
    d = copy.deepcopy(manifest_dict)
    d["acceptance"]["records"][where][1] = value
    with pytest.raises(ManifestError, match=rf"acceptance\.records\[{where}\]"):
        Manifest.from_dict(d)


def test_a_short_acceptance_row_is_named(manifest_dict):
    d = copy.deepcopy(manifest_dict)
    d["acceptance"]["records"][7].pop()
    with pytest.raises(ManifestError, match=r"acceptance\.records\[7\]: expected \d+ values"):
        Manifest.from_dict(d)


@pytest.mark.parametrize(
    "value, fragment",
    [(math.nan, "finite"), (True, "boolean"), ("0.5", "expected"), (-0.01, "probability"), (1.5, "probability")],
)
def test_a_bad_acceptance_score_is_named(manifest_dict, value, fragment):
    d = copy.deepcopy(manifest_dict)
    d["acceptance"]["scores"][4] = value
    with pytest.raises(ManifestError, match=rf"acceptance\.scores\[4\].*{fragment}"):
        Manifest.from_dict(d)


def test_the_fast_path_builds_the_same_acceptance_set(manifest_dict):
    """Integer scores 0/1 and scalar values of every JSON type come through unchanged (as floats)."""
    d = copy.deepcopy(manifest_dict)
    d["acceptance"]["scores"][0] = 1
    d["acceptance"]["source_scores"][1] = 0
    acc = Manifest.from_dict(d).acceptance
    assert acc is not None
    assert acc.scores[0] == 1.0 and type(acc.scores[0]) is float
    assert acc.source_scores[1] == 0.0 and type(acc.source_scores[1]) is float
    fields = d["acceptance"]["fields"]
    assert [list(r.values()) for r in acc.records] == d["acceptance"]["records"]
    assert all(list(r) == fields for r in acc.records)
