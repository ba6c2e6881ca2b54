"""What the Spark and Dask adapters and ``edgefin-run score --engine`` share: the bundle shipped as
bytes, one verified Predictor per worker process, and one columnar block scored into output columns.

* :func:`bundle_bytes` reads a bundle once on the driver and names it by its sha256.
* :func:`worker_predictor` is called inside a worker for every batch: the first call in a process
  checks the bytes against the sha256, loads them (hashes, versions and the golden self-test, as
  :func:`~edgefin_runtime.load` always does) with one engine thread, and caches the Predictor by
  (sha256, backend, policy); later calls return it. A live engine is never pickled.
* :func:`score_block` scores the schema's columns of one batch through ``score_columns`` (the
  vectorised path) and returns the output columns: a bad row gets its error, never disappears.

Output columns, after the key columns: ``score`` (float32, null when rejected), ``decision`` (bool,
null when rejected), ``label``, ``flags`` (';'-joined, as the CSV output), ``error_type``, ``field``,
``error`` (all three null when scored).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np

from .errors import BundleError, InputError

if TYPE_CHECKING:
    from .predictor import Predictor

#: output columns after the key columns (``reasons`` follows them when asked for)
OUTPUT_COLUMNS = ("score", "decision", "label", "flags", "error_type", "field", "error")
BundleSource = Union[str, os.PathLike[str], bytes]

_CacheKey = tuple[str, Optional[str], str]  # noqa: UP045 - evaluated at run time (Python 3.9)
_CACHE: dict[_CacheKey, Predictor] = {}
_LOADS: dict[_CacheKey, int] = {}
_LOCK = threading.Lock()


def bundle_bytes(bundle: BundleSource) -> tuple[bytes, str]:
    """The bundle's bytes and their sha256 (a path is read once, here, on the driver)."""
    if isinstance(bundle, (bytes, bytearray, memoryview)):
        data = bytes(bundle)
    else:
        try:
            with open(os.fspath(bundle), "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise BundleError(f"cannot read bundle {os.fspath(bundle)}: {exc.strerror}") from None
    return data, hashlib.sha256(data).hexdigest()


def worker_predictor(
    data: bytes | Callable[[], bytes], sha256: str, backend: str | None = None, policy: str = "lenient"
) -> Predictor:
    """This process's Predictor for the bundle ``sha256``: loaded and self-tested on first use.

    ``data`` is the bundle's bytes or a callable returning them (a Spark broadcast's ``.value``),
    read only when this process has not loaded the bundle yet.
    """
    return worker_predictor_loaded(data, sha256, backend, policy)[0]


def worker_predictor_loaded(
    data: bytes | Callable[[], bytes], sha256: str, backend: str | None = None, policy: str = "lenient"
) -> tuple[Predictor, bool]:
    """:func:`worker_predictor` and whether this call loaded it (True once per process and key)."""
    key = (sha256, backend, policy)
    p = _CACHE.get(key)
    if p is not None:
        return p, False
    with _LOCK:
        p = _CACHE.get(key)
        if p is not None:
            return p, False
        from .predictor import load

        raw = data() if callable(data) else data
        got = hashlib.sha256(raw).hexdigest()
        if got != sha256:
            raise BundleError(
                f"the bundle bytes shipped to this worker have sha256 {got[:16]}..., expected "
                f"{sha256[:16]}...; the transfer damaged them - rerun the job"
            )
        p = load(raw, backend, policy=policy, threads=1, inter_op_threads=1)
        _CACHE[key] = p
        _LOADS[key] = _LOADS.get(key, 0) + 1
    return p, True


def worker_loads(sha256: str) -> int:
    """How many times this process loaded the bundle ``sha256`` (1 once it has scored: the cache works)."""
    return sum(n for (sha, _, _), n in _LOADS.items() if sha == sha256)


def key_columns_for(
    columns: Sequence[str], schema_names: Sequence[str], key_columns: Sequence[str] | None
) -> list[str]:
    """The key columns carried to the output: as given, else every input column the schema does not use."""
    if key_columns is None:
        known = set(schema_names)
        return [c for c in columns if c not in known]
    missing = [c for c in key_columns if c not in columns]
    if missing:
        raise InputError(f"key column(s) {missing} are not in the input (its columns: {list(columns)})")
    return list(key_columns)


def score_block(predictor: Predictor, columns: Mapping[str, Any], n: int, max_reasons: int = 0) -> dict[str, Any]:
    """Score one batch's columns; the output columns as arrays of length ``n``.

    Only the schema's fields reach the encoder (key columns never do). A problem of the whole batch
    (a required column absent) rejects every row with that error, so no row is dropped.
    ``max_reasons`` > 0 adds ``reasons``: each scored row's principal reasons as a JSON list of
    ``{"field", "direction", "contribution", "text"}`` (``Predictor.score_batch(reasons=True)``).
    """
    known = set(predictor.schema.names)
    fields = {k: v for k, v in columns.items() if k in known}
    try:
        res = predictor.score_columns(fields)
    except InputError as err:
        out = _all_rejected(err, n)
        if max_reasons:
            out["reasons"] = np.full(n, None, dtype=object)
        return out
    probs = res.probabilities
    rejected = res.rejected
    decisions = res.decisions
    label = np.where(decisions, predictor.info.schema.positive_label, predictor.info.schema.negative_label)
    label = label.astype(object)
    flags = np.full(n, "", dtype=object)
    for key in sorted(res.flags, key=lambda k: (res.field_order.get(k.partition(":")[2], 1 << 30), k)):
        for i in np.flatnonzero(res.flags[key]).tolist():
            flags[i] = key if not flags[i] else flags[i] + ";" + key
    error_type = np.full(n, None, dtype=object)
    field = np.full(n, None, dtype=object)
    error = np.full(n, None, dtype=object)
    for i, row_err in res.errors.items():
        error_type[i] = type(row_err).__name__
        field[i] = row_err.field
        error[i] = row_err.reason
    if rejected.any():
        label[rejected] = None
        flags[rejected] = None
    out = {
        "score": probs,
        "decision": decisions,
        "label": label,
        "flags": flags,
        "error_type": error_type,
        "field": field,
        "error": error,
        "_rejected": rejected,
    }
    if max_reasons:
        out["reasons"] = _reasons(predictor, fields, rejected, max_reasons)
    return out


def _reasons(predictor: Predictor, fields: Mapping[str, Any], rejected: np.ndarray, max_reasons: int) -> np.ndarray:
    """Reasons of the scored rows as JSON text (None for rejected rows). Records are rebuilt from the
    columns with every null (None, NaN, pandas.NA) as None, the columns path's meaning of missing."""
    import json

    rows = np.flatnonzero(~rejected)
    out = np.full(len(rejected), None, dtype=object)
    if not len(rows):
        return out
    values = {k: [_plain(v) for v in np.asarray(col, dtype=object)[rows].tolist()] for k, col in fields.items()}
    names = list(values)
    records = [dict(zip(names, vals)) for vals in zip(*values.values())]
    results = predictor.score_batch(records, reasons=True, max_reasons=max_reasons)
    for i, r in zip(rows.tolist(), results):
        if r.explanation is not None:
            out[i] = json.dumps([x.to_dict() for x in r.explanation.reasons], sort_keys=True)
    return out


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and v != v):
        return None
    if type(v).__name__ in ("NAType", "NaTType"):
        return None
    return v


def _all_rejected(err: InputError, n: int) -> dict[str, Any]:
    return {
        "score": np.full(n, np.nan, dtype=np.float32),
        "decision": np.zeros(n, dtype=bool),
        "label": np.full(n, None, dtype=object),
        "flags": np.full(n, None, dtype=object),
        "error_type": np.full(n, type(err).__name__, dtype=object),
        "field": np.full(n, err.field, dtype=object),
        "error": np.full(n, err.reason, dtype=object),
        "_rejected": np.ones(n, dtype=bool),
    }


def to_pandas(out: Mapping[str, Any], keys: Mapping[str, Any], index: Any = None) -> Any:
    """The output as a pandas DataFrame: key columns first, score and decision null (nullable
    Float32 and boolean) on rejected rows; ``index``: the input batch's (default a range)."""
    import pandas as pd

    rejected = out["_rejected"]
    cols: dict[str, Any] = {k: (v.array if isinstance(v, pd.Series) else v) for k, v in keys.items()}
    cols["score"] = pd.arrays.FloatingArray(np.asarray(out["score"], dtype=np.float32), rejected.copy())
    cols["decision"] = pd.arrays.BooleanArray(np.asarray(out["decision"], dtype=bool), rejected.copy())
    for name in OUTPUT_COLUMNS[2:] + (("reasons",) if "reasons" in out else ()):
        cols[name] = pd.array(out[name], dtype="string")
    return pd.DataFrame(cols, index=index if index is not None else pd.RangeIndex(len(rejected)))


def to_arrow(out: Mapping[str, Any], keys: Mapping[str, Any]) -> Any:
    """The output as a pyarrow RecordBatch (nulls on rejected rows, as :func:`to_pandas`)."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    rejected = out["_rejected"]
    arrays: list[Any] = list(keys.values())
    names: list[str] = list(keys)
    arrays.append(pa.array(out["score"], type=pa.float32(), mask=rejected))
    arrays.append(pa.array(np.asarray(out["decision"], dtype=bool), type=pa.bool_(), mask=rejected))
    extra = ("reasons",) if "reasons" in out else ()
    for name in OUTPUT_COLUMNS[2:] + extra:
        arrays.append(pa.array(out[name], type=pa.string()))
    names.extend(OUTPUT_COLUMNS + extra)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def error_counts(out: Mapping[str, Any]) -> dict[str, int]:
    """Rejected rows of one block by error type."""
    counts: dict[str, int] = {}
    for t in out["error_type"][out["_rejected"]].tolist():
        counts[t] = counts.get(t, 0) + 1
    return counts
