"""Plain-text and JSON descriptions of a bundle for ``edgefin-run info`` (no engine needed)."""

from __future__ import annotations

import os
from typing import Any

from .bundle import Bundle
from .manifest import AcceptanceSet, CategoricalStep, NumericStep
from .version import __version__


def bundle_facts(bundle: Bundle, path: str, *, signature_checked: bool) -> dict[str, Any]:
    """What the file itself is: path, size, sha256, members, signature state."""
    try:
        size = os.stat(path).st_size
    except OSError:  # pragma: no cover - read a moment ago
        size = None
    m = bundle.manifest
    return {
        "path": path,
        "bytes": size,
        "sha256": bundle.sha256,
        "members": dict(m.members),
        "signed": bundle.signature is not None,
        "signature_verified": signature_checked,
        "runtime_version": __version__,
        "acceptance_records": len(m.acceptance.records) if m.acceptance is not None else 0,
    }


def _range(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return ""
    return f"range {lo:g}..{hi:g}" if lo is not None and hi is not None else f"range {lo}..{hi}"


def info_text(bundle: Bundle, facts: dict[str, Any]) -> str:
    m = bundle.manifest
    mod = m.model
    steps = {s.field: s for s in m.preprocessing.steps}
    size = f"{facts['bytes']:,} bytes" if facts["bytes"] is not None else "size unknown"
    sig = (
        "signed, signature verified"
        if facts["signature_verified"]
        else "signed (not verified: pass --key PUB)"
        if facts["signed"]
        else "unsigned"
    )
    lines = [
        f"bundle     {facts['path']} ({size}, sha256 {bundle.sha256[:16]}...)",
        f"variant    {mod.variant}: engine {mod.engine}, weights {mod.weights}, activations {mod.activations}, "
        f"from the {mod.source_stage} model"
        + ("; LiteRT reference kernels (same scores on every CPU)" if mod.kernels == "reference" else ""),
        f"format     {m.format_version}; needs edgefin-runtime >= {m.min_runtime_version} (this is {__version__})",
        f"created    {m.created_at or 'unknown'}" + (f" by {_producer(m.producer)}" if m.producer else ""),
        f"signature  {sig}",
        f"decision   probability >= {m.decision.threshold:g} means {m.schema.positive_label!r} "
        f"({m.decision.positive_means}); otherwise {m.schema.negative_label!r}",
        f"tensors    in {mod.inputs[0].name} {list(mod.inputs[0].shape)} {mod.inputs[0].dtype}; "
        f"out {mod.outputs[0].name} {list(mod.outputs[0].shape)} {mod.outputs[0].dtype}",
        f"input      {len(m.schema.fields)} fields -> {m.preprocessing.n_features} features",
    ]
    width = max(len(f.name) for f in m.schema.fields)
    for f in m.schema.fields:
        step = steps.get(f.name)
        missing = "missing allowed (imputed)" if f.allow_missing else "required"
        if isinstance(step, CategoricalStep):
            cats = ", ".join(f.categories[:6]) + (", ..." if len(f.categories) > 6 else "")
            detail = f"categorical  {len(f.categories)} categories ({cats}), {step.encoding}"
        elif isinstance(step, NumericStep):
            detail = f"numeric      {_range(f.min, f.max)}".rstrip()
            detail += f", {step.n_bins} piecewise-linear bins" if step.n_bins else ""
        else:  # pragma: no cover - the manifest guarantees a step per field
            detail = f.kind
        lines.append(f"  {f.name:<{width}}  {detail}; {missing}")
    if m.metrics:
        lines.append("metrics    " + _flat(m.metrics))
    if m.parity:
        lines.append("parity     " + _flat(m.parity))
    lines.append(f"golden     {len(m.golden)} vectors, tolerance {m.golden_tolerance:g}")
    lines.append("acceptance " + acceptance_summary(m.acceptance))
    return "\n".join(lines)


def acceptance_summary(acc: AcceptanceSet | None) -> str:
    """One line: how many synthetic records the acceptance set has and why they are there."""
    if acc is None:
        return "none (a bundle built before acceptance sets: `edgefin-run verify` runs the self-test only)"
    counts: dict[str, int] = {}
    for k in acc.kinds:
        counts[k] = counts.get(k, 0) + 1
    kinds = f" ({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))})" if counts else ""
    return (
        f"{len(acc.records)} synthetic records{kinds}, reference scores of this variant and of the "
        f"{acc.source_stage} model; `edgefin-run verify` scores them all"
    )


def _producer(p: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(p.items()) if isinstance(v, (str, int, float)))


def _flat(d: dict[str, Any], limit: int = 8) -> str:
    items = []
    for k, v in list(d.items())[:limit]:
        if isinstance(v, float):
            items.append(f"{k}={v:.4g}")
        elif isinstance(v, (int, str, bool)):
            items.append(f"{k}={v}")
        else:
            items.append(f"{k}=...")
    more = f" (+{len(d) - limit} more)" if len(d) > limit else ""
    return ", ".join(items) + more
