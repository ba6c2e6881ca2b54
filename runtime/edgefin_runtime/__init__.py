"""edgefin-runtime: verify and score edgefin .efb bundles without TensorFlow.

Importing the package loads only what ``load(...).score(...)`` needs; the hot-swap holder is imported
on first use of its names (signing, the CLI, rendering and acceptance checks live in modules of their
own), so a device restart pays for no more than scoring (``benchmarks/runtime_bench.py``,
``cold_start_ratio_vs_bare_engine``).
"""

from __future__ import annotations

import gc as _gc
from typing import TYPE_CHECKING, Any

# Importing builds thousands of long-lived objects (code, classes, constants) and no garbage: the cyclic
# collector would only re-scan them, ~1 ms of a device's restart. Paused for the import, then as it was.
_collecting = _gc.isenabled()
_gc.disable()
try:
    from .errors import (
        BackendError,
        BundleError,
        BundleFormatError,
        CategoryError,
        EdgefinRuntimeError,
        FieldTypeError,
        InputError,
        IntegrityError,
        ManifestError,
        MissingFieldError,
        NonFiniteError,
        RecordTypeError,
        SelfTestError,
        SignatureError,
        UnknownFieldError,
        VersionError,
    )
    from .predictor import ColumnsScore, Predictor, Score, load
    from .preprocess import Policy
    from .version import __version__
finally:
    if _collecting:
        _gc.enable()
del _collecting, _gc

__all__ = [
    "__version__",
    "Policy",
    "load",
    "Predictor",
    "Score",
    "Result",
    "ColumnsScore",
    "ModelHolder",
    "ModelInfo",
    "Served",
    "SwapReport",
    "BackendError",
    "BundleError",
    "BundleFormatError",
    "CategoryError",
    "EdgefinRuntimeError",
    "FieldTypeError",
    "InputError",
    "IntegrityError",
    "ManifestError",
    "MissingFieldError",
    "NonFiniteError",
    "RecordTypeError",
    "SelfTestError",
    "SignatureError",
    "UnknownFieldError",
    "VersionError",
]

#: public names imported on first use: the scoring path never needs them
_LAZY = {
    "ModelHolder": "holder",
    "ModelInfo": "holder",
    "Served": "holder",
    "SwapReport": "holder",
    "Result": "results",  # a named tuple, built on first use (results.py)
}

if TYPE_CHECKING:
    from .holder import ModelHolder, ModelInfo, Served, SwapReport
    from .results import Result


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
