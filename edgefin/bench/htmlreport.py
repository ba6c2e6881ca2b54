"""report.html: one self-contained page (inline CSS and SVG, no script, no external reference)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

from . import svg
from .recommend import explain
from .report import COLUMNS, _get, _quality_warnings, _thr, fmt, summary_rows, target_cell, target_failures

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1220px;color:#222}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 5px;text-align:right}
th{background:#f3f5f7}td:first-child,th:first-child{text-align:left}tr.chosen td{background:#eaf6ea;font-weight:600}
tr.bad td{color:#999}.rec{background:#eef5fb;border-left:4px solid #1f77b4;padding:10px 14px;margin:12px 0}
.rec.none{background:#fdf0ef;border-color:#d62728}.grid{display:flex;flex-wrap:wrap;gap:16px}
td.pass{background:#e6f4e6}td.fail{background:#fbe3e1;color:#8b1a10}.muted{color:#666;font-size:12px}.scroll{overflow-x:auto;max-width:100%}.warn{color:#8a5a00}pre{background:#f7f7f7;padding:8px;font-size:11px;overflow:auto}
"""


def _table(headers: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>")
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def _scalar_table(obj: Mapping[str, Any]) -> str:
    """A mapping of name -> mapping of scalars as a table (rows = names, columns = scalar keys)."""
    names = [k for k, v in obj.items() if isinstance(v, Mapping)]
    keys: list[str] = []
    for n in names:
        for k, v in obj[n].items():
            if isinstance(v, (int, float, str, bool)) and k not in keys:
                keys.append(k)
    if not names or not keys:
        return ""
    keys = keys[:14]
    rows = [[n] + [_cell(obj[n].get(k)) for k in keys] for n in names]
    return _table([""] + keys, rows)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


COMPRESSION_KEYS = (  # the figures of compress.json stages worth a column, in this order, when present
    ("test.auc", "test AUC", "{:.4f}"),
    ("test.gini", "Gini", "{:.4f}"),
    ("test.ks", "KS", "{:.3f}"),
    ("test.brier", "Brier", "{:.4f}"),
    ("flip_rate_vs_dense", "flips vs dense", "{:.2%}"),
    ("sparsity.kernel_sparsity", "kernel sparsity", "{:.1%}"),
    ("size.file_bytes", "file bytes", "{:,}"),
    ("size.file_gzip_bytes", "gzip bytes", "{:,}"),
    ("size.weights_bytes", "weights bytes", "{:,}"),
)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (int, float, str, bool)) or v is None:
            out[key] = v
    return out


def _compression(comp: Any) -> str:
    if not isinstance(comp, Mapping):
        return "<p class='muted'>No compress.json in this run (the compress step did not run).</p>"
    parts = []
    stages = comp.get("stages")
    if isinstance(stages, Mapping) and stages:
        flat = {name: _flatten(v) for name, v in stages.items() if isinstance(v, Mapping)}
        cols = [c for c in COMPRESSION_KEYS if any(c[0] in f for f in flat.values())]
        if cols:
            rows = [[name] + [fmt(f.get(k), spec) for k, _, spec in cols] for name, f in flat.items()]
            parts.append(_table(["stage"] + [h for _, h, _ in cols], rows))
        else:
            parts.append(_scalar_table(stages))
    else:
        parts.append(_scalar_table(comp))
    bar = comp.get("quality_bar")
    if isinstance(bar, Mapping) and isinstance(bar.get("checks"), list):
        items = "".join(
            f"<li class='{'' if c.get('passed') else 'warn'}'>{'pass' if c.get('passed') else 'FAIL'}: "
            f"{escape(str(c.get('name')))} &mdash; {escape(str(c.get('detail', '')))}</li>"
            for c in bar["checks"]
            if isinstance(c, Mapping)
        )
        parts.append(f"<p>Quality bar:</p><ul>{items}</ul>")
    for note in comp.get("notes") or []:
        parts.append(f"<p class='muted'>{escape(str(note))}</p>")
    raw = escape(json.dumps(comp, indent=1, sort_keys=True)[:20000])
    return "".join(parts) + f"<details><summary>compress.json</summary><pre>{raw}</pre></details>"


def render_html(report: Mapping[str, Any]) -> str:
    rec = report.get("recommendation", {})
    chosen = rec.get("chosen")
    focus = chosen or rec.get("nearest")
    rows = summary_rows(report)
    ok = [r for r in rows if r["status"] == "ok" and r["auc"] is not None]
    body: list[str] = [
        f"<h1>edgefin benchmark report</h1><p class='muted'>Run <code>{escape(str(report.get('run_dir')))}"
        f"</code> &middot; {escape(str(report.get('created_at')))} &middot; {report.get('test_rows')} "
        f"test rows &middot; profile <b>{escape(str(_get(report, 'profile', 'name')))}</b></p>"
    ]
    lines = explain(rec)
    body.append(
        f"<div class='rec{'' if chosen else ' none'}'><b>Recommendation"
        + (f" for device {escape(str(rec['device']))}" if rec.get("device") else "")
        + f":</b> {escape(lines[0])}"
        + ("<ul>" + "".join(f"<li>{escape(x.strip())}</li>" for x in lines[1:]) + "</ul>" if len(lines) > 1 else "")
        + f"<div class='muted'>{escape(rec.get('rule', ''))}</div></div>"
    )
    body.append("<h2>Variants</h2>")
    table_rows = [[fmt(r[k], f) for k, _, f in COLUMNS] for r in rows]
    classes = ["chosen" if r["variant"] == chosen else ("" if r["status"] == "ok" else "bad") for r in rows]
    body.append(_table([h for _, h, _ in COLUMNS], table_rows, classes))
    for r in report.get("variants", []):
        if r.get("status") != "ok":
            body.append(
                f"<p class='warn'>{escape(r['name'])}: {escape(str(r.get('status')))} &mdash; "
                f"{escape(str(r.get('error', ''))[:400])}</p>"
            )
        for kind, entries in (r.get("throughput") or {}).items():
            for e in entries:
                if e.get("error"):
                    body.append(
                        f"<p class='warn'>{escape(r['name'])}: {escape(kind)} at batch {e.get('batch')} "
                        f"failed &mdash; {escape(str(e['error'])[:300])}</p>"
                    )
    src = report.get("source", {})
    body.append(
        f"<p class='muted'>Source model {escape(str(src.get('model')))}: test AUC {fmt(src.get('auc'), '{:.4f}')}. "
        "Latency: one record from a Python dict to a Score through edgefin_runtime (p50/p95/p99 of all timed "
        "calls); engine p50: the bare engine's own Python API on a prepared row; flips: decisions that differ "
        "from the dense Keras model at the threshold.</p>"
    )
    body.append("<h2>Trade-offs</h2><div class='grid'>")
    names = [r["variant"] for r in ok]
    body.append(
        svg.scatter_pareto(
            "Size vs AUC (Pareto front: *)",
            "bundle size (KiB)",
            "test AUC",
            names,
            [r["bundle_kib"] for r in ok],
            [r["auc"] for r in ok],
            highlight=chosen,
        )
    )
    lat = [r for r in ok if r["p99_us"] is not None]
    body.append(
        svg.scatter_pareto(
            "Latency vs AUC (Pareto front: *)",
            "p99 latency per record (us, log)",
            "test AUC",
            [r["variant"] for r in lat],
            [r["p99_us"] for r in lat],
            [r["auc"] for r in lat],
            xlog=True,
            highlight=chosen,
        )
    )
    body.append("</div><h2>Latency distributions (one record)</h2><div class='grid'>")
    for path, label in (("runtime", "runtime: dict -> Score"), ("engine", "bare engine")):
        series = [
            (r["name"], _get(r, "latency", path, "quantiles_us") or [])
            for r in report.get("variants", [])
            if r.get("status") == "ok"
        ]
        body.append(svg.boxes(f"{label} (box p25-p75, line p50, whiskers p1-p99)", "microseconds (log)", series))
    body.append("</div>")
    body.append(_curves(report, focus))
    body.append(_keras_section(report))
    body.append(_throughput_section(report))
    if isinstance(report.get("targets"), Mapping):
        body.append(_targets_section(report["targets"]))
    from .devices import render_html as devices_html

    body.append(devices_html(report))
    body.append("<h2>Compression</h2>" + _compression(report.get("compression")))
    from .explainreport import render_html as explain_html

    body.append(explain_html(report))
    warnings = _quality_warnings(report.get("data_quality"))
    body.append(
        "<h2>Data-quality warnings</h2>"
        + (
            "<ul>" + "".join(f"<li class='warn'>{escape(w)}</li>" for w in warnings) + "</ul>"
            if warnings
            else (
                "<p class='muted'>None.</p>"
                if report.get("data_quality")
                else "<p class='muted'>No data/quality.json in this run.</p>"
            )
        )
    )
    body.append(_machine_section(report))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>edgefin benchmark report</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _targets_section(t: Mapping[str, Any]) -> str:
    """The `edgefin targets` grid: one row per bundle, one green/red cell per CPU target."""
    names = list(t.get("order") or t.get("targets", {}))  # the order asked for (report.json sorts keys)
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    body = []
    for b, cells in t.get("grid", {}).items():
        tds = []
        for n in names:
            c = cells.get(n)
            if c is None:
                tds.append("<td>-</td>")
                continue
            tip = escape("; ".join(c.get("failures", [])), quote=True)
            tds.append(
                f"<td class='{'pass' if c.get('passed') else 'fail'}' title='{tip}'>{escape(target_cell(c))}</td>"
            )
        body.append(f"<tr><td>{escape(b)}</td>{''.join(tds)}</tr>")
    items = "".join(
        f"<li><b>{escape(n)}</b>: {escape(str(v.get('isa')))} (QEMU CPU {escape(str(v.get('cpu') or 'none, native'))}; "
        f"checked in {v.get('seconds')} s)</li>"
        for n, v in t.get("targets", {}).items()
    )
    fails = target_failures(t)
    fail_html = (
        "<p>Failures:</p><ul>" + "".join(f"<li class='warn'>{escape(f)}</li>" for f in fails) + "</ul>" if fails else ""
    )
    return (
        f"<h2>CPU targets</h2><p class='muted'><code>edgefin targets</code>, {escape(str(t.get('created_at')))}: "
        f"max |dp| and flips against the build machine (acceptance set or golden vectors, and "
        f"{t.get('test_rows')} test rows); 'vs source': test-split flips against the source Keras model. "
        f"{escape(str(t.get('note', '')))}</p>"
        f"<div class='scroll'><table><thead><tr><th>bundle</th>{head}</tr></thead><tbody>{''.join(body)}"
        f"</tbody></table></div><ul>{items}</ul>{fail_html}"
    )


def _curves(report: Mapping[str, Any], focus: str | None) -> str:
    curves = report.get("curves", {}) or {}
    if not focus or focus not in curves:
        return "<h2>ROC and calibration</h2><p class='muted'>No measured variant to draw.</p>"
    series = [(focus, curves[focus])]
    if "dense (Keras)" in curves:
        series.append(("dense (Keras)", curves["dense (Keras)"]))
    roc = svg.lines(
        f"ROC: {focus}",
        "false positive rate",
        "true positive rate",
        [(n, c["roc"]["fpr"], c["roc"]["tpr"]) for n, c in series],
        diagonal=True,
    )
    cal = svg.lines(
        f"Calibration: {focus}",
        "mean predicted probability",
        "observed positive rate",
        [
            (n, [b["mean_predicted"] for b in c["calibration"]], [b["observed_rate"] for b in c["calibration"]])
            for n, c in series
        ],
        diagonal=True,
        markers=True,
    )
    return f"<h2>ROC and calibration of {escape(focus)}</h2><div class='grid'>{roc}{cal}</div>"


def _keras_section(report: Mapping[str, Any]) -> str:
    k = _get(report, "source", "keras") or {}
    if k.get("status") != "ok":
        why = escape(str(k.get("error") or k.get("status")))
        return f"<h2>Against Keras</h2><p class='muted'>Keras baseline not measured: {why}</p>"
    rows = [
        [
            r["name"],
            fmt(_get(r, "latency", "runtime", "p50_us"), "{:.1f}"),
            fmt(_get(r, "ratios", "keras_call_over_runtime"), "{:,.0f}x"),
            fmt(_get(r, "ratios", "keras_predict_over_runtime"), "{:,.0f}x"),
            fmt(_get(r, "ratios", "runtime_over_engine"), "{:.2f}"),
        ]
        for r in report.get("variants", [])
        if r.get("status") == "ok"
    ]
    return (
        "<h2>Against Keras (same run, same profile)</h2>"
        "<p>Keras <code>model(x)</code> on one record: "
        f"p50 {fmt(_get(k, 'latency', 'keras_call', 'p50_us'), '{:,.0f}')} us; "
        f"<code>model.predict</code>: p50 {fmt(_get(k, 'latency', 'keras_predict', 'p50_us'), '{:,.0f}')} us.</p>"
        + _table(
            ["variant", "runtime p50 us", "model(x) / runtime", "predict / runtime", "runtime / bare engine"], rows
        )
    )


def _throughput_section(report: Mapping[str, Any]) -> str:
    batches = _get(report, "settings", "batch_sizes") or []
    rows = []
    for r in report.get("variants", []):
        if r.get("status") != "ok":
            continue
        for kind, label in (
            ("runtime_records", "runtime, dicts"),
            ("runtime_columns", "runtime, columns"),
            ("engine", "bare engine"),
        ):
            rows.append([r["name"], label] + [fmt(_thr(r, kind, b), "{:,.0f}") for b in batches])
    return "<h2>Throughput (records/s, median of blocks)</h2>" + _table(
        ["variant", "path"] + [f"batch {b}" for b in batches], rows
    )


def _machine_section(report: Mapping[str, Any]) -> str:
    m, p, s = report.get("machine", {}), report.get("profile", {}), report.get("settings", {})
    items = [
        f"CPU: {m.get('cpu_model')} &mdash; {m.get('cpus_available')} of {m.get('cpu_count')} CPUs available, "
        f"{fmt(m.get('memory_total_mib'), '{:,.0f}')} MiB RAM",
        f"OS: {escape(str(m.get('platform')))}; Python {escape(str(m.get('python')))}; load average "
        f"(1/5/15 min) {escape(str(m.get('load_average_at_start')))} at the start, "
        f"{escape(str(m.get('load_average')))} at the end (above the CPU count, other work slowed the figures)",
        f"Profile <b>{escape(str(p.get('name')))}</b>: {escape(str(p.get('description', '')))}",
        f"Repetitions: {s.get('warmup')} warm-up calls, {s.get('blocks')} blocks x {s.get('block_size')} timed calls "
        f"per path; throughput blocks of at least {s.get('min_block_s')} s; bench took {report.get('duration_s')} s",
        "Versions: " + escape(", ".join(f"{k} {v}" for k, v in report.get("versions", {}).items())),
    ]
    return "<h2>Machine, profile, versions</h2><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
