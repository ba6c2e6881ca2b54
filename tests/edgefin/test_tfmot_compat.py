"""The one door to TFMOT: a version check, and the only place that imports TFMOT internals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgefin import tfmot_compat
from edgefin.errors import DependencyError

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_version_is_one_the_workarounds_were_written_for():
    tfmot_compat.check_version(tfmot_compat.tfmot.__version__)  # the import itself already checked it
    assert tfmot_compat.tfmot.__version__ in tfmot_compat.TESTED_VERSIONS


@pytest.mark.parametrize("version", ["0.8.0", "0.9.0", "1.0.0", "unknown"])
def test_another_version_is_a_typed_error_naming_both_versions(version):
    with pytest.raises(
        DependencyError,
        match=rf"tensorflow-model-optimization {re.escape(version)} is installed.*"
        rf"0\.8\.1.*pip install",
    ):
        tfmot_compat.check_version(version)


def test_no_other_module_imports_tfmot_internals():
    """Every ``tensorflow_model_optimization.python`` import lives in edgefin/tfmot_compat.py."""
    offenders = []
    for folder in ("edgefin", "converters", "benchmarks", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "edgefin" / "tfmot_compat.py" or path == Path(__file__).resolve():
                continue
            if "tensorflow_model_optimization.python" in path.read_text(encoding="utf-8"):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_public_names_are_the_ones_the_internals_define():
    """The public aliases are the very classes TFMOT's layers are instances of (isinstance checks hold)."""
    from tensorflow_model_optimization.python.core.quantization.keras import quantize_wrapper

    assert tfmot_compat.QuantizeWrapper is quantize_wrapper.QuantizeWrapper
    assert issubclass(quantize_wrapper.QuantizeWrapperV2, tfmot_compat.QuantizeWrapper)
