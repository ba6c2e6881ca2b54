"""Strict JSON: the C-scanner parse (no ``json`` import) and the ``json.loads`` fallback of other
interpreters accept and refuse exactly the same texts, and both match ``json.loads`` on what they accept."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefin_runtime import jsonutil
from edgefin_runtime.errors import BundleFormatError

GOOD = [
    b'{"a": [1, 2.5, -0.0, 1e-310, 1.5e300, {"b": null, "c": true}], "d": "x\\u00e9\\n", "e": ""}',
    b" \n\t[] \r\n",
    b"0",
    b'"text"',
    b'{"sha": "b204e805e123", "note": "1e999 NaN Infinity [[[["}',
    b"[" * 32 + b"]" * 32,
]
BAD = {
    b'{"a": 1e999}': "overflows to infinity",
    b"-1E+999": "overflows to infinity",
    b'{"a": 1, "a": 2}': "duplicate key",
    b'{"a": NaN}': "non-standard JSON constant",
    b"[-Infinity]": "non-standard JSON constant",
    b"[" * 33 + b"]" * 33: "nested deeper than 32",
    b'{"a":' * 5000 + b"1" + b"}" * 5000: "nested deeper than 32",
    b'{"a": 1} x': "not strict JSON",
    b"": "not strict JSON",
    b"  ": "not strict JSON",
    b"\xef\xbb\xbf{}": "BOM",
    b'{"a": "\x01"}': "not strict JSON",  # control characters inside strings
    b"{'a': 1}": "not strict JSON",
    b'{"a": 1,}': "not strict JSON",
    b"\xff": "not valid UTF-8",
}


@pytest.fixture(params=["c-scanner", "json.loads"])
def loads(request, monkeypatch):
    if request.param == "json.loads":
        monkeypatch.setattr(jsonutil, "_loads", jsonutil._python_loads)
    else:
        assert jsonutil._loads is not jsonutil._python_loads  # CPython: the C scanner is in use
    return jsonutil.strict_loads


@pytest.mark.parametrize("text", GOOD)
def test_strict_json_parses_what_json_parses(loads, text):
    assert loads(text, "m.json") == json.loads(text)


@pytest.mark.parametrize("text, reason", list(BAD.items()), ids=[f"bad{i}" for i in range(len(BAD))])
def test_strict_json_refuses_with_a_reason_naming_the_member(loads, text, reason):
    with pytest.raises(BundleFormatError, match=reason) as err:
        loads(text, "bundle x.efb: manifest.json")
    assert str(err.value).startswith("bundle x.efb: manifest.json: ")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_json_values, st.sampled_from([None, 1, 2]))
def test_any_document_round_trips_on_both_paths(value, indent):
    text = json.dumps(value, indent=indent).encode()
    c = jsonutil.strict_loads(text, "m")
    real = jsonutil._loads
    try:
        jsonutil._loads = jsonutil._python_loads
        py = jsonutil.strict_loads(text, "m")
    finally:
        jsonutil._loads = real
    assert c == py == json.loads(text)
