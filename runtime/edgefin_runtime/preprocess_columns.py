"""The vectorised half of :class:`~edgefin_runtime.preprocess.Preprocessor`: columns of values.

Same rules and the same float64-then-float32 arithmetic as the record path, so the features are
bit-identical; bad rows are collected (first error per row) instead of raised. Typed numpy columns
take whole-array paths (numbers: a few passes; fixed-width strings: one comparison per category);
lists and object arrays are type-checked value by value first, because numpy's own conversion
would silently turn ``True`` into 1.0 or ``"12"`` into 12.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import repeat
from typing import Any

import numpy as np

from .errors import (
    CategoryError,
    FieldTypeError,
    InputError,
    MissingFieldError,
    NonFiniteError,
    RecordTypeError,
    UnknownFieldError,
)
from .lazy_dataclass import dataclass
from .manifest import Z_LIMIT
from .plan import ABSENT, MAX_CATEGORY_LENGTH, CatPlan, NumPlan, canonical_category, int_to_float, pd_na, short
from .preprocess import Preprocessor


@dataclass
class ColumnsResult:
    """Encoded columns: ``matrix`` (n, n_features) float32; ``errors`` maps bad rows to their first
    error (their matrix rows are meaningless); ``flags`` maps a flag name to a row mask."""

    matrix: np.ndarray
    errors: dict[int, InputError]
    flags: dict[str, np.ndarray]

    def row_flags(self, i: int) -> tuple[str, ...]:
        return tuple(sorted(k for k, m in self.flags.items() if m[i]))


_PLAIN_NUMBERS = frozenset({float, int, type(None)})
_NEEDS_CHECK = -5


def encode_columns(pre: Preprocessor, columns: Mapping[str, Any]) -> ColumnsResult:
    if not isinstance(columns, Mapping):
        raise RecordTypeError(f"expected a mapping of column names to arrays, got {type(columns).__name__}")
    n = _column_length(columns)
    if pre._reject_unknown:
        extra = [k for k in columns if k not in pre._known]
        if extra:
            raise UnknownFieldError(
                f"column {short(extra[0])} is not in the bundle's schema (expected only {sorted(pre._known)})",
                field=str(extra[0]),
            )
    x = np.zeros((n, pre.n_features), dtype=np.float32)
    errors: dict[int, InputError] = {}
    flags: dict[str, np.ndarray] = {}
    for q in pre._plan:
        name = q.field
        if name not in columns:
            if not q.allow:
                raise MissingFieldError(
                    f"column '{name}' is required but absent (expected columns {list(pre.schema.names)})", field=name
                )
            missing = np.ones(n, dtype=bool)
            if isinstance(q, NumPlan):
                x[:, q.pos] = np.float32(q.filled)
                if q.nb:
                    x[:, q.bpos : q.bpos + q.nb] = np.asarray(q.fill_bins, dtype=np.float32)
                if q.ind >= 0:
                    x[:, q.ind] = 1.0
            elif q.onehot:
                x[:, q.pos + q.fill_idx] = 1.0
            else:
                x[:, q.pos] = float(q.fill_idx)
            flags["imputed:" + name] = missing
        elif isinstance(q, NumPlan):
            _numeric_column(q, columns[name], n, x, errors, flags)
        else:
            _categorical_column(q, columns[name], n, x, errors, flags)
    return ColumnsResult(x, errors, flags)


# ---------------------------------------------------------------- numbers
def _numeric_values(q: NumPlan, col: Any, n: int, errors: dict[int, InputError]) -> np.ndarray:
    """float64 values (NaN = missing); rows with a wrong type get 0.0 and an error."""
    name = q.field
    if isinstance(col, np.ndarray):
        kind = col.dtype.kind
        if kind in "iuf":
            return col.astype(np.float64, copy=False)
        if kind == "b":
            for i in range(n):
                _add(errors, i, FieldTypeError(f"field '{name}': expected a number, got a boolean", field=name))
            return np.zeros(n, dtype=np.float64)
        values = col.tolist()
    else:
        values = col if isinstance(col, (list, tuple)) else list(col)
    if set(map(type, values)) <= _PLAIN_NUMBERS:
        try:
            return np.array(values, dtype=np.float64).reshape(n)  # None -> NaN
        except OverflowError:
            pass  # an int beyond float range: the loop below names its row
    vals = np.empty(n, dtype=np.float64)
    for i, v in enumerate(values):
        t = type(v)
        if t is float:
            vals[i] = v
        elif t is int:
            try:
                vals[i] = int_to_float(v, name)
            except NonFiniteError as err:
                vals[i] = 0.0
                _add(errors, i, err)
        elif v is None or v is ABSENT or v is pd_na() or (t is str and v == ""):
            vals[i] = math.nan
        elif isinstance(v, (np.floating, np.integer)):
            vals[i] = float(v)
        else:
            vals[i] = 0.0
            kind = "a boolean" if t is bool or isinstance(v, np.bool_) else f"{t.__name__} {short(v)}"
            _add(errors, i, FieldTypeError(f"field '{name}': expected a number, got {kind}", field=name))
    return vals


def _numeric_column(
    q: NumPlan, col: Any, n: int, x: np.ndarray, errors: dict[int, InputError], flags: dict[str, np.ndarray]
) -> None:
    name = q.field
    vals = _numeric_values(q, col, n, errors)
    z = vals - q.mean
    z /= q.scale
    missing = None
    if n and not -Z_LIMIT <= z.min():  # NaN (missing), -inf or too small somewhere: the careful path
        missing = np.isnan(vals)
        if missing.any():
            z[missing] = q.filled
        else:
            missing = None
    if n and not (-Z_LIMIT <= z.min() and z.max() <= Z_LIMIT):
        _nonfinite(q, vals, z, missing, errors)
    _range_flags(q, vals, z, flags)
    if missing is not None:
        if not q.allow:
            for i in np.flatnonzero(missing).tolist():
                _add(
                    errors,
                    i,
                    MissingFieldError(
                        f"field '{name}': missing value but this bundle does not allow missing '{name}'; "
                        f"send a finite number",
                        field=name,
                    ),
                )
        else:
            flags["imputed:" + name] = missing
        if q.ind >= 0:
            x[:, q.ind] = missing
    x[:, q.pos] = z
    if q.nb:
        _bins_column(q, vals, missing, x)


def _bins_column(q: NumPlan, vals: np.ndarray, missing: np.ndarray | None, x: np.ndarray) -> None:
    """The piecewise-linear bins, ``clip((x - low) / width, 0, 1)`` in float64 as the record path
    computes them, rounded once into the float32 matrix; missing values take the fill's bins;
    infinities (rejected rows) give 0 or 1, never NaN."""
    nb = q.nb
    if missing is not None:
        vals = np.where(missing, 0.0, vals)  # overwritten with the fill's bins below
    b = np.empty((len(vals), nb), dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        np.subtract(vals[:, None], q.lows[:nb], out=b)
        np.divide(b, q.widths[:nb], out=b)
    np.clip(b, 0.0, 1.0, out=b)
    b += 0.0  # -0.0 -> +0.0: the record path leaves an empty bin at +0.0 (same bytes on every path)
    dest = x[:, q.bpos : q.bpos + nb]
    dest[...] = b
    if missing is not None and missing.any():
        dest[missing] = q.fill_bins


def _nonfinite(
    q: NumPlan, vals: np.ndarray, z: np.ndarray, missing: np.ndarray | None, errors: dict[int, InputError]
) -> None:
    """Reject infinities and values whose standardised form would overflow float32 (z set to 0)."""
    name = q.field
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(z) <= Z_LIMIT)
    if missing is not None:
        bad &= ~missing
    for i in np.flatnonzero(bad).tolist():
        v = vals[i]
        if math.isinf(v):
            _add(errors, i, NonFiniteError(f"field '{name}': expected a finite number, got {v!r}", field=name))
        else:
            _add(
                errors,
                i,
                NonFiniteError(
                    f"field '{name}': {v!r} is too large to score (far outside the training range {q.lo}..{q.hi})",
                    field=name,
                ),
            )
    z[bad] = 0.0


def _range_flags(q: NumPlan, vals: np.ndarray, z: np.ndarray, flags: dict[str, np.ndarray]) -> None:
    """Flag values outside the training range. (x - mean) / scale is monotonic, so z's extremes
    clear most columns without two more passes over the raw values."""
    if not len(z) or (q.lo == -math.inf and q.hi == math.inf):
        return
    z_lo = (q.lo - q.mean) / q.scale if q.lo > -math.inf else -math.inf
    z_hi = (q.hi - q.mean) / q.scale if q.hi < math.inf else math.inf
    if z_lo < z.min() and z.max() < z_hi:
        return
    with np.errstate(invalid="ignore"):
        oor = (vals < q.lo) | (vals > q.hi)  # NaN (missing) compares False
    if oor.any():
        flags["out_of_range:" + q.field] = oor


# ---------------------------------------------------------------- categories
def _code(v: Any, lut: Mapping[str, int]) -> int:
    """>=0 known; -1 missing; -2 unseen; -3 malformed; -4 too long."""
    if v is ABSENT:
        return -1
    try:
        c = canonical_category(v)
    except TypeError:
        return -3
    if c is None:
        return -1
    if len(c) > MAX_CATEGORY_LENGTH:
        return -4
    return lut.get(c, -2)


def _category_codes(q: CatPlan, col: Any, n: int) -> tuple[np.ndarray, Any]:
    """Codes per row (see :func:`_code`) and the values, for messages."""
    if isinstance(col, np.ndarray) and col.dtype.kind == "U":
        return _unicode_codes(q, col, n), col
    values = col.tolist() if isinstance(col, np.ndarray) else (col if isinstance(col, (list, tuple)) else list(col))
    try:
        codes = np.fromiter(map(q.lut.get, values, repeat(_NEEDS_CHECK)), dtype=np.int64, count=n)
    except TypeError:  # an unhashable value somewhere
        codes = np.full(n, _NEEDS_CHECK, dtype=np.int64)
    for i in np.flatnonzero(codes == _NEEDS_CHECK).tolist():
        codes[i] = _code(values[i], q.lut)
    return codes, values


def _unicode_codes(q: CatPlan, col: np.ndarray, n: int) -> np.ndarray:
    """Codes for a fixed-width string array without a Python loop.

    With four or more categories, one code point position usually tells them apart: the
    candidate category of each row is looked up from that code point, then confirmed by one
    whole-string comparison (so the answer is exact). Otherwise, one comparison per category.
    """
    if not col.dtype.isnative:
        col = col.astype(col.dtype.newbyteorder("="))
    col = np.ascontiguousarray(col)
    width = col.dtype.itemsize // 4
    key = _key_plan(q, width) if width and len(q.lut) >= 4 else None
    if key is None:
        codes = np.full(n, -2, dtype=np.int64)
        for c, i in q.lut.items():
            codes[col == c] = i
    else:
        j, table, cats, index = key
        points = col.view(np.uint32).reshape(n, width)[:, j]
        cand = table[np.minimum(points, len(table) - 1)]
        hit = cats[cand] == col
        hit &= cand < len(index) - 1
        codes = np.where(hit, index[cand], -2)
    odd = np.flatnonzero(codes < 0)
    if len(odd):
        rest = col[odd]
        codes[odd[rest == ""]] = -1
        if width > MAX_CATEGORY_LENGTH:
            codes[odd[np.char.str_len(rest) > MAX_CATEGORY_LENGTH]] = -4
    return codes


_KEY_PLANS: dict[tuple[Any, int], Any] = {}


def _key_plan(q: CatPlan, width: int) -> Any:
    """(position, code point -> candidate table, candidates as U<width>, candidate -> category index),
    or None when no single position separates the categories that fit in ``width``."""
    cache_key = (tuple(q.lut.items()), width)
    if cache_key in _KEY_PLANS:
        return _KEY_PLANS[cache_key]
    fits = [(c, i) for c, i in q.lut.items() if len(c) <= width]
    plan = None
    for j in range(width):
        points = [ord(c[j]) if j < len(c) else 0 for c, _ in fits]
        if len(set(points)) == len(points) and max(points, default=0) < 4096:
            table = np.full(max(points, default=0) + 2, len(fits), dtype=np.intp)  # last slot: no candidate
            table[points] = np.arange(len(fits))
            cats = np.array([c for c, _ in fits] + [""], dtype=f"U{width}")
            index = np.array([i for _, i in fits] + [-2], dtype=np.int64)
            plan = (j, table, cats, index)
            break
    if len(_KEY_PLANS) > 256:
        _KEY_PLANS.clear()
    _KEY_PLANS[cache_key] = plan
    return plan


def _categorical_column(
    q: CatPlan, col: Any, n: int, x: np.ndarray, errors: dict[int, InputError], flags: dict[str, np.ndarray]
) -> None:
    name = q.field
    codes, values = _category_codes(q, col, n)
    if n and codes.min() < 0:
        missing = codes == -1
        if missing.any():
            if q.allow:
                flags["imputed:" + name] = missing
            else:
                for i in np.flatnonzero(missing).tolist():
                    _add(
                        errors,
                        i,
                        MissingFieldError(
                            f"field '{name}': missing value but this bundle does not allow missing '{name}'", field=name
                        ),
                    )
            codes[missing] = q.fill_idx
        unseen = codes == -2
        if unseen.any():
            if q.lenient:
                flags["unseen_category:" + name] = unseen
            else:
                for i in np.flatnonzero(unseen).tolist():
                    v = values[i]
                    v = str(v) if isinstance(v, str) else v
                    _add(
                        errors,
                        i,
                        CategoryError(
                            f"field '{name}': category {short(v)} was not seen "
                            f"in training (expected one of {sorted(q.lut)[:8]})",
                            field=name,
                        ),
                    )
        for i in np.flatnonzero(codes == -3).tolist():
            v = values[i]
            _add(
                errors,
                i,
                CategoryError(
                    f"field '{name}': expected a category (a string), got {type(v).__name__} {short(v)}", field=name
                ),
            )
        for i in np.flatnonzero(codes == -4).tolist():
            _add(
                errors,
                i,
                CategoryError(
                    f"field '{name}': category is too long (at most {MAX_CATEGORY_LENGTH} characters allowed)",
                    field=name,
                ),
            )
        codes[codes < 0] = q.oov
    if q.onehot:  # a flat scatter: several times faster than x[arange(n), pos + codes]
        flat = np.arange(q.pos, q.pos + n * x.shape[1], x.shape[1], dtype=np.intp)
        flat += codes
        x.reshape(-1)[flat] = 1.0
    else:
        x[:, q.pos] = codes


# ---------------------------------------------------------------- helpers
def _add(errors: dict[int, InputError], i: int, err: InputError) -> None:
    if i not in errors:
        errors[i] = err.at_row(i)


def _column_length(columns: Mapping[str, Any]) -> int:
    lengths = {}
    for k, v in columns.items():
        if isinstance(v, np.ndarray) and v.ndim != 1:
            raise FieldTypeError(f"column '{k}': expected a 1-D array, got shape {v.shape}", field=str(k))
        try:
            lengths[k] = len(v)
        except TypeError:
            raise FieldTypeError(
                f"column '{k}': expected an array or sequence, got {type(v).__name__}", field=str(k)
            ) from None
    if not lengths:
        return 0
    distinct = set(lengths.values())
    if len(distinct) > 1:
        raise FieldTypeError(f"columns have different lengths: {lengths}")
    return distinct.pop()
