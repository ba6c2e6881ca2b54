"""Hostile scoring inputs: a seeded generator of records (for the long sweep) and hypothesis
strategies (for the tests). Values cover wrong types, huge strings and ints, NaN and infinities,
nested containers, bytes, booleans, numpy scalars, and missing, extra and odd keys."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

SPECIALS: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    2**63,
    -(2**64),
    10**400,
    1.0,
    -0.0,
    1e308,
    -1e308,
    5e-324,
    math.nan,
    math.inf,
    -math.inf,
    "",
    " ",
    "nan",
    "inf",
    "1e999",
    "12",
    "rent",
    "owner",
    "fixed",
    "\x00",
    "\u202e",
    "x" * 300,
    b"rent",
    b"\xff",
    bytearray(b"1"),
    [],
    [1.0],
    {},
    {"a": 1},
    (1,),
    {1, 2},
    np.float32(1.5),
    np.float64(math.nan),
    np.int64(7),
    np.bool_(True),
    np.float16(math.inf),
    np.array([1.0]),
    np.array(1.0),
    complex(1, 2),
    object(),
    Ellipsis,
)


def _nested(rng: random.Random, depth: int) -> Any:
    v: Any = rng.choice((1.0, "x", None))
    for _ in range(depth):
        v = [v] if rng.random() < 0.5 else {"k": v}
    return v


def value(rng: random.Random, huge: bool = True) -> Any:
    """One hostile value; ``huge=False`` leaves out the megabyte-sized ones (for big batches)."""
    r = rng.random()
    if not huge and 0.75 <= r < 0.90:
        r = 0.5
    if r < 0.45:
        return rng.choice(SPECIALS)
    if r < 0.65:
        return rng.choice((rng.uniform(-1e3, 1e3), rng.randint(-(10**6), 10**6), rng.uniform(0, 300)))
    if r < 0.75:
        return "".join(chr(rng.randrange(0, 0x2FFF)) for _ in range(rng.randrange(0, 40)))
    if r < 0.80:
        return "y" * rng.choice((257, 10_000, 1_000_000))
    if r < 0.85:
        return 10 ** rng.randrange(1, 4000)
    if r < 0.90:
        return _nested(rng, rng.choice((2, 50, 5000)))
    if r < 0.95:
        return [rng.random() for _ in range(rng.randrange(0, 5))]
    return rng.choice(("owner", "rent", "parents", "fixed", "freelance", "partime", "castle"))


def record(rng: random.Random, names: Sequence[str], huge: bool = True) -> Any:
    """A hostile record: usually a dict with some schema fields (maybe missing) and some extra keys."""
    if rng.random() < 0.02:
        return rng.choice((None, [], "Income=1", 42, (("Income", 1.0),), b"{}"))
    rec: dict[Any, Any] = {}
    for n in names:
        if rng.random() < 0.9:
            rec[n] = value(rng, huge)
    for _ in range(rng.choice((0, 0, 1, 3))):
        rec[rng.choice(("extra", "", "Income ", "income", "\x00", 5, None, (1,), "Home\u200b"))] = value(rng, huge)
    return rec


# ---------------------------------------------------------------- hypothesis strategies
def _values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(min_value=2**62, max_value=10**500)
        | st.floats()
        | st.text(max_size=50)
        | st.text(min_size=257, max_size=400)
        | st.binary(max_size=20)
        | st.sampled_from(SPECIALS)
        | st.sampled_from(("owner", "rent", "parents", "fixed", "freelance", "partime", "castle"))
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=5,
    )


def dict_records(names: Sequence[str]) -> st.SearchStrategy[dict[Any, Any]]:
    """Dicts over the schema's names (any subset, hostile values) plus odd extra keys."""
    keys = st.sampled_from(list(names)) | st.text(max_size=8) | st.integers() | st.none()
    good_ish = st.fixed_dictionaries({}, optional={n: _values() for n in names})
    extra = st.dictionaries(keys, _values(), max_size=3)
    return st.tuples(good_ish, extra).map(lambda t: {**t[1], **t[0]})


def records(names: Sequence[str]) -> st.SearchStrategy[Any]:
    """Like dict_records, and now and then something that is not a dict at all."""
    return dict_records(names) | st.sampled_from((None, [], "Income=1", 42, b"{}"))
