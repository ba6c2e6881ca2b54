"""Magnitude pruning as a fine-tuning phase (``tfmot.sparsity.keras``), then ``strip_pruning``.

The sparsity ramps from 0 to the target with a ``PolynomialDecay`` schedule, then the model keeps
training at the target so it can recover; the returned model is stripped (plain Keras layers whose
kernels hold the zeros). Pruning only shrinks a model once it is stripped and compressed (gzip, or a
sparse format): the dense float32 tensors keep their shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..tftypes import KerasLayer, KerasModel
from .finetune import EpochHook, FitData, fine_tune
from .options import CompressOptions
from .support import check_model, check_prunable, check_skip, clone, output_layer_name, tfmot_errors


@dataclass(frozen=True)
class Schedule:
    """Where the pruning happens, in optimizer steps (and the epoch from which the best is kept)."""

    begin_step: int
    end_step: int
    frequency: int
    steps_per_epoch: int
    select_from: int

    def to_dict(self) -> dict[str, int]:
        return {
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
            "steps_per_epoch": self.steps_per_epoch,
            "target_reached_in_epoch": self.select_from,
        }


def schedule(opts: CompressOptions, steps_per_epoch: int) -> Schedule:
    """Steps of the polynomial-decay ramp; ``end_step`` lands on a pruning step so the target is applied."""
    from ..errors import UsageError

    spe = max(1, steps_per_epoch)
    total = opts.epochs * spe
    if opts.block_spec.m_by_n:  # TFMOT applies N:M masks once, at step 1; all epochs then recover
        return Schedule(0, 1, 1, spe, 1)
    begin = opts.begin_step if opts.begin_step is not None else int(round(opts.begin_epoch * spe))
    if opts.end_step is not None:
        end = opts.end_step
    else:
        end_epoch = opts.end_epoch if opts.end_epoch is not None else max(opts.begin_epoch + 1, 0.6 * opts.epochs)
        end = int(round(end_epoch * spe))
    freq = opts.frequency or max(1, spe // 4)
    freq = min(freq, max(1, end - begin))
    end = begin + freq * math.ceil((end - begin) / freq)  # TFMOT prunes only where (step - begin) % freq == 0
    if end >= total:
        raise UsageError(
            f"the pruning schedule ends at step {end} but {opts.epochs} epochs of {spe} steps give only "
            f"{total}; raise `epochs` or lower `end_epoch`/`end_step`"
        )
    return Schedule(begin, end, freq, spe, max(1, math.ceil(end / spe)))


def prune(
    model: KerasModel, data: FitData, opts: CompressOptions, *, seed: int, on_epoch: EpochHook | None = None
) -> tuple[KerasModel, dict[str, Any]]:
    """Prune a trained model to ``opts.sparsity`` by fine-tuning; return (stripped model, details)."""
    from ..tfmot_compat import tfmot

    opts = opts.validated()
    assert opts.sparsity is not None  # validated() resolves the default
    target = float(opts.sparsity)
    check_model(model, label="model to prune")
    skip = set(opts.skip_layers)
    check_skip(model, skip)
    out_name = output_layer_name(model)
    if not opts.prune_output:
        skip.add(out_name)
    targets = check_prunable(model, skip)
    sched = schedule(opts, data.steps_per_epoch())
    block = opts.block_spec
    params: dict[str, Any] = {
        "pruning_schedule": tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0,
            final_sparsity=target,
            begin_step=sched.begin_step,
            end_step=sched.end_step,
            frequency=sched.frequency,
        ),
    }
    if block.m_by_n:
        params["sparsity_m_by_n"] = block.m_by_n
    else:
        params["block_size"] = (block.rows, block.cols)
        params["block_pooling_type"] = "AVG"

    def wrap(layer: KerasLayer) -> KerasLayer:
        return tfmot.sparsity.keras.prune_low_magnitude(layer, **params) if layer.name in targets else layer

    with tfmot_errors("pruning"):
        wrapped = clone(copy_model(model), clone_function=wrap)
    fit = fine_tune(
        wrapped,
        data,
        stage="prune",
        epochs=opts.epochs,
        learning_rate=opts.learning_rate,
        seed=seed,
        select_from=sched.select_from,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        on_epoch=on_epoch,
    )
    with tfmot_errors("strip_pruning"):
        stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    details = {
        "target_sparsity": target,
        "block": str(block),
        "pruned_layers": targets,
        "skipped_layers": sorted(skip),
        "schedule": {
            "kind": "polynomial_decay",
            "initial_sparsity": 0.0,
            "final_sparsity": target,
            "power": 3,
            **sched.to_dict(),
        },
        "fine_tune": fit,
    }
    return stripped, details


def copy_model(model: KerasModel) -> KerasModel:
    """An independent copy with the same weights (TFMOT wraps layers in place; the source stays untouched)."""
    copy = clone(model)
    copy.set_weights(model.get_weights())
    return copy
