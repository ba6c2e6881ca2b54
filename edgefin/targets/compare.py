"""Host-side judgement of one bundle on one target, from the probe's scores (pure functions, no I/O).

Two record sets, two kinds of reference:

* the bundle's **reference set** - its acceptance set (synthetic records, with the variant's scores on
  the build machine and the source Keras model's), or for bundles built before acceptance sets
  existed its golden vectors (build-machine scores only). Judged with the runtime's own acceptance
  gates (``edgefin_runtime.acceptance``), the same that ``edgefin-run verify`` applies on a device.
* the run's **test split**: judged against the source Keras model with the gate convert applied to
  this variant (``edgefin_converters.parity.compare``: max |dp| for float variants, AUC drop and
  flip rate for int8), on both the batch and the single-record path. The build machine's scores
  (the ``native`` target) are shown beside it as max |dp| and flips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the probe imports this module without the converters
    from edgefin_converters.parity import Gates
    from edgefin_runtime.manifest import Manifest

PATHS = ("single", "batch")


@dataclass(frozen=True)
class ReferenceSet:
    """Records a bundle carries with its build-machine scores (and the source model's, when known)."""

    kind: str  # "acceptance" | "golden"
    records: tuple[dict[str, Any], ...]
    build_scores: np.ndarray
    source_scores: np.ndarray | None
    source_stage: str
    tolerance: float
    threshold: float


def reference_set(manifest: Manifest) -> ReferenceSet:
    """The acceptance set when the bundle has one, else its golden vectors (older bundles)."""
    t, tol = float(manifest.decision.threshold), float(manifest.golden_tolerance)
    acc = getattr(manifest, "acceptance", None)
    if acc is not None:
        return ReferenceSet(
            "acceptance",
            tuple(acc.records),
            np.asarray(acc.scores, dtype=np.float64),
            np.asarray(acc.source_scores, dtype=np.float64),
            acc.source_stage,
            tol,
            t,
        )
    return ReferenceSet(
        "golden",
        tuple(g.record for g in manifest.golden),
        np.asarray([g.score for g in manifest.golden], dtype=np.float64),
        None,
        manifest.model.source_stage,
        tol,
        t,
    )


def scores_of(entry: Mapping[str, Any], path: str) -> np.ndarray:
    """A probe score list as float64, a rejected record (null) as NaN."""
    return np.array([np.nan if v is None else float(v) for v in entry[path]], dtype=np.float64)


def delta(got: np.ndarray, ref: np.ndarray, threshold: float) -> dict[str, Any]:
    """max |dp| (inf where a score is missing) and decision flips at ``threshold``."""
    d = np.abs(got - ref)
    d = np.where(np.isfinite(d), d, np.inf)
    flips = int(((got >= threshold) != (ref >= threshold)).sum())
    return {"max_abs_delta": float(d.max()) if d.size else 0.0, "flips": flips, "n": int(d.size)}


def judge_reference(ref: ReferenceSet, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The reference set on a target, through the runtime's acceptance gates (build machine, source)."""
    from edgefin_runtime import acceptance as gates

    if "error" in entry:
        return {
            "set": ref.kind,
            "n": len(ref.records),
            "passed": False,
            "failures": [
                f"the engine failed while scoring the {ref.kind} set ({entry['error']['type']}: "
                f"{entry['error']['message']})"
            ],
        }
    got = {p: scores_of(entry, p) for p in PATHS}
    for p in PATHS:
        if got[p].shape != ref.build_scores.shape:
            raise ValueError(f"{ref.kind} set: {got[p].size} {p} scores for {ref.build_scores.size} records")
    t, tol = ref.threshold, ref.tolerance
    band = np.abs(ref.build_scores - t) <= tol
    build = gates.build_verdict(got, ref.build_scores, t, tol, band)
    out: dict[str, Any] = {
        "set": ref.kind,
        "n": len(ref.records),
        "tolerance": tol,
        "rejected": int(entry.get("rejected", 0)),
        "build_machine": build.to_dict(),
        "source_model": None,
    }
    failures = [f"{ref.kind} set vs build machine, {f}" for f in build.failures]
    if ref.source_scores is not None:
        recorded = gates.compare_scores(ref.build_scores, ref.source_scores, t)
        src = gates.source_verdict(got, ref.source_scores, t, tol, band, recorded)
        out["source_model"] = src.to_dict()
        failures += [f"{ref.kind} set vs {ref.source_stage} Keras model, {f}" for f in src.failures]
    out["failures"] = failures
    out["passed"] = not failures
    return out


def judge_test(
    variant: str,
    gate: Mapping[str, Any],
    source_stage: str,
    source: np.ndarray,
    y: np.ndarray,
    threshold: float,
    entry: Mapping[str, Any],
    build: Mapping[str, Any] | None,
    excluded_rows: int = 0,
) -> dict[str, Any]:
    """The test split on a target: convert's gate against the source model, and the build machine's scores.

    ``gate`` is the variant's gate as recorded by convert (``{"kind": "quantized", "max_flip_rate": ...}``);
    ``build`` is the native target's probe entry for the same rows (None when native was not run).
    """
    from edgefin_converters.parity import compare

    if "error" in entry:
        return {
            "n": int(len(y)),
            "passed": False,
            "failures": [
                f"the engine failed while scoring the test split ({entry['error']['type']}: "
                f"{entry['error']['message']})"
            ],
        }
    batch, single = scores_of(entry, "batch"), scores_of(entry, "single")
    par = compare(
        variant,
        str(gate["kind"]),
        source_stage,
        source,
        batch,
        y,
        threshold,
        gates_from(gate),
        excluded_rows=excluded_rows,
        single=single,
    )
    out: dict[str, Any] = {
        "n": par.n,
        "excluded_rows": excluded_rows,
        "rejected": int(entry.get("rejected", 0)),
        "vs_source": _parity_summary(par),
        "vs_build": None,
    }
    failures = [f"test split: {f}" for f in par.failures]
    if int(entry.get("rejected", 0)):
        failures.append(f"test split: {entry['rejected']} record(s) the build machine scored are rejected here")
    if build is not None and "error" not in build:
        per = {p: delta(scores_of(entry, p), scores_of(build, p), threshold) for p in PATHS}
        out["vs_build"] = {
            "max_abs_delta": max(v["max_abs_delta"] for v in per.values()),
            "flips": max(v["flips"] for v in per.values()),
            "paths": per,
        }
    out["failures"] = failures
    out["passed"] = not failures
    return out


def gates_from(gate: Mapping[str, Any]) -> Gates:
    """convert's Gates from a variant's recorded gate (its thresholds; defaults for the other kinds)."""
    from edgefin_converters.parity import Gates

    kind = gate.get("kind")
    if kind not in ("exact", "fp16", "quantized"):
        raise ValueError(f"unknown gate kind {kind!r}; expected exact, fp16 or quantized")
    g = Gates()
    if kind == "exact" and "max_abs_delta" in gate:
        return Gates(exact_max_delta=float(gate["max_abs_delta"]))
    if kind == "fp16" and "max_abs_delta" in gate:
        return Gates(fp16_max_delta=float(gate["max_abs_delta"]))
    if kind == "quantized":
        return Gates(
            max_auc_drop=float(gate.get("max_auc_drop", g.max_auc_drop)),
            max_flip_rate=float(gate.get("max_flip_rate", g.max_flip_rate)),
        )
    return g


def _parity_summary(par: Any) -> dict[str, Any]:
    d = par.to_dict()
    keep = (
        "n",
        "max_abs_delta",
        "mean_abs_delta",
        "auc_source",
        "auc_variant",
        "auc_delta",
        "flips",
        "flip_rate",
        "gate",
        "passed",
        "single_row",
    )
    return {k: d[k] for k in keep if k in d}


def cell(
    bundle: str,
    target: str,
    probe: Mapping[str, Any] | None,
    died: str | None,
    reference: Mapping[str, Any] | None,
    test: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One bundle x target cell: loads or not, the two judgements, headline numbers and every failure."""
    failures: list[str] = []
    loaded = bool(probe and probe.get("loaded"))
    err = (probe or {}).get("error")
    if died is not None:
        failures.append(f"{died} while checking this bundle")
    elif not loaded:
        failures.append(f"does not load: {err['type']}: {err['message']}" if err else "does not load")
    for part in (reference, test):
        if part is not None:
            failures.extend(part.get("failures", []))
    deltas = []
    flips = []
    if reference is not None and reference.get("build_machine"):
        deltas.append(reference["build_machine"]["max_abs_delta"])
        flips.append(reference["build_machine"]["flips"])
    if test is not None and test.get("vs_build"):
        deltas.append(test["vs_build"]["max_abs_delta"])
        flips.append(test["vs_build"]["flips"])
    return {
        "bundle": bundle,
        "target": target,
        "passed": not failures,
        "loaded": loaded,
        "load_error": err if not loaded else None,
        "scored_without_self_test": bool((probe or {}).get("scored_without_self_test")),
        "engine": (probe or {}).get("engine"),
        "bundle_sha256": (probe or {}).get("bundle_sha256"),
        "max_abs_delta": max(deltas) if deltas else None,
        "flips": max(flips) if flips else None,
        "test_flips_vs_source": (test or {}).get("vs_source", {}).get("flips"),
        "reference": reference,
        "test": test,
        "failures": failures,
    }


def summarise(cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every failure as one line "bundle on target: ..." (the order of the grid)."""
    return [f"{c['bundle']} on {c['target']}: {f}" for c in cells for f in c["failures"]]
