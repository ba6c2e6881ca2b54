"""The one implementation of preprocessing, used by training and on the device.

A :class:`Preprocessor` is compiled once from a bundle's schema and preprocessing spec and then
turns raw records into the model's float32 feature vector:

* :meth:`Preprocessor.record` - one mapping (the microsecond path);
* :meth:`Preprocessor.encode_into` - the same, written straight into a zeroed float32 buffer
  (an engine's input tensor: a memoryview of format 'f', a float32 numpy array, or a list), which
  is what ``Predictor.score`` uses;
* :meth:`Preprocessor.columns` - a mapping of arrays (vectorised numpy; used for training too).

All paths give bit-identical features (tests prove it): every standardised value is computed as
``(x - mean) / scale`` in float64 and rounded once to float32. Missing values are ``None``,
``NaN``, ``pandas.NA`` or an empty string; they are imputed only where the field allows missing
values. Infinity, and finite numbers whose standardised value would overflow float32, are never
scored. Unknown fields and unseen categories follow a :class:`Policy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import (
    CategoryError,
    FieldTypeError,
    MissingFieldError,
    NonFiniteError,
    RecordTypeError,
    UnknownFieldError,
)
from .lazy_dataclass import dataclass
from .manifest import Z_LIMIT, NumericStep, PreprocessSpec, Schema
from .plan import (
    ABSENT,
    MAX_CATEGORY_LENGTH,
    CatPlan,
    NumPlan,
    canonical_category,
    int_to_float,
    num_plan,
    pd_na,
    short,
    write_bins,
)

if TYPE_CHECKING:
    from .preprocess_columns import ColumnsResult


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
    def strict(cls) -> Policy:
        return cls(unknown_fields="reject", unseen_categories="reject", missing="reject")

    @classmethod
    def lenient(cls) -> Policy:
        return cls()

    def __post_init__(self) -> None:
        for name, allowed in (
            ("unknown_fields", ("ignore", "reject")),
            ("unseen_categories", ("oov", "reject")),
            ("missing", ("impute", "reject")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"Policy.{name}: expected one of {allowed}, got {getattr(self, name)!r}")


#: records a Preprocessor encodes with its generic loop before compiling its straight-line encoder
TIER_UP = 32


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
        self._plan: list[NumPlan | CatPlan] = []
        impute = self.policy.missing == "impute"
        lenient = self.policy.unseen_categories == "oov"
        pos = 0
        for step in spec.steps:
            f = schema.field(step.field)
            allow = f.allow_missing and impute
            if isinstance(step, NumericStep):
                lo = -math.inf if f.min is None else f.min
                hi = math.inf if f.max is None else f.max
                self._plan.append(num_plan(step, lo, hi, allow, pos))
            else:
                # a category longer than the cap can never be sent, so it is left out of the lookup
                lut = {c: i for i, c in enumerate(step.categories) if len(c) <= MAX_CATEGORY_LENGTH}
                onehot = step.encoding == "onehot"
                fast = {c: (pos + i if onehot else float(i)) for c, i in lut.items()}
                self._plan.append(
                    CatPlan(
                        step.field,
                        pos,
                        lut,
                        len(step.categories),
                        onehot,
                        allow,
                        lut.get(step.fill, len(step.categories)),
                        lenient,
                        fast,
                    )
                )
            pos += step.width
        self._reject_unknown = self.policy.unknown_fields == "reject"
        # tiered: the first TIER_UP records go through the generic loop, then the straight-line encoder is
        # compiled (a cold process - a device's restart - scores its first record without the ~2 ms compile)
        self._calls = 0
        self.encode_into: Callable[[Mapping[str, Any], Any], tuple[str, ...]] = self._encode_first

    def _encode_first(self, record: Mapping[str, Any], out: Any) -> tuple[str, ...]:
        """The encoder until :data:`TIER_UP` records have been encoded: the generic loop, then it compiles
        the straight-line encoder and puts it in its place (a race only compiles twice: same code)."""
        self._calls += 1
        if self._calls > TIER_UP:
            fn = self.encode_into = _compile(self)
            return fn(record, out)
        return self.encode_generic(record, out)

    def encode_generic(self, record: Mapping[str, Any], out: Any) -> tuple[str, ...]:
        """``encode_into`` as a loop over the fields: the same features, flags and errors (tests compare
        them), each field handled by the same :meth:`_numeric` / :meth:`_categorical`."""
        if type(record) is not dict and not isinstance(record, Mapping):
            self._not_mapping(record)
        if self._reject_unknown and not self._known.issuperset(record):
            self._unknown(record)
        get = record.get
        flags = None
        num, cat = self._numeric, self._categorical
        for q in self._plan:
            v = get(q.field, ABSENT)
            flags = num(q, v, out, flags) if type(q) is NumPlan else cat(q, v, out, flags)  # type: ignore[arg-type]
        return tuple(flags) if flags else ()

    def __reduce__(self) -> tuple[Any, ...]:
        """Copy and pickle by rebuilding from the (immutable) schema, spec and policy: the compiled
        encoder and its float32 buffers are derived state."""
        return (Preprocessor, (self.schema, self.spec, self.policy))

    # ------------------------------------------------------------ one record
    def record(self, record: Mapping[str, Any]) -> tuple[list[float], tuple[str, ...]]:
        """Encode one record: (feature list of length n_features, flags). Raises InputError."""
        out = self._template.copy()
        return out, self.encode_into(record, out)

    def transform_record(self, record: Mapping[str, Any]) -> np.ndarray:
        """Encode one record as a float32 array of shape (1, n_features)."""
        row, _ = self.record(record)
        return np.array([row], dtype=np.float32)

    def _not_mapping(self, record: Any) -> None:
        raise RecordTypeError(f"expected a mapping of field names to values, got {type(record).__name__}")

    def _unknown(self, record: Mapping[str, Any]) -> None:
        extra = [k for k in record if k not in self._known]
        raise UnknownFieldError(
            f"field {short(extra[0])} is not in the bundle's schema (expected only {sorted(self._known)}); "
            f"drop it or score with the lenient policy",
            field=str(extra[0]),
        )

    @staticmethod
    def _numeric(q: NumPlan, v: Any, out: Any, flags: list[str] | None) -> list[str] | None:
        """Everything the compiled fast path does not handle: other types, missing, range, overflow."""
        name = q.field
        t = type(v)
        if t is float:
            x = v
        elif t is int:
            x = int_to_float(v, name)
        elif v is None or v is ABSENT:
            x = math.nan
        elif t is bool or isinstance(v, np.bool_):
            raise FieldTypeError(f"field '{name}': expected a number, got a boolean {v!r}", field=name)
        elif isinstance(v, (np.floating, np.integer)):
            x = float(v)
        elif v is pd_na() or (t is str and v == ""):
            x = math.nan
        else:
            raise FieldTypeError(f"field '{name}': expected a number, got {type(v).__name__} {short(v)}", field=name)
        if x != x:  # NaN or missing
            if not q.allow:
                if v is ABSENT:
                    raise MissingFieldError(f"field '{name}' is required but absent", field=name)
                raise MissingFieldError(
                    f"field '{name}': missing value (got {short(v)}) but this bundle does "
                    f"not allow missing '{name}'; send a finite number",
                    field=name,
                )
            out[q.pos] = q.filled
            if q.nb:
                out[q.bpos : q.bpos + q.nb] = q.fill_bins
            if q.ind >= 0:
                out[q.ind] = 1.0
            return _flag(flags, "imputed:" + name)
        if x == math.inf or x == -math.inf:
            raise NonFiniteError(f"field '{name}': expected a finite number, got {x!r}", field=name)
        z = (x - q.mean) / q.scale
        if not -Z_LIMIT <= z <= Z_LIMIT:
            raise NonFiniteError(
                f"field '{name}': {x!r} is too large to score (far outside the training range {q.lo}..{q.hi})",
                field=name,
            )
        if x < q.lo or x > q.hi:
            flags = _flag(flags, "out_of_range:" + name)
        out[q.pos] = z
        if q.nb:
            write_bins(q, x, out)
        return flags

    @staticmethod
    def _categorical(q: CatPlan, v: Any, out: Any, flags: list[str] | None) -> list[str] | None:
        """Everything but a known category given as a plain string."""
        name = q.field
        if v is ABSENT:
            c = None
        else:
            try:
                c = canonical_category(v)
            except TypeError:
                raise CategoryError(
                    f"field '{name}': expected a category (a string), got {type(v).__name__} {short(v)}", field=name
                ) from None
        if c is None:
            if not q.allow:
                if v is ABSENT:
                    raise MissingFieldError(f"field '{name}' is required but absent", field=name)
                raise MissingFieldError(
                    f"field '{name}': missing value but this bundle does not allow "
                    f"missing '{name}'; send one of {sorted(q.lut)[:8]}",
                    field=name,
                )
            idx = q.fill_idx
            flags = _flag(flags, "imputed:" + name)
        else:
            if len(c) > MAX_CATEGORY_LENGTH:
                raise CategoryError(
                    f"field '{name}': category is {len(c)} characters long (at most {MAX_CATEGORY_LENGTH} allowed)",
                    field=name,
                )
            idx = q.lut.get(c, -1)
            if idx < 0:
                if not q.lenient:
                    raise CategoryError(
                        f"field '{name}': category {short(c)} was not seen in training "
                        f"(expected one of {sorted(q.lut)[:8]})",
                        field=name,
                    )
                idx = q.oov
                flags = _flag(flags, "unseen_category:" + name)
        if q.onehot:
            out[q.pos + idx] = 1.0
        else:
            out[q.pos] = float(idx)
        return flags

    # ------------------------------------------------------------ columns
    def columns(self, columns: Mapping[str, Any]) -> ColumnsResult:
        """Encode a mapping of equal-length 1-D arrays (or sequences). Bad rows are reported, not raised."""
        from .preprocess_columns import encode_columns

        return encode_columns(self, columns)

    def transform_columns(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Encode columns and raise the first row's error if any row is bad (used in training)."""
        res = self.columns(columns)
        if res.errors:
            first = min(res.errors)
            raise res.errors[first]
        return res.matrix


def _flag(flags: list[str] | None, name: str) -> list[str]:
    if flags is None:
        return [name]
    flags.append(name)
    return flags


def _compile(pre: Preprocessor) -> Callable[[Mapping[str, Any], Any], tuple[str, ...]]:
    """Build ``encode_into(record, out) -> flags`` as straight-line code, one block per field.

    Why generate code: a loop over steps costs a tuple lookup and a branch per field, which is
    most of a few-microsecond budget. Each generated block handles the common case inline (a
    plain number inside the training range, or a known category string) and hands everything
    else to :meth:`Preprocessor._numeric` / :meth:`Preprocessor._categorical`, which hold all
    the validation. The source text contains only identifiers made here; every value from the
    bundle is bound as a keyword default, never formatted into the code.
    """
    from bisect import bisect_right

    consts: dict[str, Any] = {
        "A": ABSENT,
        "Mapping": Mapping,
        "NOTMAP": pre._not_mapping,
        "UNKNOWN": pre._unknown,
        "KNOWN": pre._known,
        "NUM": pre._numeric,
        "CAT": pre._categorical,
        "BISECT": bisect_right,
    }
    body = ["    if type(record) is not dict and not isinstance(record, Mapping):", "        NOTMAP(record)"]
    if pre._reject_unknown:
        body += ["    if not KNOWN.issuperset(record):", "        UNKNOWN(record)"]
    body += ["    get = record.get", "    flags = None"]
    for k, q in enumerate(pre._plan):
        consts[f"N{k}"], consts[f"Q{k}"] = q.field, q
        if isinstance(q, NumPlan):
            consts.update({f"P{k}": q.pos, f"M{k}": q.mean, f"S{k}": q.scale, f"LO{k}": q.fast_lo, f"HI{k}": q.fast_hi})
            body += [
                f"    v = get(N{k}, A)",
                "    t = type(v)",
                f"    if (t is float or t is int) and LO{k} <= v <= HI{k}:",
                f"        out[P{k}] = (v - M{k}) / S{k}",
            ]
            if q.nb:  # write_bins, inline; x: an int becomes the float numpy would make of it (and
                # float-float comparisons in bisect are faster than int-float ones)
                consts.update(
                    {
                        f"U{k}": q.uppers,
                        f"SL{k}": q.slices,
                        f"IX{k}": q.index,
                        f"O{k}": q.ones,
                        f"LW{k}": q.lows,
                        f"W{k}": q.widths,
                    }
                )
                body += [
                    "        x = v * 1.0",
                    f"        j = BISECT(U{k}, x)",
                    "        if j:",
                    f"            out[SL{k}[j]] = O{k}[j]",
                    f"        f = (x - LW{k}[j]) / W{k}[j]",
                    "        if f > 0.0:",
                    f"            out[IX{k}[j]] = f",
                ]
            body += ["    else:", f"        flags = NUM(Q{k}, v, out, flags)"]
        else:
            consts.update({f"L{k}": q.fast, f"P{k}": q.pos})
            target = "out[j] = 1.0" if q.onehot else f"out[P{k}] = j"
            body += [
                f"    v = get(N{k}, A)",
                f"    j = L{k}.get(v) if type(v) is str else None",
                "    if j is not None:",
                f"        {target}",
                "    else:",
                f"        flags = CAT(Q{k}, v, out, flags)",
            ]
    body.append("    return tuple(flags) if flags else ()")
    params = ", ".join(f"{name}={name}" for name in consts)
    source = f"def encode_into(record, out, *, {params}):\n" + "\n".join(body) + "\n"
    namespace = dict(consts)
    exec(compile(source, "<edgefin_runtime.preprocess encoder>", "exec"), namespace)  # noqa: S102
    fn = namespace["encode_into"]
    fn.__doc__ = (
        "Encode one record into ``out`` (zeroed, length n_features: a float32 memoryview of format 'f', "
        "a float32 numpy array or a list); return its flags. Raises InputError."
    )
    return fn  # type: ignore[no-any-return]


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


def __getattr__(name: str) -> Any:
    if name == "ColumnsResult":  # moved to the columns encoder, imported on first use; importable as before
        from .preprocess_columns import ColumnsResult

        return ColumnsResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
