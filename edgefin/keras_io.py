"""Every Keras model edgefin writes or reads goes through here: :func:`save_model` and :func:`load_model`.

Models are stored in tf_keras' native ``.keras`` format, written atomically (:mod:`edgefin.atomic`), without
optimizer state (the file holds the model; nothing resumes an optimizer from it), and loaded uncompiled. A model
that holds TFMOT layers (a quantisation-aware model) is saved and loaded within
:func:`edgefin.tfmot_compat.tfmot_saving`, TFMOT's custom-object scope plus the fixes that make it round-trip;
TFMOT is imported only for such models, so saving or loading a plain model (train, the benchmark worker) never
pays for it. Every failure is a :class:`~edgefin.errors.ModelError` naming the file.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from .atomic import write_bytes
from .errors import ModelError
from .tftypes import KerasModel

SUFFIX = ".keras"
_TFMOT = "tensorflow_model_optimization"


def save_model(model: KerasModel, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` (``.keras``) atomically, without optimizer state; QAT models included."""
    path = Path(path)
    if path.suffix != SUFFIX:
        raise ModelError(f"model path {path} must end in {SUFFIX} (the native Keras format)")
    scope = _tfmot_scope(_TFMOT in sys.modules)  # a model cannot hold TFMOT layers unless TFMOT is loaded
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=SUFFIX, dir=path.parent)
    os.close(fd)
    optimizer = getattr(model, "optimizer", None)
    try:
        model.optimizer = None
        with scope:
            model.save(tmp, save_format="keras")
        data = Path(tmp).read_bytes()
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for layers it cannot serialise
        raise ModelError(f"cannot save Keras model to {path}: {_first_line(exc)}") from None
    finally:
        model.optimizer = optimizer
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    try:
        return write_bytes(path, data)
    except OSError as exc:
        raise ModelError(f"cannot write model file {path}: {exc}") from None


def load_model(path: str | os.PathLike[str]) -> KerasModel:
    """Load any stage's model (dense, pruned, clustered, QAT) or a user's tf_keras model, uncompiled."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {path} not found")
    if path.is_dir():
        raise ModelError(f"model file {path} is a directory; expected a .keras file saved by tf_keras")
    from .tfcompat import keras

    if _is_keras3(path):  # a user's Keras 3 model (edgefin.ingest): its tf_keras rebuild, same weights
        from .ingest import keras3

        return keras3.rebuild_in_tf_keras(keras3.load(path))
    scope = _tfmot_scope(_holds_tfmot_layers(path))  # outside the try: a DependencyError stays one
    try:
        with scope:
            return keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - zipfile/h5py/deserialisation errors of a damaged or foreign file
        text = _first_line(exc)
        if "lambda" in text.lower():
            raise ModelError(
                f"cannot load Keras model {path}: it holds a Lambda layer, whose Python code tf_keras "
                f"will not run from a file (safe mode). Replace the Lambda with a built-in or a "
                f"registered custom layer and save the model again"
            ) from None
        raise ModelError(
            f"cannot load Keras model {path}: {text}. Expected a tf_keras (Keras 2) model saved with "
            f"model.save('model.keras'): the file is damaged, or it is a Keras 3 file, which tf_keras "
            f"cannot read (re-save it with tf_keras); for a run directory, re-run the step that "
            f"wrote it"
        ) from None


def load_user_tf_keras(path: str | os.PathLike[str]) -> KerasModel:
    """A user's tf_keras model from a ``.h5`` file or a SavedModel directory, uncompiled (edgefin.ingest
    turns what tf_keras raises into its own message)."""
    from .tfcompat import keras

    return keras.models.load_model(path, compile=False)


def _holds_tfmot_layers(path: Path) -> bool:
    """True when the ``.keras`` archive's config names a TFMOT class (False for anything unreadable:
    Keras then reports the file itself)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return _TFMOT.encode() in zf.read("config.json")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False


def _is_keras3(path: Path) -> bool:
    """True when the ``.keras`` archive was written by Keras 3 (metadata.json's keras_version 3.x)."""
    import json

    try:
        with zipfile.ZipFile(path) as zf:
            version = json.loads(zf.read("metadata.json")).get("keras_version", "")
    except (OSError, KeyError, ValueError, AttributeError, zipfile.BadZipFile):
        return False
    return isinstance(version, str) and version.startswith("3.")


def _tfmot_scope(needed: bool) -> contextlib.AbstractContextManager[Any]:
    if not needed:
        return contextlib.nullcontext()
    from .tfmot_compat import tfmot_saving

    return tfmot_saving()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300]}" if text else type(exc).__name__


__all__ = ["save_model", "load_model"]
