"""The report's explanation sections (report.json ``explain``, ``slices``, ``model_card``), as Markdown
and HTML: validation of the device's reason codes, the global view (permutation importance, mean
|attribution|, PDP/ICE as inline SVG), slices and the model card. Pure functions of report.json."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from . import svg
from .htmlreport import _table
from .report import _md_table, fmt

AGREEMENT_TARGET = 0.95
DELETION_TARGET = 0.90


def _pct(v: Any) -> str:
    return fmt(v, "{:.1%}")


def _num(v: Any, pattern: str = "{:.4f}") -> str:
    return fmt(v, pattern)


def _deletion(d: Any) -> str:
    if not isinstance(d, Mapping) or d.get("rate") is None:
        return "-"
    return f"{d['rate']:.1%} ({d['lowered']}/{d['with_reason']})"


def validation_rows(ex: Mapping[str, Any]) -> list[list[str]]:
    """One row per variant: methods used, top-4 agreement (set / ordered / top-1) with exact float
    Shapley for the bundle's default method and for exact, vs float32, additivity, deletion test."""
    quant = (ex.get("quantisation") or {}).get("variants") or {}
    rows = []
    for name, v in (ex.get("variants") or {}).items():
        if not isinstance(v, Mapping) or "default" not in v:
            rows.append([name, str((v or {}).get("error", "-"))] + ["-"] * 7)
            continue
        d, e = v["default"], v["exact"]
        a, ae = d["agreement_vs_exact_float"], e["agreement_vs_exact_float"]
        q = quant.get(name) if isinstance(quant, Mapping) else None
        rows.append(
            [
                name,
                ", ".join(f"{k} {n}" for k, n in d.get("methods_used", {}).items()),
                f"{_pct(a['set'])} / {_pct(a['ordered'])} / {_pct(a['top1'])}",
                f"{_pct(ae['set'])} / {_pct(ae['ordered'])} / {_pct(ae['top1'])}",
                _pct(q.get("set")) if isinstance(q, Mapping) else "-",
                _num(d.get("additivity_gap"), "{:.1e}"),
                _deletion(v.get("deletion")),
                "yes" if a["set"] >= AGREEMENT_TARGET else "no",
                "yes"
                if isinstance(v.get("deletion"), Mapping) and (v["deletion"].get("rate") or 0) >= DELETION_TARGET
                else "no",
            ]
        )
    return rows


VALIDATION_HEADERS = [
    "variant",
    "device method used (records)",
    "top-4 vs exact float: set / ordered / top-1 (default method)",
    "same, method=exact",
    "top-4 set vs float32 variant",
    "additivity gap",
    "deletion test",
    "agreement >= 95%",
    "deletion >= 90%",
]


def _intro(ex: Mapping[str, Any]) -> list[str]:
    ref = ex.get("reference") or {}
    fl = ex.get("float") or {}
    lines = [
        f"Exact Baseline-Shapley values of the float model `{ex.get('float_model')}` over the schema's fields "
        f"(all {2 ** len(ex.get('mean_abs_attribution') or {})} coalitions; one-hot columns, bins and missing "
        f"indicators attributed to their source field) for {ex.get('rows')} test rows (seed {ex.get('seed')}), "
        f"against the bundles' reference applicant ({ref.get('rule') or 'see the manifest'}).",
        "Top-4 agreement: the share of rows whose 4 principal reasons (positive attributions, largest first, "
        "protected fields never) are the same set of fields (order ignored) / in the same order / have the same "
        f"first reason. Targets: set agreement >= {AGREEMENT_TARGET:.0%}; deletion test >= {DELETION_TARGET:.0%} "
        "(moving a declined applicant's top reason to the reference value lowers the risk score).",
    ]
    if fl:
        lines.append(
            f"Exact float Shapley itself: additivity gap {_num(fl.get('additivity_gap'), '{:.1e}')}, "
            f"deletion test {_deletion(fl.get('deletion'))}."
        )
    if ref.get("protected"):
        lines.append(f"Protected fields (never a reason): {', '.join(ref['protected'])}.")
    if ref.get("bundles_with_other_reference"):
        lines.append(f"Bundles with another reference applicant: {', '.join(ref['bundles_with_other_reference'])}.")
    return lines


def _importance_rows(ex: Mapping[str, Any]) -> list[tuple[str, float, float | None]]:
    fields = (ex.get("permutation_importance") or {}).get("fields") or {}
    rows = [(k, float(v["auc_loss"]), float(v["sd"])) for k, v in fields.items()]
    return sorted(rows, key=lambda r: -r[1])


def _attribution_rows(ex: Mapping[str, Any]) -> list[tuple[str, float, float | None]]:
    m = ex.get("mean_abs_attribution") or {}
    return sorted(((k, float(v), None) for k, v in m.items()), key=lambda r: -r[1])


# ---------------------------------------------------------------- markdown
def render_markdown(report: Mapping[str, Any]) -> str:
    """The explanation, global-view, slices and model-card sections of report.md ('' without them)."""
    parts: list[str] = []
    ex = report.get("explain")
    if isinstance(ex, Mapping):
        parts.append("## Explanations: reason codes validated\n")
        if ex.get("error"):
            parts.append(f"{ex['error']}\n")
        else:
            parts += [*(f"{line}\n" for line in _intro(ex)), _md_table(VALIDATION_HEADERS, validation_rows(ex)), ""]
        parts.append("## Global view\n")
        imp = _importance_rows(ex)
        mabs = dict((k, v) for k, v, _ in _attribution_rows(ex))
        parts.append(
            f"Permutation importance: AUC loss on the {(ex.get('permutation_importance') or {}).get('rows')} test "
            f"rows when a field is shuffled (mean +- sd of the repeats); mean |attribution|: exact float Shapley.\n"
        )
        parts.append(
            _md_table(
                ["field", "AUC loss", "sd", "mean abs attribution"],
                [[k, f"{v:.4f}", f"{e or 0:.4f}", _num(mabs.get(k))] for k, v, e in imp],
            )
            + "\n"
        )
    for s in report.get("slices") or []:
        parts.append(slice_markdown(s))
    card = report.get("model_card")
    if isinstance(card, Mapping):
        parts.append("## Model card\n\nIn report/model_card.md (a compact copy is in every bundle's manifest).\n")
    return "\n".join(parts)


def _slice_headers(s: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    names = list(s.get("overall_flip_rate") or {})
    return names, ["group", "n", "positives", "AUC", "KS", "approval", *[f"flips {n}" for n in names], "small"]


def _slice_rows(s: Mapping[str, Any], names: list[str]) -> list[list[str]]:
    return [
        [
            str(g["group"]),
            str(g["n"]),
            str(g["positives"]),
            _num(g.get("auc")),
            _num(g.get("ks"), "{:.3f}"),
            _pct(g.get("approval_rate")),
            *[_pct((g.get("variants") or {}).get(n, {}).get("flip_rate")) for n in names],
            "SMALL" if g.get("small") else "",
        ]
        for g in s.get("groups", [])
    ]


def slice_markdown(s: Mapping[str, Any]) -> str:
    names, headers = _slice_headers(s)
    overall = ", ".join(f"{k} {_pct(v)}" for k, v in (s.get("overall_flip_rate") or {}).items())
    return (
        f"## Slice: {s.get('column')} ({s.get('kind')})\n\n"
        f"AUC, KS and approval rate of the dense model per group; flips: decisions of each variant that differ "
        f"from the dense model's (overall: {overall}). SMALL: fewer than {s.get('min_rows')} rows or "
        f"{s.get('min_class')} of a class.\n\n" + _md_table(headers, _slice_rows(s, names)) + "\n"
    )


# ---------------------------------------------------------------- html
def render_html(report: Mapping[str, Any]) -> str:
    """The same sections for report.html, with the charts as inline SVG ('' without them)."""
    parts: list[str] = []
    ex = report.get("explain")
    if isinstance(ex, Mapping):
        parts.append("<h2>Explanations: reason codes validated</h2>")
        if ex.get("error"):
            parts.append(f"<p class='warn'>{escape(str(ex['error']))}</p>")
        else:
            parts += [f"<p class='muted'>{escape(line)}</p>" for line in _intro(ex)]
            rows = validation_rows(ex)
            classes = ["" if r[-2] == "yes" and r[-1] == "yes" else "warn" for r in rows]
            parts.append(_table(VALIDATION_HEADERS, rows, classes))
        parts.append("<h2>Global view</h2><div class='grid'>")
        parts.append(
            svg.hbars(
                "Permutation importance (AUC loss, +- sd)",
                "test AUC lost when the field is shuffled",
                _importance_rows(ex),
            )
        )
        if ex.get("mean_abs_attribution"):
            parts.append(svg.hbars("Mean |attribution| (exact float Shapley)", "score points", _attribution_rows(ex)))
        parts.append("</div><h3>Partial dependence and c-ICE of the top fields</h3><div class='grid'>")
        for p in ex.get("pdp") or []:
            parts.append(
                svg.dependence(
                    f"{p['field']} ({len(p.get('ice') or [])} ICE rows)", p["field"], p["grid"], p["pd"], p.get("ice")
                )
            )
        parts.append(
            "</div><p class='muted'>Thick line: mean score of the (sampled) test rows with the field set to each "
            "grid value (grid: rounded quantiles 5%-95% of the split, or the categories); thin lines: single rows, "
            "centred at the first grid value and drawn from the mean's start.</p>"
        )
    for s in report.get("slices") or []:
        names, headers = _slice_headers(s)
        rows = _slice_rows(s, names)
        overall = ", ".join(f"{k} {_pct(v)}" for k, v in (s.get("overall_flip_rate") or {}).items())
        parts.append(
            f"<h2>Slice: {escape(str(s.get('column')))} ({escape(str(s.get('kind')))})</h2><p class='muted'>AUC, KS "
            f"and approval rate of the dense model per group; flips: decisions of each variant that differ from the "
            f"dense model's (overall: {escape(overall)}). SMALL: fewer than {s.get('min_rows')} rows or "
            f"{s.get('min_class')} of a class: figures too noisy to act on.</p>"
        )
        parts.append(_table(headers, rows, ["bad" if r[-1] else "" for r in rows]))
    card = report.get("model_card")
    if isinstance(card, Mapping):
        parts.append(card_html(card))
    return "".join(parts)


def card_html(card: Mapping[str, Any]) -> str:
    """The model card section of report.html (the whole card as Markdown in a details block)."""
    from ..explain.model_card import render_markdown

    m = card.get("metrics") or {}
    rows = [[k, _num(v.get("value")), _num(v.get("lo")), _num(v.get("hi"))] for k, v in (m.get("values") or {}).items()]
    d = card.get("data") or {}
    lim = "".join(f"<li>{escape(x)}</li>" for x in card.get("limitations", []))
    prot = ", ".join(card.get("protected_fields") or []) or "none declared"
    return (
        "<h2>Model card</h2>"
        f"<p><b>Intended use.</b> {escape(str(card.get('intended_use')))}</p>"
        f"<p><b>Data.</b> <code>{escape(str(d.get('file')))}</code>, {d.get('rows')} rows, SHA-256 "
        f"<code>{escape(str(d.get('sha256')))}</code>. <b>Protected fields</b> (never a reason): {escape(prot)}.</p>"
        f"<p><b>Metrics</b> of {escape(str(m.get('model') or 'the source model'))} on the "
        f"{escape(str(m.get('split')))} split ({escape(str(m.get('interval') or 'no intervals'))}):</p>"
        + _table(["metric", "value", "low", "high"], rows)
        + f"<p><b>Limitations.</b></p><ul>{lim}</ul>"
        + f"<details><summary>The whole card (report/model_card.md)</summary><pre>{escape(render_markdown(card))}"
        "</pre></details>"
    )


__all__ = ["render_html", "render_markdown", "slice_markdown", "validation_rows"]
