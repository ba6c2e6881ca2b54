"""The variant registry: every documented variant is there, unknown names list the valid ones."""

from __future__ import annotations

import pytest

from edgefin_converters import REGISTRY, VARIANT_NAMES, UnknownVariantError, get_variant, resolve_variants

DOCUMENTED = (
    "tflite-fp32",
    "tflite-fp16",
    "tflite-dynamic",
    "tflite-int8",
    "tflite-int8-ptq",
    "onnx-fp32",
    "onnx-dynamic",
    "onnx-int8",
)


def test_every_documented_variant_is_registered_in_order():
    assert VARIANT_NAMES == DOCUMENTED
    assert {v.engine for v in REGISTRY.values()} == {"litert", "onnx"}
    assert all(v.name.startswith("tflite") == (v.engine == "litert") for v in REGISTRY.values())


def test_gate_kinds_follow_the_precision():
    kinds = {v.name: v.gate for v in REGISTRY.values()}
    assert kinds["tflite-fp32"] == kinds["onnx-fp32"] == "exact"
    assert kinds["tflite-fp16"] == "fp16"
    for name in ("tflite-dynamic", "tflite-int8", "tflite-int8-ptq", "onnx-dynamic", "onnx-int8"):
        assert kinds[name] == "quantized"


def test_only_tflite_int8_prefers_the_qat_model():
    assert [v.name for v in REGISTRY.values() if v.source == "quantized"] == ["tflite-int8"]


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownVariantError) as exc:
        get_variant("tflite-int4")
    msg = str(exc.value)
    assert "'tflite-int4'" in msg
    for name in DOCUMENTED:
        assert name in msg


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("all", list(DOCUMENTED)),
        (None, list(DOCUMENTED)),
        ("onnx-int8,tflite-fp32", ["tflite-fp32", "onnx-int8"]),  # registry order, not the user's
        (" tflite-int8 , tflite-int8 ", ["tflite-int8"]),  # spaces and duplicates
        (["onnx-fp32", "all"], list(DOCUMENTED)),
    ],
)
def test_resolve_variants(spec, expected):
    assert [v.name for v in resolve_variants(spec)] == expected


@pytest.mark.parametrize("spec", ["", "tflite-fp32,,onnx-fp32", "tflite-fp32,nope"])
def test_resolve_rejects_empty_or_unknown_entries(spec):
    with pytest.raises(UnknownVariantError, match="valid variants: tflite-fp32"):
        resolve_variants(spec)
