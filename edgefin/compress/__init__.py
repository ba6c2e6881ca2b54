"""Compression of a trained model with TFMOT: prune -> (cluster) -> QAT / PQAT, measured honestly.

``compress_run(run_dir, sparsity=0.8)`` is the run-directory step; the strategies are usable on any
tf_keras model and encoded (X, y) arrays. TensorFlow is imported only when a function runs.
"""

from __future__ import annotations

from typing import Any

from .options import Block, CompressOptions

__all__ = [
    "CompressOptions",
    "Block",
    "compress_run",
    "prune",
    "cluster",
    "quantize_aware",
    "measure",
    "FitData",
]

_LAZY = {
    "compress_run": ("run", "compress_run"),
    "prune": ("prune", "prune"),
    "cluster": ("cluster", "cluster"),
    "quantize_aware": ("qat", "quantize_aware"),
    "measure": ("sparsity", "measure"),
    "FitData": ("finetune", "FitData"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
