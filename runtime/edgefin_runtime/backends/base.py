"""The one small interface every inference engine implements, plus the shared tensor helpers.

An :class:`Engine` scores an already-preprocessed float32 feature matrix. Two entry points:

* :meth:`Engine.run` - a matrix ``(n, k)`` to a fresh float32 vector ``(n,)``; any ``n >= 0``.
* :meth:`Engine.run_one` - one row given as a sequence of ``k`` Python floats to a Python float.
  This is the microsecond path: it writes into buffers preallocated at load, allocates nothing
  it can avoid, and must return exactly the value ``run`` gives for the same row.

Engines are safe to share between threads; each implementation documents how.
Quantised (int8/uint8) model inputs and outputs are handled here, so callers always see float32.
"""

from __future__ import annotations

import abc
from _thread import allocate_lock, get_ident
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..errors import BackendError, ManifestError
from ..manifest import ModelSpec, Quantization

#: Largest batch an engine runs in one call; bigger matrices are scored in chunks of this size.
MAX_CHUNK = 4096

_INT_LIMITS = {"int8": (-128, 127), "uint8": (0, 255)}
#: model input/output dtypes the engines can feed and read (quantised ones through the tensor's params)
IO_DTYPES = ("float32", "int8", "uint8")


if TYPE_CHECKING:

    class RowSlot(NamedTuple):
        """One thread's single-row input/output, for the allocation-free scoring path.

        The caller zeroes the row (``raw[:] = zero``), writes features into ``features`` (a float32
        memoryview of length n_features), calls ``invoke()`` and reads the probability as ``out[0]``.
        """

        raw: memoryview
        zero: bytes
        features: memoryview
        invoke: Callable[[], Any]
        out: Any

else:

    class RowSlot(tuple):
        """The same five-field tuple at run time, without ``NamedTuple``'s class-building cost (~0.3 ms
        of a device's cold start): built positionally, unpacked, ``.features`` read by name."""

        __slots__ = ()

        def __new__(cls, raw, zero, features, invoke, out):
            return tuple.__new__(cls, (raw, zero, features, invoke, out))

        raw = property(itemgetter(0))
        zero = property(itemgetter(1))
        features = property(itemgetter(2))
        invoke = property(itemgetter(3))
        out = property(itemgetter(4))


class Engine(abc.ABC):
    """Score preprocessed float32 features. Subclasses set ``name`` and implement the two runs."""

    name: str = ""
    n_features: int
    threads: int
    _batch_gate: Callable[[], object] | None = None
    _gate_owner: int | None = None

    @abc.abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for a float32 matrix of shape (n, n_features), as a new float32 (n,) array."""

    @abc.abstractmethod
    def run_one(self, row: Sequence[float]) -> float:
        """The probability for one row of n_features Python floats (bit-identical to ``run``)."""

    def row_slot(self) -> RowSlot | None:
        """This thread's :class:`RowSlot`, or None when the engine only offers :meth:`run_one`."""
        return None

    def describe(self) -> dict[str, Any]:
        """What runs the model, for ``info`` and benchmark reports."""
        return {"engine": self.name, "threads": self.threads}

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op  # pragma: no cover - engines without native state
        """Release native resources early (optional; garbage collection also does it)."""

    def gate_batch(self, check: Callable[[], object] | None) -> None:
        """Run ``check`` once, before the first matrix :meth:`run` scores (None: no check pending).

        ``load`` puts the golden vectors' batch-path check here: a restart that scores one record never
        builds a batch interpreter, and every batch is still scored only after that check has passed.
        Other threads wait for the check; one that fails stays pending, so the next batch fails too.
        """
        self._gate_lock = allocate_lock()
        self._batch_gate = check

    def _open_gate(self) -> None:
        with self._gate_lock:
            check = self._batch_gate
            if check is None:
                return
            self._gate_owner = get_ident()  # the check's own run() passes straight through
            try:
                check()
            finally:
                self._gate_owner = None
            self._batch_gate = None

    # ------------------------------------------------------------ shared checks
    def _check_matrix(self, x: np.ndarray) -> np.ndarray:
        if self._batch_gate is not None and self._gate_owner != get_ident():
            self._open_gate()
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != self.n_features:
            shape = getattr(x, "shape", None)
            raise BackendError(
                f"{self.name}: expected a float32 matrix of shape (n, {self.n_features}), "
                f"got {type(x).__name__} with shape {shape}"
            )
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float32)
        return x


def quantize(x: np.ndarray, q: Quantization, dtype: str) -> np.ndarray:
    """Float32 -> int8/uint8 exactly as TFLite's Quantize kernel: round(x / scale) + zero_point,
    rounding half away from zero, then clamp. Done in float64 so the rounding itself is exact."""
    lo, hi = _INT_LIMITS[dtype]
    v = x.astype(np.float32) / np.float32(q.scale)  # the kernel divides in float32
    v = v.astype(np.float64)
    r = np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5)) + q.zero_point
    out: np.ndarray = np.clip(r, lo, hi).astype(dtype)
    return out


def dequantize(q_values: np.ndarray, q: Quantization) -> np.ndarray:
    """int8/uint8 -> float32: (q - zero_point) * scale, in float32 like TFLite's Dequantize."""
    return (q_values.astype(np.float32) - np.float32(q.zero_point)) * np.float32(q.scale)


def check_io(
    spec: ModelSpec,
    *,
    engine: str,
    in_dtype: str,
    out_dtype: str,
    in_last: int | None,
    in_quant: Quantization | None,
    out_quant: Quantization | None,
) -> None:
    """The model's real input/output must match what the manifest declares (else the bundle lies)."""
    tin, tout = spec.inputs[0], spec.outputs[0]
    file = spec.file
    for where, dtype in (("input", in_dtype), ("output", out_dtype)):
        if dtype not in IO_DTYPES:
            raise BackendError(
                f"{engine}: {file} has a {dtype} {where}; this runtime feeds and reads "
                f"{', '.join(IO_DTYPES)} tensors only"
            )
    if in_last is not None and in_last != tin.shape[-1]:
        raise ManifestError(
            f"manifest model.inputs[0].shape says {tin.shape[-1]} features but {file} expects "
            f"{in_last}; the manifest does not describe this model - rebuild the bundle"
        )
    for where, declared, actual in (("inputs[0]", tin.dtype, in_dtype), ("outputs[0]", tout.dtype, out_dtype)):
        if declared != actual:
            raise ManifestError(
                f"manifest model.{where}.dtype says {declared} but {file} has {actual}; "
                f"the manifest does not describe this model - rebuild the bundle"
            )
    for where, declared_q, actual_q, dtype in (
        ("inputs[0]", tin.quantization, in_quant, in_dtype),
        ("outputs[0]", tout.quantization, out_quant, out_dtype),
    ):
        if dtype not in _INT_LIMITS:
            continue
        if actual_q is None:
            raise ManifestError(
                f"{engine}: {file} has a quantised {dtype} {where} but no quantisation "
                f"parameters are known for it (declare model.{where}.quantization)"
            )
        if declared_q is not None and (
            declared_q.zero_point != actual_q.zero_point
            or not np.isclose(declared_q.scale, actual_q.scale, rtol=1e-6, atol=0)
        ):
            raise ManifestError(
                f"manifest model.{where}.quantization says scale={declared_q.scale}, "
                f"zero_point={declared_q.zero_point} but {file} has scale={actual_q.scale}, "
                f"zero_point={actual_q.zero_point}; rebuild the bundle"
            )


def bucket(n: int) -> int:
    """The padded batch size used for ``n`` rows: the next power of two (at most MAX_CHUNK).

    A bounded set of shapes means a bounded set of prepared interpreters per thread, however the
    caller's batch sizes vary; padding rows are zeros and are never returned.
    """
    return min(MAX_CHUNK, 1 << max(0, n - 1).bit_length())


__all__ = ["Engine", "RowSlot", "MAX_CHUNK", "quantize", "dequantize", "check_io", "bucket"]
