"""Save and load every stage's Keras model (dense, pruned, clustered, QAT) in the native ``.keras`` format,
within :func:`edgefin.tfmot_compat.tfmot_saving` (which makes QAT models round-trip)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ..atomic import write_bytes
from ..errors import ModelError


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
        from ..tfmot_compat import tfmot_saving

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
    from ..tfmot_compat import tfmot_saving

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
