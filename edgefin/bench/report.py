"""The report: report.json (the source of truth), report.md and one self-contained report.html.

report.md and report.html are pure functions of report.json, so ``edgefin report RUN_DIR``
rebuilds them without measuring anything again. The HTML has no script and no external reference:
charts are inline SVG (edgefin.bench.svg), styles inline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..atomic import write_json, write_text
from ..errors import RunDirError
from .recommend import explain

REPORT_FILES = ("report.json", "report.md", "report.html")


# ---------------------------------------------------------------- figures
def _get(d: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(d, Mapping):
            d = d.get(k)
        elif isinstance(d, list) and isinstance(k, int) and -len(d) <= k < len(d):
            d = d[k]
        else:
            return None
    return d


def _thr(row: Mapping[str, Any], kind: str, batch: int) -> float | None:
    for t in _get(row, "throughput", kind) or []:
        if t.get("batch") == batch:
            return t.get("records_per_s")
    return None


def summary_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat dict per variant: the figures of the summary table (terminal, Markdown, HTML)."""
    src_auc = _get(report, "source", "auc")
    out = []
    for r in report.get("variants", []):
        auc = _get(r, "quality", "auc")
        out.append(
            {
                "variant": r["name"],
                "status": r.get("status"),
                "parity": None
                if not isinstance(r.get("parity"), Mapping) or "passed" not in r["parity"]
                else ("pass" if r["parity"]["passed"] else "FAIL"),
                "bundle_kib": r["bundle_bytes"] / 1024 if r.get("bundle_bytes") is not None else None,
                "gzip_kib": r["bundle_gzip_bytes"] / 1024 if r.get("bundle_gzip_bytes") is not None else None,
                "model_kib": r["model_bytes"] / 1024 if r.get("model_bytes") is not None else None,
                "auc": auc,
                "auc_drop": (src_auc - auc) if isinstance(src_auc, float) and isinstance(auc, float) else None,
                "gini": _get(r, "quality", "gini"),
                "ks": _get(r, "quality", "ks"),
                "brier": _get(r, "quality", "brier"),
                "flip_rate": _get(r, "quality", "flip_rate_vs_dense"),
                "p50_us": _get(r, "latency", "runtime", "p50_us"),
                "p95_us": _get(r, "latency", "runtime", "p95_us"),
                "p99_us": _get(r, "latency", "runtime", "p99_us"),
                "spread_us": (
                    _get(r, "latency", "runtime", "block_p50_min_us"),
                    _get(r, "latency", "runtime", "block_p50_max_us"),
                ),
                "engine_p50_us": _get(r, "latency", "engine", "p50_us"),
                "rps_1024_columns": _thr(r, "runtime_columns", 1024),
                "cold_start_ms": _get(r, "cold_start", "spawn_to_first_score_ms"),
                "peak_rss_mib": _get(r, "memory", "peak_rss_mib"),
                "keras_x": _get(r, "ratios", "keras_call_over_runtime"),
            }
        )
    return out


COLUMNS = (  # key, header, format
    ("variant", "variant", "{}"),
    ("status", "status", "{}"),
    ("parity", "parity", "{}"),
    ("bundle_kib", "bundle KiB", "{:.1f}"),
    ("gzip_kib", "gzip KiB", "{:.1f}"),
    ("auc", "AUC", "{:.4f}"),
    ("auc_drop", "AUC drop", "{:+.4f}"),
    ("ks", "KS", "{:.3f}"),
    ("brier", "Brier", "{:.4f}"),
    ("flip_rate", "flips vs dense", "{:.2%}"),
    ("p50_us", "p50 us", "{:.1f}"),
    ("p95_us", "p95 us", "{:.1f}"),
    ("p99_us", "p99 us", "{:.1f}"),
    ("engine_p50_us", "engine p50 us", "{:.1f}"),
    ("rps_1024_columns", "rows/s @1024", "{:,.0f}"),
    ("cold_start_ms", "cold ms", "{:.0f}"),
    ("peak_rss_mib", "RSS MiB", "{:.1f}"),
    ("keras_x", "x Keras", "{:.0f}x"),
)


def fmt(value: object, pattern: str) -> str:
    if value is None:
        return "-"
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)


# ---------------------------------------------------------------- markdown
def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def target_failures(t: Mapping[str, Any]) -> list[str]:
    """'bundle on target: failure' for every failed check of a targets grid (report.json's ``targets``)."""
    return [
        f"{b} on {n}: {f}"
        for b, cells in t.get("grid", {}).items()
        for n, c in cells.items()
        for f in c.get("failures", [])
    ]


def render_markdown(report: Mapping[str, Any]) -> str:
    m, p, rec = report.get("machine", {}), report.get("profile", {}), report.get("recommendation", {})
    rows = summary_rows(report)
    parts = [
        "# edgefin benchmark report\n",
        f"Run `{report.get('run_dir')}`, {report.get('created_at')}, {report.get('test_rows')} test rows.\n",
        "**Recommendation"
        + (f" for device {rec['device']}" if rec.get("device") else "")
        + ":** "
        + " ".join(explain(rec)[:1])
        + "\n",
        f"Rule: {rec.get('rule', '')}.\n",
    ]
    if rec.get("chosen") is None:
        parts.append("\n".join(f"- {line.strip()}" for line in explain(rec)[1:]) + "\n")
    parts.append("## Variants\n")
    parts.append(_md_table([h for _, h, _ in COLUMNS], [[fmt(r[k], f) for k, _, f in COLUMNS] for r in rows]))
    src = report.get("source", {})
    parts.append(
        f"\nSource model: {src.get('model')} test AUC {fmt(src.get('auc'), '{:.4f}')} "
        f"(threshold {fmt(src.get('threshold'), '{:.3f}')}). Latency is one record from a Python "
        f"dict to a Score through edgefin_runtime; 'engine' is the bare engine's own Python API on "
        f"a prepared row; rows/s @1024 is `score_columns` on a batch of 1,024.\n"
    )
    parts.append(_md_keras(report))
    parts.append(_md_throughput(report))
    parts.append("## Machine and profile\n")
    parts.append(
        f"- CPU: {m.get('cpu_model')} ({m.get('cpus_available')} of {m.get('cpu_count')} CPUs available), "
        f"{fmt(m.get('memory_total_mib'), '{:,.0f}')} MiB RAM, {m.get('os')}, Python {m.get('python')}; "
        f"load average {m.get('load_average_at_start')} at the start, {m.get('load_average')} at the end"
    )
    parts.append(
        f"- Profile `{p.get('name')}`: {p.get('description', '')} "
        f"(cores {p.get('cores') or 'all'}, threads {p.get('threads')}, "
        f"memory cap {str(p.get('memory_mib')) + ' MiB' if p.get('memory_mib') else 'none'})"
    )
    parts.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items()))
    s = report.get("settings", {})
    parts.append(
        f"- Repetitions: {s.get('warmup')} warm-up calls, {s.get('blocks')} blocks of "
        f"{s.get('block_size')} timed calls per path; spread = min/max of the block medians\n"
    )
    if isinstance(report.get("targets"), Mapping):
        parts.append(md_targets(report["targets"]))
    from .devices import render_markdown as devices_markdown
    from .explainreport import render_markdown as explain_markdown

    parts.append(devices_markdown(report))
    parts.append(explain_markdown(report))
    dq = _quality_warnings(report.get("data_quality"))
    if dq:
        parts.append("## Data-quality warnings\n")
        parts.append("\n".join(f"- {w}" for w in dq) + "\n")
    return "\n".join(parts) + "\n"


def _md_keras(report: Mapping[str, Any]) -> str:
    k = _get(report, "source", "keras") or {}
    if k.get("status") != "ok":
        return f"\nKeras baseline: {k.get('status', 'not measured')} {k.get('error') or ''}\n"
    call, pred = _get(k, "latency", "keras_call", "p50_us"), _get(k, "latency", "keras_predict", "p50_us")
    lines = [
        "\n## Against Keras (same run, same profile)\n",
        f"Keras `model(x)` one record: p50 {fmt(call, '{:,.0f}')} us; "
        f"`model.predict`: p50 {fmt(pred, '{:,.0f}')} us.\n",
    ]
    rows = [
        [
            r["name"],
            fmt(_get(r, "ratios", "keras_call_over_runtime"), "{:,.0f}x"),
            fmt(_get(r, "ratios", "keras_predict_over_runtime"), "{:,.0f}x"),
            fmt(_get(r, "ratios", "runtime_over_engine"), "{:.2f}"),
        ]
        for r in report.get("variants", [])
        if r.get("status") == "ok"
    ]
    lines.append(_md_table(["variant", "model(x) / runtime", "predict / runtime", "runtime / bare engine"], rows))
    return "\n".join(lines) + "\n"


def _md_throughput(report: Mapping[str, Any]) -> str:
    batches = _get(report, "settings", "batch_sizes") or []
    headers = ["variant", "path"] + [f"batch {b} rows/s" for b in batches]
    rows = []
    for r in report.get("variants", []):
        if r.get("status") != "ok":
            continue
        for kind, label in (
            ("runtime_records", "runtime dicts"),
            ("runtime_columns", "runtime columns"),
            ("engine", "bare engine"),
        ):
            rows.append([r["name"], label] + [fmt(_thr(r, kind, b), "{:,.0f}") for b in batches])
    k = _get(report, "source", "keras") or {}
    for t in [_get(k, "throughput", "keras_call")] if k.get("status") == "ok" else []:
        rows.append(
            ["dense (Keras)", "model(x)"]
            + [fmt(next((e["records_per_s"] for e in t if e["batch"] == b), None), "{:,.0f}") for b in batches]
        )
    return "\n## Throughput\n\n" + _md_table(headers, rows) + "\n"


def target_cell(c: Mapping[str, object]) -> str:
    """One bundle x target cell of `edgefin targets`: pass/FAIL, load refusal, max |dp| and flips."""
    parts = ["pass" if c.get("passed") else "FAIL"]
    if not c.get("loaded"):
        parts.append("does not load")
    if c.get("max_abs_delta") is not None:
        parts.append(f"max |dp| {c['max_abs_delta']:.2g}")
    if c.get("flips") is not None:
        parts.append(f"{c['flips']} flips")
    if c.get("test_flips_vs_source") is not None:
        parts.append(f"{c['test_flips_vs_source']} vs source")
    return ", ".join(parts)


def md_targets(t: Mapping[str, Any]) -> str:
    """The `edgefin targets` grid (report.json "targets", from bundles/targets.json) as markdown."""
    names = list(t.get("order") or t.get("targets", {}))  # the order asked for (report.json sorts keys)
    rows = [
        [b] + [target_cell(cells[n]) if n in cells else "-" for n in names] for b, cells in t.get("grid", {}).items()
    ]
    lines = [
        "## CPU targets\n",
        f"`edgefin targets`, {t.get('created_at')}: "
        f"{'every bundle passes on every target' if t.get('passed') else 'FAILURES below'}; "
        f"max |dp| and flips against the build machine (acceptance set or golden vectors, and "
        f"{t.get('test_rows')} test rows), 'vs source': test-split flips against the source Keras model. "
        f"{t.get('note', '')}\n",
        _md_table(["bundle"] + names, rows),
        "",
    ]
    lines += [
        f"- `{n}`: {v.get('isa')} (QEMU CPU {v.get('cpu') or 'none, native'}; checked in {v.get('seconds')} s)"
        for n, v in t.get("targets", {}).items()
    ]
    fails = target_failures(t)
    if fails:
        lines += ["", "Failures:", *[f"- {f}" for f in fails]]
    return "\n".join(lines) + "\n"


def _quality_warnings(dq: Any) -> list[str]:
    """Warning texts from data/quality.json, whatever their exact shape (strings or objects)."""
    if not isinstance(dq, Mapping):
        return []
    out = []
    for w in dq.get("warnings", []) or []:
        if isinstance(w, str):
            out.append(w)
        elif isinstance(w, Mapping):
            out.append(str(w.get("message") or w.get("text") or json.dumps(w, sort_keys=True)))
    return out


# ---------------------------------------------------------------- writing
def write_report(report: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write report.json, report.md and report.html into ``out_dir`` (atomically each)."""
    from .htmlreport import render_html

    d = Path(out_dir)
    paths = {name: d / name for name in REPORT_FILES}
    write_json(paths["report.json"], report)
    report = json.loads(paths["report.json"].read_text(encoding="utf-8"))  # render exactly what report.json says
    write_text(paths["report.md"], render_markdown(report))
    write_text(paths["report.html"], render_html(report))
    if isinstance(report.get("model_card"), Mapping):
        from ..explain.model_card import render_markdown as card_markdown

        paths["model_card.md"] = write_text(d / "model_card.md", card_markdown(report["model_card"]))
    return paths


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """report.json from a run directory, its report/ folder, or the file itself."""
    p = Path(path)
    for cand in (p, p / "report.json", p / "report" / "report.json"):
        if cand.is_file():
            try:
                return json.loads(cand.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise RunDirError(f"{cand} is not valid JSON ({exc}); re-run 'edgefin bench'") from None
    raise RunDirError(f"no report.json in {p} (looked for {p}/report/report.json); run 'edgefin bench {p}' first")


def rebuild(path: str | os.PathLike[str]) -> dict[str, Path]:
    """Re-render report.md and report.html from an existing report.json (no measuring)."""
    report = load_report(path)
    p = Path(path)
    if p.is_file() and p.name != "report.json":  # e.g. benchmarks/results/bench-kiosk-1core.json
        from .htmlreport import render_html

        return {
            "report.json": p,
            "report.md": write_text(p.with_suffix(".md"), render_markdown(report)),
            "report.html": write_text(p.with_suffix(".html"), render_html(report)),
        }
    out_dir = p.parent if p.is_file() else (p if (p / "report.json").is_file() else p / "report")
    return write_report(report, out_dir)


__all__ = [
    "write_report",
    "rebuild",
    "load_report",
    "render_markdown",
    "summary_rows",
    "COLUMNS",
    "fmt",
    "md_targets",
    "target_cell",
]
