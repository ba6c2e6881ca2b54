"""The compiled preprocessing plan (internal): what a :class:`~edgefin_runtime.preprocess.Preprocessor`
builds once from a bundle's schema and spec, shared by the record path (``preprocess``) and the columns
path (``preprocess_columns``).

* :class:`NumPlan` / :class:`CatPlan` - one compiled step each; :func:`num_plan`, :func:`write_bins`;
* the value helpers both paths use: :data:`ABSENT` (a field not in the record), :func:`pd_na`,
  :func:`canonical_category`, :func:`int_to_float`, :func:`short` (a bounded repr for messages).

Not part of the public API: import these from here inside the runtime only.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

import numpy as np

from .errors import NonFiniteError
from .lazy_dataclass import dataclass
from .manifest import NumericStep, check_fill

MAX_CATEGORY_LENGTH = 256
_FAST_SPAN = 1e8  # the fast path stays well inside Z_LIMIT, rounding included
ABSENT = object()


def canonical_category(value: Any) -> str | None:
    """The string form of a category value (None when the value is missing).

    Booleans become 'true'/'false', integral numbers their integer text, strings (including str
    subclasses such as numpy.str_) themselves. Used when fitting the vocabulary and when scoring.
    """
    if value is None or value is pd_na():
        return None
    t = type(value)
    if t is str:
        return value if value != "" else None
    if isinstance(value, str):
        text = str(value)
        return text if text != "" else None
    if t is bool or isinstance(value, np.bool_):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if math.isfinite(value) and float(value).is_integer():
            return str(int(value))
    raise TypeError(type(value).__name__)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 2, 60, 60, 60


def short(value: Any) -> str:
    """A bounded repr of an untrusted value for messages: constant cost however large or deeply
    nested the value is, and safe from a __repr__ that raises."""
    t = type(value)
    if t is str or t is bytes:
        text = repr(value[:61])  # slice first: a 100 MB string costs no more than a short one
    elif t is float or value is None or t is bool:
        text = repr(value)
    else:
        try:
            text = _REPR.repr(value)
        except Exception:  # noqa: BLE001 - a hostile or broken __repr__
            text = f"<{t.__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


_pd_na_cache: list[Any] = []


def pd_na() -> Any:
    """pandas.NA if pandas is already imported (never imports pandas itself)."""
    if not _pd_na_cache:
        import sys

        pd = sys.modules.get("pandas")
        if pd is None:
            return ABSENT
        _pd_na_cache.append(pd.NA)
    return _pd_na_cache[0]


@dataclass(frozen=True)
class NumPlan:
    """A compiled numeric step. ``fast_lo..fast_hi``: values needing no flag and no overflow check.

    Piecewise-linear bins (``nb`` of them, from column ``bpos``): bin t is
    ``clip((x - lows[t]) / widths[t], 0, 1)``. For the record path, with k = the number of
    ``uppers`` (upper edges) <= x: ``ones[k]`` (a float32 buffer of k ones) fills bins 0..k-1 with one
    slice assignment into ``out[slices[k]]``, and bin k gets the fraction ``(x - lows[k]) / widths[k]``
    at ``index[k]`` when it is positive. ``lows``/``widths`` end with a sentinel (last edge, inf) so
    k == nb needs no branch (its fraction is 0). ``fill_bins``: the bins of the imputed value.
    ``ones`` and ``fill_bins`` are float32 buffers: they slice-assign into a list or into an
    engine's float32 input buffer alike.
    """

    field: str
    pos: int
    mean: float
    scale: float
    lo: float
    hi: float
    allow: bool
    filled: float
    ind: int
    fast_lo: float
    fast_hi: float
    nb: int = 0
    bpos: int = 0
    lows: tuple[float, ...] = ()
    uppers: tuple[float, ...] = ()
    widths: tuple[float, ...] = ()
    ones: tuple[memoryview, ...] = ()
    slices: tuple[slice, ...] = ()
    index: tuple[int, ...] = ()
    fill_bins: memoryview | tuple[()] = ()


@dataclass(frozen=True)
class CatPlan:
    """A compiled categorical step. ``fast`` maps a known category to what the encoder writes."""

    field: str
    pos: int
    lut: dict[str, int]
    oov: int
    onehot: bool
    allow: bool
    fill_idx: int
    lenient: bool
    fast: dict[str, Any]


def num_plan(step: NumericStep, lo: float, hi: float, allow: bool, pos: int) -> NumPlan:
    """Compile one numeric step: its column ``pos``, range ``lo..hi``, whether missing is allowed."""
    check_fill(step, f"preprocessing step '{step.field}': fill")
    span = step.scale * _FAST_SPAN
    flo, fhi = max(lo, step.mean - span), min(hi, step.mean + span)
    if not all(math.isfinite(b) and abs(b) < 1e300 for b in (flo, fhi, step.mean)):
        flo, fhi = math.inf, -math.inf  # no fast path: every value takes the fully checked one
    filled = (step.fill - step.mean) / step.scale
    nb = step.n_bins
    if not nb:
        return NumPlan(
            step.field, pos, step.mean, step.scale, lo, hi, allow, filled, pos + 1 if step.indicator else -1, flo, fhi
        )
    from array import array  # binned fields only: a model without them never imports array or bisect

    e = step.edges
    ones = memoryview(array("f", [1.0] * nb))
    head = (
        step.field,
        pos,
        step.mean,
        step.scale,
        lo,
        hi,
        allow,
        filled,
        pos + 1 + nb if step.indicator else -1,
        flo,
        fhi,
    )
    bins: dict[str, Any] = {
        "nb": nb,
        "bpos": pos + 1,
        "lows": e[:-1] + (e[-1],),
        "uppers": e[1:],
        "widths": tuple(b - a for a, b in zip(e, e[1:])) + (math.inf,),
        "ones": tuple(ones[:k] for k in range(nb + 1)),
        "slices": tuple(slice(pos + 1, pos + 1 + k) for k in range(nb + 1)),
        "index": tuple(range(pos + 1, pos + 2 + nb)),
    }
    fill = [0.0] * (pos + 2 + nb)
    write_bins(NumPlan(*head, **bins), step.fill, fill)
    return NumPlan(*head, **bins, fill_bins=memoryview(array("f", fill[pos + 1 : pos + 1 + nb])))


def write_bins(q: NumPlan, x: float, out: Any) -> None:
    """Write the piecewise-linear bins of the finite value ``x`` into ``out`` (zeroed there).
    The compiled encoder inlines the same five lines."""
    from bisect import bisect_right  # binned fields only (see num_plan)

    k = bisect_right(q.uppers, x)
    if k:
        out[q.slices[k]] = q.ones[k]
    f = (x - q.lows[k]) / q.widths[k]
    if f > 0.0:
        out[q.index[k]] = f


def int_to_float(v: int, name: str) -> float:
    try:
        return float(v)
    except OverflowError:
        raise NonFiniteError(f"field '{name}': integer {short(v)} is too large to score", field=name) from None
