"""Options of the compression step, validated once at the door (bad values are usage errors)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import UsageError

DEFAULT_SPARSITY = 0.8
AUC_TOLERANCE = 0.005  # the quality bar: a compressed model loses at most this much test AUC


@dataclass(frozen=True)
class Block:
    """The sparsity pattern: unstructured (1x1), RxC blocks, or N:M structured (2:4)."""

    rows: int = 1
    cols: int = 1
    m_by_n: tuple[int, int] | None = None

    @classmethod
    def parse(cls, text: str) -> Block:
        t = str(text).strip().lower()
        m = re.fullmatch(r"(\d+)\s*:\s*(\d+)", t)
        if m:
            zeros, group = int(m.group(1)), int(m.group(2))
            if not 0 < zeros < group:
                raise UsageError(f"`block={text}`: N:M sparsity needs 0 < N < M (N zeros in every M weights), e.g. 2:4")
            return cls(m_by_n=(zeros, group))
        m = re.fullmatch(r"(\d+)\s*x\s*(\d+)", t)
        if m and int(m.group(1)) >= 1 and int(m.group(2)) >= 1:
            return cls(rows=int(m.group(1)), cols=int(m.group(2)))
        raise UsageError(
            f"`block`: expected 1x1 (unstructured), RxC blocks such as 1x4, or 2:4 (structured), got {text!r}"
        )

    @property
    def fixed_sparsity(self) -> float | None:
        """N:M fixes the sparsity at N/M; other patterns follow the target."""
        return self.m_by_n[0] / self.m_by_n[1] if self.m_by_n else None

    def __str__(self) -> str:
        return f"{self.m_by_n[0]}:{self.m_by_n[1]}" if self.m_by_n else f"{self.rows}x{self.cols}"


@dataclass(frozen=True)
class CompressOptions:
    """Everything that decides a compression run (recorded in compress.json).

    Pruning fine-tunes for ``epochs``; the sparsity ramps (polynomial decay) from 0 at ``begin_epoch``
    to the target at ``end_epoch`` (default: 60% of the epochs) and the rest recovers at the target;
    the weights of the best later epoch on validation AUC are kept. ``begin_step``/``end_step``, when
    given, override the epoch bounds. QAT fine-tunes for ``qat_epochs``; clustering (``cluster`` > 0)
    runs between the two, for ``cluster_epochs``.
    """

    sparsity: float | None = None  # None: DEFAULT_SPARSITY, or N/M for an N:M block
    block: str = "1x1"
    skip_layers: tuple[str, ...] = ()
    prune_output: bool = False
    epochs: int = 20
    begin_epoch: float = 0.0
    end_epoch: float | None = None
    begin_step: int | None = None
    end_step: int | None = None
    frequency: int | None = None
    learning_rate: float = 1e-3
    qat: bool = True
    qat_epochs: int = 4
    qat_learning_rate: float = 1e-4
    cluster: int = 0
    cluster_epochs: int = 4
    cluster_learning_rate: float = 1e-4
    batch_size: int | None = None  # None: the run's training batch size (64 by default)
    class_weight: bool | None = None  # None: as the dense model was trained
    seed: int | None = None  # None: the run's seed

    def validated(self) -> CompressOptions:
        """A copy with defaults resolved; raises UsageError naming the option on bad values."""
        block = Block.parse(self.block)
        sparsity = self.sparsity
        if sparsity is not None:
            try:
                sparsity = float(sparsity)
            except (TypeError, ValueError):
                raise UsageError(f"`sparsity`: expected a number in (0, 1), got {self.sparsity!r}") from None
            if not 0.0 < sparsity < 1.0:
                raise UsageError(
                    f"`sparsity`: expected a share of weights to zero, strictly between 0 and 1 "
                    f"(e.g. 0.8), got {sparsity}"
                )
        if block.fixed_sparsity is not None:
            if sparsity is not None and abs(sparsity - block.fixed_sparsity) > 1e-9:
                raise UsageError(
                    f"`block={block}` zeroes exactly {block.m_by_n[0]} of every {block.m_by_n[1]} "  # type: ignore[index]
                    f"weights ({block.fixed_sparsity:.0%}); leave out `sparsity` or set it to "
                    f"{block.fixed_sparsity:g}"
                )
            sparsity = block.fixed_sparsity
        if sparsity is None:
            sparsity = DEFAULT_SPARSITY
        problems = []
        for name in ("epochs", "qat_epochs", "cluster_epochs"):
            if int(getattr(self, name)) < 1:
                problems.append(f"`{name}` must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "qat_learning_rate", "cluster_learning_rate"):
            if not float(getattr(self, name)) > 0:
                problems.append(f"`{name}` must be > 0, got {getattr(self, name)}")
        if self.cluster and not 2 <= int(self.cluster) <= 256:
            problems.append(f"`cluster`: expected 2..256 clusters per weight tensor, got {self.cluster}")
        if self.begin_epoch < 0:
            problems.append(f"`begin_epoch` must be >= 0, got {self.begin_epoch}")
        if self.end_epoch is not None and not self.begin_epoch < self.end_epoch <= self.epochs:
            problems.append(
                f"`end_epoch` must be after `begin_epoch` ({self.begin_epoch}) and at most `epochs` "
                f"({self.epochs}), got {self.end_epoch}"
            )
        if self.begin_step is not None and self.begin_step < 0:
            problems.append(f"`begin_step` must be >= 0, got {self.begin_step}")
        if self.end_step is not None and self.end_step <= (self.begin_step or 0):
            problems.append(f"`end_step` must be after `begin_step`, got {self.end_step}")
        if self.frequency is not None and self.frequency < 1:
            problems.append(f"`frequency` must be >= 1 step, got {self.frequency}")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append(f"`batch_size` must be >= 1, got {self.batch_size}")
        if problems:
            raise UsageError("; ".join(problems))
        skip = tuple(dict.fromkeys(s.strip() for s in self.skip_layers if s and s.strip()))
        return replace(self, sparsity=sparsity, block=str(block), skip_layers=skip, cluster=int(self.cluster or 0))

    @property
    def block_spec(self) -> Block:
        return Block.parse(self.block)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skip_layers"] = list(self.skip_layers)
        return d
