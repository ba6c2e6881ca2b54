"""Score a bundle's whole acceptance set on this device and apply the gates (``edgefin-run verify``).

The acceptance set (``Manifest.acceptance``) holds synthetic records - never data rows - with two
reference scores each: ``scores``, this variant through the runtime on the build machine, and
``source_scores``, the source Keras model. :func:`check` scores every record on both engine paths
(one record at a time through :meth:`Predictor.score`, and all together through
:meth:`Predictor.score_columns`, i.e. the engine's batch call) under the default input policy, and
compares each path with both references: max |dp|, mean |dp| and decision flips at the bundle's
threshold.

The gate. ``tol`` is the bundle's ``golden_tolerance``: the cross-CPU noise this variant may show
(1e-5 for float32 ... 1e-2 for int8), the same bound load()'s golden self-test applies.

* **build machine** (the gate that matters): every record within ``tol`` of its build score
  (``max |dp| <= tol``), and no decision flip on a record whose build score is more than ``tol``
  from the threshold (a flip inside that band is noise the tolerance allows, and is counted).
* **source model**: the device may be no further from the source model than the build machine was,
  plus ``tol``: ``max |dp_source| <= max |build - source| + tol``, and at most as many flips
  against the source as the build machine had, plus the records within ``tol`` of the threshold.

Why this is right: (a) on the build machine the single path reproduces ``scores`` exactly (they
were recorded from it) and the batch path agrees within ``tol`` (the converter checks this before
it writes the bundle); (b) an engine that moves scores near the threshold by 0.02 exceeds every
variant's ``tol`` (at most 1e-2), and half of the set's records sit within 0.01 of the threshold
by source score, so such a shift is caught even where the 8 golden vectors (spread over the whole
score range) miss it; (c) noise within ``tol`` passes both gates: by the triangle inequality the
source gate follows from the build gate, and a flip needs the build score within ``tol`` of the
threshold. Bundles without an acceptance set (built before it existed) report ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, SelfTestError
from .preprocess import Policy

if TYPE_CHECKING:
    from .predictor import Predictor

PATHS = ("single", "batch")


@dataclass(frozen=True)
class Comparison:
    """One engine path against one reference."""

    max_abs_delta: float
    mean_abs_delta: float
    flips: int
    worst_record: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_abs_delta": self.max_abs_delta,
            "mean_abs_delta": self.mean_abs_delta,
            "flips": self.flips,
            "worst_record": self.worst_record,
        }


@dataclass(frozen=True)
class Verdict:
    """One reference: both paths, the limits applied and whether they held."""

    reference: str
    paths: dict[str, Comparison]
    limits: dict[str, float]
    passed: bool
    failures: tuple[str, ...] = ()

    @property
    def max_abs_delta(self) -> float:
        return max(c.max_abs_delta for c in self.paths.values())

    @property
    def mean_abs_delta(self) -> float:
        return max(c.mean_abs_delta for c in self.paths.values())

    @property
    def flips(self) -> int:
        return max(c.flips for c in self.paths.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "passed": self.passed,
            "failures": list(self.failures),
            "limits": self.limits,
            "max_abs_delta": self.max_abs_delta,
            "mean_abs_delta": self.mean_abs_delta,
            "flips": self.flips,
            "paths": {k: c.to_dict() for k, c in self.paths.items()},
        }


@dataclass(frozen=True)
class AcceptanceReport:
    """The outcome of :func:`check`: one verdict per reference."""

    records: int
    threshold: float
    tolerance: float
    engine: str
    build: Verdict
    source: Verdict
    source_stage: str
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.build.passed and self.source.passed

    @property
    def failures(self) -> list[str]:
        return [*self.build.failures, *self.source.failures]

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "threshold": self.threshold,
            "tolerance": self.tolerance,
            "engine": self.engine,
            "passed": self.passed,
            "failures": self.failures,
            "kinds": self.kinds,
            "source_stage": self.source_stage,
            "build_machine": self.build.to_dict(),
            "source_model": self.source.to_dict(),
        }


def check(predictor: Predictor) -> AcceptanceReport | None:
    """Score the bundle's acceptance set on both paths and apply the gates (see the module docstring).

    Returns None for a bundle without an acceptance set. Raises SelfTestError when a record is
    rejected by the bundle's own schema (an inconsistent bundle); never raises for a failed gate:
    the report says so (``passed``, ``failures``).
    """
    m = predictor.info
    acc = m.acceptance
    if acc is None:
        return None
    pred = predictor.with_policy(Policy())  # the references were scored under the default policy
    records = list(acc.records)
    single = np.empty(len(records), dtype=np.float64)
    for i, r in enumerate(records):
        try:
            single[i] = pred.score(r).probability
        except InputError as err:
            raise SelfTestError(
                f"bundle {predictor.source}: acceptance record {i} is rejected by the bundle's own "
                f"schema ({err}); the bundle is inconsistent - rebuild it"
            ) from None
    cols = {name: [r.get(name) for r in records] for name in m.schema.names}
    res = pred.score_columns(cols)
    if res.rejected.any():  # pragma: no cover - the single path rejects the same records first
        i = int(np.flatnonzero(res.rejected)[0])
        raise SelfTestError(
            f"bundle {predictor.source}: acceptance record {i} is rejected on the batch path "
            f"({res.errors.get(i)}); the bundle is inconsistent - rebuild it"
        )
    got = {"single": single, "batch": res.probabilities.astype(np.float64)}
    t, tol = float(m.decision.threshold), float(m.golden_tolerance)
    build = np.asarray(acc.scores, dtype=np.float64)
    src = np.asarray(acc.source_scores, dtype=np.float64)
    band = np.abs(build - t) <= tol  # records whose decision may legitimately change on another CPU
    recorded = compare_scores(build, src, t)
    kinds: dict[str, int] = {}
    for k in acc.kinds:
        kinds[k] = kinds.get(k, 0) + 1
    return AcceptanceReport(
        records=len(records),
        threshold=t,
        tolerance=tol,
        engine=predictor.engine.name,
        build=build_verdict(got, build, t, tol, band),
        source=source_verdict(got, src, t, tol, band, recorded),
        source_stage=acc.source_stage,
        kinds=kinds,
    )


def require(predictor: Predictor) -> AcceptanceReport | None:
    """:func:`check`, raising SelfTestError naming every failed gate."""
    report = check(predictor)
    if report is not None and not report.passed:
        raise SelfTestError(
            f"bundle {predictor.source}: the acceptance set fails on {report.engine}: "
            + "; ".join(report.failures)
            + " - do not deploy it"
        )
    return report


# ---------------------------------------------------------------- the gates
def compare_scores(got: np.ndarray, ref: np.ndarray, t: float) -> Comparison:
    """Max and mean |dp| (NaN counts as infinitely far), decision flips at ``t`` and the worst record."""
    d = np.abs(got - ref)
    ok = np.isfinite(d)
    d = np.where(ok, d, np.inf)
    flips = int(((got >= t) != (ref >= t)).sum())
    worst = int(np.argmax(d)) if d.size else -1
    return Comparison(
        max_abs_delta=float(d.max()) if d.size else 0.0,
        mean_abs_delta=float(d.mean()) if d.size else 0.0,
        flips=flips,
        worst_record=worst,
    )


def build_verdict(got: dict[str, np.ndarray], build: np.ndarray, t: float, tol: float, band: np.ndarray) -> Verdict:
    """The build-machine gate on each engine path (``band``: records within ``tol`` of the threshold)."""
    paths, failures = {}, []
    for path in PATHS:
        c = paths[path] = compare_scores(got[path], build, t)
        if not c.max_abs_delta <= tol:
            failures.append(
                f"{path} path: max |dp| {c.max_abs_delta:.3g} against the build machine exceeds the "
                f"tolerance {tol:g} (record {c.worst_record})"
            )
        hard = int((((got[path] >= t) != (build >= t)) & ~band).sum())
        if hard:
            failures.append(
                f"{path} path: {hard} decision(s) flip against the build machine on records more than "
                f"{tol:g} from the threshold"
            )
    return Verdict(
        "build machine",
        paths,
        {"max_abs_delta": tol, "flips_outside_band": 0, "band_records": int(band.sum())},
        not failures,
        tuple(failures),
    )


def source_verdict(
    got: dict[str, np.ndarray], src: np.ndarray, t: float, tol: float, band: np.ndarray, recorded: Comparison
) -> Verdict:
    """The source-model gate: no further from the source than the build machine was (``recorded``), plus ``tol``."""
    limit_delta = recorded.max_abs_delta + tol
    limit_flips = recorded.flips + int(band.sum())
    paths, failures = {}, []
    for path in PATHS:
        c = paths[path] = compare_scores(got[path], src, t)
        if not c.max_abs_delta <= limit_delta:
            failures.append(
                f"{path} path: max |dp| {c.max_abs_delta:.3g} against the source model exceeds "
                f"{limit_delta:.3g} (build machine {recorded.max_abs_delta:.3g} + tolerance {tol:g})"
            )
        if c.flips > limit_flips:
            failures.append(
                f"{path} path: {c.flips} decision(s) flip against the source model, more than "
                f"{limit_flips} (build machine {recorded.flips} + {int(band.sum())} within the tolerance "
                f"of the threshold)"
            )
    return Verdict(
        "source model",
        paths,
        {
            "max_abs_delta": limit_delta,
            "flips": limit_flips,
            "build_max_abs_delta": recorded.max_abs_delta,
            "build_flips": recorded.flips,
        },
        not failures,
        tuple(failures),
    )


__all__ = [
    "AcceptanceReport",
    "Comparison",
    "Verdict",
    "build_verdict",
    "check",
    "compare_scores",
    "require",
    "source_verdict",
]
