"""The bare engines, called directly: the baseline that shows what the runtime's validation and
preprocessing cost on top of LiteRT and ONNX Runtime.

Only the engine's own API runs in the timed loop (set_tensor/invoke/get_tensor, session.run) on a
feature matrix prepared beforehand; quantised inputs are quantised once, outside the loop.
Imported by the worker after its limits are applied. Moved here from the toolkit so that a device
run (``edgefin-run bench``) and a build-machine run time the same baseline.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


class BareEngine:
    """``run(x)`` scores a prepared float32 matrix with nothing but the engine in between.

    What ``prepare`` returns is each engine's own input form (a quantised array, a feed dict, a list of
    them), passed back to ``call`` as it is; ``call`` returns the engine's raw output."""

    engine: str
    version: str
    fixed_batch: int | None = None

    def prepare(self, x: np.ndarray) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def call(self, prepared: Any) -> object:  # pragma: no cover - interface
        raise NotImplementedError

    def runner(self, prepared: Any) -> Callable[[], object]:
        call = self.call
        return lambda: call(prepared)


class LiteRTEngine(BareEngine):
    engine = "litert"

    def __init__(self, model_bytes: bytes, threads: int, *, reference_kernels: bool = False) -> None:
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.version = getattr(ai_edge_litert, "__version__", "unknown")
        # the kernels the runtime uses for this bundle (bare_engine applies the runtime's rule), so the
        # baseline is the same work
        kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference_kernels else {}
        self._it = Interpreter(model_content=model_bytes, num_threads=threads, **kw)
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]
        self._out = self._it.get_output_details()[0]
        self._batch = int(self._in["shape"][0])

    def prepare(self, x: np.ndarray) -> np.ndarray:
        dtype = self._in["dtype"]
        if dtype != np.float32:
            scale, zero = self._in["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
        if x.shape[0] != self._batch:
            self._it.resize_tensor_input(self._in["index"], list(x.shape))
            self._it.allocate_tensors()
            self._batch = x.shape[0]
        return np.ascontiguousarray(x)

    def call(self, prepared: np.ndarray) -> object:
        it = self._it
        it.set_tensor(self._in["index"], prepared)
        it.invoke()
        return it.get_tensor(self._out["index"])


class OnnxEngine(BareEngine):
    engine = "onnx"

    def __init__(self, model_bytes: bytes, threads: int) -> None:
        import onnxruntime as ort

        self.version = ort.__version__
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        self._sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
        inp = self._sess.get_inputs()[0]
        self._in = inp.name
        self._out = self._sess.get_outputs()[0].name
        dim = inp.shape[0] if inp.shape else None
        # a model with a fixed batch (onnx-dynamic has batch 1: its activation range is per tensor, so a
        # record must be scored alone) runs a batch as that many calls - as the runtime does
        self.fixed_batch = dim if isinstance(dim, int) and dim > 0 else None

    def prepare(self, x: np.ndarray) -> Any:
        x = np.ascontiguousarray(x, dtype=np.float32)
        fb = self.fixed_batch
        if fb is not None and x.shape[0] != fb:
            return [{self._in: x[i : i + fb]} for i in range(0, x.shape[0], fb)]
        return {self._in: x}

    def call(self, prepared: Any) -> object:
        if isinstance(prepared, list):
            run, outs = self._sess.run, [self._out]
            return [run(outs, feed) for feed in prepared]
        return self._sess.run([self._out], prepared)


def bare_engine(engine: str, model_bytes: bytes, threads: int, *, kernels: str = "default") -> BareEngine:
    """The engine called directly, on the kernels the bundle's manifest asks for (``model.kernels``)."""
    if engine == "litert":
        from ..backends import uses_reference_kernels

        return LiteRTEngine(model_bytes, threads, reference_kernels=uses_reference_kernels(kernels))
    if engine == "onnx":
        return OnnxEngine(model_bytes, threads)
    raise ValueError(f"unknown engine {engine!r}; expected 'litert' or 'onnx'")
