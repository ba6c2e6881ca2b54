"""What scoring returns: :class:`Score` per record, :class:`Result` per batch row, :class:`ColumnsScore`."""

from __future__ import annotations

from collections import namedtuple  # noqa: F401  # used when Result is first asked for
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from .errors import InputError
from .lazy_dataclass import dataclass, field


class Score:
    """One scored record. ``decision`` is ``probability >= threshold``; ``label`` names that side.

    Immutable, with slots (written out rather than ``dataclass(frozen=True, slots=True)``: that needs
    Python 3.10, and building it costs a device's cold start ~1 ms of generated code).
    """

    __slots__ = ("probability", "decision", "label", "flags")
    probability: float
    decision: bool
    label: str
    flags: tuple[str, ...]

    def __init__(self, probability: float, decision: bool, label: str, flags: tuple[str, ...] = ()) -> None:
        _set_p(self, probability)
        _set_d(self, decision)
        _set_l(self, label)
        _set_f(self, flags)

    def _astuple(self) -> tuple[float, bool, str, tuple[str, ...]]:
        return (self.probability, self.decision, self.label, self.flags)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Score:
            return NotImplemented
        return self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        return (
            f"Score(probability={self.probability!r}, decision={self.decision!r}, "
            f"label={self.label!r}, flags={self.flags!r})"
        )

    def __reduce__(self) -> tuple[type[Score], tuple[float, bool, str, tuple[str, ...]]]:
        return (Score, self._astuple())  # pickling rebuilds through __init__ (setattr is refused)

    def __setattr__(self, name: str, value: object) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")


if TYPE_CHECKING:

    class Result(NamedTuple):
        """One record of a batch: ``status`` is 'scored' (with ``score``) or 'rejected' (with ``error``).

        A named tuple, so building a thousand of them costs little next to scoring them.
        """

        row: int
        status: Literal["scored", "rejected"]
        score: Score | None = None
        error: InputError | None = None

        @property
        def ok(self) -> bool:
            return self.status == "scored"

else:
    # The same named tuple, built by collections.namedtuple (typing.NamedTuple costs more) on first use:
    # namedtuple compiles its constructor, ~0.2 ms of a device restart that scores records one by one.

    def _result_class():
        class Result(namedtuple("Result", ("row", "status", "score", "error"), defaults=(None, None))):
            """One record of a batch: ``status`` is 'scored' (with ``score``) or 'rejected' (with ``error``).

            A named tuple, so building a thousand of them costs little next to scoring them.
            """

            __slots__ = ()

            @property
            def ok(self):
                return self.status == "scored"

        Result.__qualname__ = Result.__name__  # a module-level name: pickling finds it as results.Result
        return Result

    def __getattr__(name):
        if name == "Result":
            return globals().setdefault("Result", _result_class())  # two threads: the first class wins
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class ColumnsScore:
    """Scores for a columnar input of ``n`` rows.

    ``probabilities`` is float32 with NaN where a row was rejected (never a plausible score);
    ``decisions`` is False there; ``rejected`` marks those rows and ``errors`` says why (first error
    per row). ``flags`` maps a flag such as ``imputed:Income`` to a boolean row mask.
    """

    probabilities: np.ndarray
    decisions: np.ndarray
    rejected: np.ndarray
    errors: dict[int, InputError]
    flags: dict[str, np.ndarray]
    positive_label: str
    negative_label: str
    field_order: Mapping[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.probabilities)

    def row_flags(self, i: int) -> tuple[str, ...]:
        """Row ``i``'s flags in the same order ``Predictor.score`` reports them (preprocessing order)."""
        names = [k for k, m in self.flags.items() if m[i]]
        order = self.field_order
        return tuple(sorted(names, key=lambda k: (order.get(k.partition(":")[2], len(order)), k)))

    def results(self) -> list[Result]:
        """The same outcome as ``score_batch`` would report, row by row."""
        from .results import Result

        out: list[Result] = []
        for i in range(len(self.probabilities)):
            err = self.errors.get(i)
            if err is not None:
                out.append(Result(i, "rejected", None, err))
                continue
            d = bool(self.decisions[i])
            out.append(
                Result(
                    i,
                    "scored",
                    Score(
                        float(self.probabilities[i]),
                        d,
                        self.positive_label if d else self.negative_label,
                        self.row_flags(i),
                    ),
                )
            )
        return out


# Building results through the slot descriptors skips Score.__init__ (a Python call), faster on the
# per-record path; the objects are identical.
_new = object.__new__
_set_p = Score.probability.__set__  # type: ignore[attr-defined,misc]  # a slot descriptor
_set_d = Score.decision.__set__  # type: ignore[attr-defined,misc]  # a slot descriptor
_set_l = Score.label.__set__  # type: ignore[attr-defined,misc]  # a slot descriptor
_set_f = Score.flags.__set__  # type: ignore[attr-defined,misc]  # a slot descriptor
_tuple_new = tuple.__new__


def _one_getter(name: str) -> Callable[[Mapping[str, Any]], tuple[Any]]:
    def get(record: Mapping[str, Any]) -> tuple[Any]:
        return (record[name],)

    return get


def _flags_by_row(flags: Mapping[str, np.ndarray], n: int, order: Mapping[str, int]) -> list[tuple[str, ...]]:
    """Per-row flag tuples from flag masks, in preprocessing order (as ``score`` reports them)."""
    rows: list[tuple[str, ...]] = [()] * n
    for key in sorted(flags, key=lambda k: (order.get(k.partition(":")[2], len(order)), k)):
        for i in np.flatnonzero(flags[key]).tolist():
            rows[i] = rows[i] + (key,)
    return rows


__all__ = ["ColumnsScore", "Result", "Score"]
