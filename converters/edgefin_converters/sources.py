"""Source models that are not tf_keras objects: a TensorFlow function, or an ONNX model.

The converters take a tf_keras model, or one of these two, wherever they take a "model":

* :class:`GraphModel` - a float model as a TensorFlow concrete function with one ``(batch, k)``
  float32 input: a Keras 3 model's own export endpoint (:func:`from_keras3`, Keras 3's
  ``ExportArchive``, as ``model.export(format="tf_saved_model")`` builds it) or a SavedModel's
  serving signature (:func:`from_saved_model`). TFLite converts it with
  ``TFLiteConverter.from_concrete_functions``; ONNX with tf2onnx from the same function, frozen
  first (tf2onnx's ``from_function`` turns constants the function captures, e.g. a Keras 3
  ``Normalization`` layer's mean and variance, into extra graph inputs; the frozen graph has none).
  No tf_keras is involved.
* :class:`OnnxModel` - a float ONNX model, renamed to the bundle's tensor names (input ``features``,
  output ``score``; the graph is otherwise kept as it is). It scores with ONNX Runtime and gives the
  ONNX variants only: ``onnx-fp32`` is the model itself, ``onnx-dynamic`` and ``onnx-int8`` are ONNX
  Runtime quantisations of it (:mod:`.onnx`). TFLite variants cannot be built from it (LiteRT's
  converter reads TensorFlow graphs only; :data:`ONNX_NO_TFLITE` says so).

Both expose what :func:`.keras_io.check_model` and :func:`.keras_io.predict` read of a model:
``inputs``/``outputs`` (shape, dtype, name), ``layers`` (for naming a layer in an error) and a
call ``model(x, training=False)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ModelInputError

ONNX_NO_TFLITE = (
    "TFLite variants are not built from an ONNX model: LiteRT's converter reads TensorFlow graphs "
    "only, and translating ONNX back to TensorFlow (onnx2tf) is a second model to prove; the ONNX "
    "variants (onnx-fp32 as given, onnx-dynamic, onnx-int8) are built instead"
)


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as check_model reads it."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str


@dataclass
class GraphModel:
    """A float model as a TensorFlow concrete function (one float32 input, one probability output)."""

    function: Any  # tf ConcreteFunction
    owner: Any  # the trackable that holds the function's variables (TFLite's converter needs it)
    kind: str  # "keras3" or "saved_model"
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layers: list[Any] = field(default_factory=list)
    _call: Callable[[Any], Any] | None = field(default=None, repr=False)
    _frozen: Any = field(default=None, repr=False)

    def __call__(self, x: Any, training: bool = False) -> Any:
        """Probabilities for ``x`` (inference mode; ``training`` is accepted and ignored)."""
        import tensorflow as tf

        t = tf.convert_to_tensor(x, dtype=tf.float32)
        out = self._call(t) if self._call is not None else self.function(t)
        if isinstance(out, dict):
            out = next(iter(out.values()))
        elif isinstance(out, (list, tuple)):
            out = out[0]
        return out

    def frozen(self) -> Any:
        """The function with every captured variable and constant folded in (for tf2onnx)."""
        if self._frozen is None:
            from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

            self._frozen = convert_variables_to_constants_v2(self.function)
        return self._frozen


@dataclass
class OnnxModel:
    """A float ONNX model with the bundle's tensor names, scored by ONNX Runtime."""

    model_bytes: bytes
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    opset: int
    layers: list[Any] = field(default_factory=list)
    _session: Any = field(default=None, repr=False)

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        return self.predict(np.asarray(x, dtype=np.float32))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's output for a float32 matrix, shape (n, 1)."""
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(self.model_bytes, opts, providers=["CPUExecutionProvider"])
        out = self._session.run(None, {self.inputs[0].name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)


# ---------------------------------------------------------------- building them
def from_keras3(model: Any, *, label: str = "model") -> GraphModel:
    """A Keras 3 model (TensorFlow backend) as its export endpoint: ``ExportArchive.add_endpoint`` with an
    explicit ``(None, k)`` float32 input signature, as ``model.export(format="tf_saved_model")`` builds it."""
    import tensorflow as tf
    from keras.export import ExportArchive  # type: ignore[import-untyped]

    k = _keras3_width(model, label)
    archive = ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec((None, k), tf.float32, name="features")
    fn = archive.add_endpoint("serve", lambda x: model(x, training=False), input_signature=[spec])
    concrete = fn.get_concrete_function()
    return GraphModel(
        function=concrete,
        owner=archive,
        kind="keras3",
        inputs=[TensorInfo("features", (None, k), "float32")],
        outputs=[_out_info(concrete.structured_outputs, label)],
        layers=list(getattr(model, "layers", [])),
    )


def from_saved_model(path: str, *, label: str = "model") -> GraphModel:
    """A SavedModel directory's ``serving_default`` signature (one float input, one output)."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(path)
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises many types for a damaged SavedModel
        raise ModelInputError(f"{label}: TensorFlow cannot load this SavedModel ({_first_line(exc)})") from None
    sigs = dict(getattr(loaded, "signatures", {}) or {})
    if "serving_default" not in sigs:
        raise ModelInputError(
            f"{label}: the SavedModel has no 'serving_default' signature (it has {sorted(sigs) or 'none'}); "
            f"save it with a serving signature that takes the feature matrix"
        )
    fn = sigs["serving_default"]
    _, kwargs = fn.structured_input_signature
    if len(kwargs) != 1:
        raise ModelInputError(
            f"{label}: expected one input tensor of shape (batch, n_features), the serving signature "
            f"takes {len(kwargs)}: {sorted(kwargs)}; concatenate the features into one input"
        )
    arg, spec = next(iter(kwargs.items()))
    shape = tuple(None if d is None else int(d) for d in spec.shape)
    if len(shape) != 2 or shape[1] is None:
        raise ModelInputError(f"{label}: expected an input of shape (batch, n_features), got {list(shape)}")
    if spec.dtype != tf.float32:
        raise ModelInputError(f"{label}: expected a float32 input (features are encoded as float32), got {spec.dtype}")
    outs = fn.structured_outputs
    if len(outs) != 1:
        raise ModelInputError(
            f"{label}: expected one output (the positive-class probability), the serving signature has "
            f"{len(outs)}: {sorted(outs)}"
        )
    return GraphModel(
        function=fn,
        owner=loaded,
        kind="saved_model",
        inputs=[TensorInfo(str(arg), shape, "float32")],
        outputs=[_out_info(outs, label)],
        _call=lambda t: fn(**{arg: t}),
    )


def from_onnx(model_bytes: bytes, *, label: str = "model") -> OnnxModel:
    """An ONNX model with one float input (batch, k) and one output (batch, 1), renamed to the bundle's
    names (input ``features``, output ``score``, batch dimension ``batch``)."""
    import onnx

    from .onnx import BATCH_DIM, INPUT_NAME, OUTPUT_NAME

    try:
        proto = onnx.load_from_string(model_bytes)
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001 - protobuf/checker errors of a foreign file
        raise ModelInputError(f"{label}: not a valid ONNX model ({_first_line(exc)})") from None
    g = proto.graph
    inits = {i.name for i in g.initializer}
    real = [i for i in g.input if i.name not in inits]
    if len(real) != 1:
        raise ModelInputError(
            f"{label}: expected one input tensor of shape (batch, n_features), got {len(real)} inputs "
            f"{[i.name for i in real]}; concatenate the features into one input"
        )
    if len(g.output) != 1:
        raise ModelInputError(
            f"{label}: expected one output (the positive-class probability), got {len(g.output)} outputs "
            f"{[o.name for o in g.output]} (a classifier exported with labels and probabilities: keep "
            f"only the positive-class probability as a (batch, 1) output)"
        )
    vin, vout = real[0], g.output[0]
    if vin.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ModelInputError(
            f"{label}: expected a float32 input, got ONNX element type {vin.type.tensor_type.elem_type}"
        )
    ishape = _onnx_shape(vin)
    oshape = _onnx_shape(vout)
    if len(ishape) != 2 or ishape[1] is None:
        raise ModelInputError(f"{label}: expected an input of shape (batch, n_features), got {list(ishape)}")
    if ishape[0] is not None:
        raise ModelInputError(
            f"{label}: the input has a fixed batch of {ishape[0]}; export the model with a dynamic batch "
            f"axis (e.g. dynamic_axes / dim_param) so the runtime can score any number of records"
        )
    if len(oshape) != 2 or oshape[1] != 1:
        raise ModelInputError(
            f"{label}: expected an output of shape (batch, 1) holding the positive-class probability, "
            f"got {list(oshape)}"
        )
    rename_tensor(g, vin.name, INPUT_NAME)
    rename_tensor(g, vout.name, OUTPUT_NAME)
    for vi in list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    k = int(ishape[1])
    return OnnxModel(
        model_bytes=proto.SerializeToString(),
        inputs=[TensorInfo(INPUT_NAME, (None, k), "float32")],
        outputs=[TensorInfo(OUTPUT_NAME, (None, 1), "float32")],
        opset=int(opset),
    )


# ---------------------------------------------------------------- helpers
def _keras3_width(model: Any, label: str) -> int:
    inputs = list(getattr(model, "inputs", None) or [])
    text = [t for t in inputs if "float" not in str(getattr(t, "dtype", "float32"))]
    if text:
        layers = [type(layer).__name__ for layer in getattr(model, "layers", [])]
        inside = sorted({n for n in layers if n in ("StringLookup", "IntegerLookup", "CategoryEncoding", "Hashing")})
        raise ModelInputError(
            f"{label}: input '{_name(text[0])}' takes {getattr(text[0], 'dtype', '?')} values"
            + (f" (encoded inside the model by {', '.join(inside)})" if inside else "")
            + "; a bundle's model takes one float32 feature matrix, so lookup and one-hot layers on "
            "string or integer inputs cannot stay inside it. Ingest the model with its data first (edgefin.ingest "
            "lifts the lookups of a model with one input per column into the bundle's one-hot encoding), or "
            "train it on the encoded features of an edgefin schema"
        )
    if len(inputs) != 1:
        raise ModelInputError(
            f"{label}: expected one input tensor of shape (batch, n_features), got {len(inputs)} inputs; "
            f"concatenate the features into one input"
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 2 or shape[1] is None:
        raise ModelInputError(f"{label}: expected an input of shape (batch, n_features), got {list(shape)}")
    return int(shape[1])


def _name(t: Any) -> str:
    return str(getattr(t, "name", "input") or "input").split(":")[0]


def _out_info(outputs: Any, label: str) -> TensorInfo:
    if isinstance(outputs, dict):
        name, t = next(iter(outputs.items()))
    elif isinstance(outputs, (list, tuple)):
        if len(outputs) != 1:
            raise ModelInputError(f"{label}: expected one output (the positive-class probability), got {len(outputs)}")
        t, name = outputs[0], "output"
    else:
        t, name = outputs, "output"
    shape = tuple(None if d is None else int(d) for d in t.shape)
    return TensorInfo(str(name), shape, str(getattr(t.dtype, "name", t.dtype)))


def _onnx_shape(vi: Any) -> tuple[int | None, ...]:
    return tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim)


def rename_tensor(graph: Any, old: str, new: str) -> None:
    """Rename a tensor everywhere in an ONNX graph (node inputs/outputs, graph inputs/outputs, value infos)."""
    if old == new:
        return
    for n in graph.node:
        for i, name in enumerate(n.input):
            if name == old:
                n.input[i] = new
        for i, name in enumerate(n.output):
            if name == old:
                n.output[i] = new
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.name == old:
            vi.name = new


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


def is_foreign(model: Any) -> bool:
    """True for a GraphModel or OnnxModel (not a tf_keras model)."""
    return isinstance(model, (GraphModel, OnnxModel))


__all__: Sequence[str] = [
    "ONNX_NO_TFLITE",
    "TensorInfo",
    "GraphModel",
    "OnnxModel",
    "from_keras3",
    "from_saved_model",
    "from_onnx",
    "is_foreign",
    "rename_tensor",
]
