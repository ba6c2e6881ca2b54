"""LiteRT (``ai_edge_litert``) engine for ``model.tflite`` bundles.

LiteRT interpreters are not thread-safe, so each thread gets its own (``threading.local``): one
interpreter for the single-row path and one per padded batch size (powers of two up to
``MAX_CHUNK``) for matrices. All are built from the same verified model bytes and the same kernels,
so every thread computes exactly what a single thread computes.

The single-row path writes the row straight into the interpreter's input buffer through a numpy
view kept from load time and calls the native ``Invoke``. The public ``Interpreter.invoke`` refuses
to run while such a view exists (a refcount guard against buffers moving on reallocation); this
engine never resizes or reallocates the single-row interpreter, and checks at set-up that the
buffers did not move across an invoke, so the guard is not needed there.
"""

from __future__ import annotations

from _thread import _local as thread_local  # threading.local itself, without importing threading (cold start)
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import BackendError
from ..manifest import ModelSpec, Quantization
from .base import MAX_CHUNK, Engine, RowSlot, bucket, check_io, dequantize, quantize

INSTALL_HINT = "pip install 'edgefin-runtime[litert]'"


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise BackendError(
            f"this bundle needs the LiteRT engine (ai-edge-litert), which is not installed "
            f"({exc}); install it with: {INSTALL_HINT}"
        ) from None
    return Interpreter


def _quant(details: dict[str, Any]) -> Quantization | None:
    scale, zero = details.get("quantization", (0.0, 0))
    if not scale:
        return None
    return Quantization(scale=float(scale), zero_point=int(zero))


def _native(interpreter: Any) -> Any:
    """The interpreter's pybind wrapper (for Invoke without the refcount guard), if this LiteRT has one."""
    return getattr(interpreter, "_interpreter", None)


def in_place(it: Any, in_index: int, out_index: int) -> tuple[np.ndarray, np.ndarray, Callable[[], Any]] | None:
    """Views on an allocated interpreter's input and output buffers and its native ``Invoke``, for
    filling and reading them in place; None when this LiteRT has no native wrapper or the buffers move
    on invoke (a dynamic graph: then they must be fetched every call). Runs the model once to check."""
    native = _native(it)
    if native is None:
        return None
    in_view, out_view = it.tensor(in_index), it.tensor(out_index)
    inp, out = in_view(), out_view()
    before = (inp.ctypes.data, out.ctypes.data)
    native.Invoke()
    if before != (in_view().ctypes.data, out_view().ctypes.data):
        return None
    return inp, out, native.Invoke


class _One:
    """One thread's single-row interpreter with views on its input and output buffers."""

    __slots__ = ("interp", "invoke", "inp", "out", "row")

    def __init__(self, engine: LiteRTEngine) -> None:
        it = engine._take_spare() or engine._new_interpreter(1)
        self.interp = it
        views = in_place(it, engine._in_index, engine._out_index)
        self.invoke: Callable[[], Any] = it.invoke if views is None else views[2]
        self.inp: np.ndarray | None = None if views is None else views[0].reshape(-1)
        self.out: np.ndarray | None = None if views is None else views[1].reshape(-1)
        self.row: RowSlot | None = None
        if self.inp is not None and self.out is not None and engine._float_io:
            features = self.inp.data
            self.row = RowSlot(features.cast("B"), bytes(features.nbytes), features, self.invoke, self.out.data)


class LiteRTEngine(Engine):
    """Runs a TFLite flatbuffer with LiteRT; float32 or quantised int8/uint8 I/O."""

    name = "litert"

    def __init__(
        self, model_bytes: bytes, spec: ModelSpec, *, threads: int = 1, reference_kernels: bool = False
    ) -> None:
        self._cls = _interpreter_class()
        self._bytes = bytes(model_bytes)
        self._spec = spec
        self.threads = int(threads)
        self._resolver = None
        if reference_kernels:
            from ai_edge_litert.interpreter import OpResolverType

            self._resolver = OpResolverType.BUILTIN_REF
        probe = self._new_interpreter(None)
        ins, outs = probe.get_input_details(), probe.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise BackendError(
                f"litert: {spec.file} has {len(ins)} inputs and {len(outs)} outputs; "
                f"an edgefin model has exactly one of each"
            )
        tin, tout = ins[0], outs[0]
        self._in_index, self._out_index = int(tin["index"]), int(tout["index"])
        self._in_dtype = np.dtype(tin["dtype"]).name
        self._out_dtype = np.dtype(tout["dtype"]).name
        self._in_q, self._out_q = _quant(tin), _quant(tout)
        if self._in_dtype == "float32":
            self._in_q = None
        if self._out_dtype == "float32":
            self._out_q = None
        shape = [int(s) for s in tin["shape_signature"]] or [int(s) for s in tin["shape"]]
        check_io(
            spec,
            engine="litert",
            in_dtype=self._in_dtype,
            out_dtype=self._out_dtype,
            in_last=shape[-1] if len(shape) == 2 else None,
            in_quant=self._in_q,
            out_quant=self._out_q,
        )
        if len(shape) != 2:
            raise BackendError(f"litert: {spec.file} input has shape {shape}; expected [batch, features]")
        self.n_features = int(shape[-1])
        self._float_io = self._in_q is None and self._out_q is None
        self._local = thread_local()
        # the probe already holds a [1, features] interpreter (the usual converted shape): the first
        # thread's single-row path takes it instead of building another (list.pop is atomic)
        self._spares: list[Any] = [probe] if [int(s) for s in tin["shape"]] == [1, self.n_features] else []

    def _take_spare(self) -> Any:
        try:
            return self._spares.pop()
        except IndexError:
            return None

    # ------------------------------------------------------------ interpreters
    def _new_interpreter(self, batch: int | None) -> Any:
        kwargs: dict[str, Any] = {"model_content": self._bytes, "num_threads": self.threads}
        if self._resolver is not None:
            kwargs["experimental_op_resolver_type"] = self._resolver
        try:
            it = self._cls(**kwargs)
            if batch is not None:
                d = it.get_input_details()[0]
                if list(d["shape"]) != [batch, self.n_features]:
                    it.resize_tensor_input(d["index"], [batch, self.n_features], strict=False)
            it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BackendError(
                f"litert: cannot load {self._spec.file} ({exc}); the model is not a valid "
                f"TFLite flatbuffer for this LiteRT version"
            ) from None
        return it

    def _one(self) -> _One:
        slot = _One(self)
        self._local.one = slot
        return slot

    def fixed_batch(self, rows: int) -> tuple[np.ndarray, np.ndarray, Callable[[], Any], Any] | None:
        """A new interpreter of exactly ``rows`` rows to fill in place (float32 I/O only): its input
        (rows, n_features) and output (rows,) views, its native invoke and the interpreter itself (keep it
        alive with the views). Same model bytes, kernels and threads, so every row scores as ``run``
        scores it. None where :func:`in_place` gives no views or the I/O is quantised."""
        if not self._float_io:
            return None
        it = self._new_interpreter(rows)
        views = in_place(it, self._in_index, self._out_index)
        if views is None:
            return None
        inp, out, invoke = views
        if inp.shape != (rows, self.n_features) or out.size != rows:
            return None
        return inp, out.reshape(rows), invoke, it

    def _batch_interp(self, size: int) -> Any:
        cache = getattr(self._local, "batch", None)
        if cache is None:
            cache = self._local.batch = {}
        it = cache.get(size)
        if it is None:
            it = cache[size] = self._new_interpreter(size)
        return it

    # ------------------------------------------------------------ scoring
    def row_slot(self) -> RowSlot | None:
        try:
            s: _One = self._local.one
        except AttributeError:
            s = self._one()
        return s.row

    def run_one(self, row: Sequence[float]) -> float:
        try:
            s = self._local.one
        except AttributeError:
            s = self._one()
        inp = s.inp
        if inp is not None and self._float_io:  # the common path
            inp[:] = row
            try:
                s.invoke()
            except (ValueError, RuntimeError) as exc:
                raise BackendError(f"litert: inference failed ({exc})") from None
            return float(s.out[0])
        return float(self._run_slot(s, row))

    def _run_slot(self, s: _One, row: Sequence[float]) -> float:
        it = s.interp
        x = np.asarray([row], dtype=np.float32)
        feed = quantize(x, self._in_q, self._in_dtype) if self._in_q else x
        try:
            if s.inp is not None:
                s.inp[:] = feed.reshape(-1)
                s.invoke()
                y = s.out.copy()  # type: ignore[union-attr]
            else:
                it.set_tensor(self._in_index, feed)
                it.invoke()
                y = it.get_tensor(self._out_index).reshape(-1)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"litert: inference failed ({exc})") from None
        return float(dequantize(y, self._out_q)[0] if self._out_q else y[0])

    def run(self, x: np.ndarray) -> np.ndarray:
        x = self._check_matrix(x)
        n = x.shape[0]
        out = np.empty(n, dtype=np.float32)
        for start in range(0, n, MAX_CHUNK):
            chunk = x[start : start + MAX_CHUNK]
            out[start : start + len(chunk)] = self._run_chunk(chunk)
        return out

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        m = len(chunk)
        size = bucket(m)
        if m < size:
            padded = np.zeros((size, self.n_features), dtype=np.float32)
            padded[:m] = chunk
            chunk = padded
        feed = quantize(chunk, self._in_q, self._in_dtype) if self._in_q else chunk
        it = self._batch_interp(size)
        try:
            it.set_tensor(self._in_index, feed)
            it.invoke()
            y = it.get_tensor(self._out_index)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"litert: inference failed on a batch of {m} rows ({exc})") from None
        y = y.reshape(size, -1)[:m, 0]
        return dequantize(y, self._out_q) if self._out_q else y

    def describe(self) -> dict[str, Any]:
        import importlib.metadata as md

        try:
            version = md.version("ai-edge-litert")
        except md.PackageNotFoundError:  # pragma: no cover - vendored builds
            version = "unknown"
        return {
            "engine": "litert",
            "package": "ai-edge-litert",
            "version": version,
            "threads": self.threads,
            "input_dtype": self._in_dtype,
            "output_dtype": self._out_dtype,
            "reference_kernels": self._resolver is not None,
        }

    def close(self) -> None:
        self._local = thread_local()
