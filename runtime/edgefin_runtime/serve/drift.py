"""Drift counters of the serving model for /metrics and /v1/drift (the runtime's DriftMonitor).

One :class:`~edgefin_runtime.drift.DriftMonitor` per serving model: a swap starts a new one (the
reference bins belong to the bundle). Records are counted after they are scored, with their scores;
rejected records are not counted. Bundles without a drift section have no monitor.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..predictor import Predictor

if TYPE_CHECKING:
    from ..drift import DriftMonitor

#: below this many records, counting record by record is cheaper than the columnar path
COLUMNAR_FROM = 16


class DriftTracker:
    """The serving model's DriftMonitor (None for a bundle without a drift section)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._current: tuple[str, DriftMonitor | None] = ("", None)

    def monitor(self, predictor: Predictor) -> DriftMonitor | None:
        sha, mon = self._current
        if sha == predictor.bundle_sha256 or not self.enabled:
            return mon
        with self._lock:
            if self._current[0] != predictor.bundle_sha256:
                from ..drift import DriftMonitor

                fresh = DriftMonitor(predictor) if predictor.info.drift is not None else None
                self._current = (predictor.bundle_sha256, fresh)
            return self._current[1]

    def observe(self, predictor: Predictor, records: Sequence[Mapping[str, Any]], scores: Sequence[float]) -> None:
        """Count scored records (with their scores) against the bundle's reference bins."""
        mon = self.monitor(predictor) if self.enabled else None
        if mon is None or not records:
            return
        if len(records) < COLUMNAR_FROM:
            for rec, p in zip(records, scores):
                mon.observe_record(rec, p)
        else:
            mon.observe(list(records), scores=list(scores))


def drift_gauges(mon: DriftMonitor) -> list[str]:
    """Prometheus lines: records counted, PSI and data-quality shares per field and for the score."""
    rep = mon.report()
    out = [
        "# HELP edgefin_drift_records_total Records counted against the bundle's training bins.",
        "# TYPE edgefin_drift_records_total counter",
        f"edgefin_drift_records_total {rep.n}",
    ]
    items = [*rep.fields.values(), *([rep.score] if rep.score is not None else [])]
    series = (
        ("edgefin_drift_psi", "Population stability index against training, per field and for the score.", "psi"),
        ("edgefin_drift_critical_psi", "PSI above which drift is unlikely to be sampling noise (95%).", "critical"),
        ("edgefin_drift_missing_share", "Share of counted records with the field missing.", "missing_share"),
        ("edgefin_drift_unseen_share", "Share of counted records with an unseen category.", "unseen_share"),
        (
            "edgefin_drift_out_of_range_share",
            "Share of counted records outside the training range.",
            "out_of_range_share",
        ),
    )
    for name, help_text, attr in series:
        rows = [(f.name, getattr(f, attr)) for f in items if getattr(f, attr) is not None]
        if not rows:
            continue
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        out += [f'{name}{{field="{field}"}} {float(v)!r}' for field, v in rows]
    out += [
        "# HELP edgefin_drift_drifted 1 if the field's PSI exceeds both 0.1 and its critical value.",
        "# TYPE edgefin_drift_drifted gauge",
    ]
    drifted = set(rep.drifted)
    out += [f'edgefin_drift_drifted{{field="{f.name}"}} {int(f.name in drifted)}' for f in items]
    return out
