"""``load()`` a bundle into a :class:`Predictor`, which scores records, batches and columns.

Loading is all-or-nothing: the bundle's hashes are verified before an engine sees the model bytes
(``read_bundle``), the manifest's format and runtime versions are checked (``Manifest.from_dict``),
the engine is built, and the golden vectors must reproduce their expected scores (the self-test).
Any failure raises a typed :mod:`~edgefin_runtime.errors` exception and no Predictor exists.

A Predictor is immutable after load and may be shared by any number of threads.
"""

from __future__ import annotations

import gc
import math
import operator
import sys
from _thread import _local as thread_local  # threading.local itself, without importing threading (cold start)
from _thread import allocate_lock
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from . import results as _results
from .backends import Engine, create_engine
from .backends.base import RowSlot
from .bundle import Bundle, Source, read_bundle
from .errors import BackendError, EdgefinRuntimeError, InputError, SelfTestError, SignatureError
from .manifest import Manifest, Schema
from .preprocess import Policy, Preprocessor
from .results import (
    ColumnsScore,
    Score,
    _flags_by_row,
    _new,
    _one_getter,
    _set_d,
    _set_f,
    _set_l,
    _set_p,
    _tuple_new,
)

#: rows encoded and scored together by score_columns (a block's features stay in cache)
COLUMN_BLOCK = 16384
#: batches up to this size go record by record through the microsecond path: the vectorised
#: columns path costs ~20 numpy calls per field, which only pays off on larger batches
SMALL_BATCH = 64


if TYPE_CHECKING:
    from .explain import ExplainedResult, Explainer, Explanation
    from .results import Result

_EXPLAINER_LOCK = allocate_lock()


# ---------------------------------------------------------------- the predictor
class Predictor:
    """A verified bundle bound to an engine. Build it with :func:`load`."""

    def __init__(self, bundle: Bundle, engine: Engine, policy: Policy | None = None) -> None:
        m = bundle.manifest
        self._bundle = bundle
        self._engine = engine
        self._policy = policy or Policy()
        self._pre = Preprocessor(m.schema, m.preprocessing, self._policy)
        self._threshold = float(m.decision.threshold)
        self._pos = m.schema.positive_label
        self._neg = m.schema.negative_label
        self._order = {s.field: i for i, s in enumerate(m.preprocessing.steps)}
        self._names = m.schema.names
        # annotated: mypy 2.4 crashes inferring this conditional from itemgetter's overloads
        self._getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            operator.itemgetter(*self._names) if len(self._names) > 1 else _one_getter(self._names[0])
        )
        self._local = thread_local()
        if engine.n_features != self._pre.n_features:
            raise BackendError(
                f"{engine.name}: the model takes {engine.n_features} features but the "
                f"bundle's preprocessing produces {self._pre.n_features}"
            )

    # ------------------------------------------------------------ properties
    @property
    def info(self) -> Manifest:
        """The bundle's manifest (schema, preprocessing, model, decision, metrics, parity...)."""
        return self._bundle.manifest

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def schema(self) -> Schema:
        return self._bundle.manifest.schema

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def bundle_sha256(self) -> str:
        return self._bundle.sha256

    @property
    def source(self) -> str:
        return self._bundle.source

    def with_policy(self, policy: Policy | str) -> Predictor:
        """The same verified bundle and engine under another input policy (no reload)."""
        return Predictor(self._bundle, self._engine, _policy(policy))

    def __repr__(self) -> str:
        m = self.info.model
        return (
            f"Predictor(variant={m.variant!r}, engine={self._engine.name!r}, "
            f"threshold={self._threshold}, source={self.source!r})"
        )

    # ------------------------------------------------------------ one record
    def score(self, record: Mapping[str, Any]) -> Score:
        """Score one record. Raises an :class:`InputError` subclass naming the field if it is bad."""
        try:
            slot = self._local.slot
        except AttributeError:
            slot = self._new_slot()
        if slot is None:  # engines without a row slot (quantised I/O): the list path
            row, flags = self._pre.record(record)
            p = self._engine.run_one(row)
        else:
            raw, zero, features, invoke, out = slot
            raw[:] = zero
            flags = self._pre.encode_into(record, features)  # read each time: it tiers up (see Preprocessor)
            try:
                invoke()
            except Exception as exc:  # native engines raise RuntimeError/ValueError/their own classes
                raise BackendError(f"{self._engine.name}: inference failed ({type(exc).__name__}: {exc})") from None
            p = out[0]
        if not 0.0 <= p <= 1.0:  # also False for NaN
            raise _bad_output(self._engine, p)
        s = _new(Score)
        _set_p(s, p)
        if p >= self._threshold:
            _set_d(s, True)
            _set_l(s, self._pos)
        else:
            _set_d(s, False)
            _set_l(s, self._neg)
        _set_f(s, flags)
        return s

    def _new_slot(self) -> RowSlot | None:
        slot = self._engine.row_slot()
        if slot is not None and len(slot.features) != self._pre.n_features:
            slot = None
        self._local.slot = slot
        return slot

    # ------------------------------------------------------------ reason codes
    def explain(self, record: Mapping[str, Any], *, max_reasons: int = 4, method: str | None = None) -> Explanation:
        """Score one record and give its principal reasons (fields that raised the risk score above the
        bundle's reference applicant's, largest first, protected fields never). ``method``: None (the
        bundle's), 'auto', 'exact', 'paired', 'stratified' or 'sampled' (:mod:`~edgefin_runtime.explain`).
        Raises an :class:`InputError` subclass like ``score``, ManifestError if the bundle has no
        explain section."""
        return self.explainer().explain(record, max_reasons, method)

    def explainer(self) -> Explainer:
        """The Predictor's :class:`~edgefin_runtime.explain.Explainer` (built on first use)."""
        ex = self.__dict__.get("_explainer")
        if ex is None:
            from .explain import Explainer

            with _EXPLAINER_LOCK:
                ex = self.__dict__.get("_explainer")
                if ex is None:
                    ex = self.__dict__["_explainer"] = Explainer(self)
        return ex

    # ------------------------------------------------------------ many records
    @overload
    def score_batch(
        self, records: Iterable[Mapping[str, Any]], *, reasons: Literal[False] = ..., max_reasons: int = ...
    ) -> list[Result]: ...

    @overload
    def score_batch(
        self, records: Iterable[Mapping[str, Any]], *, reasons: Literal[True], max_reasons: int = ...
    ) -> list[ExplainedResult]: ...

    @overload
    def score_batch(
        self, records: Iterable[Mapping[str, Any]], *, reasons: bool, max_reasons: int = ...
    ) -> list[Result] | list[ExplainedResult]: ...

    def score_batch(
        self, records: Iterable[Mapping[str, Any]], *, reasons: bool = False, max_reasons: int = 4
    ) -> list[Result] | list[ExplainedResult]:
        """Score many records; a bad record is reported as rejected and never sinks the others.

        Plain dicts are gathered into columns and encoded in one vectorised pass; any row that
        pass rejects, and any record that is not a plain dict, goes through the single-record
        encoder, so each rejection carries exactly the error ``score`` would raise.

        ``reasons=True``: every row is an :class:`~edgefin_runtime.explain.ExplainedResult` (the
        Result's fields plus ``explanation``, None for a rejected row), all coalitions of a block of
        records scored as one batch.
        """
        if reasons:
            from .explain import explain_records

            return explain_records(self.explainer(), records, max_reasons)
        recs = records if isinstance(records, list) else list(records)
        if len(recs) <= SMALL_BATCH:
            return self._score_each(recs)
        pre = self._pre
        known = pre._known
        strict_fields = pre._reject_unknown
        vec: list[int] = []
        other: list[int] = []
        for i, r in enumerate(recs):
            if type(r) is dict and (not strict_fields or known.issuperset(r)):
                vec.append(i)
            else:
                other.append(i)
        result_cls = _results.Result  # built on first use (results.py)
        results: list[Result | None] = [None] * len(recs)
        order: list[int] = []
        flag_rows: list[tuple[str, ...]] = []
        blocks: list[np.ndarray] = []
        if vec:
            sub = recs if not other else [recs[i] for i in vec]
            names = self._names
            cols: dict[str, Sequence[Any]]
            try:  # one C call per record when every record has every field (typical of forms, JSON)
                cols = dict(zip(names, zip(*map(self._getter, sub))))
            except KeyError:
                get = dict.get
                cols = {name: list(map(get, sub, repeat(name))) for name in names}
            res = pre.columns(cols)
            fl = _flags_by_row(res.flags, len(sub), self._order)
            if res.errors:
                other.extend(vec[j] for j in res.errors)  # re-encoded one by one below, for the exact error
                keep = np.ones(len(sub), dtype=bool)
                keep[list(res.errors)] = False
                kept = np.flatnonzero(keep).tolist()
                order.extend(vec[j] for j in kept)
                flag_rows.extend(fl[j] for j in kept)
                blocks.append(res.matrix[keep])
            else:
                order.extend(vec)
                flag_rows.extend(fl)
                blocks.append(res.matrix)
        if other:
            encode = pre.record
            rows: list[list[float]] = []
            for i in sorted(other):
                try:
                    row, flags = encode(recs[i])
                except InputError as err:
                    results[i] = result_cls(i, "rejected", None, err.at_row(i))
                    continue
                rows.append(row)
                order.append(i)
                flag_rows.append(flags)
            if rows:
                blocks.append(np.array(rows, dtype=np.float32))
        if order:
            x = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
            probs = self._engine.run(x)
            _check_outputs(self._engine, probs)
            t, pos, neg = self._threshold, self._pos, self._neg
            for i, p, flags in zip(order, probs.tolist(), flag_rows):
                s = _new(Score)
                _set_p(s, p)
                if p >= t:
                    _set_d(s, True)
                    _set_l(s, pos)
                else:
                    _set_d(s, False)
                    _set_l(s, neg)
                _set_f(s, flags)
                results[i] = _tuple_new(result_cls, (i, "scored", s, None))
        return results  # type: ignore[return-value]

    def _score_each(self, recs: list[Mapping[str, Any]]) -> list[Result]:
        """Small batches: one record at a time through ``score`` (same features, same errors)."""
        result_cls = _results.Result
        out: list[Result] = []
        score = self.score
        for i, r in enumerate(recs):
            try:
                out.append(_tuple_new(result_cls, (i, "scored", score(r), None)))
            except InputError as err:
                out.append(_tuple_new(result_cls, (i, "rejected", None, err.at_row(i))))
        return out

    def score_columns(self, columns: Any) -> ColumnsScore:
        """Score a mapping of equal-length arrays, a pandas DataFrame or a pyarrow Table/RecordBatch.

        Rows are encoded and scored in blocks of ``COLUMN_BLOCK``, so the feature matrix of a block
        stays in cache and a large input never needs a full-size matrix in memory.
        """
        from .preprocess_columns import _column_length  # the columns path only: not on a device's cold start

        cols = {k: _sliceable(v) for k, v in _as_columns(columns, self._pre).items()}
        n = _column_length(cols)
        probs = np.full(n, np.nan, dtype=np.float32)
        rejected = np.zeros(n, dtype=bool)
        errors: dict[int, InputError] = {}
        flags: dict[str, np.ndarray] = {}
        for start in range(0, n, COLUMN_BLOCK) if n else (0,):
            stop = min(n, start + COLUMN_BLOCK)
            res = self._pre.columns({k: v[start:stop] for k, v in cols.items()})
            for key, mask in res.flags.items():
                if key not in flags:
                    flags[key] = np.zeros(n, dtype=bool)
                flags[key][start:stop] = mask
            if not res.errors:
                if stop > start:
                    probs[start:stop] = self._engine.run(res.matrix)
                continue
            for j, err in res.errors.items():
                errors[start + j] = err.at_row(start + j) if start else err
            keep = np.ones(stop - start, dtype=bool)
            keep[list(res.errors)] = False
            rejected[start:stop] = ~keep
            if keep.any():
                probs[start:stop][keep] = self._engine.run(res.matrix[keep])
        _check_outputs(self._engine, probs[~rejected])
        with np.errstate(invalid="ignore"):
            decisions = (probs.astype(np.float64) >= self._threshold) & ~rejected
        if errors:
            flags = {k: m & ~rejected for k, m in flags.items()}
        return ColumnsScore(probs, decisions, rejected, errors, flags, self._pos, self._neg, self._order)

    # ------------------------------------------------------------ self-test
    def self_test(self) -> dict[str, Any]:
        """Score the golden vectors on both engine paths; raise SelfTestError unless all reproduce."""
        rows = self._golden_rows()
        worst = self._single_goldens(rows)
        worst = max(worst, self._batch_goldens(rows))  # a check load() left pending runs first, the same
        tol = self.info.golden_tolerance
        return {"golden": len(rows), "max_abs_delta": worst, "tolerance": tol, "engine": self._engine.name}

    def _self_test_at_load(self) -> None:
        """:meth:`self_test`'s single-record half now, its batch half before the engine's first batch."""
        rows = self._golden_rows()
        self._single_goldens(rows)
        self._engine.gate_batch(lambda: self._batch_goldens(rows))

    def _single_goldens(self, rows: list[list[float]]) -> float:
        return self._check_goldens("single-row", [self._engine.run_one(r) for r in rows])

    def _batch_goldens(self, rows: list[list[float]]) -> float:
        return self._check_goldens("batch", self._engine.run(np.array(rows, dtype=np.float32)).tolist())

    def _golden_rows(self) -> list[list[float]]:
        m = self.info
        if not m.golden:
            raise SelfTestError(
                f"bundle {self.source}: no golden vectors, so the model cannot be self-tested; "
                f"rebuild the bundle with golden vectors (or load with self_test=False)"
            )
        # goldens were scored under the default policy: reuse the compiled encoder when it is the one in use
        pre = self._pre if self._policy == Policy() else Preprocessor(m.schema, m.preprocessing, Policy())
        rows = []
        for i, g in enumerate(m.golden):
            try:
                rows.append(pre.record(g.record)[0])
            except InputError as err:
                raise SelfTestError(
                    f"bundle {self.source}: golden[{i}] record is rejected by the bundle's own "
                    f"schema ({err}); the bundle is inconsistent - rebuild it"
                ) from None
        return rows

    def _check_goldens(self, path: str, scores: list[float]) -> float:
        """The largest |score - golden| on one path; SelfTestError naming the first golden that misses."""
        m = self.info
        tol = m.golden_tolerance
        worst = 0.0
        for i, (g, got) in enumerate(zip(m.golden, scores)):
            delta = abs(got - g.score)
            if not math.isfinite(got) or not delta <= tol:
                raise SelfTestError(
                    f"bundle {self.source}: golden[{i}] scored {got!r} on the {path} path of "
                    f"{self._engine.name}, expected {g.score!r} (|delta| {delta:.3g} > tolerance {tol:g}); "
                    f"the model does not reproduce its golden scores on this engine - do not deploy it"
                )
            worst = max(worst, delta)
        return worst


# ---------------------------------------------------------------- load
def load(
    source: Source,
    backend: str | None = None,
    *,
    policy: Policy | str | None = None,
    threads: int = 1,
    inter_op_threads: int = 1,
    trusted_keys: Sequence[Any] | None = None,
    require_signature: bool = False,
    self_test: bool = True,
) -> Predictor:
    """Read, verify and self-test a bundle (a path or its bytes) and return a ready Predictor.

    ``backend`` overrides the manifest's engine only where compatible ('litert', 'litert-ref', 'onnx').
    ``policy`` is a :class:`Policy`, 'lenient' (default) or 'strict'. ``trusted_keys`` /
    ``require_signature`` enable Ed25519 signature checks (needs ``edgefin-runtime[signing]``).
    ``self_test`` scores the golden vectors on the single-record path before returning and on the
    batch path before the engine scores its first matrix (a restart that scores one record never
    builds a batch interpreter); :meth:`Predictor.self_test` runs both at once.
    """
    pol = _policy(policy)
    verify = _signature_verifier(trusted_keys, require_signature)
    with _PausedGC():
        bundle = read_bundle(source, verify_signature=verify)
        engine = create_engine(
            bundle.manifest.model,
            bundle.model_bytes,
            backend=backend,
            threads=threads,
            inter_op_threads=inter_op_threads,
        )
        predictor = Predictor(bundle, engine, pol)
        if self_test:
            predictor._self_test_at_load()
    return predictor


class _PausedGC:
    """The cyclic garbage collector paused for a block, then as it was: a load builds thousands of
    acyclic objects (the parsed manifest, the plans), which the collector would only re-scan, ~1 ms
    of a device's restart. Another thread's pause or resume in between is harmless."""

    def __enter__(self) -> None:
        self._was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._was:
            gc.enable()


def _policy(policy: Policy | str | None) -> Policy:
    if policy is None or isinstance(policy, Policy):
        return policy or Policy()
    if policy == "strict":
        return Policy.strict()
    if policy == "lenient":
        return Policy.lenient()
    raise ValueError(f"policy: expected a Policy, 'strict' or 'lenient', got {policy!r}")


def _signature_verifier(trusted_keys: Sequence[Any] | None, require_signature: bool) -> Any:
    if not trusted_keys and not require_signature:
        return None
    try:
        from . import signing  # written by the security work; imports cryptography lazily
    except ImportError:
        raise SignatureError(
            "signature verification needs edgefin-runtime[signing] (pip install 'edgefin-runtime[signing]')"
        ) from None
    return signing.verifier(trusted_keys, require_signature)


# ---------------------------------------------------------------- helpers
def _bad_output(engine: Engine, p: float) -> BackendError:
    return BackendError(
        f"{engine.name}: the model returned {p!r}, which is not a probability in [0, 1]; "
        f"refusing to report it as a score - the bundle's model is broken"
    )


def _check_outputs(engine: Engine, probs: np.ndarray) -> None:
    ok = (probs >= 0.0) & (probs <= 1.0)
    if not ok.all():
        bad = probs[~ok]
        raise _bad_output(engine, float(bad[0]))


def _sliceable(v: Any) -> Any:
    """A column that slices by position: arrays and lists as they are, array-likes (a pandas
    Series inside a dict) through numpy, other sequences as lists."""
    if isinstance(v, (np.ndarray, list)):
        return v
    if hasattr(v, "__array__"):
        return np.asarray(v)
    try:
        return list(v)
    except TypeError:
        return v  # not iterable: the length check names the column


def _as_columns(obj: Any, pre: Preprocessor) -> Mapping[str, Any]:
    """A mapping of column arrays from a mapping, a pandas DataFrame or a pyarrow Table/RecordBatch.

    pandas and pyarrow are looked up in ``sys.modules`` only: an object of theirs can exist only if
    its library is already imported, so the runtime never imports either itself.
    """
    if isinstance(obj, Mapping):
        return obj
    known = set(pre.schema.names)
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame):
        if not obj.columns.is_unique:
            raise InputError(f"DataFrame has duplicate column names: {sorted(map(str, obj.columns))}")
        return {k: (obj[k].to_numpy() if k in known else obj[k]) for k in obj.columns}
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(obj, (pa.Table, pa.RecordBatch)):
        names = list(obj.column_names)
        if len(set(names)) != len(names):
            raise InputError(f"pyarrow table has duplicate column names: {names}")
        return {k: (obj.column(k).to_numpy(zero_copy_only=False) if k in known else obj.column(k)) for k in names}
    from .errors import RecordTypeError

    raise RecordTypeError(
        f"score_columns: expected a mapping of column arrays, a pandas DataFrame or a "
        f"pyarrow Table, got {type(obj).__module__}.{type(obj).__name__}"
    )


def __getattr__(name: str) -> Any:
    if name == "Result":  # importable from here as before; built on first use (results.py)
        return _results.Result
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ColumnsScore", "Predictor", "Score", "load", "EdgefinRuntimeError"]
