"""edgefin-runtime: verify and score edgefin .efb bundles without TensorFlow."""

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
from .holder import ModelHolder, ModelInfo, Served, SwapReport
from .predictor import ColumnsScore, Predictor, Result, Score, load
from .preprocess import Policy
from .version import __version__

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
