"""ONNX Runtime engine for ``model.onnx`` bundles.

An ``InferenceSession`` may be shared by threads (ORT documents ``run`` as thread-safe), so one
session serves all of them; only the single-row input buffer is per thread. Intra- and inter-op
thread pools default to one thread each: a branch device scores one record at a time, and more
threads only add wake-up latency for a model this small.
"""

from __future__ import annotations

from _thread import _local as thread_local  # threading.local itself, without importing threading (cold start)
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import BackendError, ManifestError
from ..manifest import ModelSpec
from .base import MAX_CHUNK, Engine, RowSlot, check_io, dequantize, quantize

INSTALL_HINT = "pip install 'edgefin-runtime[onnx]'"
_ONNX_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError(
            f"this bundle needs ONNX Runtime (onnxruntime), which is not installed ({exc}); "
            f"install it with: {INSTALL_HINT}"
        ) from None
    return onnxruntime


class OnnxEngine(Engine):
    """Runs an ONNX model on ONNX Runtime's CPU provider."""

    name = "onnx"

    def __init__(self, model_bytes: bytes, spec: ModelSpec, *, threads: int = 1, inter_op_threads: int = 1) -> None:
        ort = _ort()
        self._version = getattr(ort, "__version__", "unknown")
        self.threads = int(threads)
        self.inter_op_threads = int(inter_op_threads)
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = self.inter_op_threads
        so.log_severity_level = 3
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(bytes(model_bytes), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... classes
            raise BackendError(
                f"onnx: cannot load {spec.file} ({type(exc).__name__}: {exc}); the model is not "
                f"a valid ONNX model for ONNX Runtime {self._version}"
            ) from None
        ins, outs = self._session.get_inputs(), self._session.get_outputs()
        if len(ins) != 1 or len(outs) != 1:
            raise BackendError(
                f"onnx: {spec.file} has {len(ins)} inputs and {len(outs)} outputs; "
                f"an edgefin model has exactly one of each"
            )
        tin, tout = ins[0], outs[0]
        in_dtype = _ONNX_TYPES.get(tin.type, tin.type)
        out_dtype = _ONNX_TYPES.get(tout.type, tout.type)
        shape = list(tin.shape)
        last = shape[-1] if len(shape) == 2 and isinstance(shape[-1], int) else None
        in_q = spec.inputs[0].quantization if in_dtype in ("int8", "uint8") else None
        out_q = spec.outputs[0].quantization if out_dtype in ("int8", "uint8") else None
        check_io(
            spec, engine="onnx", in_dtype=in_dtype, out_dtype=out_dtype, in_last=last, in_quant=in_q, out_quant=out_q
        )
        if len(shape) != 2:
            raise BackendError(f"onnx: {spec.file} input has shape {shape}; expected [batch, features]")
        if last is None:
            raise ManifestError(f"onnx: {spec.file} input has no fixed feature dimension ({shape})")
        self.n_features = last
        self._in_dtype, self._in_q, self._out_q = in_dtype, in_q, out_q
        self._in_name, self._out_names = tin.name, [tout.name]
        # a model exported with a fixed batch of 1 is run row by row
        self._max_batch = 1 if shape[0] == 1 else MAX_CHUNK
        self._float_io = in_q is None and out_q is None
        self._run = self._session._sess.run if hasattr(self._session, "_sess") else self._session.run
        self._local = thread_local()

    def _buffer(self) -> np.ndarray:
        buf = np.zeros((1, self.n_features), dtype=np.float32)
        self._local.buf = buf
        self._local.feed = {self._in_name: buf}
        return buf

    def row_slot(self) -> RowSlot | None:
        if not self._float_io:
            return None
        slot = getattr(self._local, "row", None)
        if slot is None:
            buf = np.zeros((1, self.n_features), dtype=np.float32)
            feed = {self._in_name: buf}
            out = [0.0]
            run, names = self._run, self._out_names

            def invoke() -> None:
                out[0] = float(run(names, feed, None)[0][0, 0])

            features = buf.reshape(-1).data
            slot = self._local.row = RowSlot(features.cast("B"), bytes(features.nbytes), features, invoke, out)
        return slot

    def _call(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        try:
            out: np.ndarray = self._run(self._out_names, feed, None)[0]
        except Exception as exc:  # ORT's own exception classes
            raise BackendError(f"onnx: inference failed ({type(exc).__name__}: {exc})") from None
        return out

    def run_one(self, row: Sequence[float]) -> float:
        try:
            buf = self._local.buf
        except AttributeError:
            buf = self._buffer()
        buf[0] = row
        if self._float_io:
            return float(self._call(self._local.feed)[0, 0])
        return float(self._quantized(buf)[0])

    def _quantized(self, x: np.ndarray) -> np.ndarray:
        feed = quantize(x, self._in_q, self._in_dtype) if self._in_q else x
        y = self._call({self._in_name: feed}).reshape(len(x), -1)[:, 0]
        return dequantize(y, self._out_q) if self._out_q else y.astype(np.float32, copy=False)

    def run(self, x: np.ndarray) -> np.ndarray:
        x = self._check_matrix(x)
        n = x.shape[0]
        out = np.empty(n, dtype=np.float32)
        step = self._max_batch
        for start in range(0, n, step):
            chunk = x[start : start + step]
            out[start : start + len(chunk)] = self._quantized(chunk)
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "onnx",
            "package": "onnxruntime",
            "version": self._version,
            "threads": self.threads,
            "inter_op_threads": self.inter_op_threads,
            "input_dtype": self._in_dtype,
        }

    def close(self) -> None:
        self._local = thread_local()
