"""edgefin-runtime: verify and score edgefin .efb bundles without TensorFlow."""

from .version import __version__
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
from .preprocess import Policy

__all__ = [
    "__version__",
    "Policy",
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
