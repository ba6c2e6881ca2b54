"""edgefin-converters: Keras models to verified TFLite/ONNX variants packed as .efb bundles.

Public surface: the variant registry, :func:`export_variants` (convert + parity through the runtime +
bundles, in memory), :func:`write_bundle` (atomic), and the errors. TensorFlow, tf2onnx and ONNX
Runtime are imported only when a conversion runs.
"""

from ._native import quiet as quiet_native
from .bundle_writer import write_bundle
from .errors import (
    ConversionFailedError,
    ConverterError,
    ModelInputError,
    ParityGateError,
    UnknownVariantError,
    UnsupportedOpError,
)
from .export import ConversionData, ExportOptions, ExportResult, Source, Sources, VariantResult, export_variants
from .parity import Gates, Parity
from .registry import REGISTRY, VARIANT_NAMES, BuildOptions, Variant, get_variant, resolve_variants

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "REGISTRY",
    "VARIANT_NAMES",
    "Variant",
    "BuildOptions",
    "get_variant",
    "resolve_variants",
    "Source",
    "Sources",
    "ConversionData",
    "ExportOptions",
    "ExportResult",
    "VariantResult",
    "export_variants",
    "write_bundle",
    "quiet_native",
    "Gates",
    "Parity",
    "ConverterError",
    "UnknownVariantError",
    "ModelInputError",
    "UnsupportedOpError",
    "ConversionFailedError",
    "ParityGateError",
]
