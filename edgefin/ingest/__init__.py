"""Ingest: whatever model a user brings (Keras 3 or tf_keras ``.keras``, ``.h5``, a SavedModel directory,
an ONNX file; recognised by content) plus their data -> a run directory that convert, compress and every
later step read as if edgefin had trained it. See :mod:`.run` for what is written and :mod:`.columns` for
the one behaviour for columns, missing values, splits and thresholds.
"""

from .formats import ModelFile, detect, is_saved_model
from .run import Options, Result, ingest

__all__ = ["ModelFile", "Options", "Result", "detect", "ingest", "is_saved_model"]
