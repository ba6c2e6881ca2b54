"""Convert a model into variants, prove each against its source through the runtime, build bundles.

:func:`export_variants` is the converters' one entry point. It never writes files and never raises
for a failed parity gate: it returns every variant's bundle bytes, parity and metrics, so the caller
writes all bundles and the parity report first and then decides (exit code 3 unless the caller turns the gate off).

Per variant: build the model bytes -> read its real I/O tensors -> a provisional bundle ->
``edgefin_runtime.load`` -> score the held-out rows (raw records, through the runtime's preprocessing
and engine) -> parity against the source Keras model -> metrics -> the acceptance set (synthetic
records from :mod:`.acceptance`, never data rows; a few of them are also the golden vectors) scored by
the same Predictor -> the final bundle, loaded once more with its self-test on and its whole
acceptance set checked (``edgefin_runtime.acceptance``). The scores in the bundle (golden vectors in the
manifest, the acceptance set in its own ``acceptance.json`` member) are therefore exactly what the runtime
computes.
"""

from __future__ import annotations

import functools
import gzip
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edgefin_runtime import acceptance as device_acceptance
from edgefin_runtime import load as runtime_load
from edgefin_runtime.errors import EdgefinRuntimeError
from edgefin_runtime.manifest import (
    AcceptanceSet,
    Decision,
    GoldenVector,
    PreprocessSpec,
    Schema,
)
from edgefin_runtime.plan import canonical_category
from edgefin_runtime.preprocess import Preprocessor

from . import acceptance
from . import bundle_writer as bw
from ._native import quiet
from .errors import ConversionFailedError, ModelInputError
from .keras_io import ModelInfo, check_model, predict
from .parity import Evaluate, Gates, Parity, basic_metrics, compare
from .registry import BuildContext, BuildOptions, Variant, resolve_variants

if TYPE_CHECKING:  # pragma: no cover - repair imports this module
    from .repair import Attempt

CALIBRATION_ROWS = 500


@dataclass(frozen=True)
class Source:
    """A Keras source model and where it came from (stage, file, sha256)."""

    model: Any
    stage: str
    sha256: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class Sources:
    """The float model every variant is converted from, and optionally a QAT model for ``tflite-int8``."""

    float: Source
    quantized: Source | None = None

    def for_variant(self, variant: Variant) -> Source:
        if variant.source == "quantized" and self.quantized is not None:
            return self.quantized
        return self.float


@dataclass(frozen=True)
class ConversionData:
    """Raw columns of the training rows (calibration) and the held-out rows (parity), plus the decision.

    ``other`` holds further raw columns the converter never scores but no acceptance record may equal
    (e.g. the validation split); the training and held-out rows are always checked.
    """

    schema: Schema
    preprocessing: PreprocessSpec
    train: Mapping[str, Any]
    test: Mapping[str, Any]
    y_test: np.ndarray
    threshold: float
    threshold_method: str = "fixed"
    positive_means: str | None = None
    data_sha256: str | None = None
    test_label: str = "test"
    other: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ExportOptions:
    build: BuildOptions = field(default_factory=BuildOptions)
    gates: Gates = field(default_factory=Gates)
    calibration_rows: int = CALIBRATION_ROWS
    seed: int = 0
    acceptance_records: int = acceptance.DEFAULT_COUNT
    #: a failed post-training int8 variant gets accuracy repair (:mod:`.repair`) before it is reported
    repair: bool = True
    #: fields never given as a reason (still attributed), reason-text overrides {field: {direction: text}},
    #: the default explain method, and a model card carried into every manifest (:mod:`.sections`)
    protected: tuple[str, ...] = ()
    reasons: Mapping[str, Mapping[str, str]] | None = None
    explain_method: str = "auto"
    model_card: Mapping[str, Any] | None = None


class Progress(Protocol):
    """What export_variants reports while it works: each variant, each accuracy-repair attempt, each result."""

    def started(self, variant: str, index: int, total: int) -> None: ...

    def repairing(self, variant: str, attempt: Attempt) -> None: ...

    def done(self, result: VariantResult) -> None: ...


@dataclass
class VariantResult:
    variant: Variant
    source: Source
    model_bytes: bytes
    bundle: bytes
    manifest: Any
    parity: Parity
    metrics: dict[str, Any]
    #: what accuracy repair tried and kept (:meth:`.repair.RepairRecord.to_dict`), None if it did not run
    repair: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def passed(self) -> bool:
        return self.parity.passed

    @property
    def size(self) -> int:
        return len(self.model_bytes)

    @property
    def gzip_size(self) -> int:
        return len(gzip.compress(self.model_bytes, compresslevel=9, mtime=0))

    def summary(self) -> dict[str, Any]:
        """One table row: what a user compares variants by."""
        p = self.parity
        return {
            "variant": self.name,
            "engine": self.variant.engine,
            "source_stage": self.source.stage,
            "size": self.size,
            "gzip_size": self.gzip_size,
            "bundle_size": len(self.bundle),
            "auc": self.metrics.get("auc"),
            "auc_delta": p.auc_delta,
            "flip_rate": p.flip_rate,
            "max_abs_delta": p.max_abs_delta,
            "mean_abs_delta": p.mean_abs_delta,
            "passed": p.passed,
            "failures": list(p.failures),
            "repair": self.repair,
        }


@dataclass
class ExportResult:
    results: list[VariantResult]
    gates: Gates
    created_at: str

    @property
    def failures(self) -> list[str]:
        return [f for r in self.results for f in r.parity.failures]

    @property
    def passed(self) -> bool:
        return not self.failures

    def parity_report(self, *, gated: bool = True, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The content of parity.json: every variant's parity, the gates, and every failure together."""
        report: dict[str, Any] = bw._json_safe(
            {
                "created_at": self.created_at,
                "passed": self.passed,
                "gated": gated,
                "gates": self.gates.to_dict(),
                "failures": self.failures,
                "variants": {
                    r.name: {
                        **r.parity.to_dict(),
                        "metrics": r.metrics,
                        "size": r.size,
                        "gzip_size": r.gzip_size,
                        "source_model_sha256": r.source.sha256,
                        **({"repair": r.repair} if r.repair is not None else {}),
                    }
                    for r in self.results
                },
                **dict(extra or {}),
            }
        )
        return report


@dataclass(frozen=True)
class _HeldOut:
    """The held-out rows as raw columns, as JSON records (the one-record path), and their labels."""

    fields: Mapping[str, Any]
    records: list[dict[str, Any]]
    usable: np.ndarray  # rows the preprocessing accepts (others are excluded and counted)
    y: np.ndarray


@dataclass(frozen=True)
class _Job:
    """What every variant of one export shares."""

    data: ConversionData
    held: _HeldOut
    decision: Decision
    opts: ExportOptions
    evaluate: Evaluate
    gated: bool
    producer_extra: Mapping[str, Any]
    source_extra: Mapping[str, Any]
    created_at: str
    calibration_rows: int
    #: the manifest's explain section (shared by every variant: one reference applicant)
    explain: Mapping[str, Any] | None = None


def export_variants(
    sources: Sources,
    data: ConversionData,
    variants: str | Sequence[str] | None = "all",
    options: ExportOptions | None = None,
    *,
    evaluate: Evaluate | None = None,
    gated: bool = True,
    producer_extra: Mapping[str, Any] | None = None,
    source_extra: Mapping[str, Any] | None = None,
    created_at: str | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Build, score and bundle every requested variant; collect every parity failure (never raises for one)."""
    opts = options or ExportOptions()
    chosen = resolve_variants(variants)
    pre = Preprocessor(data.schema, data.preprocessing)
    calibration = _calibration_rows(pre, data.train, opts)
    held, x_test = _held_out(pre, data)
    job = _Job(
        data=data,
        held=held,
        opts=opts,
        evaluate=evaluate or basic_metrics,
        gated=gated,
        decision=Decision(
            threshold=float(data.threshold),
            positive_means=data.positive_means or bw.positive_means(data.schema),
            method=data.threshold_method,
        ),
        producer_extra=dict(producer_extra or {}),
        source_extra=dict(source_extra or {}),
        created_at=created_at or bw.utc_now(),
        calibration_rows=len(calibration),
        explain=_explain_section(pre, sources.float, data, opts),
    )
    prepared: dict[str, tuple[BuildContext, np.ndarray, acceptance.Generated]] = {}
    frequencies = acceptance.category_frequencies(data.schema, data.train)

    def prepare(src: Source) -> tuple[BuildContext, np.ndarray, acceptance.Generated]:
        """Check the source model once, score the held-out rows with it, generate its acceptance set."""
        if src.stage not in prepared:
            info = check_model(src.model, n_features=data.preprocessing.n_features, label=f"{src.stage} model")
            ref = predict(src.model, x_test)
            _check_probabilities(ref, src.stage)
            accept = acceptance.generate(
                data.schema,
                data.preprocessing,
                lambda x: predict(src.model, x),
                data.threshold,
                avoid=(data.train, data.test, *data.other),
                frequencies=frequencies,
                count=opts.acceptance_records,
                seed=opts.seed,
            )
            prepared[src.stage] = (BuildContext(src.model, info, calibration, opts.build), ref, accept)
        return prepared[src.stage]

    results: list[VariantResult] = []
    for i, variant in enumerate(chosen):
        if progress is not None:
            progress.started(variant.name, i, len(chosen))
        src = sources.for_variant(variant)
        ctx, ref, accept = prepare(src)
        result = _bundle_variant(job, variant, src, ctx.info, variant.build(ctx), ref, accept)
        if not result.passed and opts.repair:
            # _repair calls the closure before it returns, within this iteration
            result = _repair(
                job,
                pre,
                variant,
                src,
                ctx,
                result,
                lambda j, b: _bundle_variant(j, variant, src, ctx.info, b, ref, accept),  # noqa: B023
                None if progress is None else functools.partial(progress.repairing, variant.name),
            )
        results.append(result)
        if progress is not None:
            progress.done(result)
    return ExportResult(results=results, gates=opts.gates, created_at=job.created_at)


def _repair(
    job: _Job,
    pre: Preprocessor,
    variant: Variant,
    src: Source,
    ctx: BuildContext,
    failed: VariantResult,
    bundle_with: Callable[[_Job, bytes], VariantResult],
    on_attempt: Callable[[Attempt], None] | None = None,
) -> VariantResult:
    """Accuracy repair of a failed post-training int8 variant (:mod:`.repair`); other variants are returned
    as they are. Every attempt is bundled and gated like the original; the result carries the record."""
    import dataclasses

    from . import repair as repair_mod

    if not repair_mod.repairable(variant, ctx.info):
        return failed
    opts = job.opts
    pool = _calibration_rows(
        pre, job.data.train, dataclasses.replace(opts, calibration_rows=repair_mod.pool_size(opts.calibration_rows))
    )

    def bundle(model_bytes: bytes, build: BuildOptions, rows: int, record: dict[str, Any] | None) -> VariantResult:
        extra = {**job.producer_extra, "repair": record} if record is not None else job.producer_extra
        j = dataclasses.replace(
            job, opts=dataclasses.replace(opts, build=build), calibration_rows=rows, producer_extra=extra
        )
        res = bundle_with(j, model_bytes)
        res.repair = record
        return res

    return repair_mod.repair_variant(
        variant, ctx, failed, src.model, pool, job.data.threshold, job.calibration_rows, bundle, on_attempt
    )


def _held_out(pre: Preprocessor, data: ConversionData) -> tuple[_HeldOut, np.ndarray]:
    fields = {f.name: data.test[f.name] for f in data.schema.fields if f.name in data.test}
    res = pre.columns(fields)
    usable = np.ones(len(res.matrix), dtype=bool)
    usable[list(res.errors)] = False
    if not usable.any():
        first = res.errors[min(res.errors)] if res.errors else "no rows"
        raise ModelInputError(f"{data.test_label} data: no row can be scored ({first})")
    y_all = np.asarray(data.y_test).astype(np.int64).ravel()
    if y_all.shape[0] != usable.shape[0]:
        raise ModelInputError(f"{data.test_label} data: {y_all.shape[0]} labels for {usable.shape[0]} rows")
    records = [row_record(fields, data.schema, int(i)) for i in np.flatnonzero(usable)]
    return _HeldOut(fields=fields, records=records, usable=usable, y=y_all[usable]), res.matrix[usable]


def _bundle_variant(
    job: _Job,
    variant: Variant,
    src: Source,
    info: ModelInfo,
    model_bytes: bytes,
    ref: np.ndarray,
    accept: acceptance.Generated,
) -> VariantResult:
    data, held, opts = job.data, job.held, job.opts
    spec, details = variant.model_spec(model_bytes, src.stage)
    conversion = {
        "variant": variant.name,
        "description": variant.description,
        **opts.build.to_dict(),
        "quantization": details.quantization,
        "from_qat": info.qat,
    }
    if variant.calibrated and info.qat and variant.engine == "litert":
        conversion["ranges"] = "learned by quantisation-aware training (fake-quant ops)"
    elif variant.calibrated:
        conversion["calibration"] = {
            "split": "train",
            "rows": job.calibration_rows,
            "seed": opts.seed,
            "method": "minmax",
        }
    source = {
        "stage": src.stage,
        "model_sha256": src.sha256,
        "model_file": src.path,
        "qat": info.qat,
        "data_sha256": data.data_sha256,
        **job.source_extra,
    }
    common: dict[str, Any] = dict(
        schema=data.schema,
        preprocessing=data.preprocessing,
        model=spec,
        decision=job.decision,
        source=source,
        producer_info=bw.producer({**job.producer_extra, "conversion": conversion}),
        created_at=job.created_at,
    )
    # 1. a provisional bundle (no goldens yet) scored by the runtime on both paths
    try:
        provisional, _ = bw.pack(bw.make_manifest(**common), model_bytes)
        with quiet():  # LiteRT announces its CPU delegate on stderr
            predictor = runtime_load(provisional, self_test=False)
            scored = predictor.score_columns(held.fields)
        single = np.array([predictor.score(r).probability for r in held.records], dtype=np.float64)
        accept_scores = [predictor.score(r).probability for r in accept.records]
    except EdgefinRuntimeError as exc:
        raise ConversionFailedError(f"{variant.name}: the runtime cannot run the converted model: {exc}") from None
    if not np.array_equal(scored.rejected, ~held.usable):
        raise ConversionFailedError(
            f"{variant.name}: the runtime rejected different held-out rows than the "
            f"converter's preprocessing ({int(scored.rejected.sum())} vs "
            f"{int((~held.usable).sum())}); the two disagree - this is a bug"
        )
    probs = scored.probabilities[held.usable]
    # 2. parity, metrics, the acceptance set and its golden subset from exactly those scores
    par = compare(
        variant.name,
        variant.gate,
        src.stage,
        ref,
        probs,
        held.y,
        data.threshold,
        opts.gates,
        excluded_rows=int((~held.usable).sum()),
        single=single,
    )
    metrics = {"split": data.test_label, **dict(job.evaluate(held.y, probs, data.threshold))}
    golden = [GoldenVector(record=dict(accept.records[i]), score=float(accept_scores[i])) for i in accept.golden]
    accepted = AcceptanceSet(
        records=tuple(dict(r) for r in accept.records),
        scores=tuple(float(p) for p in accept_scores),
        source_scores=tuple(float(p) for p in accept.source_scores),
        source_stage=src.stage,
        kinds=tuple(accept.kinds),
        seed=accept.seed,
    )
    manifest = bw.make_manifest(
        **common,
        golden=golden,
        golden_tolerance=variant.golden_tolerance,
        acceptance=accepted,
        metrics=metrics,
        parity={**par.to_dict(), "gated": job.gated},
        explain=job.explain,
        drift=_drift_section(predictor, data),
        model_card=opts.model_card,
    )
    # 3. the final bundle, verified and self-tested exactly as a device will
    bundle, packed = bw.pack(manifest, model_bytes)
    try:
        with quiet():
            final = runtime_load(bundle)
            device_acceptance.require(final)
            _check_explains(final, accept.records)
    except EdgefinRuntimeError as exc:
        raise ConversionFailedError(
            f"{variant.name}: the finished bundle does not pass the runtime's own checks: {exc}"
        ) from None
    return VariantResult(
        variant=variant,
        source=src,
        model_bytes=model_bytes,
        bundle=bundle,
        manifest=packed,
        parity=par,
        metrics=metrics,
    )


def _explain_section(pre: Preprocessor, src: Source, data: ConversionData, opts: ExportOptions) -> dict[str, Any]:
    """The explain section from the float source model's scores of the training rows (:mod:`.sections`)."""
    from . import sections

    res = pre.columns({f.name: data.train[f.name] for f in data.schema.fields if f.name in data.train})
    scores = np.full(len(res.matrix), np.nan)
    ok = np.ones(len(res.matrix), dtype=bool)
    ok[list(res.errors)] = False
    if ok.any():
        scores[ok] = predict(src.model, res.matrix[ok]).ravel()
    return sections.explain_section(
        data.schema,
        data.preprocessing,
        data.train,
        scores,
        data.threshold,
        protected=opts.protected,
        reasons=opts.reasons,
        method=opts.explain_method,
    )


def _drift_section(predictor: Any, data: ConversionData) -> dict[str, Any]:
    """The drift section: training bins per field, and this variant's training scores' bins."""
    from . import sections

    train = {f.name: data.train[f.name] for f in data.schema.fields if f.name in data.train}
    scores = predictor.score_columns(train).probabilities
    return sections.drift_section(data.schema, data.train, scores)


def _check_explains(predictor: Any, records: Sequence[Mapping[str, Any]]) -> None:
    """The finished bundle explains: attributions of a few acceptance records add up to the score change."""
    for rec in list(records)[:4]:
        e = predictor.explain(rec, method="exact")
        total = sum(e.contributions.values())
        if not abs(total - (e.score.probability - e.reference_score)) <= 1e-6:
            raise ConversionFailedError(
                f"explanations do not add up: {total!r} vs {e.score.probability - e.reference_score!r}; this is a bug"
            )


def row_record(columns: Mapping[str, Any], schema: Schema, i: int) -> dict[str, Any]:
    """One held-out row as a strict-JSON record (numbers as int/float, categories as strings, missing as
    None) for the single-record parity path. Never written into a bundle."""
    rec: dict[str, Any] = {}
    for f in schema.fields:
        v = columns[f.name][i]
        if _is_missing(v):
            rec[f.name] = None
        elif f.kind == "categorical":
            rec[f.name] = canonical_category(v)
        elif isinstance(v, (bool, np.bool_)):
            rec[f.name] = bool(v)
        elif isinstance(v, (int, np.integer)):
            rec[f.name] = int(v)
        else:
            rec[f.name] = float(v)
    return rec


def _is_missing(v: Any) -> bool:
    if v is None or (isinstance(v, str) and v == ""):
        return True
    if isinstance(v, (float, np.floating)):
        return bool(math.isnan(v))
    pd = sys.modules.get("pandas")
    return pd is not None and v is pd.NA


def _calibration_rows(pre: Preprocessor, train: Mapping[str, Any], opts: ExportOptions) -> np.ndarray:
    """Up to ``calibration_rows`` encoded training rows, chosen by a seeded shuffle (deterministic)."""
    res = pre.columns({f.name: train[f.name] for f in pre.schema.fields if f.name in train})
    ok = np.ones(len(res.matrix), dtype=bool)
    ok[list(res.errors)] = False
    x = res.matrix[ok]
    if len(x) == 0:
        raise ModelInputError(
            "training data: no row can be encoded for calibration "
            f"({res.errors[min(res.errors)] if res.errors else 'no rows'})"
        )
    order = np.random.default_rng(opts.seed).permutation(len(x))[: max(1, opts.calibration_rows)]
    return np.ascontiguousarray(x[order])


def _check_probabilities(p: np.ndarray, stage: str) -> None:
    if not np.isfinite(p).all():
        raise ModelInputError(
            f"{stage} model: {int((~np.isfinite(p)).sum())} held-out scores are NaN or "
            f"infinite; the model is broken (check its weights)"
        )
    if p.min() < 0.0 or p.max() > 1.0:
        raise ModelInputError(
            f"{stage} model: outputs range over [{p.min():.3g}, {p.max():.3g}], not "
            f"probabilities in [0, 1]; end the model with a sigmoid unit"
        )


__all__ = [
    "Source",
    "Sources",
    "ConversionData",
    "ExportOptions",
    "VariantResult",
    "ExportResult",
    "Progress",
    "export_variants",
    "row_record",
]
