"""Device results in a run's report: what ``edgefin-run bench --output`` measured on a branch device,
matched to the run's bundles, shown beside the build machine's figures, and recommended from.

A device result matches a run bundle by the bundle's sha256 (the same bytes; a variant rebuilt since
is flagged and never recommended). Accuracy figures (AUC, parity) are the build machine's, because
they depend on the bundle and the test split, not on the device; latency, throughput, cold start and
memory are the device's. The recommendation for a device applies the report's constraints to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .recommend import Constraints, recommend

# what a report keeps of each measured bundle (the device's figures)
_FIGURES = ("latency", "throughput", "cold_start", "memory", "acceptance", "records", "engine", "kernels")


def load_devices(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Read and validate device results files; a repeated device name is a usage error."""
    from edgefin_runtime.benchmark.device import read_results
    from edgefin_runtime.errors import BenchResultsError

    docs: list[dict[str, Any]] = []
    for p in paths:
        try:
            doc = read_results(p)
        except BenchResultsError as exc:
            raise UsageError(f"device results: {exc}") from None
        doc["_source"] = Path(p).name
        docs.append(doc)
    names = [d["device"]["name"] for d in docs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"device results: device name(s) {', '.join(dupes)} appear in more than one file")
    return docs


def _bundle_hashes(report: Mapping[str, Any]) -> dict[str, str]:
    """Run variant name -> sha256 of its bundle file (variants whose file is gone are left out)."""
    from edgefin_runtime.bundle import sha256_hex

    out: dict[str, str] = {}
    for row in report.get("variants", []):
        try:
            out[row["name"]] = sha256_hex(Path(row["bundle"]).read_bytes())
        except (OSError, KeyError, TypeError):
            continue
    return out


def device_view(doc: Mapping[str, Any], hashes: Mapping[str, str]) -> dict[str, Any]:
    """One device as the report keeps it: machine, settings, and per run variant its figures."""
    by_hash = {h: name for name, h in hashes.items()}
    variants: dict[str, Any] = {}
    for b in doc["bundles"]:
        name = by_hash.get(b["sha256"])
        matches = name is not None
        if name is None:
            name = b["variant"] if b["variant"] in hashes else Path(str(b.get("file", b["variant"]))).stem
        entry = {"status": b["status"], "matches_run": matches, "file": b.get("file"), "error": b.get("error")}
        entry.update({k: b[k] for k in _FIGURES if k in b})
        variants[name] = entry
    m = doc["device"].get("machine", {})
    return {
        "name": doc["device"]["name"],
        "source": doc.get("_source"),
        "created_at": doc.get("created_at"),
        "machine": m,
        "versions": doc["device"].get("versions", {}),
        "threads": doc.get("threads"),
        "cpus": doc.get("cpus"),
        "settings": doc.get("settings"),
        "variants": variants,
    }


def device_rows(report: Mapping[str, Any], device: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The report's variant rows with the device's speed figures in place of the build machine's."""
    rows: list[dict[str, Any]] = []
    for row in report.get("variants", []):
        d = device["variants"].get(row["name"])
        new = {k: v for k, v in row.items() if k not in ("latency", "throughput", "cold_start", "memory")}
        if d is None:
            new["status"] = f"not measured on {device['name']}"
        elif not d.get("matches_run"):
            new["status"] = f"a different bundle was measured on {device['name']}"
        elif d.get("status") != "ok":
            new["status"] = d.get("status", "error")
            new["error"] = d.get("error")
        else:
            new.update({k: d[k] for k in ("latency", "throughput", "cold_start", "memory") if k in d})
        rows.append(new)
    return rows


def merge(report: dict[str, Any], docs: Sequence[Mapping[str, object]], *, for_device: str | None = None) -> None:
    """Add (or replace, by name) devices in ``report`` and recommend for each; ``for_device`` makes that
    device's recommendation the report's own (the build machine's is kept beside it)."""
    hashes = _bundle_hashes(report)
    devices = {d["name"]: d for d in report.get("devices", [])}
    for doc in docs:
        view = device_view(doc, hashes)
        devices[view["name"]] = view
    if for_device is not None and for_device not in devices:
        raise UsageError(
            f"for_device: no device named {for_device!r} in the device results (have: {', '.join(devices) or 'none'})"
        )
    report["devices"] = list(devices.values())
    constraints = Constraints(**report.get("constraints", {}))
    source_auc = (report.get("source") or {}).get("auc")
    for view in report["devices"]:
        rec = recommend(device_rows(report, view), constraints, source_auc=source_auc)
        view["recommendation"] = {**rec, "device": view["name"]}
    if for_device is not None:
        if "build_machine_recommendation" not in report:
            report["build_machine_recommendation"] = report.get("recommendation")
        report["recommendation"] = devices[for_device]["recommendation"]


def merge_into_file(path: str | Path, docs: Sequence[Mapping[str, object]], *, for_device: str | None = None) -> Path:
    """Merge device results into an existing report.json (a run directory, its report/ folder or the
    file); returns the file's path. Used by ``edgefin report --device``."""
    from ..atomic import write_json
    from .report import load_report

    p = Path(path)
    target = next((c for c in (p, p / "report.json", p / "report" / "report.json") if c.is_file()), p)
    report = load_report(p)
    merge(report, docs, for_device=for_device)
    write_json(target, report)
    return target


# ---------------------------------------------------------------- rendering
def table(device: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of one device's table (text; the callers escape for their format)."""
    from .report import _get, _thr, fmt

    headers = ["variant", "status", "matches run", "p50 us", "p99 us", "engine p50 us", "rows/s @1024", "cold ms"]
    headers += ["RSS MiB", "acceptance max |dp|"]
    rows: list[list[str]] = []
    for name, v in device["variants"].items():
        rows.append(
            [
                name,
                str(v.get("status")),
                "yes" if v.get("matches_run") else "NO",
                fmt(_get(v, "latency", "runtime", "p50_us"), "{:.1f}"),
                fmt(_get(v, "latency", "runtime", "p99_us"), "{:.1f}"),
                fmt(_get(v, "latency", "engine", "p50_us"), "{:.1f}"),
                fmt(_thr(v, "runtime_columns", 1024), "{:,.0f}"),
                fmt(_get(v, "cold_start", "spawn_to_first_score_ms"), "{:.0f}"),
                fmt(_get(v, "memory", "peak_rss_mib"), "{:.1f}"),
                fmt(_get(v, "acceptance", "max_abs_diff"), "{:.2g}"),
            ]
        )
    return headers, rows


def describe(device: Mapping[str, Any]) -> str:
    """One line: the device's machine and how it was measured."""
    m = device.get("machine") or {}
    return (
        f"{m.get('cpu_model')} ({m.get('machine')}, {m.get('cpus_available')} CPUs, "
        f"{m.get('memory_total_mib')} MiB), {m.get('os')}, Python {m.get('python')}; threads "
        f"{device.get('threads')}, pinned to {device.get('cpus') or 'no CPU'}; measured {device.get('created_at')} "
        f"(file {device.get('source')})"
    )


NOTE = (
    "Device figures come from `edgefin-run bench` on the device (same measuring code as this report). "
    "AUC and parity are the build machine's: they depend on the bundle, not the CPU. A bundle whose "
    "sha256 differs from the run's is shown but never recommended."
)


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report's Devices section (empty when no device results were merged)."""
    from .recommend import explain
    from .report import _md_table

    devices = report.get("devices") or []
    if not devices:
        return ""
    parts = ["## Devices\n", NOTE + "\n"]
    for d in devices:
        headers, rows = table(d)
        parts.append(f"### {d['name']}\n")
        parts.append(describe(d) + "\n")
        parts.append("**Recommendation for this device:** " + explain(d.get("recommendation") or {})[0] + "\n")
        parts.append(_md_table(headers, rows) + "\n")
    return "\n".join(parts)


def render_html(report: Mapping[str, Any]) -> str:
    """The Devices section of report.html."""
    from html import escape

    from .htmlreport import _table
    from .recommend import explain

    devices = report.get("devices") or []
    if not devices:
        return ""
    body = [f"<h2>Devices</h2><p class='muted'>{escape(NOTE)}</p>"]
    for d in devices:
        headers, rows = table(d)
        chosen = (d.get("recommendation") or {}).get("chosen")
        classes = ["chosen" if r[0] == chosen else ("" if r[1] == "ok" and r[2] == "yes" else "bad") for r in rows]
        body.append(f"<h3>{escape(str(d['name']))}</h3><p class='muted'>{escape(describe(d))}</p>")
        line = explain(d.get("recommendation") or {})[0]
        body.append(f"<p><b>Recommendation for this device:</b> {escape(line)}</p>")
        body.append(_table(headers, rows, classes))  # _table escapes every cell
    return "".join(body)
