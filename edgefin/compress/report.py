"""What each compression stage costs and buys: sizes (raw and gzip), and the terminal table.

Pruning leaves tensors their dense shape, so a pruned float32 model is as large as the dense one
until it is compressed; both sizes are measured. ``weights`` is the model's parameters (kernels and
biases) as packed float32, the bytes a device would hold; ``file`` is the model saved as ``.keras``.
For a QAT model ``int8_weights`` also estimates the int8 kernels (plus int32 biases) the converter
will store (other tensors at 4 bytes, as TFLite's int32 biases). gzip uses level 9 and a zero
timestamp, so sizes are reproducible.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..tftypes import KerasModel
from .sparsity import _fake_quant, _layer_tensors
from .support import KERNEL_NAMES

if TYPE_CHECKING:
    from rich.console import Console


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def weight_bytes(model: KerasModel) -> bytes:
    """Every parameter tensor (kernels, biases) as little-endian float32, in layer order."""
    parts: list[bytes] = []
    for layer in model.layers:
        params, _ = _layer_tensors(layer)
        parts.extend(np.ascontiguousarray(a, dtype="<f4").tobytes() for _, a in params)
    return b"".join(parts)


def int8_weight_bytes(model: KerasModel) -> bytes | None:
    """Kernels as int8 at their learned QAT ranges (symmetric, zero point 0); other tensors keep 4 bytes."""
    parts, any_q = [], False
    for layer in model.layers:
        params, qvars = _layer_tensors(layer)
        for name, a in params:
            fq = _fake_quant(a, qvars) if name in KERNEL_NAMES else None
            if fq is None:
                parts.append(np.ascontiguousarray(a, dtype="<f4").tobytes())
                continue
            any_q = True
            hi = np.maximum(
                np.abs(np.asarray(qvars["kernel_min"].numpy())), np.abs(np.asarray(qvars["kernel_max"].numpy()))
            )
            scale = np.where(hi > 0, hi / 127.0, 1.0)
            parts.append(np.clip(np.rint(fq / scale), -127, 127).astype(np.int8).tobytes())
    return b"".join(parts) if any_q else None


def sizes(model: KerasModel, path: str | Path | None = None) -> dict[str, int]:
    """Raw and gzip sizes of the packed weights and of the model saved as .keras without optimizer
    state (the same way for every stage, so they compare); ``stored_file_bytes`` is the file on disk."""
    import tempfile

    from ..keras_io import save_model

    w = weight_bytes(model)
    out = {"weights_bytes": len(w), "weights_gzip_bytes": gz(w)}
    with tempfile.TemporaryDirectory(prefix="edgefin-size-") as tmp:
        data = save_model(model, Path(tmp) / "model.keras").read_bytes()
    out.update({"file_bytes": len(data), "file_gzip_bytes": gz(data)})
    if path is not None and Path(path).exists():
        out["stored_file_bytes"] = Path(path).stat().st_size
    q = int8_weight_bytes(model)
    if q is not None:
        out.update({"int8_weights_bytes": len(q), "int8_weights_gzip_bytes": gz(q)})
    return out


# ---------------------------------------------------------------- terminal
def _kb(n: int | None) -> str:
    return "-" if n is None else (f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B")


def render(report: dict[str, Any], console: Console) -> None:
    """Two narrow tables (quality and decisions; sparsity and sizes), per-layer sparsity, the quality bar."""
    from rich.box import SIMPLE
    from rich.markup import escape
    from rich.table import Table

    quality = Table(
        title=escape(f"edgefin compress - {report['run']} (test split, threshold {report['threshold']:.4f})"),
        title_justify="left",
        box=SIMPLE,
    )
    for col in ("stage", "AUC", "Gini", "KS", "Brier", "flips vs dense"):
        quality.add_column(col, justify="left" if col == "stage" else "right", no_wrap=True)
    size = Table(box=SIMPLE)
    for col in ("stage", "kernel sparsity", "non-zero params", "file", "file gz", "weights", "weights gz"):
        size.add_column(col, justify="left" if col == "stage" else "right", no_wrap=True)
    for name, st in report["stages"].items():
        m, sp, sz = st["test"], st["sparsity"], st["size"]
        quality.add_row(
            escape(name),
            f"{m['auc']:.4f}",
            f"{m['gini']:.4f}",
            f"{m['ks']:.4f}",
            f"{m['brier']:.4f}",
            f"{st['flip_rate_vs_dense']:.2%}",
        )
        size.add_row(
            escape(name),
            f"{sp['kernel_sparsity']:.1%}",
            f"{sp['nonzero_params']:,}/{sp['params']:,}",
            _kb(sz.get("file_bytes")),
            _kb(sz.get("file_gzip_bytes")),
            _kb(sz["weights_bytes"]),
            _kb(sz["weights_gzip_bytes"]),
        )
    console.print(quality)
    console.print(size)
    for name, st in report["stages"].items():
        layers = ", ".join(f"{r['layer']} {r['kernel_sparsity']:.1%}" for r in st["sparsity"]["layers"])
        extra = ""
        if "quantized_kernel_sparsity" in st["sparsity"]:
            extra = f"; int8 kernels {st['sparsity']['quantized_kernel_sparsity']:.1%} zero"
        console.print(f"[dim]{escape(f'{name}: {layers}{extra}')}[/]")
    for check in report.get("quality_bar", {}).get("checks", []):
        mark = "[green]pass[/]" if check["passed"] else "[red]FAIL[/]"
        text = f"{check['name']}: {check['detail']}"
        console.print(f"{mark} {escape(text)}")
    for note in report.get("notes", []):
        console.print(f"[dim]note: {escape(note)}[/]")
