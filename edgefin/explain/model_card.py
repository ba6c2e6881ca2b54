"""The model card: what the model is for, what it was trained on, how well it does and where it fails.

:func:`build_card` assembles it from a run's own records (run.json, data/schema.json, metrics.json,
compress.json, parity.json) and the figures edgefin measures (bootstrap intervals, slices, the
explanation validation). It holds aggregates only: counts, rates, metrics, rounded quantile ranges
and category labels of the schema, the reference applicant (means/modes over many rows) - never a
row of the data, and the data file by name and SHA-256 only, never its path.

Three renderings: the full dict (report.json ``model_card``), Markdown (report/model_card.md, and
the HTML report's section), and :func:`compact` (a few KiB, carried in every bundle's manifest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

CARD_VERSION = 1

DEFAULT_INTENDED_USE = (
    "Scoring the credit risk of individual loan applications at the point of application (branch "
    "kiosk or teller terminal), as one input to a lending decision that a person can review; a "
    "score at or above the threshold means 'refer or decline', and the principal reasons come with it. "
    "Not for applicants or products unlike the training data, nor as the sole basis of a decision."
)

LIMITATIONS = (
    "Trained on one historical data set: the population, the economy and the lending policy it reflects "
    "may differ from today's (monitor drift with edgefin-run drift; PSI >= 0.25 on the score calls for review).",
    "Metrics are measured on a held-out split of the same source; the intervals are bootstrap intervals "
    "of that split, not of future applicants.",
    "Reason codes are Baseline-Shapley attributions against one reference applicant: they explain the "
    "difference from that applicant, not causes; correlated fields share credit in ways that can surprise.",
    "Slices flagged 'small' have too few rows or positives for their AUC/KS to be relied on.",
    "Protected fields are never given as reasons, but a model can still use proxies of them: review "
    "the slices of every protected attribute before use.",
)


def _sub(d: Any, key: str) -> Mapping[str, Any]:
    """``d[key]`` when both are mappings, else an empty mapping (records of older runs lack sections)."""
    v = d.get(key) if isinstance(d, Mapping) else None
    return v if isinstance(v, Mapping) else {}


def _r(v: Any, digits: int = 4) -> Any:
    return round(float(v), digits) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _schema(schema: Mapping[str, Any], protected: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for f in schema.get("fields", []):
        entry: dict[str, Any] = {"name": f.get("name"), "kind": f.get("kind")}
        if f.get("kind") == "categorical":
            entry["categories"] = list(f.get("categories") or [])
        else:
            entry["range"] = [f.get("min"), f.get("max")]  # robust quantiles, rounded outward (schema.json)
        entry["missing_share"] = _r(f.get("missing_share"), 4)
        if f.get("name") in protected:
            entry["protected"] = True
        out.append(entry)
    return out


def _training(run: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    opts = _sub(run, "options")
    model = _sub(metrics, "model")
    keep = ("hidden", "dropout", "l2", "learning_rate", "batch_size", "class_weight", "encoding", "augment")
    out = {k: opts.get(k) for k in keep if k in opts}
    out.update(
        {
            "architecture": f"dense {'-'.join(str(h) for h in model.get('hidden') or opts.get('hidden') or [])}-1, "
            "ReLU, sigmoid output, Adam, binary cross-entropy",
            "bins": model.get("bins"),
            "epochs_run": model.get("epochs_run"),
            "best_epoch": model.get("best_epoch"),
            "n_features": model.get("n_features"),
            "params": model.get("params"),
            "seed": run.get("seed"),
            "threshold": _r(metrics.get("threshold"), 6),
            "threshold_method": metrics.get("threshold_method"),
        }
    )
    return {k: v for k, v in out.items() if v is not None}


def _data(run: Mapping[str, Any], metrics: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    d = _sub(run, "data")
    splits = _sub(metrics, "splits")
    path = d.get("path")
    return {
        "file": PurePath(str(path)).name if path else None,  # the name only: a path can say who ran it
        "format": d.get("format"),
        "sha256": d.get("sha256") or run.get("data_sha256"),
        "rows": d.get("rows"),
        "splits": {k: (v.get("n") if isinstance(v, Mapping) else v) for k, v in splits.items()},
        "target": schema.get("target"),
        "positive_label": schema.get("positive_label") or run.get("positive_label"),
        "negative_label": schema.get("negative_label") or run.get("negative_label"),
    }


def _lineage(compress: Mapping[str, Any] | None, parity: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"stages": [], "variants": {}}
    stages = (compress or {}).get("stages") if isinstance(compress, Mapping) else None
    if isinstance(stages, Mapping):
        for name, st in stages.items():
            if not isinstance(st, Mapping):
                continue
            test = _sub(st, "test")
            sp = _sub(st, "sparsity")
            out["stages"].append(
                {
                    "stage": name,
                    "test_auc": _r(test.get("auc")),
                    "kernel_sparsity": _r(sp.get("kernel_sparsity"), 3),
                    "flip_rate_vs_dense": _r(st.get("flip_rate_vs_dense")),
                }
            )
    variants = (parity or {}).get("variants") if isinstance(parity, Mapping) else None
    top4 = (parity or {}).get("explain_top4") if isinstance(parity, Mapping) else None
    top4_v = top4.get("variants", {}) if isinstance(top4, Mapping) else {}
    if isinstance(variants, Mapping):
        for name, v in variants.items():
            if not isinstance(v, Mapping):
                continue
            entry = {
                "source_stage": v.get("source_stage"),
                "passed": v.get("passed"),
                "auc_delta": _r(v.get("auc_delta"), 5),
                "flip_rate": _r(v.get("flip_rate"), 5),
                "max_abs_delta": _r(v.get("max_abs_delta"), 6),
            }
            agree = top4_v.get(name) if isinstance(top4_v, Mapping) else None
            if isinstance(agree, Mapping) and "set" in agree:
                entry["top4_agreement_vs_float32"] = _r(agree["set"])
            out["variants"][name] = entry
    return out


def build_card(
    *,
    run: Mapping[str, Any],
    schema: Mapping[str, Any],
    metrics: Mapping[str, Any],
    test_ci: Mapping[str, Any] | None = None,
    compress: Mapping[str, Any] | None = None,
    parity: Mapping[str, Any] | None = None,
    explanation: Mapping[str, Any] | None = None,
    slices: Sequence[Mapping[str, Any]] = (),
    drift: Mapping[str, Any] | None = None,
    protected: Sequence[str] = (),
    intended_use: str | None = None,
) -> dict[str, Any]:
    """The full model card (see the module docstring); every argument is a run's own JSON record."""
    test = _sub(metrics, "test")
    metric_rows: dict[str, Any] = {}
    for m in ("auc", "gini", "ks", "brier", "logloss"):
        ci = (test_ci or {}).get(m)
        if isinstance(ci, Mapping):
            metric_rows[m] = {"value": _r(ci["value"]), "lo": _r(ci["lo"]), "hi": _r(ci["hi"])}
        elif isinstance(test.get(m), (int, float)):
            metric_rows[m] = {"value": _r(test[m])}
    for m in ("precision", "recall", "positive_rate") if test_ci is None else ():
        if isinstance(test.get(m), (int, float)):
            metric_rows[m] = {"value": _r(test[m])}
    meta = (test_ci or {}).get("_meta")
    return {
        "card_version": CARD_VERSION,
        "model": "edgefin dense credit-scoring model",
        "edgefin_version": run.get("edgefin_version"),
        "intended_use": intended_use or DEFAULT_INTENDED_USE,
        "data": _data(run, metrics, schema),
        "schema": _schema(schema, protected),
        "protected_fields": list(protected),
        "training": _training(run, metrics),
        "metrics": {
            "split": "test",
            "rows": test.get("n"),
            "positives": test.get("positives"),
            "values": metric_rows,
            "interval": None
            if not isinstance(meta, Mapping)
            else f"{meta['level']:.0%} percentile bootstrap, {meta['n_boot']} resamples, seed {meta['seed']}",
        },
        "slices": [slice_summary(s) for s in slices],
        "explanation": dict(explanation or {}),
        "drift": dict(drift or {}),
        "compression": _lineage(compress, parity),
        "limitations": list(LIMITATIONS),
    }


#: a slice group smaller than this shows no rates in the card (a rate of a handful of rows is close to a row)
MIN_CARD_GROUP = 10


def slice_summary(s: Mapping[str, Any]) -> dict[str, Any]:
    groups = []
    for g in s.get("groups", []):
        n = g.get("n") or 0
        shown = n >= MIN_CARD_GROUP
        groups.append(
            {
                "group": g.get("group"),
                "n": n if shown else f"< {MIN_CARD_GROUP}",
                "auc": _r(g.get("auc")) if shown else None,
                "approval_rate": _r(g.get("approval_rate")) if shown else None,
                "small": g.get("small"),
            }
        )
    return {"column": s.get("column"), "groups": groups, "worst_flip_group": s.get("worst_group")}


def compact(card: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's copy: no per-field schema (the manifest has it), slices reduced to their worst groups."""
    metrics = card.get("metrics", {})
    comp = card.get("compression", {})
    expl = card.get("explanation", {})
    return {
        "card_version": card.get("card_version"),
        "model": card.get("model"),
        "intended_use": card.get("intended_use"),
        "data": {k: v for k, v in card.get("data", {}).items() if k in ("file", "sha256", "rows", "splits")},
        "protected_fields": card.get("protected_fields", []),
        "training": card.get("training", {}),
        "metrics": {k: metrics.get(k) for k in ("split", "model", "rows", "values", "interval")},
        "slices": [
            {"column": s.get("column"), "small_groups": [g["group"] for g in s.get("groups", []) if g.get("small")]}
            for s in card.get("slices", [])
        ],
        "explanation": {k: expl.get(k) for k in ("method", "reference_rule", "validation") if k in expl},
        "drift": card.get("drift", {}),
        "compression": {"stages": comp.get("stages", [])},
        "limitations": card.get("limitations", []),
    }


# ---------------------------------------------------------------- markdown
def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def render_markdown(card: Mapping[str, Any]) -> str:
    """report/model_card.md."""
    d, t, m = card.get("data", {}), card.get("training", {}), card.get("metrics", {})
    lines = [
        f"# Model card: {card.get('model')}\n",
        f"edgefin {card.get('edgefin_version')}, card format {card.get('card_version')}.\n",
        "## Intended use\n",
        f"{card.get('intended_use')}\n",
        "## Data\n",
        f"- Source: `{d.get('file')}` ({d.get('format')}, {d.get('rows')} rows), SHA-256 `{d.get('sha256')}`",
        f"- Splits: {', '.join(f'{k} {v}' for k, v in (d.get('splits') or {}).items()) or '-'}",
        f"- Target `{d.get('target')}`: positive (risk) class `{d.get('positive_label')}`, "
        f"negative `{d.get('negative_label')}`",
        "",
        "## Schema\n",
        "| field | kind | range / categories | missing share | protected |",
        "|---|---|---|---:|---|",
    ]
    for f in card.get("schema", []):
        what = _fmt(f.get("categories")) if f.get("kind") == "categorical" else _fmt(f.get("range"))
        lines.append(
            f"| {f['name']} | {f['kind']} | {what} | {_fmt(f.get('missing_share'))} | "
            f"{'yes' if f.get('protected') else ''} |"
        )
    prot = card.get("protected_fields") or []
    lines += [
        "",
        f"Protected fields (never given as a reason): {', '.join(prot) if prot else 'none declared'}.\n",
        "## Training\n",
        *[f"- {k}: {_fmt(v)}" for k, v in t.items()],
        "",
        f"## Metrics ({m.get('model') or 'source model'}, {m.get('split')} split, {m.get('rows')} rows, "
        f"{m.get('positives')} positives)\n",
        f"Intervals: {m.get('interval') or 'none'}.\n",
        "| metric | value | low | high |",
        "|---|---:|---:|---:|",
        *[
            f"| {k} | {_fmt(v.get('value'))} | {_fmt(v.get('lo'))} | {_fmt(v.get('hi'))} |"
            for k, v in (m.get("values") or {}).items()
        ],
        "",
    ]
    lines.append("## Slices\n")
    if not card.get("slices"):
        lines.append("No slice columns were given (`edgefin bench/report --slice COL`).\n")
    for s in card.get("slices", []):
        lines += [f"### {s['column']}\n", "| group | n | AUC | approval rate | small |", "|---|---:|---:|---:|---|"]
        lines += [
            f"| {g['group']} | {g['n']} | {_fmt(g.get('auc'))} | {_fmt(g.get('approval_rate'))} | "
            f"{'yes' if g.get('small') else ''} |"
            for g in s.get("groups", [])
        ]
        worst = s.get("worst_flip_group") or {}
        lines += [
            "",
            "Group with the most decision flips per variant: "
            + (", ".join(f"{k}: {v}" for k, v in worst.items()) or "-")
            + "\n",
        ]
    e = card.get("explanation", {})
    lines += ["## Explanations\n", f"- Method: {e.get('method', '-')}"]
    if e.get("reference_rule"):
        lines.append(f"- Reference applicant: {e['reference_rule']}")
    if isinstance(e.get("reference"), Mapping):
        lines.append("- Reference values: " + ", ".join(f"{k} {_fmt(v)}" for k, v in e["reference"].items()))
    val = e.get("validation") or {}
    if val:
        lines += [
            "",
            f"Validation against exact Shapley values of the float model ({e.get('validation_rows', '-')} test rows): "
            "share of rows with the same top-4 reasons (as a set), and the deletion test (declined applicants "
            "whose risk score falls when the top reason takes the reference value).\n",
            "| variant | top-4, device default method | top-4, exact method | deletion test |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {n} | {_fmt(v.get('top4_set_agreement_default_method'))} | "
            f"{_fmt(v.get('top4_set_agreement_exact_method'))} | {_fmt(v.get('deletion_test'))} |"
            for n, v in val.items()
            if isinstance(v, Mapping)
        ]
    dr = card.get("drift", {})
    lines += ["", "## Drift reference\n", f"{dr.get('text', 'No drift reference in the bundles.')}\n"]
    comp = card.get("compression", {})
    lines += [
        "## Compression lineage and parity\n",
        "| stage | test AUC | kernel sparsity | flips vs dense |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {s['stage']} | {_fmt(s.get('test_auc'))} | {_fmt(s.get('kernel_sparsity'))} | "
        f"{_fmt(s.get('flip_rate_vs_dense'))} |"
        for s in comp.get("stages", [])
    ]
    lines += [
        "",
        "| variant | from | parity | AUC delta | flip rate | top-4 agreement vs float32 |",
        "|---|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {n} | {v.get('source_stage')} | {'pass' if v.get('passed') else 'FAIL'} | {_fmt(v.get('auc_delta'))} | "
        f"{_fmt(v.get('flip_rate'))} | {_fmt(v.get('top4_agreement_vs_float32'))} |"
        for n, v in comp.get("variants", {}).items()
    ]
    lines += ["", "## Limitations\n", *[f"- {x}" for x in card.get("limitations", [])], ""]
    return "\n".join(lines)


__all__ = [
    "slice_summary",
    "CARD_VERSION",
    "DEFAULT_INTENDED_USE",
    "LIMITATIONS",
    "build_card",
    "compact",
    "render_markdown",
]
