"""Inference engines behind one interface; each engine package is imported only when a bundle needs it.

``create_engine`` picks the engine from the manifest's ``model.engine``. A ``backend=`` override is
accepted only when it can run the bundle's model file (a ``.tflite`` model runs on LiteRT, an
``.onnx`` model on ONNX Runtime); ``"litert-ref"`` selects LiteRT's reference kernels. A bundle whose manifest says
``model.kernels = "reference"`` (full-int8 LiteRT variants) always runs on them: XNNPACK's int8 kernels
requantise differently on ARM64 than on x86 (up to 0.023 on the credit demo), the reference kernels give
the same integer result on every instruction set (``converters/edgefin_converters/registry.py``).
"""

from __future__ import annotations

from ..errors import BackendError
from ..manifest import ModelSpec
from .base import MAX_CHUNK, Engine

#: backend name -> the manifest engine it can run
BACKENDS = {"litert": "litert", "litert-ref": "litert", "onnx": "onnx"}


def uses_reference_kernels(kernels: str, backend: str | None = None) -> bool:
    """Whether LiteRT runs a model on its reference kernels (``OpResolverType.BUILTIN_REF``): the
    manifest's ``model.kernels`` is ``"reference"``, or the caller chose the ``litert-ref`` backend."""
    return backend == "litert-ref" or kernels == "reference"


def create_engine(
    spec: ModelSpec, model_bytes: bytes, *, backend: str | None = None, threads: int = 1, inter_op_threads: int = 1
) -> Engine:
    """Build the engine that runs ``model_bytes`` as described by ``spec``."""
    name = backend or spec.engine
    if name not in BACKENDS:
        raise BackendError(
            f"unknown backend {name!r}; expected one of {sorted(BACKENDS)} (or None to use the "
            f"bundle's engine, {spec.engine!r})"
        )
    if BACKENDS[name] != spec.engine:
        raise BackendError(
            f"backend {name!r} cannot run this bundle: it holds {spec.file} for the "
            f"{spec.engine!r} engine; use backend={spec.engine!r} or omit backend"
        )
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise BackendError(f"threads: expected a positive integer, got {threads!r}")
    if not isinstance(inter_op_threads, int) or isinstance(inter_op_threads, bool) or inter_op_threads < 1:
        raise BackendError(f"inter_op_threads: expected a positive integer, got {inter_op_threads!r}")
    if spec.engine == "litert":
        from .litert import LiteRTEngine

        return LiteRTEngine(
            model_bytes, spec, threads=threads, reference_kernels=uses_reference_kernels(spec.kernels, name)
        )
    from .onnx import OnnxEngine

    return OnnxEngine(model_bytes, spec, threads=threads, inter_op_threads=inter_op_threads)


__all__ = ["BACKENDS", "Engine", "MAX_CHUNK", "create_engine", "uses_reference_kernels"]
