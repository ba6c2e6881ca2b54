"""Names for the TensorFlow-stack objects that edgefin's signatures take and return.

TensorFlow, tf_keras and TFMOT ship no usable type stubs (mypy reads them as ``Any``: pyproject's
``[tool.mypy]``), so each name below is ``Any`` to the checker; it is there so a signature says which
object it expects. Importing this module imports nothing from TensorFlow.
"""

from __future__ import annotations

from typing import Any

KerasModel = Any
"""A tf_keras ``Model`` (Sequential or functional), possibly holding TFMOT wrapper layers."""

KerasLayer = Any
"""A tf_keras layer, possibly a TFMOT wrapper (``PruneLowMagnitude``, ``QuantizeWrapperV2``, ...)."""

KerasCallback = Any
"""A ``tf_keras.callbacks.Callback``."""

TfmotRegistry = Any
"""A TFMOT quantise/prune/cluster registry (answers ``supports(layer)``)."""

TfmotScheme = Any
"""A TFMOT ``QuantizeScheme`` (``get_layout_transformer()``, ``get_quantize_registry()``)."""

__all__ = ["KerasCallback", "KerasLayer", "KerasModel", "TfmotRegistry", "TfmotScheme"]
