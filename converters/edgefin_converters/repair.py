"""Accuracy-aware repair of a post-training int8 variant that missed its parity gate.

In the spirit of NNCF's ``quantize_with_accuracy_control`` (and OpenVINO's AccuracyAwareQuantization):
when a calibrated (post-training static int8) variant fails its gate, try, cheapest first:

1. per-channel weights (if the variant was per-tensor);
2. more calibration rows (up to ``CALIBRATION_FACTOR`` times as many, when the training split has them);
3. layers kept in float32: rank the quantisable layers (Dense -> TFLite FULLY_CONNECTED, ONNX
   MatMul/Gemm, each with the activation op that follows it) by sensitivity, then keep the most
   sensitive 1, 2, ... of them in float until the gate passes (at most all but one: a model with every
   layer in float would be a float model under an int8 name).

What decides what, and on which rows:

* **Sensitivity and the keep-or-drop choice of steps 1-2 use training rows only** (the seeded order
  the calibration rows come from, the first ``RANK_ROWS`` of them): each candidate is scored by the
  runtime's engine and compared with the source Keras model on those rows (decision flips at the
  run's threshold, then mean |delta p|). A step's setting is carried forward only if it lowers that
  error. For the ranking, one layer at a time is left in float on top of the current setting (as
  NNCF/POT revert one layer at a time); the layer whose reversal leaves the smallest error is the
  most sensitive and is kept in float; the remaining layers are then re-ranked the same way given
  what is already float (greedy forward selection: layers interact, e.g. the first layer's output
  range sets the next layer's input quantisation). The held-out (test) rows never enter these
  decisions.
* **The held-out gate is only the stopping criterion**: every attempt is bundled and checked exactly
  as an ordinary variant is (AUC drop and flip rate, batch and one-record paths); the first attempt
  that passes is the result. If none passes, the unrepaired variant is returned, failing as before,
  with every attempt recorded.

The record (:class:`RepairRecord`) goes into the bundle's manifest (``producer.repair``), parity.json
and ``edgefin convert``'s output. Every step is deterministic (seeded rows, deterministic quantisers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .keras_io import ModelInfo, predict
from .registry import BuildContext, BuildOptions, Variant

if TYPE_CHECKING:  # pragma: no cover - export imports this module
    from .export import VariantResult

#: training rows the sensitivity ranking is measured on (NNCF's ranking subset defaults to 300)
RANK_ROWS = 1000
#: step 2 calibrates on up to this many times the configured calibration rows
CALIBRATION_FACTOR = 4

_MATMUL_OPS = ("MatMul", "Gemm", "Conv", "MatMulInteger")
_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

#: bundle(model_bytes, build options, calibration rows, repair record or None) -> VariantResult
Bundle = Callable[[bytes, BuildOptions, int, "dict[str, Any] | None"], "VariantResult"]


def repairable(variant: Variant, info: ModelInfo) -> bool:
    """Post-training static int8 only: a QAT source's learned ranges are not recalibrated here."""
    return variant.calibrated and not (info.qat and variant.engine == "litert")


def pool_size(calibration_rows: int) -> int:
    """How many encoded training rows (in the calibration rows' seeded order) repair needs."""
    return max(CALIBRATION_FACTOR * calibration_rows, RANK_ROWS)


@dataclass(frozen=True)
class Attempt:
    """One candidate: its settings, the error on the ranking (training) rows and its held-out gate."""

    step: str
    per_channel: bool
    calibration_rows: int
    kept_float: tuple[str, ...]
    train_flips: int | None = None
    train_mean_abs_delta: float | None = None
    passed: bool | None = None
    auc_delta: float | None = None
    flip_rate: float | None = None
    size: int | None = None
    failures: tuple[str, ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["kept_float"], d["failures"] = list(self.kept_float), list(self.failures)
        return d


@dataclass
class RepairRecord:
    """What repair tried and what it kept (JSON via :meth:`to_dict`)."""

    variant: str
    attempts: list[Attempt] = field(default_factory=list)
    sensitivity: list[dict[str, Any]] = field(default_factory=list)
    ranking_rows: int = 0
    passed: bool = False
    final: Attempt | None = None
    layers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # layer -> node names
    #: the variant's build ignores ``BuildOptions.per_channel`` (it fixes the weights' granularity itself)
    per_channel_fixed: bool = False

    def nodes(self, kept: tuple[str, ...]) -> tuple[str, ...]:
        """The node names of the layers ``kept`` in float (what ``BuildOptions.keep_float`` takes)."""
        return tuple(n for layer in kept for n in self.layers[layer])

    def to_dict(self) -> dict[str, Any]:
        f = self.final
        return {
            "passed": self.passed,
            "per_channel": None if f is None or self.per_channel_fixed else f.per_channel,
            "calibration_rows": None if f is None else f.calibration_rows,
            "kept_float": [] if f is None else list(f.kept_float),
            "kept_float_nodes": [] if f is None else list(self.nodes(f.kept_float)),
            "attempts": [a.to_dict() for a in self.attempts],
            "sensitivity": list(self.sensitivity),
            "ranked_on": f"{self.ranking_rows} training rows (never the held-out rows)",
            "stopping_criterion": "the held-out parity gate (AUC drop and flip rate, batch and one-record paths)",
        }


def repair_variant(
    variant: Variant,
    ctx: BuildContext,
    failed: VariantResult,
    source_model: Any,
    pool: np.ndarray,
    threshold: float,
    calibration_rows: int,
    bundle: Bundle,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> VariantResult:
    """Repair ``failed`` (a VariantResult that missed its gate); return the first passing result, else
    the unrepaired one re-bundled with the record of every attempt. See the module docstring.
    ``on_attempt`` hears of every attempt as it is recorded (progress for a caller's user)."""
    pool = np.ascontiguousarray(pool, dtype=np.float32)
    rank_x = pool[:RANK_ROWS]
    rank_ref = predict(source_model, rank_x)
    rec = RepairRecord(variant=variant.name, ranking_rows=len(rank_x))

    def record(att: Attempt) -> None:
        rec.attempts.append(att)
        if on_attempt is not None:
            on_attempt(att)

    def build(per_channel: bool, rows: int, nodes: tuple[str, ...]) -> bytes:
        opts = dataclasses.replace(ctx.options, per_channel=per_channel, keep_float=nodes)
        return variant.build(dataclasses.replace(ctx, options=opts, calibration=pool[:rows]))

    def train_error(model_bytes: bytes) -> tuple[int, float]:
        p = _score(variant, model_bytes, rank_x)
        flips = int(((p >= threshold) != (rank_ref >= threshold)).sum())
        return flips, float(np.mean(np.abs(p - rank_ref)))

    def gate(
        step: str,
        per_channel: bool,
        rows: int,
        kept: tuple[str, ...],
        model_bytes: bytes,
        err: tuple[int, float] | None,
    ) -> tuple[Attempt, VariantResult]:
        nodes = rec.nodes(kept)
        res = bundle(model_bytes, _options(ctx.options, per_channel, nodes), rows, None)
        p = res.parity
        att = Attempt(
            step=step,
            per_channel=per_channel,
            calibration_rows=rows,
            kept_float=kept,
            train_flips=None if err is None else err[0],
            train_mean_abs_delta=None if err is None else err[1],
            passed=res.passed,
            auc_delta=p.auc_delta,
            flip_rate=p.flip_rate,
            size=res.size,
            failures=tuple(p.failures),
        )
        record(att)
        return att, res

    def finish(att: Attempt, model_bytes: bytes) -> VariantResult:
        rec.passed, rec.final = True, att
        nodes = rec.nodes(att.kept_float)
        return bundle(model_bytes, _options(ctx.options, att.per_channel, nodes), att.calibration_rows, rec.to_dict())

    # the current best setting, judged on the training rows only
    per_channel, rows = ctx.options.per_channel, calibration_rows
    best_err = train_error(failed.model_bytes)
    base_bytes = failed.model_bytes
    fp = failed.parity
    record(
        Attempt(
            step="original",
            per_channel=per_channel,
            calibration_rows=rows,
            kept_float=(),
            train_flips=best_err[0],
            train_mean_abs_delta=best_err[1],
            passed=failed.passed,
            auc_delta=fp.auc_delta,
            flip_rate=fp.flip_rate,
            size=failed.size,
            failures=tuple(fp.failures),
        )
    )
    steps: list[tuple[str, bool | None, int]] = []  # None: the per-channel setting carried so far
    if not per_channel:
        steps.append(("per-channel", True, rows))
    more = min(len(pool), CALIBRATION_FACTOR * calibration_rows)
    if more > rows:
        steps.append(("calibration-rows", None, more))
    for step, want, n in steps:
        pc = per_channel if want is None else want
        model_bytes = build(pc, n, ())
        if model_bytes == base_bytes:  # e.g. a variant whose build fixes per-channel itself: nothing to gate
            rec.per_channel_fixed = rec.per_channel_fixed or step == "per-channel"
            record(
                Attempt(
                    step=step,
                    per_channel=pc,
                    calibration_rows=n,
                    kept_float=(),
                    note="the same model as the current setting: skipped",
                )
            )
            continue
        err = train_error(model_bytes)
        att, _res = gate(step, pc, n, (), model_bytes, err)
        if att.passed:
            return finish(att, model_bytes)
        if err < best_err:  # carry the setting forward only if the training rows say it helps
            per_channel, rows, best_err, base_bytes = pc, n, err, model_bytes

    # step 3: rank the layers by sensitivity on the training rows, keep the fewest in float. Greedy
    # forward selection: each round leaves each remaining layer in float, one at a time, on top of those
    # already kept, and keeps the one that leaves the smallest training-row error (the first round is the
    # plain one-layer-at-a-time ranking; later rounds re-rank given what is already float)
    rec.layers = dict(_layers(variant, ctx, base_bytes, pool[:rows]))
    kept: tuple[str, ...] = ()
    remaining = list(rec.layers)
    while len(remaining) > 1:  # at least one layer stays int8: an all-float model is no int8 variant
        scored: list[tuple[tuple[int, float], int, str, bytes]] = []
        for i, layer in enumerate(remaining):
            model_bytes = build(per_channel, rows, rec.nodes(kept + (layer,)))
            scored.append((train_error(model_bytes), i, layer, model_bytes))
        rec.sensitivity.append(
            {
                "already_float": list(kept),
                "candidates": [
                    {"layer": layer, "train_flips": err[0], "train_mean_abs_delta": err[1]}
                    for err, _, layer, _ in scored
                ],
            }
        )
        err, _, layer, model_bytes = min(scored, key=lambda t: (t[0], t[1]))
        kept += (layer,)
        remaining.remove(layer)
        att, _res = gate("keep-float", per_channel, rows, kept, model_bytes, err)
        if att.passed:
            return finish(att, model_bytes)
    # nothing passed: the variant fails as before, with the attempts on record
    return bundle(failed.model_bytes, ctx.options, calibration_rows, rec.to_dict())


def _options(base: BuildOptions, per_channel: bool, nodes: tuple[str, ...]) -> BuildOptions:
    return dataclasses.replace(base, per_channel=per_channel, keep_float=nodes)


def _layers(
    variant: Variant, ctx: BuildContext, model_bytes: bytes, calibration: np.ndarray
) -> list[tuple[str, tuple[str, ...]]]:
    """The quantisable layers of a variant, each with the node names ``keep_float`` takes."""
    if variant.engine == "litert":
        from .tflite import calibrate_tflite, quantisable_layers

        found = quantisable_layers(calibrate_tflite(ctx.model, calibration, variant=variant.name))
    else:
        found = onnx_quantisable_layers(model_bytes)
    seen: dict[str, int] = {}
    out = []
    for name, nodes in found:  # two layers with one graph path stay apart
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}#{seen[name]}", nodes))
    return out


def onnx_quantisable_layers(model_bytes: bytes) -> list[tuple[str, tuple[str, ...]]]:
    """MatMul/Gemm nodes of a quantised ONNX model in graph order, each grouped with the nodes after it
    up to the next one (its activation); Q/DQ nodes are left out (the quantiser adds them)."""
    import onnx

    from .tflite import layer_name

    layers: list[tuple[str, list[str]]] = []
    for n in onnx.load_from_string(model_bytes).graph.node:
        if n.op_type in _QDQ_OPS:
            continue
        if n.op_type in _MATMUL_OPS:
            layers.append((layer_name(n.name), [n.name]))
        elif layers:
            layers[-1][1].append(n.name)
    return [(name, tuple(nodes)) for name, nodes in layers]


def _score(variant: Variant, model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """The variant's scores on an encoded matrix through the runtime's own engine."""
    from edgefin_runtime.backends import create_engine

    from ._native import quiet

    spec, _ = variant.model_spec(model_bytes, "repair")
    with quiet():
        engine = create_engine(spec, model_bytes)
        try:
            return np.asarray(engine.run(x), dtype=np.float64).ravel()
        finally:
            engine.close()


__all__ = [
    "RANK_ROWS",
    "CALIBRATION_FACTOR",
    "Attempt",
    "RepairRecord",
    "repairable",
    "pool_size",
    "repair_variant",
    "onnx_quantisable_layers",
]
