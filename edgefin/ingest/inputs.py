"""A Keras model with one input per raw column, lookup layers inside: its input preprocessing lifted into
the bundle's spec, so the model left takes the one float vector the runtime encodes.

The layout this lifts (Keras 3 or tf_keras, functional)::

    Input('region', string) -> StringLookup(output_mode='one_hot')          \\
    Input('grade', int64)   -> IntegerLookup(...) [-> CategoryEncoding]       > Concatenate -> Dense -> ...
    Input('income', float)  -> Normalization / Rescaling / BatchNormalization /
    Input('age', float)     (nothing: the raw column)                      /

Each input is one data column (the input's name). Its **chain** is the run of preprocessing layers that
alone consume it; the chains' ends meet in one ``Concatenate`` (the **join**), or, for a one-input model,
the chain's end is the join.

* A **numeric** chain (Normalization, Rescaling, BatchNormalization in inference mode, or none) is an
  affine ``a * x + b`` with ``a > 0``: it becomes the spec's ``(x - mean) / scale`` (a NumericStep).
* A **categorical** chain starts with a StringLookup, IntegerLookup or CategoryEncoding (may go on through
  CategoryEncoding, Embedding, Flatten, Reshape): whatever it computes is a function of one category, so
  it is a table with one row per category. The field becomes a CategoricalStep (one-hot: one column per
  vocabulary entry, then the out-of-vocabulary column), and the table is folded into the kernel of each
  Dense layer that takes the join (``K' = T @ K``): for a one-hot lookup that only reorders rows (the
  lookup's OOV slot comes first, the runtime's last), for an embedding it multiplies each category's
  vector in. The table's rows are the chain's own outputs, so OOV and mask handling are the layer's:
  an unseen category gets the lookup's OOV row; a mask token gets its row (zeros) as a category of its
  own; a missing value is fed to the model as the empty string (a string input; the runtime treats ``""``
  as missing too) or as an unseen value (an integer input).

Refused, naming the input and layer: Hashing (an unseen value's bucket needs the hash function, which the
runtime has not), Discretization, TextVectorization, a lookup with ``num_oov_indices > 1`` (unseen values
spread over several OOV slots by hash), inputs wider than one value, a numeric input that goes through
anything but an affine layer before the join, a categorical join whose consumer is not a Dense layer,
and an input used again after the join.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..errors import UnsupportedLayerError
from .columns import Columns, training_median
from .lift import _flat, graph_nodes, input_name, layer_affine

#: layers that start a categorical chain (they hold the vocabulary)
LOOKUPS = ("StringLookup", "IntegerLookup", "CategoryEncoding")
#: layers a categorical chain may go on through (still a function of one category)
AFTER_LOOKUP = ("CategoryEncoding", "Embedding", "Flatten", "Reshape")
#: layers a numeric chain may be made of (per-column affine maps)
AFFINE = ("Normalization", "Rescaling", "BatchNormalization")
#: preprocessing layers that are never lifted, and why
REFUSED = {
    "Hashing": (
        "an unseen value's bucket comes from the hash function (FarmHash), which the device runtime does not "
        "have, so the bundle could not score unseen values as the model does"
    ),
    "Discretization": "the bundle's numeric encoding has no bucketing that matches it exactly",
    "TextVectorization": "it splits free text into tokens; the bundle takes one category per field",
}
#: an OOV probe for string inputs (never a real category)
_UNSEEN = "\x00edgefin-unseen\x00"
#: the spec's category for a missing value when the model encodes the empty string apart from unseen ones
MISSING_CATEGORY = "__missing__"

Feed = Literal["float", "string", "int"]


@dataclass(frozen=True)
class FieldLift:
    """One input's preprocessing as the bundle's spec does it.

    ``table`` (categorical): the chain's output for each spec column (``categories``, then OOV), shape
    (len(categories) + 1, width). ``mean``/``scale`` (numeric): the chain's affine map as ``(x - mean) / scale``.
    ``missing_category``: the category a missing value is filled with, when the model encodes it apart
    from unseen values (a mask token ``""``); None: missing values take the OOV slot."""

    name: str
    kind: Literal["numeric", "categorical"]
    feed: Feed
    rank: int  # the input's rank (1: shape (batch,), 2: (batch, 1))
    width: int  # the chain's output width (its part of the joined vector)
    layers: tuple[tuple[str, str], ...]  # (layer name, class) along the chain
    categories: tuple[str, ...] = ()
    table: np.ndarray | None = None
    missing_category: str | None = None
    unseen: Any = None  # what the model is fed for a missing integer (an unseen value)
    mean: float = 0.0
    scale: float = 1.0

    @property
    def how(self) -> str:
        """For ``edgefin inspect``: what became of this field's preprocessing."""
        names = ", ".join(f"{n} ({c})" for n, c in self.layers)
        if self.kind == "categorical":
            return f"lifted from the model: {names} -> one-hot over {len(self.categories)} categories + other"
        if self.layers:
            return f"lifted from the model: {names} -> (x - mean) / scale"
        return "identity on the raw column (the model takes it as it is)"


@dataclass
class InputLift:
    """Every input's lift in the join's order, the model after the join (one float input), and what was
    folded (the Dense layers whose kernel rows now take the spec's encoding)."""

    fields: tuple[FieldLift, ...]
    rest: Any
    join: str
    folded: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return sum(len(f.categories) + 1 if f.kind == "categorical" else 1 for f in self.fields)

    def record(self) -> dict[str, Any]:
        return {
            "layer": self.join,
            "class": "per-input preprocessing",
            "fields": {f.name: f.how for f in self.fields},
            "folded_into": list(self.folded),
        }


def needs_input_lift(model: Any) -> bool:
    """A Keras model with more than one input, or an input that is not float (strings, integers)."""
    inputs = list(getattr(model, "inputs", None) or [])
    if not inputs or not hasattr(inputs[0], "_keras_history"):
        return False
    return len(inputs) > 1 or any(_feed(t) != "float" for t in inputs)


def lift_inputs(model: Any, keras: Any, epsilon: float, *, label: str = "model") -> InputLift:
    """Lift each input's chain into a FieldLift and rebuild the model from the join on, with one float
    input ``features`` (``keras``: the module the model's layers come from). UnsupportedLayerError
    naming the input and layer when the model is not of the layout this lifts."""
    inputs = list(model.inputs)
    outputs = list(getattr(model, "outputs", None) or [])
    if len(outputs) != 1:
        raise UnsupportedLayerError(f"{label} has {len(outputs)} outputs; expected one probability output")
    consumers = _consumers(outputs[0])
    ends: list[Any] = []
    lifts: list[FieldLift] = []
    chain_tensors: set[int] = set()
    for t in inputs:
        end, layers, tensors = _chain(t, consumers, label)
        chain_tensors.update(tensors)
        ends.append(end)
        lifts.append(_field(keras, t, end, layers, epsilon, label))
    joined, join_name, order = _join(ends, [f.name for f in lifts], consumers, label)
    fields = tuple(lifts[i] for i in order)
    names = [f.name for f in fields]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UnsupportedLayerError(f"{label}: two inputs are named '{dup[0]}'; each input must name one data column")
    table = _block_table(fields)
    rest, folded = _rebuild(model, keras, joined, chain_tensors | {id(t) for t in inputs}, table, consumers, label)
    return InputLift(fields=fields, rest=rest, join=join_name, folded=folded)


# ---------------------------------------------------------------- the graph
def _consumers(output: Any) -> dict[int, list[tuple[Any, Any]]]:
    out: dict[int, list[tuple[Any, Any]]] = {}
    for op, node in graph_nodes(output):
        if type(op).__name__ == "InputLayer":
            continue
        for t in {id(x): x for x in _flat(node.input_tensors)}.values():
            out.setdefault(id(t), []).append((op, node))
    return out


def _chain(t: Any, consumers: dict[int, list[tuple[Any, Any]]], label: str) -> tuple[Any, list[Any], set[int]]:
    """Follow the input through the preprocessing layers that alone consume it: (end tensor, layers, ids)."""
    name = input_name(t)
    layers: list[Any] = []
    tensors: set[int] = set()
    cur = t
    while True:
        users = consumers.get(id(cur), [])
        if len(users) > 1:
            raise UnsupportedLayerError(
                f"{label}: input '{name}' is used by {len(users)} layers "
                f"({', '.join(str(op.name) for op, _ in users)}) after {len(layers)} preprocessing layer(s); "
                f"edgefin lifts models where each input goes through its own preprocessing into one Concatenate"
            )
        if not users:
            if not layers:
                raise UnsupportedLayerError(f"{label}: input '{name}' is not used by the model")
            return cur, layers, tensors
        op, node = users[0]
        kind = type(op).__name__
        if kind in REFUSED:
            raise UnsupportedLayerError(
                f"{label}: input '{name}' goes through layer '{op.name}' ({kind}), which edgefin does not lift "
                f"into the bundle's encoding: {REFUSED[kind]}. Replace it with a StringLookup/IntegerLookup "
                f"(one-hot) or encode the column outside the model"
            )
        allowed: tuple[str, ...]
        if any(type(x).__name__ in LOOKUPS for x in layers):
            allowed = AFTER_LOOKUP
        elif layers:
            allowed = AFFINE  # a numeric chain stays numeric
        else:
            allowed = LOOKUPS + AFFINE
        if kind not in allowed or len(_flat(node.input_tensors)) != 1 or len(_flat(node.output_tensors)) != 1:
            return cur, layers, tensors
        layers.append(op)
        cur = _flat(node.output_tensors)[0]
        tensors.add(id(cur))


def _join(
    ends: list[Any], names: list[str], consumers: dict[int, list[tuple[Any, Any]]], label: str
) -> tuple[Any, str, list[int]]:
    """The tensor the chains meet in (a Concatenate's output; one input: its chain's end), its layer's
    name, and the inputs' order in it."""
    if len(ends) == 1:
        return ends[0], "input", [0]
    users = [consumers.get(id(e), []) for e in ends]
    joins = {id(u[0][1]) for u in users if len(u) == 1}
    first: tuple[Any, Any] | None = users[0][0] if users[0] else None
    if (
        first is None
        or len(joins) != 1
        or not all(len(u) == 1 for u in users)
        or type(first[0]).__name__ != "Concatenate"
        or int(getattr(first[0], "axis", -1)) not in (-1, 1)
    ):
        where = ", ".join(f"'{n}' -> {u[0][0].name if u else 'output'}" for n, u in zip(names, users, strict=True))
        raise UnsupportedLayerError(
            f"{label}: its inputs do not meet in one Concatenate after their preprocessing ({where}); edgefin "
            f"lifts models where each input goes through its own preprocessing (lookup, Normalization) and "
            f"all of them are joined by one Concatenate"
        )
    op, node = first
    ins = _flat(node.input_tensors)
    if len(ins) != len(ends) or any(not any(t is e for e in ends) for t in ins):
        raise UnsupportedLayerError(
            f"{label}: layer '{op.name}' (Concatenate) joins {len(ins)} tensors, not just the {len(ends)} inputs' "
            f"preprocessed values; edgefin lifts a Concatenate of the inputs' preprocessing only"
        )
    order = [next(i for i, e in enumerate(ends) if e is t) for t in ins]
    return _flat(node.output_tensors)[0], str(op.name), order


# ---------------------------------------------------------------- one input
def _feed(t: Any) -> Feed:
    dtype = str(getattr(getattr(t, "dtype", None), "name", getattr(t, "dtype", "float32")))
    if "string" in dtype:
        return "string"
    if "int" in dtype:
        return "int"
    return "float"


def _field(keras: Any, t: Any, end: Any, layers: list[Any], epsilon: float, label: str) -> FieldLift:
    """Input ``t``'s chain (``layers``, ending in ``end``) as the spec's step: numeric from the layers'
    affine maps (checked against the chain itself), categorical from the chain's output per category."""
    name = input_name(t)
    shape = tuple(t.shape)
    rank = len(shape)
    if rank not in (1, 2) or (rank == 2 and shape[1] != 1):
        raise UnsupportedLayerError(
            f"{label}: input '{name}' has shape {list(shape)}; edgefin lifts models with one input per data "
            f"column, each of shape (batch, 1) or (batch,): split it into one input per column"
        )
    described = tuple((str(x.name), type(x).__name__) for x in layers)
    feed = _feed(t)
    end_shape = tuple(end.shape)
    width = int(end_shape[-1]) if len(end_shape) == 2 and end_shape[-1] is not None else -1
    if width < 1 and not (len(end_shape) == 1 and not layers):
        raise UnsupportedLayerError(
            f"{label}: input '{name}' reaches the join with shape {list(end_shape)} after "
            f"{', '.join(n for n, _ in described) or 'no layer'}; expected (batch, width) (add a Flatten)"
        )
    width = max(width, 1)
    if not layers or type(layers[0]).__name__ in AFFINE:
        if feed == "string":
            raise UnsupportedLayerError(
                f"{label}: input '{name}' takes strings but no StringLookup encodes them before the join"
            )
        a, b = 1.0, 0.0
        for layer in layers:
            found = layer_affine(layer, 1, epsilon)
            if found is None:
                raise UnsupportedLayerError(
                    f"{label}: input '{name}' goes through layer '{layer.name}' ({type(layer).__name__}), which is "
                    f"not a per-column map (x - mean) / scale with a positive scale for one column"
                )
            m, s = float(found[0][0]), float(found[1][0])
            a, b = a / s, (b - m) / s
        if width != 1:
            raise UnsupportedLayerError(f"{label}: numeric input '{name}' reaches the join {width} values wide")
        _check_affine(keras.Model(t, end), a, b, rank, name, label)
        return FieldLift(name, "numeric", feed, rank, 1, described, mean=-b / a, scale=1.0 / a)
    lookup = layers[0]
    n_oov = int(getattr(lookup, "num_oov_indices", 0) or 0)
    if n_oov > 1:
        raise UnsupportedLayerError(
            f"{label}: input '{name}' goes through layer '{lookup.name}' ({type(lookup).__name__}) with "
            f"num_oov_indices={n_oov}: unseen values are spread over {n_oov} OOV slots by hash, which the "
            f"bundle's one OOV slot cannot reproduce; use num_oov_indices=1"
        )
    cats, probes, unseen = _vocabulary(lookup, feed, name, label)
    sub = keras.Model(t, end)
    missing_probe = "" if feed == "string" else unseen
    rows = _run(sub, [*probes, unseen, missing_probe], feed, rank, width, name, label, lookup)
    table, unseen_row, missing_row = rows[:-2], rows[-2:-1], rows[-1:]
    missing_category = None
    if feed == "string" and not np.array_equal(missing_row, unseen_row):
        missing_category = MISSING_CATEGORY
        while missing_category in cats:
            missing_category = "_" + missing_category + "_"
        cats = (*cats, missing_category)
        table = np.concatenate([table, missing_row])
    full = np.concatenate([table, unseen_row]).astype(np.float64)
    return FieldLift(
        name,
        "categorical",
        feed,
        rank,
        width,
        described,
        cats,
        full,
        missing_category,
        unseen if feed == "int" else None,
    )


def _vocabulary(lookup: Any, feed: Feed, name: str, label: str) -> tuple[tuple[str, ...], list[Any], Any]:
    """The spec's categories (text), the values fed to the model for them, and an unseen value."""
    from edgefin_runtime.plan import canonical_category

    kind = type(lookup).__name__
    takes = "string" if kind == "StringLookup" else "int"
    if feed != takes:
        raise UnsupportedLayerError(
            f"{label}: input '{name}' takes {feed} values but goes into layer '{lookup.name}' ({kind}), which "
            f"edgefin lifts for {'string' if takes == 'string' else 'integer'} inputs only"
        )
    if kind == "CategoryEncoding":
        n = int(lookup.num_tokens)
        return tuple(str(i) for i in range(n)), list(range(n)), n
    oov, mask = getattr(lookup, "oov_token", None), getattr(lookup, "mask_token", None)
    special = {str(x) for x in (oov, mask) if x is not None}
    values: list[Any] = []
    cats: list[str] = []
    entries = [v for v in lookup.get_vocabulary() if str(_text(v)) not in special]
    if mask is not None:
        entries.append(mask)  # a category of its own (the model's row for it: zeros), unless it is ""
    for v in entries:
        v = int(v) if feed == "int" else str(_text(v))
        text = canonical_category(v)
        if text is None or text in cats:
            continue
        cats.append(text)
        values.append(v)
    if not cats:
        raise UnsupportedLayerError(f"{label}: layer '{lookup.name}' ({kind}) of input '{name}' has no vocabulary")
    if feed == "int":
        known = [int(v) for v in values] + [int(x) for x in (oov, mask) if x is not None]
        unseen: Any = max(known) + 1
    else:
        unseen = _UNSEEN
    return tuple(cats), values, unseen


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def _tensor(values: list[Any], feed: Feed, rank: int) -> Any:
    import tensorflow as tf

    if feed == "string":
        arr: np.ndarray = np.asarray([str(v) for v in values], dtype=object)
        t = tf.constant(arr.astype(str) if len(arr) else arr, dtype=tf.string)
    elif feed == "int":
        t = tf.constant(np.asarray(values, dtype=np.int64))
    else:
        t = tf.constant(np.asarray(values, dtype=np.float32))
    return tf.reshape(t, (-1, 1)) if rank == 2 else t


def _run(
    sub: Any, values: list[Any], feed: Feed, rank: int, width: int, name: str, label: str, lookup: Any
) -> np.ndarray:
    """The chain's output for each value, (n, width); an input the layer refuses (num_oov_indices=0 and
    an unseen value) gives a zero row (the model has nothing for it)."""
    rows = []
    for chunk in range(0, len(values), 4096):
        part = values[chunk : chunk + 4096]
        try:
            rows.append(
                np.asarray(sub(_tensor(part, feed, rank), training=False), dtype=np.float64).reshape(len(part), -1)
            )
        except Exception:  # noqa: BLE001 - a lookup without OOV slots raises on an unseen value
            rows.append(np.stack([_one(sub, v, feed, rank, width) for v in part]))
    out = np.concatenate(rows)
    if out.shape[1] != width:
        raise UnsupportedLayerError(
            f"{label}: input '{name}': layer '{lookup.name}' gives {out.shape[1]} values per row, expected {width}"
        )
    return out


def _one(sub: Any, v: Any, feed: Feed, rank: int, width: int) -> np.ndarray:
    try:
        return np.asarray(sub(_tensor([v], feed, rank), training=False), dtype=np.float64).reshape(-1)
    except Exception:  # noqa: BLE001 - see _run
        return np.zeros(width)


def _check_affine(sub: Any, a: float, b: float, rank: int, name: str, label: str) -> None:
    """The numeric chain computes a * x + b (checked at points across its range); else refuse."""
    centre, spread = -b / a, 1.0 / a
    x = np.array([centre + k * spread for k in (-3.0, -1.0, 0.0, 0.5, 2.0, 4.0)], dtype=np.float32)
    got = np.asarray(sub(_tensor(list(x), "float", rank), training=False), dtype=np.float64).reshape(-1)
    want = a * x.astype(np.float64) + b
    if not np.all(np.abs(got - want) <= 1e-5 * (1.0 + np.abs(want))):
        raise UnsupportedLayerError(
            f"{label}: the preprocessing of input '{name}' does not compute the (x - mean) / scale edgefin reads "
            f"from its layers (max difference {float(np.max(np.abs(got - want))):.2e}); it is not lifted"
        )


# ---------------------------------------------------------------- after the join
def _block_table(fields: tuple[FieldLift, ...]) -> np.ndarray | None:
    """T with spec-encoded vector @ T = the joined vector the model computed (None: T is the identity)."""
    if all(f.kind == "numeric" for f in fields):
        return None
    rows = sum(len(f.categories) + 1 if f.kind == "categorical" else 1 for f in fields)
    cols = sum(f.width for f in fields)
    t = np.zeros((rows, cols))
    r = c = 0
    for f in fields:
        if f.kind == "numeric":
            t[r, c] = 1.0
            r, c = r + 1, c + 1
        else:
            assert f.table is not None
            t[r : r + len(f.table), c : c + f.width] = f.table
            r, c = r + len(f.table), c + f.width
    return t


def _rebuild(
    model: Any,
    keras: Any,
    joined: Any,
    forbidden: set[int],
    table: np.ndarray | None,
    consumers: dict[int, list[tuple[Any, Any]]],
    label: str,
) -> tuple[Any, tuple[str, ...]]:
    """The model from the join on, taking the spec's encoded vector; each Dense that takes the join gets
    ``T @ K`` as its kernel (a new layer; the others are the model's own)."""
    width = int(table.shape[0]) if table is not None else int(joined.shape[-1])
    new_input = keras.Input((width,), name="features")
    memo: dict[int, Any] = {id(joined): new_input}
    folded: dict[int, tuple[Any, Any]] = {}
    if table is not None:
        for op, _ in consumers.get(id(joined), []):
            if type(op).__name__ != "Dense":
                raise UnsupportedLayerError(
                    f"{label}: the joined inputs go to layer '{op.name}' ({type(op).__name__}); edgefin folds the "
                    f"lookups' encodings into the Dense layer that takes them, so that layer must be a Dense"
                )

    def tensor(kt: Any) -> Any:
        if id(kt) in memo:
            return memo[id(kt)]
        if id(kt) in forbidden:
            raise UnsupportedLayerError(
                f"{label}: an input (or its preprocessing) is used again after the join (e.g. a skip connection); "
                f"edgefin lifts models whose inputs are used only through the join"
            )
        op, node_index, _ = kt._keras_history
        node = op._inbound_nodes[node_index]
        ins = _flat(node.input_tensors)
        args = [tensor(x) for x in ins]
        layer = op
        if table is not None and any(x is joined for x in ins):
            if id(op) not in folded:
                folded[id(op)] = (op, type(op).from_config(op.get_config()))
            layer = folded[id(op)][1]
        out = layer(args[0] if len(args) == 1 else args)
        for src, dst in zip(_flat(node.output_tensors), _flat(out), strict=True):
            memo[id(src)] = dst
        return memo[id(kt)]

    rest = keras.Model(new_input, tensor(model.outputs[0]), name=str(getattr(model, "name", "model")))
    for op, new in folded.values():
        weights = [np.asarray(w) for w in op.get_weights()]
        assert table is not None
        weights[0] = (table @ weights[0].astype(np.float64)).astype(np.float32)
        new.set_weights(weights)
    return rest, tuple(str(op.name) for op, _ in folded.values())


# ---------------------------------------------------------------- the bundle's schema and spec
def input_columns(
    lift: InputLift, frames: dict[str, Any], frame: Any, tspec: Any, *, source: str, drop: tuple[str, ...] = ()
) -> Columns:
    """The schema and spec for the lifted fields, in the join's order: numeric fields with the chain's
    (x - mean) / scale and the training median for gaps; categorical fields with the lookup's vocabulary
    (one-hot + OOV), a gap filled with the category the model encodes "" as (else the OOV slot)."""
    from dataclasses import replace

    from edgefin_runtime.manifest import CategoricalStep, NumericStep, PreprocessSpec, Step

    from ..data import fit_schema
    from ..data.preprocessing import MISSING_SENTINEL
    from ..data.schema import missing_fields
    from ..errors import DataError

    names = [f.name for f in lift.fields]
    if tspec.name in names:
        raise DataError(f"the model takes the target column '{tspec.name}' as its input '{tspec.name}'")
    absent = [n for n in names if n not in frame.columns]
    if absent:
        raise DataError(
            f"{source} has no column {', '.join(repr(n) for n in absent)}: the model's inputs are "
            f"{', '.join(names)} (each input takes the data column of its name)"
        )
    kinds: dict[str, str] = {f.name: f.kind for f in lift.fields}
    left_out = tuple(c for c in frame.columns if c not in kinds and c != tspec.name and c not in drop)
    schema = fit_schema(frames["train"], kinds, tspec, source=source, allow_missing=missing_fields([frame], kinds))
    by_name = {f.name: f for f in lift.fields}
    schema = replace(
        schema,
        fields=tuple(
            replace(fs, categories=by_name[fs.name].categories) if fs.kind == "categorical" else fs
            for fs in schema.fields
        ),
    )
    steps: list[Step] = []
    for f in lift.fields:
        if f.kind == "numeric":
            steps.append(NumericStep(field=f.name, fill=training_median(frames, f.name), mean=f.mean, scale=f.scale))
        else:
            fill_cat = f.missing_category or MISSING_SENTINEL
            while f.missing_category is None and fill_cat in f.categories:
                fill_cat = "_" + fill_cat + "_"
            steps.append(CategoricalStep(field=f.name, categories=f.categories, fill=fill_cat, encoding="onehot"))
    return Columns(schema, PreprocessSpec(steps=tuple(steps)), kinds, left_out, "model")


# ---------------------------------------------------------------- the user's model on raw rows
def raw_inputs(lift: InputLift, model: Any, frame: Any, spec: Any) -> list[Any]:
    """What the user's model is fed for ``frame``'s rows, in the model's input order: numeric columns with
    gaps filled as the spec fills them, categories as text ("" for a missing string; an unseen integer)."""
    from edgefin_runtime.plan import canonical_category

    fills = {s.field: float(s.fill) for s in spec.steps if s.kind == "numeric"}
    by_name = {f.name: f for f in lift.fields}
    out = []
    for t in model.inputs:
        f = by_name[input_name(t)]
        col = frame[f.name]
        if f.kind == "numeric":
            values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
            values = np.where(np.isnan(values), fills.get(f.name, 0.0), values)
            out.append(_tensor(list(values), f.feed if f.feed != "string" else "float", f.rank))
            continue
        canon = [canonical_category(v) if v is not None and v == v else None for v in col.astype(object)]
        if f.feed == "int":
            out.append(_tensor([int(c) if c is not None and _is_int(c) else f.unseen for c in canon], "int", f.rank))
        else:
            out.append(_tensor(["" if c is None else c for c in canon], "string", f.rank))
    return out


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def predict_raw(model: Any, inputs: list[Any], n: int, batch: int = 4096) -> np.ndarray:
    """The user's model on its raw inputs, float64 (n,), in inference mode."""
    out = np.empty(n, dtype=np.float64)
    for s in range(0, n, batch):
        part = [x[s : s + batch] for x in inputs]
        out[s : s + batch] = np.asarray(model(part, training=False), dtype=np.float64).reshape(-1)
    return out


__all__ = [
    "AFFINE",
    "AFTER_LOOKUP",
    "FieldLift",
    "InputLift",
    "LOOKUPS",
    "MISSING_CATEGORY",
    "REFUSED",
    "input_columns",
    "lift_inputs",
    "needs_input_lift",
    "predict_raw",
    "raw_inputs",
]
