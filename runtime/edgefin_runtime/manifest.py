"""The manifest: THE contract between the toolkit and the device (typed, versioned).

The toolkit builds a :class:`Manifest` and serialises it with :meth:`Manifest.to_json_bytes`;
the runtime parses it with :meth:`Manifest.from_dict`, which validates every field and raises
:class:`~edgefin_runtime.errors.ManifestError` naming the offending key. The acceptance set is the
bundle's own ``acceptance.json`` member, validated the same way when it is first read
(:class:`DeferredAcceptance`); the optional sections are validated where they are used.
Bump :data:`FORMAT_VERSION` on any incompatible change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Union, cast

from .errors import EdgefinRuntimeError, ManifestError, VersionError
from .jsonutil import strict_loads
from .lazy_dataclass import asdict, dataclass, field  # dataclasses without their import-time cost
from .version import __version__, version_tuple

if TYPE_CHECKING:
    from typing import TypeAlias

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "signature"
#: the acceptance set's own member (bundles built before it embed the set in the manifest, still read)
ACCEPTANCE_NAME = "acceptance.json"
#: the first runtime that reads ``acceptance.json`` (a bundle carrying it says so in min_runtime_version)
ACCEPTANCE_MEMBER_SINCE = "0.2.0"
MODEL_NAMES = {"litert": "model.tflite", "onnx": "model.onnx"}
MAX_EDGES = 257  # piecewise-linear bins per numeric field: at most 256
#: a standardised value beyond this is refused: a billion standard deviations from the training mean is
#: no plausible input, and bigger ones can overflow the model's float32 arithmetic to inf/NaN (the
#: security sweep found Age=1e37 giving NaN on a TFLite fp32 model, which sank a whole batch)
Z_LIMIT = 1e9

# Type aliases written as strings (PEP 613): type checkers read them as the types, and at run time each is
# a plain str - building typing's Literal objects costs ~0.1 ms of a device's cold start. Used only in this
# module's annotations, where runtime type-hint lookups still resolve them.
Engine: TypeAlias = 'Literal["litert", "onnx"]'
FieldKind: TypeAlias = 'Literal["numeric", "categorical"]'
Encoding: TypeAlias = 'Literal["onehot", "index"]'
#: which kernels the engine must run the model with: the engine's default (fastest) ones, or its portable
#: reference kernels, whose integer arithmetic gives the same scores on every instruction set
Kernels: TypeAlias = 'Literal["default", "reference"]'

KERNELS = ("default", "reference")


# ---------------------------------------------------------------- helpers
# Each helper takes the exact JSON type first (what the parser gives; a device's load() runs these
# ~500 times) and falls back to the general check, which names what is wrong.
def _req(d: Mapping[str, Any], key: str, where: str) -> Any:
    if type(d) is not dict and not isinstance(d, Mapping):
        raise ManifestError(f"manifest {where}: expected an object, got {type(d).__name__}")
    if key not in d:
        raise ManifestError(f"manifest {where}: required key '{key}' is missing")
    return d[key]


def _typed(value: Any, types: type | tuple[type, ...], where: str) -> Any:
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ManifestError(f"manifest {where}: expected {types}, got a boolean")
    if not isinstance(value, types):
        raise ManifestError(f"manifest {where}: expected {types}, got {type(value).__name__}")
    return value


def _num(value: Any, where: str, *, optional: bool = False) -> float | None:
    if type(value) is float and value - value == 0.0:  # finite (inf - inf and NaN - NaN are NaN)
        return value
    if value is None and optional:
        return None
    _typed(value, (int, float), where)
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        raise ManifestError(f"manifest {where}: expected a finite number, got {value!r}")
    return float(value)


def _str(value: Any, where: str) -> str:
    if type(value) is str:
        return value
    s: str = _typed(value, str, where)
    return s


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    _typed(value, list, where)
    if all(type(v) is str for v in value):
        return tuple(value)
    return tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(value))


# ---------------------------------------------------------------- schema
@dataclass(frozen=True)
class FieldSpec:
    """One raw input field as the device receives it."""

    name: str
    kind: FieldKind
    allow_missing: bool = False
    categories: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    missing_share: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> FieldSpec:
        name = _str(_req(d, "name", where), f"{where}.name")
        kind = _str(_req(d, "kind", where), f"{where}.kind")
        if kind not in ("numeric", "categorical"):
            raise ManifestError(f"manifest {where}.kind: expected 'numeric' or 'categorical', got {kind!r}")
        cats = _str_list(d.get("categories", []), f"{where}.categories")
        if kind == "categorical" and not cats:
            raise ManifestError(f"manifest {where}: categorical field '{name}' has no categories")
        return cls(
            name=name,
            kind=kind,  # type: ignore[arg-type]
            allow_missing=_typed(d.get("allow_missing", False), bool, f"{where}.allow_missing"),
            categories=cats,
            min=_num(d.get("min"), f"{where}.min", optional=True),
            max=_num(d.get("max"), f"{where}.max", optional=True),
            missing_share=_num(d.get("missing_share", 0.0), f"{where}.missing_share") or 0.0,
        )


@dataclass(frozen=True)
class Schema:
    """The raw input schema plus what the target and its positive class mean."""

    fields: tuple[FieldSpec, ...]
    target: str
    positive_label: str
    negative_label: str

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "schema") -> Schema:
        raw = _typed(_req(d, "fields", where), list, f"{where}.fields")
        fields = tuple(FieldSpec.from_dict(f, f"{where}.fields[{i}]") for i, f in enumerate(raw))
        names = [f.name for f in fields]
        if not fields:
            raise ManifestError(f"manifest {where}.fields: expected at least one field")
        if len(set(names)) != len(names):
            raise ManifestError(f"manifest {where}.fields: duplicate field names in {names}")
        return cls(
            fields=fields,
            target=_str(_req(d, "target", where), f"{where}.target"),
            positive_label=_str(_req(d, "positive_label", where), f"{where}.positive_label"),
            negative_label=_str(_req(d, "negative_label", where), f"{where}.negative_label"),
        )


# ---------------------------------------------------------------- preprocessing
@dataclass(frozen=True)
class NumericStep:
    """Impute with ``fill``, then standardise ``(x - mean) / scale``; optional piecewise-linear bins
    and missing indicator.

    Layout: the standardised value; then, when ``edges`` (e_0 < e_1 < ... < e_B, training quantiles)
    are given, one column per bin t holding ``clip((x - e_t) / (e_{t+1} - e_t), 0, 1)`` (the
    piecewise-linear encoding of Gorishniy et al., 2022: it lets a small dense model place sharp
    thresholds where gradient-boosted trees would); then the 0/1 missing indicator.
    """

    field: str
    fill: float
    mean: float
    scale: float
    indicator: bool = False
    edges: tuple[float, ...] = ()
    kind: Literal["numeric"] = "numeric"

    @property
    def n_bins(self) -> int:
        return max(len(self.edges) - 1, 0)

    @property
    def width(self) -> int:
        return 1 + self.n_bins + (1 if self.indicator else 0)


@dataclass(frozen=True)
class CategoricalStep:
    """Encode a category; ``fill`` replaces a missing value; unseen values go to the OOV slot.

    One-hot layout: one column per category, then one out-of-vocabulary column.
    Index layout: one column holding the category's position (OOV = len(categories)).
    """

    field: str
    categories: tuple[str, ...]
    fill: str
    encoding: Encoding = "onehot"
    kind: Literal["categorical"] = "categorical"

    @property
    def width(self) -> int:
        return len(self.categories) + 1 if self.encoding == "onehot" else 1


Step = Union[NumericStep, CategoricalStep]  # a real Union (the toolkit annotates with it); not `A | B`: 3.9


@dataclass(frozen=True)
class PreprocessSpec:
    """Ordered steps that turn raw fields into the model's float32 feature vector."""

    steps: tuple[Step, ...]

    @property
    def n_features(self) -> int:
        return sum(s.width for s in self.steps)

    @property
    def feature_names(self) -> tuple[str, ...]:
        out: list[str] = []
        for s in self.steps:
            if isinstance(s, NumericStep):
                out.append(s.field)
                out.extend(f"{s.field}__bin{t}" for t in range(s.n_bins))
                if s.indicator:
                    out.append(f"{s.field}__missing")
            elif s.encoding == "onehot":
                out.extend(f"{s.field}={c}" for c in s.categories)
                out.append(f"{s.field}=__other__")
            else:
                out.append(f"{s.field}__index")
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [_step_dict(s) for s in self.steps], "n_features": self.n_features}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "preprocessing") -> PreprocessSpec:
        raw = _typed(_req(d, "steps", where), list, f"{where}.steps")
        steps: list[Step] = []
        for i, s in enumerate(raw):
            w = f"{where}.steps[{i}]"
            kind = _req(s, "kind", w)
            name = _str(_req(s, "field", w), f"{w}.field")
            if kind == "numeric":
                scale = _num(_req(s, "scale", w), f"{w}.scale")
                if not scale or scale <= 0:
                    raise ManifestError(f"manifest {w}.scale: expected a positive number, got {scale}")
                step = NumericStep(
                    field=name,
                    fill=_num(_req(s, "fill", w), f"{w}.fill"),  # type: ignore[arg-type]
                    mean=_num(_req(s, "mean", w), f"{w}.mean"),  # type: ignore[arg-type]
                    scale=scale,
                    indicator=_typed(s.get("indicator", False), bool, f"{w}.indicator"),
                    edges=_edges(s.get("edges", []), f"{w}.edges"),
                )
                check_fill(step, f"manifest {w}.fill")
                steps.append(step)
            elif kind == "categorical":
                cats = _str_list(_req(s, "categories", w), f"{w}.categories")
                if not cats or len(set(cats)) != len(cats):
                    raise ManifestError(f"manifest {w}.categories: expected unique, non-empty categories")
                enc = _req(s, "encoding", w)
                if enc not in ("onehot", "index"):
                    raise ManifestError(f"manifest {w}.encoding: expected 'onehot' or 'index', got {enc!r}")
                steps.append(
                    CategoricalStep(
                        field=name, categories=cats, fill=_str(_req(s, "fill", w), f"{w}.fill"), encoding=enc
                    )
                )
            else:
                raise ManifestError(f"manifest {w}.kind: expected 'numeric' or 'categorical', got {kind!r}")
        spec = cls(steps=tuple(steps))
        if "n_features" in d and d["n_features"] != spec.n_features:
            raise ManifestError(
                f"manifest {where}.n_features: says {d['n_features']} but the steps produce {spec.n_features}"
            )
        return spec


def check_fill(step: NumericStep, where: str) -> None:
    """Refuse a fill more than Z_LIMIT standard deviations from the mean: imputing it would put an
    overflowing (infinite) feature into the model. Checked when a manifest is parsed and again when a
    preprocessor is built from a spec made in code."""
    if not abs((step.fill - step.mean) / step.scale) <= Z_LIMIT:
        raise ManifestError(
            f"{where}: {step.fill} is more than {Z_LIMIT:g} standard deviations from the mean "
            f"{step.mean} of '{step.field}'; an imputed value would overflow the model"
        )


def _edges(value: Any, where: str) -> tuple[float, ...]:
    """Bin edges: none, or 2..MAX_EDGES finite numbers, strictly increasing with finite gaps
    (so no encoded value can be NaN, whatever the input)."""
    _typed(value, list, where)
    if not value:
        return ()
    if not 2 <= len(value) <= MAX_EDGES:
        raise ManifestError(f"manifest {where}: expected 2 to {MAX_EDGES} bin edges, got {len(value)}")
    edges = tuple(_num(v, f"{where}[{i}]") for i, v in enumerate(value))
    if any(not 0 < b - a < math.inf for a, b in zip(edges, edges[1:])):  # type: ignore[operator]
        raise ManifestError(f"manifest {where}: bin edges must be strictly increasing, with finite gaps")
    return edges  # type: ignore[return-value]


def _step_dict(s: Step) -> dict[str, Any]:
    d = asdict(s)
    if isinstance(s, CategoricalStep):
        d["categories"] = list(s.categories)
    elif s.edges:
        d["edges"] = list(s.edges)
    else:
        del d["edges"]  # plain standardisation: the manifest reads as it always did
    return d


# ---------------------------------------------------------------- model
@dataclass(frozen=True)
class Quantization:
    """Affine quantisation of an int8/uint8 tensor: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int


@dataclass(frozen=True)
class TensorSpec:
    """The model's input or output tensor: name, shape ([batch, n]), dtype, quantisation."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    quantization: Quantization | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> TensorSpec:
        shape = _typed(_req(d, "shape", where), list, f"{where}.shape")
        for i, s in enumerate(shape):
            _typed(s, int, f"{where}.shape[{i}]")
        dtype = _str(_req(d, "dtype", where), f"{where}.dtype")
        if dtype not in ("float32", "float16", "int8", "uint8", "int32", "int64"):
            raise ManifestError(f"manifest {where}.dtype: unsupported dtype {dtype!r}")
        q = d.get("quantization")
        quant = None
        if q is not None:
            quant = Quantization(
                scale=_num(
                    _req(q, "scale", f"{where}.quantization"),  # type: ignore[arg-type]
                    f"{where}.quantization.scale",
                ),
                zero_point=_typed(
                    _req(q, "zero_point", f"{where}.quantization"), int, f"{where}.quantization.zero_point"
                ),
            )
        return cls(
            name=_str(_req(d, "name", where), f"{where}.name"), shape=tuple(shape), dtype=dtype, quantization=quant
        )


@dataclass(frozen=True)
class ModelSpec:
    """The model member: which engine runs it, its file, tensors, precision and kernels."""

    engine: Engine
    variant: str
    file: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    weights: str = "float32"
    activations: str = "float32"
    source_stage: str = "dense"
    kernels: Kernels = "default"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "model") -> ModelSpec:
        engine = _req(d, "engine", where)
        if not isinstance(engine, str) or engine not in MODEL_NAMES:
            raise ManifestError(f"manifest {where}.engine: expected one of {sorted(MODEL_NAMES)}, got {engine!r}")
        file = _str(_req(d, "file", where), f"{where}.file")
        if file != MODEL_NAMES[engine]:
            raise ManifestError(f"manifest {where}.file: engine {engine} expects '{MODEL_NAMES[engine]}', got {file!r}")
        ins = _typed(_req(d, "inputs", where), list, f"{where}.inputs")
        outs = _typed(_req(d, "outputs", where), list, f"{where}.outputs")
        if len(ins) != 1 or len(outs) != 1:
            raise ManifestError(
                f"manifest {where}: expected exactly one input and one output tensor, got {len(ins)} and {len(outs)}"
            )
        return cls(
            engine=cast(Engine, engine),  # one of MODEL_NAMES, checked above
            variant=_str(_req(d, "variant", where), f"{where}.variant"),
            file=file,
            inputs=tuple(TensorSpec.from_dict(t, f"{where}.inputs[{i}]") for i, t in enumerate(ins)),
            outputs=tuple(TensorSpec.from_dict(t, f"{where}.outputs[{i}]") for i, t in enumerate(outs)),
            weights=_str(d.get("weights", "float32"), f"{where}.weights"),
            activations=_str(d.get("activations", "float32"), f"{where}.activations"),
            source_stage=_str(d.get("source_stage", "dense"), f"{where}.source_stage"),
            kernels=_kernels(d.get("kernels", "default"), engine, f"{where}.kernels"),
        )


def _kernels(value: Any, engine: str, where: str) -> Kernels:
    if value not in KERNELS:
        raise ManifestError(f"manifest {where}: expected one of {', '.join(KERNELS)}, got {value!r}")
    if value == "reference" and engine != "litert":
        raise ManifestError(
            f"manifest {where}: reference kernels exist for the litert engine only, got engine {engine!r}"
        )
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Decision:
    """How a probability becomes a decision: ``probability >= threshold`` means ``positive_means``."""

    threshold: float
    positive_means: str
    method: str = "fixed"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "decision") -> Decision:
        t = _num(_req(d, "threshold", where), f"{where}.threshold")
        if not 0.0 <= t <= 1.0:  # type: ignore[operator]
            raise ManifestError(f"manifest {where}.threshold: expected a probability in [0, 1], got {t}")
        return cls(
            threshold=t,  # type: ignore[arg-type]
            positive_means=_str(_req(d, "positive_means", where), f"{where}.positive_means"),
            method=_str(d.get("method", "fixed"), f"{where}.method"),
        )


@dataclass(frozen=True)
class GoldenVector:
    """A raw record and the score the bundle's model must give it (checked at load)."""

    record: dict[str, Any]
    score: float


#: most records an acceptance set may carry (a device scores all of them in ``edgefin-run verify``)
MAX_ACCEPTANCE = 4096
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class AcceptanceSet:
    """Synthetic raw records (never rows of anyone's data) with two reference scores each.

    ``scores`` are this variant's scores through the runtime on the build machine (single-record
    path); ``source_scores`` are the source Keras model's (stage ``source_stage``) on the same
    records. ``kinds`` says why each record is there ("spread", "edge", "near": placed next to the
    decision threshold). ``edgefin_runtime.acceptance.check`` scores the set and applies the gates.
    """

    records: tuple[dict[str, Any], ...]
    scores: tuple[float, ...]
    source_scores: tuple[float, ...]
    source_stage: str
    kinds: tuple[str, ...] = ()
    seed: int = 0

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field name any record uses, in first-seen order (the JSON column order)."""
        out: dict[str, None] = {}
        for r in self.records:
            out.update(dict.fromkeys(r))
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``fields`` names the columns and each record is a row in that order (a third of
        the bytes of one object per record; a field a record lacks is null, i.e. missing)."""
        names = self.fields
        return {
            "fields": list(names),
            "records": [[r.get(n) for n in names] for r in self.records],
            "scores": list(self.scores),
            "source_scores": list(self.source_scores),
            "source_stage": self.source_stage,
            "kinds": list(self.kinds),
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: Any, schema: Schema, where: str = "acceptance") -> AcceptanceSet:
        if not isinstance(d, Mapping):
            raise ManifestError(f"manifest {where}: expected an object, got {type(d).__name__}")
        fields = _str_list(_req(d, "fields", where), f"{where}.fields")
        known = set(schema.names)
        for k in fields:
            if k not in known:
                raise ManifestError(f"manifest {where}.fields: {k!r} is not a field of the schema")
        if len(set(fields)) != len(fields):
            raise ManifestError(f"manifest {where}.fields: duplicate field names in {list(fields)}")
        raw = _typed(_req(d, "records", where), list, f"{where}.records")
        if not 1 <= len(raw) <= MAX_ACCEPTANCE:
            raise ManifestError(f"manifest {where}.records: expected 1 to {MAX_ACCEPTANCE} records, got {len(raw)}")
        if _plain_rows(raw, len(fields)):  # the usual case, checked at C speed; else find the culprit
            records = [dict(zip(fields, r)) for r in raw]
        else:
            records = _checked_rows(raw, fields, where)
        scores = _probabilities(_req(d, "scores", where), f"{where}.scores", len(raw))
        source = _probabilities(_req(d, "source_scores", where), f"{where}.source_scores", len(raw))
        kinds = _str_list(d.get("kinds", []), f"{where}.kinds")
        if kinds and len(kinds) != len(raw):
            raise ManifestError(
                f"manifest {where}.kinds: expected {len(raw)} entries (one per record), got {len(kinds)}"
            )
        seed = _typed(d.get("seed", 0), int, f"{where}.seed")
        return cls(
            records=tuple(records),
            scores=scores,
            source_scores=source,
            source_stage=_str(_req(d, "source_stage", where), f"{where}.source_stage"),
            kinds=kinds,
            seed=seed,
        )

    def to_json_bytes(self) -> bytes:
        """The ``acceptance.json`` member: strict JSON, sorted keys, one record per line (indenting
        hundreds of records would triple the bundle's size); equal sets give equal bytes."""
        return ("{\n" + _acceptance_block(self.to_dict(), " ") + "\n}\n").encode("utf-8")


def _acceptance_block(d: dict[str, Any], pad: str) -> str:
    """The keys of an acceptance set's JSON form, one per line (``records`` one row per line), at ``pad``."""
    import json  # writing only: a load never pays for the json package (jsonutil parses)

    def one_line(v: Any) -> str:
        return json.dumps(v, sort_keys=True, separators=(",", ":"), allow_nan=False)

    d = dict(d)
    rows = f",\n{pad} ".join(one_line(r) for r in d.pop("records"))
    parts = [f'{pad}"{k}": {one_line(v)}' for k, v in sorted(d.items())]
    parts.insert(sum(k < "records" for k in d), f'{pad}"records": [\n{pad} {rows}\n{pad}]')
    return ",\n".join(parts)


class DeferredAcceptance:
    """A bundle's ``acceptance.json`` member, parsed (strict JSON, then :meth:`AcceptanceSet.from_dict`)
    the first time ``Manifest.acceptance`` is read: scoring never needs the set, so ``load()`` checks its
    sha256 with the other members and leaves its records unparsed (~1 ms and ~1,000 objects of a device's
    cold start on the credit demo). A member that is not a valid set raises then, naming the member."""

    __slots__ = ("data", "label", "schema")

    def __init__(self, data: bytes, label: str, schema: Schema) -> None:
        self.data, self.label, self.schema = data, label, schema

    def __repr__(self) -> str:
        return f"DeferredAcceptance({ACCEPTANCE_NAME}, {len(self.data)} bytes, not parsed yet)"

    def parse(self) -> AcceptanceSet:
        where = f"bundle {self.label}: {ACCEPTANCE_NAME}"
        raw = strict_loads(self.data, where)
        try:
            return AcceptanceSet.from_dict(raw, self.schema)
        except ManifestError as exc:  # "manifest acceptance.x: ..." -> "bundle B: acceptance.json: acceptance.x: ..."
            raise ManifestError(f"{where}: {str(exc).replace('manifest ', '', 1)}") from None
        except EdgefinRuntimeError:
            raise
        except Exception as exc:  # a check that missed a hostile shape must still be typed (as parse_manifest)
            raise ManifestError(
                f"{where}: violates the acceptance set's contract ({type(exc).__name__}: {str(exc)[:120]})"
            ) from None


class _AcceptanceField:
    """``Manifest.acceptance``: a data descriptor that turns a :class:`DeferredAcceptance` into the
    parsed set on first read (equality, ``replace`` and ``asdict`` read it; ``repr`` and pickling keep it unparsed)."""

    def __get__(self, obj: Any, owner: type | None = None) -> AcceptanceSet | None:
        if obj is None:
            return None  # the field's default
        value = obj.__dict__["acceptance"]
        if type(value) is DeferredAcceptance:
            value = value.parse()
            obj.__dict__["acceptance"] = value  # two threads may both parse: equal results
        return value  # type: ignore[no-any-return]

    def __set__(self, obj: Any, value: Any) -> None:  # reached only through __init__ (frozen class)
        obj.__dict__["acceptance"] = value


_ROW_TYPES = frozenset(_SCALARS)  # the exact JSON scalar types: subclasses take the isinstance path


def _finite_sum(values: list[Any]) -> bool:
    """True when every float in ``values`` is finite (an inf or NaN makes the sum non-finite; a sum that
    overflows only sends the caller to its slow, exact check)."""
    return math.isfinite(sum([v for v in values if type(v) is float]))


def _plain_rows(raw: list[Any], width: int) -> bool:
    """Every row a list of ``width`` JSON scalars, floats finite: one pass of C-level checks."""
    if {type(r) for r in raw} != {list} or {len(r) for r in raw} != {width}:
        return False
    flat = [v for r in raw for v in r]
    return {type(v) for v in flat} <= _ROW_TYPES and _finite_sum(flat)


def _checked_rows(raw: list[Any], fields: tuple[str, ...], where: str) -> list[dict[str, Any]]:
    records = []
    for i, r in enumerate(raw):
        w = f"{where}.records[{i}]"
        _typed(r, list, w)
        if len(r) != len(fields):
            raise ManifestError(
                f"manifest {w}: expected {len(fields)} values (one per entry of {where}.fields), got {len(r)}"
            )
        for k, v in zip(fields, r):
            if not isinstance(v, _SCALARS) or (isinstance(v, float) and not math.isfinite(v)):
                raise ManifestError(f"manifest {w} ({k}): expected a number, a string, a boolean or null, got {v!r}")
        records.append(dict(zip(fields, r)))
    return records


def _probabilities(value: Any, where: str, n: int) -> tuple[float, ...]:
    _typed(value, list, where)
    if len(value) != n:
        raise ManifestError(f"manifest {where}: expected {n} scores (one per record), got {len(value)}")
    if {type(v) for v in value} <= {float, int} and all(0.0 <= v <= 1.0 for v in value):  # NaN fails
        return tuple(map(float, value))
    out = tuple(_num(v, f"{where}[{i}]") for i, v in enumerate(value))
    for i, v in enumerate(out):
        if not 0.0 <= v <= 1.0:  # type: ignore[operator]
            raise ManifestError(f"manifest {where}[{i}]: expected a probability in [0, 1], got {v}")
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------- the manifest
@dataclass(frozen=True)
class Manifest:
    """The whole manifest.json of a bundle: schema, preprocessing, model, decision, member hashes,
    golden vectors, metrics and provenance; and the acceptance set (the bundle's ``acceptance.json``).

    (Every dataclass here has a docstring: without one, ``dataclass`` builds it from
    ``inspect.signature`` at import, ~0.5 ms a class on a device's cold start.)
    """

    schema: Schema
    preprocessing: PreprocessSpec
    model: ModelSpec
    decision: Decision
    members: dict[str, str]
    golden: tuple[GoldenVector, ...] = ()
    golden_tolerance: float = 1e-6
    #: synthetic records for ``edgefin-run verify``; a bundle holds them in its own ``acceptance.json``
    #: member (``build_bundle``), parsed the first time this is read (bundles built before embed them here)
    acceptance: AcceptanceSet | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    producer: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    format_version: int = FORMAT_VERSION
    min_runtime_version: str = "0.1.0"
    #: optional sections, kept as plain JSON objects and validated where they are used (None in bundles
    #: built before them): ``explain`` (reference applicant, reason texts, protected fields, method;
    #: edgefin_runtime.explain), ``drift`` (reference bins and training shares; edgefin_runtime.drift),
    #: ``model_card`` (a compact model card, built by the toolkit)
    explain: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None
    model_card: dict[str, Any] | None = None

    # ------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return (
            {
                "format_version": self.format_version,
                "min_runtime_version": self.min_runtime_version,
                "created_at": self.created_at,
                "producer": self.producer,
                "source": self.source,
                "schema": {
                    "fields": [_field_dict(f) for f in self.schema.fields],
                    "target": self.schema.target,
                    "positive_label": self.schema.positive_label,
                    "negative_label": self.schema.negative_label,
                },
                "preprocessing": self.preprocessing.to_dict(),
                "model": _model_dict(self.model),
                "decision": asdict(self.decision),
                "metrics": self.metrics,
                "parity": self.parity,
                "golden": [{"record": g.record, "score": g.score} for g in self.golden],
                "golden_tolerance": self.golden_tolerance,
                "members": dict(sorted(self.members.items())),
            }
            | ({"acceptance": self.acceptance.to_dict()} if self.acceptance is not None else {})
            | _sections(self)
        )

    def to_json_bytes(self) -> bytes:
        """Canonical strict JSON (sorted keys, no NaN) so equal manifests give equal bytes.

        Indented for people, except inside ``acceptance``, where each list stays on one line (one
        record per line): indenting hundreds of records would triple the bundle's size.
        """
        import json  # writing only: a load never pays for the json package (jsonutil parses)

        d = self.to_dict()
        acc = d.pop("acceptance", None)
        text = json.dumps(d, sort_keys=True, indent=1, allow_nan=False)
        if acc is None:
            return text.encode("utf-8")
        block = ' "acceptance": {\n' + _acceptance_block(acc, "  ") + "\n }"
        return ("{\n" + block + ",\n" + text[2:]).encode("utf-8")  # "acceptance" sorts first

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, acceptance_member: bytes | None = None, label: str = "") -> Manifest:
        """Validate a parsed manifest.json. ``acceptance_member`` is the bundle's ``acceptance.json``
        (kept unparsed until ``acceptance`` is read: :class:`DeferredAcceptance`); ``label`` names the
        bundle in its messages."""
        if not isinstance(d, Mapping):
            raise ManifestError("manifest: expected a JSON object at the top level")
        fv = _req(d, "format_version", "root")
        _typed(fv, int, "format_version")
        if fv > FORMAT_VERSION:
            raise VersionError(
                f"bundle format_version {fv} is newer than this runtime supports ({FORMAT_VERSION}); "
                f"upgrade edgefin-runtime (pip install -U edgefin-runtime)"
            )
        if fv < 1:
            raise VersionError(
                f"bundle format_version {fv} is not a valid edgefin format (expected 1..{FORMAT_VERSION})"
            )
        mrv = _str(_req(d, "min_runtime_version", "root"), "min_runtime_version")
        try:
            needed = version_tuple(mrv)
        except ValueError as exc:
            raise ManifestError(f"manifest min_runtime_version: {exc}") from None
        if needed > version_tuple(__version__):
            raise VersionError(
                f"bundle needs edgefin-runtime >= {mrv}, but {__version__} is installed; "
                f"upgrade edgefin-runtime (pip install -U 'edgefin-runtime>={mrv}')"
            )
        schema = Schema.from_dict(_req(d, "schema", "root"))
        pre = PreprocessSpec.from_dict(_req(d, "preprocessing", "root"))
        model = ModelSpec.from_dict(_req(d, "model", "root"))
        _check_consistency(schema, pre, model)
        members = _typed(_req(d, "members", "root"), dict, "members")
        for k, v in members.items():
            _str(v, f"members.{k}")
            if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
                raise ManifestError(f"manifest members.{k}: expected a lowercase sha256 hex digest")
        if model.file not in members:
            raise ManifestError(f"manifest members: no hash for the model member '{model.file}'")
        golden_raw = _typed(d.get("golden", []), list, "golden")
        golden = []
        for i, g in enumerate(golden_raw):
            rec = _typed(_req(g, "record", f"golden[{i}]"), dict, f"golden[{i}].record")
            sc = _num(_req(g, "score", f"golden[{i}]"), f"golden[{i}].score")
            if not 0.0 <= sc <= 1.0:  # type: ignore[operator]
                raise ManifestError(f"manifest golden[{i}].score: expected a probability, got {sc}")
            golden.append(GoldenVector(record=rec, score=sc))  # type: ignore[arg-type]
        tol = _num(d.get("golden_tolerance", 1e-6), "golden_tolerance")
        if not 0 <= tol < 0.5:  # type: ignore[operator]
            raise ManifestError(f"manifest golden_tolerance: expected a number in [0, 0.5), got {tol}")
        acc = d.get("acceptance")
        acceptance: AcceptanceSet | DeferredAcceptance | None = None
        if acceptance_member is not None:
            if acc is not None:
                raise ManifestError(
                    f"manifest acceptance: the bundle holds an acceptance set in manifest.json and in "
                    f"{ACCEPTANCE_NAME}; expected one (edgefin writes {ACCEPTANCE_NAME})"
                )
            acceptance = DeferredAcceptance(acceptance_member, label, schema)
        elif acc is not None:  # bundles built before acceptance.json
            acceptance = AcceptanceSet.from_dict(acc, schema)
        return cls(
            schema=schema,
            preprocessing=pre,
            model=model,
            decision=Decision.from_dict(_req(d, "decision", "root")),
            members=dict(members),
            golden=tuple(golden),
            golden_tolerance=tol,  # type: ignore[arg-type]
            acceptance=acceptance,  # type: ignore[arg-type]  # parsed on first read (_AcceptanceField)
            metrics=_typed(d.get("metrics", {}), dict, "metrics"),
            parity=_typed(d.get("parity", {}), dict, "parity"),
            producer=_typed(d.get("producer", {}), dict, "producer"),
            source=_typed(d.get("source", {}), dict, "source"),
            created_at=_str(d.get("created_at", ""), "created_at"),
            format_version=fv,
            min_runtime_version=mrv,
            explain=_section(d, "explain"),
            drift=_section(d, "drift"),
            model_card=_section(d, "model_card"),
        )


# a read bundle's acceptance set is parsed from its member on first use (DeferredAcceptance)
Manifest.acceptance = _AcceptanceField()  # type: ignore[assignment]

#: the optional sections of :class:`Manifest` (plain objects; absent means None)
SECTIONS = ("explain", "drift", "model_card")


def _section(d: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = d.get(key)
    return None if value is None else dict(_typed(value, dict, key))


def _sections(m: Manifest) -> dict[str, Any]:
    return {k: v for k in SECTIONS if (v := getattr(m, k)) is not None}


def _field_dict(f: FieldSpec) -> dict[str, Any]:
    d = asdict(f)
    d["categories"] = list(f.categories)
    return d


def _model_dict(m: ModelSpec) -> dict[str, Any]:
    d = asdict(m)
    for key in ("inputs", "outputs"):
        for t in d[key]:
            t["shape"] = list(t["shape"])
    return d


def _check_consistency(schema: Schema, pre: PreprocessSpec, model: ModelSpec) -> None:
    """Schema, preprocessing and model tensor must describe the same features."""
    names = set(schema.names)
    for s in pre.steps:
        if s.field not in names:
            raise ManifestError(f"manifest preprocessing: step for '{s.field}' has no field in the schema")
        spec = schema.field(s.field)
        if spec.kind != s.kind:
            raise ManifestError(
                f"manifest preprocessing: field '{s.field}' is {spec.kind} in the schema but {s.kind} in preprocessing"
            )
        if isinstance(s, CategoricalStep) and tuple(spec.categories) != tuple(s.categories):
            raise ManifestError(f"manifest preprocessing: categories of '{s.field}' differ from the schema")
    stepped = [s.field for s in pre.steps]
    if sorted(stepped) != sorted(names):
        raise ManifestError(
            f"manifest preprocessing: steps cover {sorted(stepped)} but the schema has fields {sorted(names)}"
        )
    shape = model.inputs[0].shape
    if len(shape) != 2 or shape[-1] != pre.n_features:
        raise ManifestError(
            f"manifest model.inputs[0].shape: expected [batch, {pre.n_features}] "
            f"(preprocessing produces {pre.n_features} features), got {list(shape)}"
        )
    oshape = model.outputs[0].shape
    if len(oshape) != 2 or oshape[-1] != 1:
        raise ManifestError(f"manifest model.outputs[0].shape: expected [batch, 1], got {list(oshape)}")
