"""Choose the variant to ship under a device's constraints, and say why.

Rule (also in the report): among the variants that were measured (status ok) and meet every
constraint, take the best test AUC; AUCs within ``AUC_TIE`` of the best count as a tie, broken by
the smaller bundle, then the lower single-record latency, then the name. Constraints:

* ``max_latency_us``: single-record latency through the runtime (dict -> Score) at
  ``latency_percentile`` (p99 by default: a device's budget is about the slow calls);
* ``max_size_kb``: the bundle file, what is shipped, in KiB (1 KiB = 1,024 bytes);
* ``max_auc_drop``: source (dense Keras) test AUC minus the variant's, on the same rows.

A variant that does not fit the profile's memory, failed its parity gate, or failed to run never
qualifies. When none qualifies,
every variant's failed constraints are listed and the *nearest* one is named: the measured variant
with the smallest summed relative excess over its failed limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import UsageError

AUC_TIE = 0.001
PERCENTILES = ("p50", "p95", "p99")


@dataclass(frozen=True)
class Constraints:
    max_latency_us: float | None = None
    max_size_kb: float | None = None
    max_auc_drop: float | None = None
    latency_percentile: str = "p99"

    def __post_init__(self) -> None:
        for name in ("max_latency_us", "max_size_kb", "max_auc_drop"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and v >= 0):
                raise UsageError(f"`{name}`: expected a number >= 0, got {v!r}")
        if self.latency_percentile not in PERCENTILES:
            raise UsageError(
                f"`latency_percentile`: expected one of {', '.join(PERCENTILES)}, got {self.latency_percentile!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.max_latency_us, self.max_size_kb, self.max_auc_drop))


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def check_variant(row: Mapping[str, Any], c: Constraints, source_auc: float | None) -> dict[str, Any]:
    """Which constraints one variant meets: {'fits', 'failed': [text], 'excess', 'figures'}."""
    status = row.get("status")
    if status != "ok":
        why = "does not fit the profile's memory cap" if status == "does_not_fit" else f"not measured ({status})"
        return {"fits": False, "failed": [why], "excess": None, "figures": {}}
    if isinstance(row.get("parity"), Mapping) and row["parity"].get("passed") is False:
        return {
            "fits": False,
            "failed": ["failed its parity gate against the source model (bundles/parity.json)"],
            "excess": None,
            "figures": {},
        }
    lat = _get(row, "latency", "runtime", f"{c.latency_percentile}_us")
    size_kb = row["bundle_bytes"] / 1024.0 if isinstance(row.get("bundle_bytes"), int) else None
    auc = _get(row, "quality", "auc")
    drop = (source_auc - auc) if isinstance(source_auc, (int, float)) and isinstance(auc, (int, float)) else None
    figures = {"latency_us": lat, "size_kb": size_kb, "auc": auc, "auc_drop": drop}
    failed: list[str] = []
    excess = 0.0
    for value, limit, label, unit, floor in (
        (lat, c.max_latency_us, f"latency {c.latency_percentile}", " us", 1.0),
        (size_kb, c.max_size_kb, "bundle size", " KiB", 1.0),
        (drop, c.max_auc_drop, "AUC drop", "", 0.001),
    ):
        if limit is None:
            continue
        if value is None:
            failed.append(f"{label} unknown")
            excess += 1.0
        elif value > limit:
            failed.append(f"{label} {value:.4g}{unit} > {limit:g}{unit}")
            excess += (value - limit) / max(float(limit), floor)
    if auc is None:
        failed.append("AUC unknown")
    return {"fits": not failed, "failed": failed, "excess": excess, "figures": figures}


def _rank_key(row: Mapping[str, Any], c: Constraints) -> tuple[Any, ...]:
    lat = _get(row, "latency", "runtime", f"{c.latency_percentile}_us")
    return (row.get("bundle_bytes") or 0, lat if lat is not None else float("inf"), row["name"])


def recommend(rows: Sequence[Mapping[str, Any]], c: Constraints, *, source_auc: float | None) -> dict[str, Any]:
    """The recommendation as data: chosen (or None), nearest, and every variant's verdict."""
    verdicts = {r["name"]: check_variant(r, c, source_auc) for r in rows}
    fits = [r for r in rows if verdicts[r["name"]]["fits"]]
    out: dict[str, Any] = {
        "rule": (
            f"best test AUC among variants meeting every constraint; AUCs within {AUC_TIE} of the best tie, "
            f"broken by smaller bundle, then lower {c.latency_percentile} latency"
        ),
        "constraints": c.to_dict(),
        "source_auc": source_auc,
        "verdicts": verdicts,
        "fits": [r["name"] for r in fits],
        "chosen": None,
        "nearest": None,
    }
    if fits:
        best = max(float(_get(r, "quality", "auc")) for r in fits)
        tied = [r for r in fits if float(_get(r, "quality", "auc")) >= best - AUC_TIE]
        chosen = min(tied, key=lambda r: _rank_key(r, c))
        out["chosen"] = chosen["name"]
        out["summary"] = (
            f"{chosen['name']}: AUC {float(_get(chosen, 'quality', 'auc')):.4f}, "
            f"{chosen['bundle_bytes'] / 1024:.1f} KiB, {c.latency_percentile} "
            f"{verdicts[chosen['name']]['figures']['latency_us']:.1f} us"
            + (f" ({len(fits)} of {len(rows)} variants meet the constraints)" if c.any else "")
        )
        return out
    measured = [r for r in rows if verdicts[r["name"]]["excess"] is not None]
    if measured:
        nearest = min(measured, key=lambda r: (verdicts[r["name"]]["excess"], _rank_key(r, c)))
        out["nearest"] = nearest["name"]
        out["summary"] = (
            "no variant meets every constraint; nearest is "
            + nearest["name"]
            + " ("
            + "; ".join(verdicts[nearest["name"]]["failed"])
            + ")"
        )
    else:
        out["summary"] = "no variant could be measured under this profile"
    return out


def explain(rec: Mapping[str, Any]) -> list[str]:
    """Lines for the terminal: the choice, or every variant's failed constraints."""
    lines = [str(rec.get("summary", ""))]
    if rec.get("chosen") is None:
        for name, v in rec.get("verdicts", {}).items():
            lines.append(f"  {name}: " + ("; ".join(v["failed"]) or "fits"))
    return lines
