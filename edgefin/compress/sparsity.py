"""Sparsity and parameter counts measured on the weights themselves, never read from a config.

For a QAT model the float kernel inside each ``QuantizeWrapper`` is measured, and so is the kernel
after fake quantisation with the learned range (what the int8 converter will store): a zero that
survives PQAT is a zero in both.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..tftypes import KerasLayer, KerasModel
from .support import KERNEL_NAMES, short_name

# variables that are optimisation state, not model parameters: QAT ranges and steps, pruning masks,
# CQAT centroids/indices (``*_tf``)
_STATE = re.compile(r"(_min|_max|optimizer_step|pruning_step|mask|threshold|_tf)$")


def _layer_tensors(layer: KerasLayer) -> tuple[list[tuple[str, np.ndarray]], dict[str, Any]]:
    """(parameter tensors as (short name, array), optimisation-state variables by short name) of one layer.

    Works on plain layers and on TFMOT wrappers, whose inner layer may no longer list its kernel.
    """
    params: list[tuple[str, np.ndarray]] = []
    state: dict[str, Any] = {}
    seen: set[int] = set()
    for w in layer.weights:
        if id(w) in seen:
            continue
        seen.add(id(w))
        name = short_name(w.name)
        if _STATE.search(name):
            state[name] = w
        elif w.dtype.is_floating:
            params.append((name, np.asarray(w.numpy())))
    return params, state


def _fake_quant(kernel: np.ndarray, qvars: dict[str, Any]) -> np.ndarray | None:
    """The kernel as the int8 model will hold it (dequantised), if the layer has a learned kernel range."""
    if "kernel_min" not in qvars or "kernel_max" not in qvars:
        return None
    from ..tfcompat import tf

    lo = np.asarray(qvars["kernel_min"].numpy(), dtype=np.float32)
    hi = np.asarray(qvars["kernel_max"].numpy(), dtype=np.float32)
    k = tf.constant(kernel.astype(np.float32))
    if lo.ndim == 0:
        out = tf.quantization.fake_quant_with_min_max_vars(k, lo, hi, num_bits=8, narrow_range=True)
    else:
        out = tf.quantization.fake_quant_with_min_max_vars_per_channel(k, lo, hi, num_bits=8, narrow_range=True)
    return np.asarray(out.numpy())


def measure(model: KerasModel) -> dict[str, Any]:
    """Per-layer and total sparsity of the kernels, and parameter counts, of any stage's model."""
    layers: list[dict[str, Any]] = []
    k_total = k_zero = p_total = p_zero = 0
    q_total = q_zero = 0
    for layer in model.layers:
        params, qvars = _layer_tensors(layer)
        if not params:
            continue
        kernels = [(n, a) for n, a in params if n in KERNEL_NAMES]
        lk = sum(a.size for _, a in kernels)
        lz = sum(int(np.count_nonzero(a == 0)) for _, a in kernels)
        lp = sum(a.size for _, a in params)
        lpz = sum(int(np.count_nonzero(a == 0)) for _, a in params)
        entry: dict[str, Any] = {
            "layer": getattr(getattr(layer, "layer", None), "name", None) or layer.name,
            "type": type(getattr(layer, "layer", None) or layer).__name__,
            "kernel_shape": list(kernels[0][1].shape) if kernels else None,
            "kernel_params": lk,
            "kernel_zeros": lz,
            "kernel_sparsity": lz / lk if lk else 0.0,
            "params": lp,
            "nonzero_params": lp - lpz,
        }
        if kernels:
            distinct = len(np.unique(kernels[0][1]))
            entry["kernel_distinct_values"] = int(distinct)
        fq = _fake_quant(kernels[0][1], qvars) if kernels else None
        if fq is not None:
            fz = int(np.count_nonzero(fq == 0))
            entry["quantized_kernel_sparsity"] = fz / fq.size
            q_total += fq.size
            q_zero += fz
        layers.append(entry)
        k_total, k_zero, p_total, p_zero = k_total + lk, k_zero + lz, p_total + lp, p_zero + lpz
    out: dict[str, Any] = {
        "layers": layers,
        "kernel_params": k_total,
        "kernel_zeros": k_zero,
        "kernel_sparsity": k_zero / k_total if k_total else 0.0,
        "params": p_total,
        "nonzero_params": p_total - p_zero,
        "param_sparsity": p_zero / p_total if p_total else 0.0,
        "all_variables": int(sum(int(np.prod(w.shape)) for w in model.weights)),
    }
    if q_total:
        out["quantized_kernel_sparsity"] = q_zero / q_total
    return out


def pruned_kernel_sparsity(report: dict[str, Any], layer_names: list[str]) -> float:
    """Sparsity over the kernels of the layers that were pruned (skipped layers excluded)."""
    rows = [r for r in report["layers"] if r["layer"] in set(layer_names)]
    total = sum(r["kernel_params"] for r in rows)
    return sum(r["kernel_zeros"] for r in rows) / total if total else 0.0
