"""How hard a benchmark tries: warm-up, repeated timing blocks, throughput time per batch size.

Stdlib only. The ``keras_*`` fields are read only by the toolkit, which times the source Keras model
with the same plan; a device run ignores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Settings:
    """Repetition plan. Percentiles come from ``blocks * block_size`` timed single calls after
    ``warmup`` untimed ones; the spread is the min/max of the per-block p50 (and the IQR of all calls).
    Throughput repeats each batch size ``blocks`` times for at least ``min_block_s`` seconds each and
    reports the median rate with its min/max."""

    warmup: int = 300
    blocks: int = 5
    block_size: int = 1000
    batch_sizes: tuple[int, ...] = (1, 64, 1024)
    min_block_s: float = 0.05
    keras_calls: int = 100
    keras_predict_calls: int = 20
    timeout_s: float = 120.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["batch_sizes"] = list(self.batch_sizes)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Settings:
        d = dict(d)
        if "batch_sizes" in d:
            d["batch_sizes"] = tuple(int(b) for b in d["batch_sizes"])
        return cls(**d)


PRESETS: dict[str, Settings] = {
    # a few seconds per variant: the demo (8 variants + Keras) stays well inside its 5-minute budget
    "quick": Settings(
        warmup=50, blocks=3, block_size=200, min_block_s=0.02, keras_calls=30, keras_predict_calls=5, timeout_s=90.0
    ),
    "default": Settings(),
    # the README's tables (make bench)
    "thorough": Settings(
        warmup=2000,
        blocks=10,
        block_size=5000,
        min_block_s=0.1,
        keras_calls=500,
        keras_predict_calls=100,
        timeout_s=600.0,
    ),
}


def preset(name: str) -> Settings:
    """The named preset; KeyError naming the valid ones for an unknown name."""
    if name not in PRESETS:
        raise KeyError(f"unknown repetition preset '{name}'; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]
