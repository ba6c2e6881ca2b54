"""The one implementation of preprocessing, used by training and on the device.

A :class:`Preprocessor` is compiled once from a bundle's schema and preprocessing spec and then
turns raw records into the model's float32 feature vector:

* :meth:`Preprocessor.record` - one mapping (the microsecond path, pure Python + one numpy call);
* :meth:`Preprocessor.columns` - a mapping of arrays (vectorised numpy; used for training too).

Both paths give bit-identical features (tests prove it). Missing values are ``None``, ``NaN``,
``pandas.NA`` or an empty string; they are imputed only where the field allows missing values.
Infinity is never scored. Unknown fields and unseen categories follow a :class:`Policy`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Sequence

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
from .manifest import CategoricalStep, NumericStep, PreprocessSpec, Schema

MAX_CATEGORY_LENGTH = 256
_ABSENT = object()


@dataclass(frozen=True)
class Policy:
    """How lenient scoring is. ``Policy.strict()`` rejects everything that is not exactly known.

    unknown_fields:    "ignore" extra fields, or "reject" the record.
    unseen_categories: "oov" maps them to the out-of-vocabulary slot (and flags), or "reject".
    missing:           "impute" where the field allows missing values, or "reject" every missing value.
    """

    unknown_fields: Literal["ignore", "reject"] = "ignore"
    unseen_categories: Literal["oov", "reject"] = "oov"
    missing: Literal["impute", "reject"] = "impute"

    @classmethod
    def strict(cls) -> "Policy":
        return cls(unknown_fields="reject", unseen_categories="reject", missing="reject")

    @classmethod
    def lenient(cls) -> "Policy":
        return cls()

    def __post_init__(self) -> None:
        for name, allowed in (("unknown_fields", ("ignore", "reject")),
                              ("unseen_categories", ("oov", "reject")),
                              ("missing", ("impute", "reject"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Policy.{name}: expected one of {allowed}, got {getattr(self, name)!r}")


def canonical_category(value: Any) -> str | None:
    """The string form of a category value (None when the value is missing).

    Booleans become 'true'/'false', integral numbers their integer text, strings themselves.
    Used when fitting the vocabulary and when scoring, so both agree.
    """
    if value is None or value is _PD_NA():
        return None
    t = type(value)
    if t is str:
        return value if value != "" else None
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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_pd_na_cache: list[Any] = []


def _PD_NA() -> Any:
    """pandas.NA if pandas is already imported (never imports pandas itself)."""
    if not _pd_na_cache:
        import sys
        pd = sys.modules.get("pandas")
        if pd is None:
            return _ABSENT
        _pd_na_cache.append(pd.NA)
    return _pd_na_cache[0]


class Preprocessor:
    """Validate raw records against a schema and encode them for the model."""

    def __init__(self, schema: Schema, spec: PreprocessSpec, policy: Policy | None = None) -> None:
        self.schema = schema
        self.spec = spec
        self.policy = policy or Policy()
        self.n_features = spec.n_features
        self.feature_names = spec.feature_names
        self._known = frozenset(schema.names)
        self._template = [0.0] * self.n_features
        self._plan: list[tuple[Any, ...]] = []
        impute = self.policy.missing == "impute"
        pos = 0
        for step in spec.steps:
            f = schema.field(step.field)
            allow = f.allow_missing and impute
            if isinstance(step, NumericStep):
                lo = -math.inf if f.min is None else f.min
                hi = math.inf if f.max is None else f.max
                filled = (step.fill - step.mean) / step.scale
                self._plan.append((0, step.field, pos, step.mean, step.scale, lo, hi, allow, filled,
                                   pos + 1 if step.indicator else -1))
            else:
                lut = {c: i for i, c in enumerate(step.categories)}
                oov = len(step.categories)
                fill_idx = lut.get(step.fill, oov)
                self._plan.append((1, step.field, pos, lut, oov, step.encoding == "onehot", allow, fill_idx,
                                   self.policy.unseen_categories == "oov"))
            pos += step.width
        # template values for one-hot columns are zeros; everything else is written per record
        self._reject_unknown = self.policy.unknown_fields == "reject"

    # ------------------------------------------------------------ one record
    def record(self, record: Mapping[str, Any]) -> tuple[list[float], tuple[str, ...]]:
        """Encode one record: (feature list of length n_features, flags). Raises InputError."""
        if not isinstance(record, Mapping):
            raise RecordTypeError(f"expected a mapping of field names to values, got {type(record).__name__}")
        if self._reject_unknown:
            extra = [k for k in record if k not in self._known]
            if extra:
                raise UnknownFieldError(
                    f"field {_short(extra[0])} is not in the bundle's schema (expected only {sorted(self._known)}); "
                    f"drop it or score with the lenient policy", field=str(extra[0]))
        out = self._template.copy()
        flags: list[str] = []
        get = record.get
        for p in self._plan:
            name = p[1]
            v = get(name, _ABSENT)
            if p[0] == 0:  # numeric
                t = type(v)
                if t is float:
                    x = v
                elif t is int:
                    x = _int_to_float(v, name)
                elif v is None or v is _ABSENT:
                    x = math.nan
                elif t is bool or isinstance(v, np.bool_):
                    raise FieldTypeError(f"field '{name}': expected a number, got a boolean {v!r}", field=name)
                elif isinstance(v, (np.floating, np.integer)):
                    x = float(v)
                elif v is _PD_NA():
                    x = math.nan
                elif t is str and v == "":
                    x = math.nan
                else:
                    raise FieldTypeError(f"field '{name}': expected a number, got {type(v).__name__} "
                                         f"{_short(v)}", field=name)
                if x != x:  # NaN or missing
                    if not p[7]:
                        if v is _ABSENT:
                            raise MissingFieldError(f"field '{name}' is required but absent", field=name)
                        raise MissingFieldError(
                            f"field '{name}': missing value (got {_short(None if v is _ABSENT else v)}) but this "
                            f"bundle does not allow missing '{name}'; send a finite number", field=name)
                    out[p[2]] = p[8]
                    if p[9] >= 0:
                        out[p[9]] = 1.0
                    flags.append("imputed:" + name)
                    continue
                if x == math.inf or x == -math.inf:
                    raise NonFiniteError(f"field '{name}': expected a finite number, got {x!r}", field=name)
                if x < p[5] or x > p[6]:
                    flags.append("out_of_range:" + name)
                out[p[2]] = (x - p[3]) / p[4]
            else:  # categorical
                t = type(v)
                if t is str and v:
                    if len(v) > MAX_CATEGORY_LENGTH:
                        raise CategoryError(f"field '{name}': category is {len(v)} characters long "
                                            f"(at most {MAX_CATEGORY_LENGTH} allowed)", field=name)
                    c = v
                elif v is _ABSENT:
                    c = None
                else:
                    try:
                        c = canonical_category(v)
                    except TypeError:
                        raise CategoryError(f"field '{name}': expected a category (a string), got "
                                            f"{type(v).__name__} {_short(v)}", field=name) from None
                if c is None:
                    if not p[6]:
                        if v is _ABSENT:
                            raise MissingFieldError(f"field '{name}' is required but absent", field=name)
                        raise MissingFieldError(f"field '{name}': missing value but this bundle does not "
                                                f"allow missing '{name}'; send one of {sorted(p[3])[:8]}",
                                                field=name)
                    idx = p[7]
                    flags.append("imputed:" + name)
                else:
                    idx = p[3].get(c, -1)
                    if idx < 0:
                        if not p[8]:
                            raise CategoryError(f"field '{name}': category {_short(c)} was not seen in training "
                                                f"(expected one of {sorted(p[3])[:8]})", field=name)
                        idx = p[4]
                        flags.append("unseen_category:" + name)
                if p[5]:
                    out[p[2] + idx] = 1.0
                else:
                    out[p[2]] = float(idx)
        return out, tuple(flags)

    def transform_record(self, record: Mapping[str, Any]) -> np.ndarray:
        """Encode one record as a float32 array of shape (1, n_features)."""
        row, _ = self.record(record)
        return np.array([row], dtype=np.float32)

    # ------------------------------------------------------------ columns
    def columns(self, columns: Mapping[str, Any]) -> "ColumnsResult":
        """Encode a mapping of equal-length 1-D arrays (or sequences). Bad rows are reported, not raised."""
        if not isinstance(columns, Mapping):
            raise RecordTypeError(f"expected a mapping of column names to arrays, got {type(columns).__name__}")
        n = _column_length(columns)
        if self._reject_unknown:
            extra = [k for k in columns if k not in self._known]
            if extra:
                raise UnknownFieldError(f"column {_short(extra[0])} is not in the bundle's schema "
                                        f"(expected only {sorted(self._known)})", field=str(extra[0]))
        x = np.zeros((n, self.n_features), dtype=np.float32)
        errors: dict[int, InputError] = {}
        flags: dict[str, np.ndarray] = {}
        for p in self._plan:
            name = p[1]
            if name not in columns:
                if p[6 if p[0] == 1 else 7]:
                    missing = np.ones(n, dtype=bool)
                    self._fill_missing(p, x, missing)
                    flags["imputed:" + name] = missing
                    continue
                raise MissingFieldError(f"column '{name}' is required but absent "
                                        f"(expected columns {list(self.schema.names)})", field=name)
            col = columns[name]
            if p[0] == 0:
                self._numeric_column(p, col, n, x, errors, flags)
            else:
                self._categorical_column(p, col, n, x, errors, flags)
        return ColumnsResult(x, errors, flags)

    def transform_columns(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Encode columns and raise the first row's error if any row is bad (used in training)."""
        res = self.columns(columns)
        if res.errors:
            first = min(res.errors)
            raise res.errors[first]
        return res.matrix

    def _fill_missing(self, p: tuple[Any, ...], x: np.ndarray, mask: np.ndarray) -> None:
        if p[0] == 0:
            x[mask, p[2]] = np.float32(p[8])
            if p[9] >= 0:
                x[mask, p[9]] = 1.0
        elif p[5]:
            x[mask, p[2] + p[7]] = 1.0
        else:
            x[mask, p[2]] = float(p[7])

    def _numeric_column(self, p: tuple[Any, ...], col: Any, n: int, x: np.ndarray,
                        errors: dict[int, InputError], flags: dict[str, np.ndarray]) -> None:
        name = p[1]
        arr = np.asarray(col)
        if arr.dtype.kind in "iuf":
            vals = arr.astype(np.float64, copy=False)
        elif arr.dtype.kind == "b":
            for i in range(n):
                _add(errors, i, FieldTypeError(f"field '{name}': expected a number, got a boolean", field=name))
            return
        else:  # object / strings: check element by element
            vals = np.empty(n, dtype=np.float64)
            for i, v in enumerate(arr.tolist()):
                t = type(v)
                if t is float:
                    vals[i] = v
                elif t is int:
                    try:
                        vals[i] = _int_to_float(v, name)
                    except NonFiniteError as err:
                        vals[i] = 0.0
                        _add(errors, i, err)
                elif v is None or v is _PD_NA() or (t is str and v == ""):
                    vals[i] = math.nan
                elif isinstance(v, (np.floating, np.integer)) and not isinstance(v, np.bool_):
                    vals[i] = float(v)
                else:
                    vals[i] = 0.0
                    kind = "a boolean" if t is bool else f"{t.__name__} {_short(v)}"
                    _add(errors, i, FieldTypeError(f"field '{name}': expected a number, got {kind}", field=name))
        missing = np.isnan(vals)
        if missing.any():
            if not p[7]:
                for i in np.flatnonzero(missing):
                    _add(errors, int(i), MissingFieldError(
                        f"field '{name}': missing value but this bundle does not allow missing '{name}'; "
                        f"send a finite number", field=name))
            else:
                flags["imputed:" + name] = missing
        inf = np.isinf(vals)
        if inf.any():
            for i in np.flatnonzero(inf):
                _add(errors, int(i), NonFiniteError(f"field '{name}': expected a finite number, got "
                                                    f"{vals[i]!r}", field=name))
        with np.errstate(invalid="ignore"):
            oor = (vals < p[5]) | (vals > p[6])
        if oor.any():
            flags["out_of_range:" + name] = oor & ~inf
        out = (vals - p[3]) / p[4]
        out[missing] = p[8]
        out[inf] = 0.0
        x[:, p[2]] = out
        if p[9] >= 0:
            x[:, p[9]] = missing

    def _categorical_column(self, p: tuple[Any, ...], col: Any, n: int, x: np.ndarray,
                            errors: dict[int, InputError], flags: dict[str, np.ndarray]) -> None:
        name, lut, oov, onehot, allow, fill_idx, lenient = p[1], p[3], p[4], p[5], p[6], p[7], p[8]
        values = col.tolist() if hasattr(col, "tolist") else list(col)
        cache: dict[Any, int] = {}
        idx = np.empty(n, dtype=np.int64)
        missing = np.zeros(n, dtype=bool)
        unseen = np.zeros(n, dtype=bool)
        for i, v in enumerate(values):
            try:
                code = cache[v]
            except (KeyError, TypeError):
                code = self._category_code(name, v, lut)
                try:
                    cache[v] = code
                except TypeError:
                    pass
            if code >= 0:
                idx[i] = code
                continue
            idx[i] = oov
            if code == -1:
                missing[i] = True
                if allow:
                    idx[i] = fill_idx
                else:
                    _add(errors, i, MissingFieldError(f"field '{name}': missing value but this bundle does not "
                                                      f"allow missing '{name}'", field=name))
            elif code == -2:
                unseen[i] = True
                if not lenient:
                    _add(errors, i, CategoryError(f"field '{name}': category {_short(v)} was not seen in "
                                                  f"training (expected one of {sorted(lut)[:8]})", field=name))
            elif code == -3:
                _add(errors, i, CategoryError(f"field '{name}': expected a category (a string), got "
                                              f"{type(v).__name__} {_short(v)}", field=name))
            else:
                _add(errors, i, CategoryError(f"field '{name}': category is too long (at most "
                                              f"{MAX_CATEGORY_LENGTH} characters allowed)", field=name))
        if missing.any():
            flags["imputed:" + name] = missing
        if unseen.any():
            flags["unseen_category:" + name] = unseen
        if onehot:
            x[np.arange(n), p[2] + idx] = 1.0
        else:
            x[:, p[2]] = idx

    @staticmethod
    def _category_code(name: str, v: Any, lut: Mapping[str, int]) -> int:
        """>=0 known; -1 missing; -2 unseen; -3 malformed; -4 too long."""
        try:
            c = canonical_category(v)
        except TypeError:
            return -3
        if c is None:
            return -1
        if len(c) > MAX_CATEGORY_LENGTH:
            return -4
        return lut.get(c, -2)


@dataclass
class ColumnsResult:
    """Encoded columns: ``matrix`` (n, n_features) float32; ``errors`` maps bad rows to their first
    error (their matrix rows are meaningless); ``flags`` maps a flag name to a row mask."""

    matrix: np.ndarray
    errors: dict[int, InputError]
    flags: dict[str, np.ndarray]

    def row_flags(self, i: int) -> tuple[str, ...]:
        return tuple(sorted(k for k, m in self.flags.items() if m[i]))


def _int_to_float(v: int, name: str) -> float:
    try:
        return float(v)
    except OverflowError:
        raise NonFiniteError(f"field '{name}': integer {_short(v)} is too large to score", field=name) from None


def _add(errors: dict[int, InputError], i: int, err: InputError) -> None:
    if i not in errors:
        errors[i] = err.at_row(i)


def _column_length(columns: Mapping[str, Any]) -> int:
    lengths = {}
    for k, v in columns.items():
        try:
            lengths[k] = len(v)
        except TypeError:
            raise FieldTypeError(f"column '{k}': expected an array or sequence, got {type(v).__name__}",
                                 field=str(k)) from None
    if not lengths:
        return 0
    distinct = set(lengths.values())
    if len(distinct) > 1:
        raise FieldTypeError(f"columns have different lengths: {lengths}")
    return distinct.pop()


def parse_text_value(kind: str, text: str | None) -> Any:
    """Turn one CSV cell into a record value: '' is missing; numbers parse; bad numbers stay text."""
    if text is None or text == "":
        return None
    if kind == "numeric":
        try:
            return float(text)
        except ValueError:
            return text  # validation reports it with the field name
    return text


def parse_text_record(schema: Schema, row: Mapping[str, str | None]) -> dict[str, Any]:
    """Turn a CSV row (all text) into a record using the schema's field kinds."""
    kinds = {f.name: f.kind for f in schema.fields}
    return {k: parse_text_value(kinds.get(k, "categorical"), v) for k, v in row.items()}


def records_to_columns(records: Iterable[Mapping[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Gather records into columns (absent fields become None)."""
    cols: dict[str, list[Any]] = {n: [] for n in names}
    for r in records:
        for n in names:
            cols[n].append(r.get(n))
    return cols
