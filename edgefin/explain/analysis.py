"""Everything edgefin.explain measures for one run directory, as report.json's explain sections.

:func:`analyse_run` scores the test split with the float Keras model the bundles were converted from
and with every bundle (through edgefin_runtime, as a device would), then computes:

- ``explain``: exact Baseline-Shapley values of the float model on a seeded test sample against the
  bundles' reference applicant; per variant the device's agreement with them (bundle default method
  and ``exact``), the additivity gap and the deletion test; the same deletion test for the exact
  float values; permutation importance (AUC loss), mean |attribution|, PDP/c-ICE of the top fields;
- ``slices``: :mod:`.slices` for each ``--slice`` column (compressed variants against the dense model);
- ``model_card``: :mod:`.model_card` (report/model_card.md is written beside report.json).

TensorFlow is imported here (the float model); call it after anything that times engines.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, EdgefinError, RunDirError
from ..reporter import SILENT, Reporter
from ..rundir import RunDir
from .importance import mean_abs_attribution, permutation_importance, ranked
from .ranking import agreement, top_reasons
from .shapley import FieldGroups, exact_shapley

TOP_FIELDS = 4  # PDP/ICE plots for this many fields
EXPLAIN_METHOD = (
    "Baseline-Shapley over the schema's fields against one reference applicant (one-hot columns, bins and "
    "missing indicators attributed to their source field); reasons: the fields with the largest positive "
    "attributions, at most 4, protected fields never"
)
DRIFT_TEXT = (
    "Reference bins frozen at training quantiles for every input field and the score; PSI levels 0.1 (watch) "
    "and 0.25 (act) with a sample-size-aware critical value (edgefin-run drift BUNDLE DATA)"
)


@dataclass(frozen=True)
class AnalysisOptions:
    """What to explain: sample size, seed, slice columns, whether to run the (TF) explanation part."""

    rows: int = 300  # test rows explained exactly (2^fields model rows each)
    seed: int = 0
    slices: tuple[str, ...] = ()
    explain: bool = True  # False: slices and the model card only (no float-model Shapley)
    repeats: int = 5  # permutation-importance repeats
    n_boot: int = 1000


def _read(path: Path) -> Any:
    """A JSON record of the run, None when absent or unreadable (as the bench harness reads them)."""
    from ..bench.harness import _read_optional

    return _read_optional(path)


class _Run:
    """A run's test split, schema and models, loaded once."""

    def __init__(self, run_dir: str | Path) -> None:
        from ..data.rundata import load_split, run_preprocessor, run_schema, run_spec
        from ..data.schema import to_columns

        self.rd = RunDir.at(run_dir)
        self.schema = run_schema(self.rd)
        self.spec = run_spec(self.rd)
        self.pre = run_preprocessor(self.rd)
        self.frame, self.y = load_split(self.rd, "test")
        self.columns = to_columns(self.frame, self.schema, f"{self.rd.root}/data/test.parquet")
        rejected = sorted(self.pre.columns(self.columns).errors)  # rows no bundle scores either: left out
        if rejected:
            keep = np.setdiff1d(np.arange(len(self.y)), rejected)
            self.frame, self.y = self.frame.iloc[keep], self.y[keep]
            self.columns = {k: v[keep] for k, v in self.columns.items()}
        self.rejected = len(rejected)
        self.names = tuple(self.schema.names)
        self.kinds = {f.name: f.kind for f in self.schema.fields}
        self.metrics = self.rd.read_json(self.rd.metrics_json, "train")
        self.threshold = float(self.metrics["threshold"])
        self.parity = _read(self.rd.parity_json)
        self.run = _read(self.rd.run_json) or {}
        self.groups = FieldGroups.from_spec(self.spec)
        self._models: dict[str, Any] = {}

    def encode(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        res = self.pre.columns(columns)
        if res.errors:
            first = min(res.errors)
            raise DataError(f"test split row {first}: {res.errors[first].reason}")
        return np.asarray(res.matrix, dtype=np.float32)

    def model(self, stage: str) -> Any:
        if stage not in self._models:
            from ..keras_io import load_model

            self._models[stage] = load_model(self.rd.require(self.rd.stored_model(stage), "train"))
        return self._models[stage]

    def float_stage(self) -> str:
        """The float model the bundles' float variants were converted from."""
        stage = (self.parity or {}).get("stage") or self.rd.latest_stage()
        return self.rd.qat_float_stage() if stage == "qat" else str(stage)

    def predict(self, stage: str) -> Any:
        from edgefin_converters.keras_io import predict

        model = self.model(stage)
        return lambda x: predict(model, x)

    def score_columns(self, stage: str) -> Any:
        predict = self.predict(stage)
        return lambda cols: predict(self.encode(cols))

    def records(self, rows: Sequence[int]) -> list[dict[str, Any]]:
        from edgefin_converters.export import row_record

        return [row_record(self.columns, self.schema, int(i)) for i in rows]

    def bundles(self) -> dict[str, Path]:
        d = self.rd.bundles_dir
        return {p.stem: p for p in sorted(d.glob("*.efb"))} if d.is_dir() else {}


def analyse_run(
    run_dir: str | Path, options: AnalysisOptions | None = None, reporter: Reporter | None = None
) -> dict[str, Any]:
    """``{"explain", "slices", "model_card"}`` for report.json (report.md/html render them, and
    report/model_card.md from the card). Test rows the preprocessing rejects are left out (counted)."""
    opts = options or AnalysisOptions()
    rep = reporter or SILENT
    started = time.time()
    run = _Run(run_dir)
    from edgefin_runtime import load
    from edgefin_runtime.errors import EdgefinRuntimeError

    out: dict[str, Any] = {"explain_rows_left_out": run.rejected}
    predictors: dict[str, Any] = {}
    for name, path in run.bundles().items():
        try:
            predictors[name] = load(path)
        except EdgefinRuntimeError as exc:  # the bench reports the bundle's failure; explain the others
            out.setdefault("bundles_not_loaded", {})[name] = str(exc)
            rep.warn(f"{name}: left out of the explanations: {exc}")
    if opts.slices:
        rep.note(f"slices: {', '.join(opts.slices)}")
        out["slices"] = _slices(run, opts.slices, {n: _scores(p, run.columns) for n, p in predictors.items()})
    explanation: dict[str, Any] = {}
    if opts.explain:
        try:
            out["explain"] = explain_section(run, predictors, opts, rep)
            explanation = _card_explanation(out["explain"])
        except EdgefinError as exc:  # e.g. a user's ONNX model: no float Keras model to explain with
            out["explain"] = {"error": f"explanations not validated: {exc}"}
            rep.warn(out["explain"]["error"])
    from ..metrics import bootstrap_ci

    stage = run.float_stage()
    try:
        test_ci: Mapping[str, Any] | None = bootstrap_ci(
            run.y, run.score_columns(stage)(run.columns), n_boot=opts.n_boot, seed=opts.seed
        )
    except EdgefinError as exc:
        test_ci = None
        rep.warn(f"model card without confidence intervals: {exc}")
    out["model_card"] = card_for(run, predictors, test_ci, explanation, out.get("slices", []))
    out["model_card"]["metrics"]["model"] = f"models/{stage}.keras"
    out["explain_seconds"] = round(time.time() - started, 2)
    return out


def _scores(predictor: Any, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.asarray(predictor.score_columns(columns).probabilities, dtype=np.float64)


def _slices(run: _Run, names: Sequence[str], variants: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    from ..data.schema import category_values
    from .slices import slices

    cols: dict[str, np.ndarray] = {}
    for n in names:
        if n in run.columns:
            cols[n] = run.columns[n]
        elif n in run.frame.columns and n != run.schema.target:
            c = run.frame[n]
            cols[n] = c.to_numpy(dtype=np.float64) if c.dtype.kind in "fiub" else category_values(c)
    if any(n not in cols for n in names):
        missing = [n for n in names if n not in cols]
        raise RunDirError(
            f"slice column(s) {', '.join(missing)} are not columns of the run's test split "
            f"(fields: {', '.join(run.names)})"
        )
    if not run.rd.model_path("dense").exists():
        raise RunDirError(f"run directory {run.rd.root}: models/dense.keras is missing; slices compare with it")
    dense = run.score_columns("dense")(run.columns)
    return slices(cols, names, run.y, dense, variants, run.threshold)


def check_slices(run_dir: str | Path, names: Sequence[str]) -> None:
    """RunDirError naming a slice column the run's test split lacks (cheap: before anything is measured)."""
    if not names:
        return
    import pandas as pd

    rd = RunDir.at(run_dir)
    target = rd.read_json(rd.schema_json, "train").get("target")
    have = [str(n) for n in pd.read_parquet(rd.require(rd.split_path("test"), "train")).columns if n != target]
    missing = [n for n in names if n not in have]
    if missing:
        raise RunDirError(
            f"slice column(s) {', '.join(missing)} are not columns of the run's test split (columns: {', '.join(have)})"
        )


def _reference(predictors: Mapping[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The bundles' reference applicant (manifest explain.reference.record) and the explain section's facts."""
    refs = {n: p.info.explain for n, p in predictors.items() if getattr(p.info, "explain", None)}
    if not refs:
        return None, {}
    first = next(iter(refs.values()))
    record = dict(first["reference"]["record"])
    differ = [n for n, d in refs.items() if d["reference"]["record"] != record]
    facts = {
        "rule": first["reference"].get("rule"),
        "protected": list(first.get("protected", [])),
        "method": first.get("method", "auto"),
        "bundles_with_explain": sorted(refs),
        "bundles_with_other_reference": differ,
    }
    return record, facts


def explain_section(run: _Run, predictors: Mapping[str, Any], opts: AnalysisOptions, rep: Reporter) -> dict[str, Any]:
    """Exact float Shapley, device agreement and deletion tests, permutation importance, PDP/ICE."""
    from .pdp import partial_dependence
    from .validation import deletion_test, device_explanations, predictor_scorer, sample_rows

    stage = run.float_stage()
    reference, facts = _reference(predictors)
    out: dict[str, Any] = {"float_model": f"models/{stage}.keras", "rows": 0, "seed": opts.seed}
    score_float = run.score_columns(stage)
    rep.note(f"permutation importance on {len(run.y)} test rows ({opts.repeats} repeats)")
    imp = permutation_importance(score_float, run.columns, run.y, run.names, repeats=opts.repeats, seed=opts.seed)
    out["permutation_importance"] = imp
    top = ranked({k: v["auc_loss"] for k, v in imp["fields"].items()})[:TOP_FIELDS]
    out["pdp"] = [
        partial_dependence(
            score_float,
            run.columns,
            f,
            run.kinds[f],
            categories=list(run.schema.field(f).categories),
            seed=opts.seed,
        )
        for f in top
    ]
    if reference is None:
        out["error"] = "no bundle has an explain section (bundles built before reason codes): re-run convert"
        return out
    out["reference"] = {"record": reference, **facts}
    protected = facts["protected"]
    rows = sample_rows(len(run.y), opts.rows, opts.seed)
    records = run.records(rows.tolist())
    x = run.encode({k: v[rows] for k, v in run.columns.items()})
    ref_enc = run.pre.transform_record(reference)[0]
    rep.note(f"exact Shapley of {len(rows)} test rows x {1 << run.groups.n} coalitions ({stage} model)")
    rep.started("exact shapley", len(rows))
    try:
        att = exact_shapley(
            run.predict(stage), x, ref_enc, run.groups, progress=lambda d, t: rep.advanced("exact shapley", d, t)
        )
    finally:
        rep.done("exact shapley")
    exact_reasons = top_reasons(att.values, att.fields, 4, exclude=protected)
    order = [att.fields.index(n) for n in run.names]
    out["rows"] = len(rows)
    out["mean_abs_attribution"] = mean_abs_attribution(att.values[:, order], run.names)
    out["float"] = {
        "reference_score": att.reference_score,
        "additivity_gap": att.additivity_gap(),
        "deletion": deletion_test(
            lambda recs: run.predict(stage)(np.vstack([run.pre.transform_record(r) for r in recs])),
            records,
            att.scores,
            exact_reasons,
            reference,
            run.threshold,
        ),
    }
    variants: dict[str, Any] = {}
    rep.started("device explain", len(predictors))
    try:
        for i, (name, p) in enumerate(predictors.items()):
            rep.advanced("device explain", i, len(predictors), name)
            if getattr(p.info, "explain", None) is None:
                variants[name] = {"error": "no explain section in this bundle"}
                continue
            entry: dict[str, Any] = {"source_stage": p.info.model.source_stage}
            for label, method in (("default", None), ("exact", "exact")):
                dev = device_explanations(p, records, run.names, method=method)
                entry[label] = {
                    "methods_used": dev.methods_used,
                    "agreement_vs_exact_float": agreement(dev.reasons, exact_reasons),
                    "additivity_gap": dev.additivity_gap(),
                    "reference_score": dev.reference_score,
                }
                if method is None:
                    entry["deletion"] = deletion_test(
                        predictor_scorer(p), records, dev.scores, dev.reasons, reference, p.threshold
                    )
            variants[name] = entry
    finally:
        rep.done("device explain")
    out["variants"] = variants
    out["quantisation"] = (run.parity or {}).get("explain_top4")  # written by convert into parity.json
    return out


def _card_explanation(ex: Mapping[str, Any]) -> dict[str, Any]:
    ref = ex.get("reference") or {}
    out: dict[str, Any] = {
        "method": f"{EXPLAIN_METHOD} (device default method: {ref.get('method', '-')})",
        "reference_rule": ref.get("rule"),
        "reference": ref.get("record"),
    }
    val: dict[str, Any] = {}
    for name, v in (ex.get("variants") or {}).items():
        if not isinstance(v, Mapping) or "default" not in v:
            continue
        d = v.get("deletion") or {}
        val[name] = {
            "top4_set_agreement_default_method": round(float(v["default"]["agreement_vs_exact_float"]["set"]), 4),
            "top4_set_agreement_exact_method": round(float(v["exact"]["agreement_vs_exact_float"]["set"]), 4),
            "deletion_test": None if d.get("rate") is None else round(float(d["rate"]), 4),
        }
    out["validation"] = val
    out["validation_rows"] = ex.get("rows")
    return out


def card_for(
    run: _Run,
    predictors: Mapping[str, Any],
    test_ci: Mapping[str, Any] | None,
    explanation: Mapping[str, Any],
    slices: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The run's model card from its records and the figures measured here."""
    from .model_card import build_card

    _, facts = _reference(predictors)
    protected = list(facts.get("protected") or run.run.get("options", {}).get("protected") or [])
    drift = _drift_summary(predictors)
    return build_card(
        run=run.run,
        schema=run.rd.read_json(run.rd.schema_json, "train"),
        metrics=run.metrics,
        test_ci=test_ci,
        compress=_read(run.rd.compress_json),
        parity=run.parity,
        explanation=explanation or ({"reference_rule": facts.get("rule")} if facts else {}),
        slices=slices,
        drift=drift,
        protected=protected,
    )


def _drift_summary(predictors: Mapping[str, Any]) -> dict[str, Any]:
    d = next((p.info.drift for p in predictors.values() if getattr(p.info, "drift", None)), None)
    if not isinstance(d, Mapping):
        return {}
    fields = d.get("fields")
    n = len(fields) if isinstance(fields, (Mapping, list)) else None
    return {
        "text": f"{DRIFT_TEXT}; {n if n is not None else 'every'} input field(s) and the score.",
        "fields": n,
    }


def card_at_convert(run_dir: str | Path, model: Any, stage: str, protected: Sequence[str] = ()) -> dict[str, Any]:
    """The compact model card convert puts into every manifest: the run's records, bootstrap intervals of
    the converted (float source) model on the test split, protected fields and the compression lineage.
    Parity and the explanation validation are measured later (the manifest holds this bundle's parity;
    the report holds the rest)."""
    from edgefin_converters.keras_io import predict

    from ..metrics import bootstrap_ci
    from .model_card import build_card, compact

    run = _Run(run_dir)
    # a Keras model is callable; another source (an ONNX graph) gets the run's recorded metrics only
    test_ci = bootstrap_ci(run.y, predict(model, run.encode(run.columns)), seed=0) if callable(model) else None
    card = build_card(
        run=run.run,
        schema=run.rd.read_json(run.rd.schema_json, "train"),
        metrics=run.metrics,
        test_ci=test_ci,
        compress=_read(run.rd.compress_json),
        protected=list(protected) or list(run.run.get("options", {}).get("protected") or []),
        explanation={"method": EXPLAIN_METHOD + " (reference applicant and reason texts: the explain section)"},
        drift={"text": DRIFT_TEXT + " (bins: the drift section)"},
    )
    card["metrics"]["model"] = f"models/{stage}.keras"
    return compact(card)


def refresh_slices(path: str | Path, names: Sequence[str], reporter: Reporter | None = None) -> Path:
    """Recompute report.json's slices (and the model card's) for ``names``, from the run it was measured
    on; returns report.json's path. Used by ``edgefin report --slice``."""
    from ..atomic import write_json
    from ..bench.report import load_report
    from .model_card import slice_summary

    p = Path(path)
    target = next((c for c in (p, p / "report.json", p / "report" / "report.json") if c.is_file()), None)
    report = load_report(p)
    if target is None or not report.get("run_dir"):
        raise RunDirError(f"{p}: no report.json naming its run directory; run 'edgefin bench' first")
    run = _Run(report["run_dir"])
    (reporter or SILENT).note(f"slices: {', '.join(names)}")
    from edgefin_runtime import load

    scores = {n: _scores(load(b), run.columns) for n, b in run.bundles().items()}
    report["slices"] = _slices(run, names, scores)
    if isinstance(report.get("model_card"), dict):
        report["model_card"]["slices"] = [slice_summary(s) for s in report["slices"]]
    write_json(target, report)
    return target


def write_card(card: Mapping[str, Any], report_dir: str | Path) -> Path:
    """report/model_card.md."""
    from ..atomic import write_text
    from .model_card import render_markdown

    return write_text(Path(report_dir) / "model_card.md", render_markdown(card))


__all__ = [
    "AnalysisOptions",
    "analyse_run",
    "card_at_convert",
    "check_slices",
    "card_for",
    "refresh_slices",
    "explain_section",
    "write_card",
]
