"""Save and load every stage's Keras model (dense, pruned, clustered, QAT) in the native ``.keras`` format.

TFMOT 0.8.1's quantisation-aware models do not survive a tf_keras 2.21 ``.keras`` round trip as
shipped: ``QuantizeLayer.build`` never sets ``built`` (so loading builds it twice and expects five
variables instead of three), and ``QuantizeWrapperV2`` lists the wrapped layer's kernel twice in its
own variables, so Keras' index-based weight matching breaks. :func:`tfmot_saving` patches exactly
those three methods for the duration of a save or load (and restores them afterwards): the wrapper
then stores only its own quantiser variables, by name, and the wrapped layer stores its kernel and
bias itself. Use :func:`save_model` / :func:`load_model` for any model under ``models/``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any, Iterator

from ..atomic import write_bytes
from ..errors import ModelError

_lock = threading.RLock()


def _short(name: str) -> str:
    return name.split(":")[0].split("/")[-1]


def _own_variables(wrapper: Any) -> list[Any]:
    """The wrapper's own variables (quantiser state), without the wrapped layer's weights."""
    inner = {id(v) for v in wrapper.layer.weights}
    seen: set[int] = set()
    out = []
    for v in list(wrapper._trainable_weights) + list(wrapper._non_trainable_weights):
        if id(v) in inner or id(v) in seen:
            continue
        seen.add(id(v))
        out.append(v)
    return out


def _wrapper_save(self: Any, store: Any) -> None:
    for i, v in enumerate(_own_variables(self)):
        store[f"{i}:{_short(v.name)}"] = v.numpy()


def _wrapper_load(self: Any, store: Any) -> None:
    own = _own_variables(self)
    keys = sorted(store.keys(), key=lambda k: int(str(k).split(":")[0]))
    names = [str(k).split(":", 1)[1] for k in keys]
    if names != [_short(v.name) for v in own]:
        raise ValueError(f"layer '{self.name}': saved quantiser variables {names} do not match the "
                         f"model's {[_short(v.name) for v in own]}")
    for k, v in zip(keys, own):
        v.assign(store[k])


def _quantize_layer_build_from_config(self: Any, config: Any) -> None:
    input_shape = config.get("input_shape")
    if input_shape is not None and not self.built:
        self.build(input_shape)
        self.built = True


@contextlib.contextmanager
def tfmot_saving() -> Iterator[None]:
    """Within this block, TFMOT quantisation models save and load correctly as ``.keras``."""
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_wrapper import QuantizeWrapper

    with _lock:
        saved = {(QuantizeWrapper, "save_own_variables"): QuantizeWrapper.__dict__.get("save_own_variables"),
                 (QuantizeWrapper, "load_own_variables"): QuantizeWrapper.__dict__.get("load_own_variables"),
                 (QuantizeLayer, "build_from_config"): QuantizeLayer.__dict__.get("build_from_config")}
        QuantizeWrapper.save_own_variables = _wrapper_save
        QuantizeWrapper.load_own_variables = _wrapper_load
        QuantizeLayer.build_from_config = _quantize_layer_build_from_config
        try:
            with tfmot.quantization.keras.quantize_scope():
                yield
        finally:
            for (cls, attr), fn in saved.items():
                if fn is None:
                    delattr(cls, attr)
                else:
                    setattr(cls, attr, fn)


def save_model(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` (``.keras``, without optimizer state) atomically; works for QAT models too."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    optimizer = getattr(model, "optimizer", None)
    try:
        model.optimizer = None  # the file holds the model, not the fine-tuning's Adam state
        with tfmot_saving():
            model.save(tmp, save_format="keras")
        data = Path(tmp).read_bytes()
    finally:
        model.optimizer = optimizer
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return write_bytes(path, data)


def load_model(path: str | os.PathLike[str]) -> Any:
    """Load any stage's model (dense, pruned, clustered or QAT) without compiling it."""
    from ..tfcompat import keras

    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {path} does not exist")
    try:
        with tfmot_saving():
            return keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for foreign or broken files
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "lambda" in text.lower():
            raise ModelError(f"cannot load Keras model {path}: it holds a Lambda layer, whose Python code tf_keras "
                             f"will not run from a file (safe mode). Replace the Lambda with a built-in or a "
                             f"registered custom layer and save the model again") from None
        raise ModelError(f"cannot load Keras model {path}: {text[:300]}. Expected a tf_keras (Keras 2) model saved "
                         f"with model.save('model.keras'); Keras 3 files are not readable by tf_keras, so re-save "
                         f"it with tf_keras") from None
