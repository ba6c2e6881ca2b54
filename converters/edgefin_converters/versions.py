"""The libraries whose versions decide what a conversion produces, and how their versions are read.

Bundles record them (``producer.libraries`` in the manifest); the toolkit's benchmark report records
the same list plus its own packages. Reading them imports none of the libraries.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata

BUILD_LIBRARIES = (
    "tensorflow",
    "tf-keras",
    "tensorflow-model-optimization",
    "tf2onnx",
    "onnx",
    "onnxruntime",
    "ai-edge-litert",
    "numpy",
    "edgefin-runtime",
    "edgefin-converters",
)


def library_versions(names: Iterable[str] = BUILD_LIBRARIES, *, missing: str | None = None) -> dict[str, str]:
    """The installed version of each distribution in ``names``; one that is not installed is left out
    (``missing`` None) or given the text ``missing``."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if missing is not None:
                out[name] = missing
    return out


__all__ = ["BUILD_LIBRARIES", "library_versions"]
