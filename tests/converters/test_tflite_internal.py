"""The one TensorFlow internal the converters call (mlir_quantize, for selective int8 quantisation) is
checked before use: another TensorFlow version or a changed signature is a DependencyError naming it."""

from __future__ import annotations

import importlib

import pytest

from edgefin_converters import tflite
from edgefin_converters.errors import DependencyError


def test_the_installed_tensorflow_passes_the_check() -> None:
    quantize = tflite.mlir_quantizer()
    assert quantize.__name__ == "mlir_quantize"


def test_another_tensorflow_version_is_refused_before_the_internal_is_touched(monkeypatch) -> None:
    tf = tflite._tf()
    monkeypatch.setattr(tf, "__version__", "2.99.0")
    with pytest.raises(DependencyError, match=r"tensorflow 2\.99\.0 is installed.*tensorflow==2\.21"):
        tflite.quantize_selectively(b"", keep_float=("x",), per_channel=False, int8_io=False)


def test_a_changed_signature_is_refused(monkeypatch) -> None:
    convert = importlib.import_module("tensorflow.lite.python.convert")

    def mlir_quantize(input_data_str, disable_per_channel=False):  # an older shape: no denylisted_nodes
        raise AssertionError("must not be called")

    monkeypatch.setattr(convert, "mlir_quantize", mlir_quantize)
    with pytest.raises(DependencyError, match="takes no input_data_type, output_data_type, denylisted_nodes"):
        tflite.mlir_quantizer()


def test_a_missing_internal_is_refused(monkeypatch) -> None:
    convert = importlib.import_module("tensorflow.lite.python.convert")

    monkeypatch.delattr(convert, "mlir_quantize")
    with pytest.raises(DependencyError, match="has no tensorflow.lite.python.convert.mlir_quantize"):
        tflite.mlir_quantizer()
