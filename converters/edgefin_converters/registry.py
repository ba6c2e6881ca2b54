"""The registry of deployable variants, by name. An unknown name lists the valid ones.

Each :class:`Variant` says which engine runs it, what its weights/activations are, which source model
it is converted from, which parity gate applies, and how to build its model bytes.

Sources: a run that has a quantisation-aware (QAT) model converts ``tflite-int8`` from it (the
learned fake-quant ranges become the int8 parameters). Every other variant is converted from the
float model the run has (pruned, else dense): float variants must not carry fake-quant ops, and
``tflite-int8-ptq`` is by definition post-training quantisation of a float model. Without QAT,
``tflite-int8`` is post-training quantised too, calibrated on rows from the training split.

Gates (see ``parity.Gates``): ``exact`` (float32) and ``fp16`` compare probabilities element-wise;
``quantized`` (int8, and dynamic-range, whose activation rounding moves scores by ~1e-3) gates the
AUC drop and the decision flip rate instead.

``onnx-dynamic`` quantises activations with one range per input tensor at run time, so in a batch a
record's score would depend on the other records (up to 0.085 measured on the credit data); it is
therefore exported with a fixed batch of 1, which the runtime scores record by record. Parity checks
the batch and the one-record path of every variant. (``tflite-dynamic`` quantises per row: no effect.)

What a variant needs of the CPU (``Variant.cpu``, ``Variant.portable``): every variant runs on any
x86-64 (SSE4.2 is enough) or ARM64 CPU. ``portable`` says whether its decisions are the same on every
instruction set, so the parity proven on the build machine holds on the device:

* float variants (``tflite-fp32``, ``tflite-fp16``, ``onnx-fp32``): float kernels differ by ISA (FMA,
  summation order), scores agree to ~1e-7, not bit for bit;
* ``onnx-dynamic`` and ``onnx-int8`` use uint8 weights *and* activations (U8U8): ONNX Runtime's int8
  GEMM is then exact integer arithmetic on every ISA. The former default, int8 weights (U8S8/S8S8),
  saturates int16 in ``vpmaddubsw`` on AVX2/AVX-512 without VNNI and not elsewhere: measured on the
  credit demo (891 rows) onnx-dynamic moved by 0.046 and flipped 14 decisions between AVX2 and SSE4.2,
  onnx-int8 by 0.0078. With U8U8, onnx-int8 is bit-identical across SSE4.2, AVX2 and ARM64 (NEON,
  with and without dot product), onnx-dynamic within 1.2e-7 (its float epilogue; 0 flips); see
  ``benchmarks/results/isa_quant.md``. ``onnx-int8`` is always per-channel (``BuildOptions.per_channel``
  does not apply): per-tensor U8U8 flipped 1.01% of the demo's decisions, per-channel 0.45%;
* full-int8 LiteRT (``tflite-int8``, ``tflite-int8-ptq``) runs on LiteRT's reference kernels
  (``kernels="reference"`` in the manifest; the runtime honours it). XNNPACK, LiteRT's default, requantises
  int8 differently on ARM64 than on x86: on the credit demo (891 test rows) tflite-int8 moved by 0.023
  and tflite-int8-ptq by 0.012 (1 decision) between this AVX2 host and an emulated Cortex-A72, and
  the acceptance set saw 3 decisions flip. The reference kernels gave bit-identical scores on AVX2,
  SSE4.2 and ARM64, and the same scores as XNNPACK on x86. The cost is batch throughput (single-record
  invoke ~2.5 us either way; 1,024-row batches ~0.87M rows/s instead of ~4.8M, measured on this host);
* ``tflite-dynamic`` keeps float activations: agrees to ~1e-7 across ISAs with XNNPACK.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from edgefin_runtime.manifest import MODEL_NAMES, ModelSpec

from . import onnx as onnx_conv
from . import tflite as tflite_conv
from .errors import UnknownVariantError
from .keras_io import ModelInfo

Details = tflite_conv.TFLiteDetails | onnx_conv.OnnxDetails
GateKind = Literal["exact", "fp16", "quantized"]
SourceKind = Literal["float", "quantized"]


@dataclass(frozen=True)
class BuildOptions:
    """Options shared by every variant: ONNX opset, int8 I/O for full-int8 TFLite, and per-channel
    (instead of per-tensor) int8 weights for post-training static quantisation. Per-tensor is the
    default: on the credit model it measured as accurate (AUC delta -0.0004 vs -0.0007 per-channel,
    same flips) and keeps tflite-int8 at 39% of float32 instead of 50% (per-channel scales and
    zero points cost 12 bytes per output unit)."""

    opset: int = onnx_conv.DEFAULT_OPSET
    int8_io: bool = False
    per_channel: bool = False
    #: layers left in float32 by accuracy repair (:mod:`.repair`): node names, per engine, for the
    #: calibrated variants only; empty = quantise every layer
    keep_float: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"opset": self.opset, "int8_io": self.int8_io, "per_channel": self.per_channel}
        if self.keep_float:
            out["keep_float"] = list(self.keep_float)
        return out


@dataclass
class BuildContext:
    """Everything a build function needs; caches the float ONNX model shared by the ONNX variants."""

    model: Any
    info: ModelInfo
    calibration: np.ndarray
    options: BuildOptions
    _onnx_fp32: bytes | None = field(default=None, repr=False)

    def onnx_fp32(self) -> bytes:
        if self._onnx_fp32 is None:
            self._onnx_fp32 = onnx_conv.to_onnx_fp32(self.model, self.info.n_features, opset=self.options.opset)
        return self._onnx_fp32


@dataclass(frozen=True)
class Variant:
    name: str
    engine: Literal["litert", "onnx"]
    weights: str
    activations: str
    gate: GateKind
    source: SourceKind
    description: str
    build: Callable[[BuildContext], bytes] = field(repr=False)
    #: how far the device may drift from the golden scores recorded at conversion (different CPUs and
    #: kernels round differently; int8 outputs move in steps of 1/256)
    golden_tolerance: float = 1e-5
    #: calibrated on training rows (post-training static quantisation)
    calibrated: bool = False
    #: what the variant needs of the CPU and how far its scores depend on the instruction set (short text
    #: for the README's variant table)
    cpu: str = "any x86-64 (SSE4.2) or ARM64 CPU"
    #: the same decisions on every instruction set (SSE4.2, AVX2, AVX-512, ARM64), so parity proven on the
    #: build machine holds on the device; False = leave it out of a default set meant for any CPU
    portable: bool = True
    #: the engine kernels the runtime must use ("reference": LiteRT's portable reference kernels)
    kernels: Literal["default", "reference"] = "default"

    def model_spec(self, model_bytes: bytes, source_stage: str) -> tuple[ModelSpec, Details]:
        """The manifest's model section for ``model_bytes`` (its real I/O tensors) and what describing it found."""
        details: Details = (
            tflite_conv.describe_tflite(model_bytes)
            if self.engine == "litert"
            else onnx_conv.describe_onnx(model_bytes)
        )
        spec = ModelSpec(
            engine=self.engine,
            variant=self.name,
            file=MODEL_NAMES[self.engine],
            inputs=details.inputs,
            outputs=details.outputs,
            weights=self.weights,
            activations=self.activations,
            kernels=self.kernels,
            source_stage=source_stage,
        )
        return spec, details


def _tflite_int8(ctx: BuildContext) -> bytes:
    """From a QAT model its learned ranges are used; from a float model this is post-training quantisation."""
    return tflite_conv.to_tflite_int8(
        ctx.model,
        ctx.calibration,
        int8_io=ctx.options.int8_io,
        per_channel=ctx.options.per_channel,
        keep_float=ctx.options.keep_float,
    )


_FLOAT_CPU = "any x86-64 (SSE4.2) or ARM64 CPU; float kernels differ by ISA: scores agree to ~1e-7"
_LITERT_DYNAMIC_CPU = "any x86-64 (SSE4.2) or ARM64 CPU; float activations: scores agree to ~1e-7 across ISAs"
_LITERT_INT8_CPU = (
    "any x86-64 (SSE4.2) or ARM64 CPU; LiteRT reference kernels: bit-identical scores on every "
    "ISA measured (XNNPACK's int8 differs on ARM64)"
)

REGISTRY: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "tflite-fp32",
            "litert",
            "float32",
            "float32",
            "exact",
            "float",
            "LiteRT, float32 weights and activations",
            lambda c: tflite_conv.to_tflite_fp32(c.model),
            cpu=_FLOAT_CPU,
        ),
        Variant(
            "tflite-fp16",
            "litert",
            "float16",
            "float32",
            "fp16",
            "float",
            "LiteRT, float16 weights, float32 activations",
            lambda c: tflite_conv.to_tflite_fp16(c.model),
            golden_tolerance=1e-4,
            cpu=_FLOAT_CPU,
        ),
        Variant(
            "tflite-dynamic",
            "litert",
            "int8",
            "float32",
            "quantized",
            "float",
            "LiteRT, dynamic-range quantisation: int8 weights, float activations",
            lambda c: tflite_conv.to_tflite_dynamic(c.model),
            golden_tolerance=5e-3,
            cpu=_LITERT_DYNAMIC_CPU,
        ),
        Variant(
            "tflite-int8",
            "litert",
            "int8",
            "int8",
            "quantized",
            "quantized",
            "LiteRT, full int8 (float I/O): from the QAT model, else post-training quantised",
            _tflite_int8,
            golden_tolerance=1e-2,
            calibrated=True,
            cpu=_LITERT_INT8_CPU,
            kernels="reference",
        ),
        Variant(
            "tflite-int8-ptq",
            "litert",
            "int8",
            "int8",
            "quantized",
            "float",
            "LiteRT, full int8 (float I/O) by post-training quantisation of the float model",
            lambda c: tflite_conv.to_tflite_int8(
                c.model,
                c.calibration,
                int8_io=c.options.int8_io,
                per_channel=c.options.per_channel,
                variant="tflite-int8-ptq",
                keep_float=c.options.keep_float,
            ),
            golden_tolerance=1e-2,
            calibrated=True,
            cpu=_LITERT_INT8_CPU,
            kernels="reference",
        ),
        Variant(
            "onnx-fp32",
            "onnx",
            "float32",
            "float32",
            "exact",
            "float",
            "ONNX Runtime, float32 (tf2onnx)",
            lambda c: c.onnx_fp32(),
            cpu=_FLOAT_CPU,
        ),
        Variant(
            "onnx-dynamic",
            "onnx",
            "uint8",
            "float32",
            "quantized",
            "float",
            "ONNX Runtime, dynamic quantisation: uint8 weights, activations quantised to uint8 at run time (batch 1)",
            lambda c: onnx_conv.to_onnx_dynamic(c.onnx_fp32()),
            golden_tolerance=5e-3,
            cpu="any x86-64 (SSE4.2) or ARM64 CPU; U8U8: exact integer GEMM on every ISA, float epilogue within ~1e-7",
        ),
        Variant(
            "onnx-int8",
            "onnx",
            "uint8",
            "uint8",
            "quantized",
            "float",
            "ONNX Runtime, static QDQ uint8 (per-channel weights) calibrated on training rows",
            lambda c: onnx_conv.to_onnx_int8(c.onnx_fp32(), c.calibration, nodes_to_exclude=c.options.keep_float),
            golden_tolerance=1e-2,
            calibrated=True,
            cpu="any x86-64 (SSE4.2) or ARM64 CPU; U8U8: bit-identical scores on every ISA measured",
        ),
    )
}

VARIANT_NAMES: tuple[str, ...] = tuple(REGISTRY)


def get_variant(name: str) -> Variant:
    """The variant called ``name``; UnknownVariantError lists the valid names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownVariantError(
            f"unknown variant {name!r}; valid variants: {', '.join(VARIANT_NAMES)} (or 'all')"
        ) from None


def resolve_variants(spec: str | Sequence[str] | None) -> list[Variant]:
    """Variants from 'all', a comma-separated string or a list of names, in registry order, no duplicates."""
    if spec is None:
        return list(REGISTRY.values())
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    if any(not n for n in names):
        raise UnknownVariantError(
            f"variants {spec!r}: empty name in the list; valid variants: {', '.join(VARIANT_NAMES)} (or 'all')"
        )
    if "all" in names:
        return list(REGISTRY.values())
    chosen = {get_variant(n).name for n in names}
    return [v for v in REGISTRY.values() if v.name in chosen]


__all__ = ["Variant", "BuildOptions", "BuildContext", "REGISTRY", "VARIANT_NAMES", "get_variant", "resolve_variants"]
