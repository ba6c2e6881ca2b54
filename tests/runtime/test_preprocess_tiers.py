"""The Preprocessor's two encoders - the generic loop a fresh process starts with and the straight-line
encoder it compiles after TIER_UP records - give the same features, flags and errors for any record."""

from __future__ import annotations

from typing import Any

import pytest
from hostile_records import SPECIALS, records
from hypothesis import HealthCheck, given, settings

from edgefin_runtime import preprocess
from edgefin_runtime.errors import InputError
from edgefin_runtime.preprocess import Policy, Preprocessor

NAMES = ("Income", "Age", "Home", "Job")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _run(encode: Any, pre: Preprocessor, rec: Any) -> tuple[Any, ...]:
    out = [0.0] * pre.n_features
    try:
        flags = encode(rec, out)
    except InputError as err:
        return ("error", type(err).__name__, str(err), getattr(err, "field", None))
    return ("ok", out, flags)


@pytest.fixture(scope="module", params=["lenient", "strict"])
def both(request, predictors) -> list[tuple[Preprocessor, Any]]:
    """(preprocessor, its compiled encoder) for a LiteRT and an ONNX fixture bundle under the policy."""
    policy = Policy.strict() if request.param == "strict" else Policy()
    out = []
    for variant in ("tflite-fp32", "onnx-fp32"):
        m = predictors[variant].info
        pre = Preprocessor(m.schema, m.preprocessing, policy)
        out.append((pre, preprocess._compile(pre)))
    return out


@FUZZ
@given(rec=records(NAMES))
def test_generic_and_compiled_encoders_agree(both, rec):
    for pre, compiled in both:
        assert _run(pre.encode_generic, pre, rec) == _run(compiled, pre, rec)


@pytest.mark.parametrize("value", SPECIALS, ids=lambda v: type(v).__name__ + ":" + repr(v)[:12])
def test_every_special_value_agrees_in_every_field(both, good_record, value):
    for pre, compiled in both:
        for name in pre.schema.names:
            rec = dict(good_record, **{name: value})
            assert _run(pre.encode_generic, pre, rec) == _run(compiled, pre, rec), name


def test_the_predictor_tiers_up_and_scores_the_same(tiny_bundles, good_record):
    import edgefin_runtime

    p = edgefin_runtime.load(tiny_bundles["tflite-fp32"])
    pre = p._pre
    assert pre.encode_into == pre._encode_first  # the self-test used the generic loop
    first = p.score(good_record)
    for _ in range(preprocess.TIER_UP):
        p.score(good_record)
    assert pre.encode_into != pre._encode_first  # compiled now
    assert p.score(good_record) == first
