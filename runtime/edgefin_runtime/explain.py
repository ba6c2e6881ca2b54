"""Reason codes on the device: Baseline-Shapley attributions against the bundle's reference applicant.

The game. A record ``x`` and the bundle's reference applicant ``r`` (manifest section ``explain``:
by default the mean of the numeric fields and the mode of the categorical fields over the training
applicants scored just above the decision threshold, see :mod:`edgefin_converters.sections`) are
both encoded once. For a coalition ``S`` of schema fields, ``v(S)`` is the model's score of the
feature vector holding ``x``'s encoded columns for the fields in ``S`` and ``r``'s for the others.
Every feature column belongs to exactly one schema field (one-hot columns, piecewise-linear bins and
missing indicators included), so a categorical or missing-value indicator is attributed to its
source field, never to a column. A field whose encoded columns equal the reference's is a null
player: its attribution is exactly 0 and it is left out of every coalition ("active" fields are
the others; ``k`` below is their number).

The attribution of field ``i`` is its Shapley value in that game, so attributions always add up to
``v(all) - v(none) = score(x) - score(r)`` (efficiency). Every coalition needed is one row of ONE
batch through the predictor's own engine (the int8 model explains the int8 model).

Methods (``method=``; the bundle names a default):

* ``exact`` - all ``2**k`` coalitions and the Shapley formula (one matrix product). Exact. Beyond
  :data:`EXACT_LIMIT` active fields it becomes ``sampled``.
* ``paired`` - for each active field, the score change of adding it to the reference and of removing
  it from the record (``2k`` rows); the attribution is their mean. That is the Shapley value exactly
  when the game has no interaction of three or more fields (it halves every pairwise interaction,
  as Shapley does); what higher-order interaction leaves over is spread over the fields in
  proportion to ``|attribution|``, so efficiency holds exactly and null players stay at 0.
* ``stratified`` - per field, its mean marginal contribution to the coalitions of size 0, 1, k - 2
  and k - 1 (every single field and pair of fields added to the reference, removed from the record:
  ``1 + 2k + k(k - 1)`` rows), a cubic in the coalition size through those four means, averaged over
  all sizes (Shapley's formula is the mean over sizes of the mean marginal contribution). The mean
  marginal at size t is a polynomial of degree d - 1 in t for an interaction of d fields, so this is
  the Shapley value exactly when no five fields interact; the rest is spread as for ``paired``.
  ``exact`` up to 5 active fields (no more rows: 2**5 - 1 = 31 = 5**2 + 5 + 1).
* ``sampled`` - antithetic permutation sampling (:data:`SAMPLED_PERMUTATIONS` permutations, each
  with its reverse, ``k`` rows each, a fixed seed: the same record always gets the same reasons);
  unbiased, efficient by construction.
* ``auto`` (the default) - ``stratified``: on the demo model it names the same 4 reasons as exact
  float Shapley values for 95.8-97.0% of test records on every float variant, against 87.5% for
  ``paired``, at 120 rows a record instead of 1,704 (benchmarks/explain_methods.py); ``paired`` stays
  for when latency matters more (about a third of the engine rows at 13 fields).

Reasons. The positive class is the risk ('bad'): a reason is a field whose attribution is positive,
i.e. that pushed the risk score up from the reference applicant's; for a decline these are the
principal reasons. Reasons are ordered by attribution (largest first, ties by schema order), at most
``max_reasons``, and a protected field (``--protected`` at train/convert) is never one - its
attribution is still computed and reported in ``contributions``, so the sum stays exact. The
direction compares the record's value with the reference: ``higher`` / ``lower`` (numeric),
``missing`` (no value, imputed), ``category`` (a category other than the reference's). The text is
the bundle's reason table entry for that direction (placeholders ``{value}``, ``{reference}``).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from .errors import BackendError, InputError, ManifestError
from .manifest import CategoricalStep, Manifest, NumericStep
from .results import Score, _new

#: active-field count up to which ``exact`` enumerates every coalition (2**16 rows); above, it samples
EXACT_LIMIT = 16
#: |exact attribution| below this is the weighted sum's rounding noise (scores are in [0, 1]) and set to 0
EXACT_NOISE = 1e-12
#: permutations (each also run reversed) of the ``sampled`` method
SAMPLED_PERMUTATIONS = 32
SAMPLED_SEED = 20240607
METHODS = ("auto", "exact", "paired", "stratified", "sampled")
DIRECTIONS = ("higher", "lower", "missing", "category")
#: rows scored together when many records are explained at once (score_batch(reasons=True))
EXPLAIN_BLOCK = 4096
#: coalition plans kept per Explainer (one per set of fields that differ from the reference), and the
#: largest plan kept (cells of its boolean mask: exact plans of many fields are rebuilt instead)
MAX_PLANS = 1024
PLAN_CACHE_CELLS = 1 << 16
#: one record's coalitions up to this many rows are gathered into a per-thread buffer of exactly that many
#: rows: on LiteRT (float32 I/O) an interpreter's own input tensor, filled and read in place (no padding,
#: no resize, no set_tensor/get_tensor copies); larger ones go through engine.run as a batch
FIXED_BATCH_ROWS = 256
#: records' column patterns (which encoded columns differ from the reference) mapped to their plan
MAX_PATTERNS = 4096


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class Reason:
    """One principal reason: the field, how its value differs from the reference applicant's
    (``higher``, ``lower``, ``missing``, ``category``), its attribution (> 0: it raised the risk
    score) and the bundle's text for it."""

    field: str
    direction: str
    contribution: float
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "direction": self.direction, "contribution": self.contribution, "text": self.text}


@dataclass(frozen=True)
class Explanation:
    """A record's score, its ordered reasons and every field's attribution.

    ``sum(contributions.values()) == score.probability - reference_score`` (to float rounding).
    """

    score: Score
    reasons: tuple[Reason, ...]
    reference_score: float
    contributions: Mapping[str, float]
    method: str

    def to_dict(self) -> dict[str, Any]:
        s = self.score
        return {
            "score": s.probability,
            "decision": s.decision,
            "label": s.label,
            "flags": list(s.flags),
            "reference_score": self.reference_score,
            "method": self.method,
            "reasons": [r.to_dict() for r in self.reasons],
            "contributions": dict(self.contributions),
        }


class ExplainedResult(NamedTuple):
    """A row of ``score_batch(..., reasons=True)``: a :class:`~edgefin_runtime.results.Result` plus the
    explanation (None when the record was rejected)."""

    row: int
    status: str
    score: Score | None = None
    error: InputError | None = None
    explanation: Explanation | None = None

    @property
    def ok(self) -> bool:
        return self.status == "scored"


# ---------------------------------------------------------------- the bundle's explain section
@dataclass(frozen=True)
class ExplainSpec:
    """The manifest's ``explain`` section, validated."""

    reference: Mapping[str, Any]
    texts: Mapping[str, Mapping[str, str]]
    protected: tuple[str, ...]
    method: str
    reference_rule: str

    @classmethod
    def from_manifest(cls, m: Manifest) -> ExplainSpec:
        d = getattr(m, "explain", None)
        if d is None:
            raise ManifestError(
                "manifest explain: this bundle has no explain section (built before reason codes); "
                "rebuild it with edgefin convert to explain its decisions"
            )
        return cls.from_dict(d, m)

    @classmethod
    def from_dict(cls, d: Any, m: Manifest, where: str = "explain") -> ExplainSpec:
        if not isinstance(d, Mapping):
            raise ManifestError(f"manifest {where}: expected an object, got {type(d).__name__}")
        names = m.schema.names
        ref_d = d.get("reference")
        if not isinstance(ref_d, Mapping) or not isinstance(ref_d.get("record"), Mapping):
            raise ManifestError(f"manifest {where}.reference.record: expected an object of field values")
        record = dict(ref_d["record"])
        for name in names:
            if name not in record:
                raise ManifestError(f"manifest {where}.reference.record: field '{name}' is missing")
        extra = sorted(set(record) - set(names))
        if extra:
            raise ManifestError(f"manifest {where}.reference.record: {extra} are not fields of the schema")
        texts_d = d.get("reasons", {})
        if not isinstance(texts_d, Mapping):
            raise ManifestError(f"manifest {where}.reasons: expected an object of field -> texts")
        texts: dict[str, dict[str, str]] = {}
        for name in names:
            given = texts_d.get(name, {})
            if not isinstance(given, Mapping):
                raise ManifestError(f"manifest {where}.reasons.{name}: expected an object of direction -> text")
            for k, v in given.items():
                if k not in DIRECTIONS or not isinstance(v, str):
                    raise ManifestError(
                        f"manifest {where}.reasons.{name}.{k}: expected a text for one of {', '.join(DIRECTIONS)}"
                    )
            texts[name] = {**default_texts(name), **given}
        unknown = sorted(set(texts_d) - set(names))
        if unknown:
            raise ManifestError(f"manifest {where}.reasons: {unknown} are not fields of the schema")
        protected = d.get("protected", [])
        if not isinstance(protected, list) or any(p not in names for p in protected):
            raise ManifestError(f"manifest {where}.protected: expected a list of schema fields, got {protected!r}")
        method = d.get("method", "auto")
        if method not in METHODS:
            raise ManifestError(f"manifest {where}.method: expected one of {', '.join(METHODS)}, got {method!r}")
        return cls(
            reference=record,
            texts=texts,
            protected=tuple(protected),
            method=method,
            reference_rule=str(ref_d.get("rule", "")),
        )


def humanise(name: str) -> str:
    """A field name as words: ``loan_amount`` / ``LoanAmount`` -> ``Loan amount``."""
    out: list[str] = []
    prev = ""
    for ch in name.replace("_", " ").replace("-", " "):
        if ch.isupper() and prev and (prev.islower() or prev.isdigit()):
            out.append(" ")
        out.append(ch)
        prev = ch
    words = " ".join("".join(out).split())
    if not words:
        return name
    parts = words.split(" ")
    rest = [w if w.isupper() and len(w) > 1 else w.lower() for w in parts[1:]]
    return " ".join([parts[0][:1].upper() + parts[0][1:], *rest])


def default_texts(name: str) -> dict[str, str]:
    """The reason texts generated from a field's name (a bundle's ``reasons`` table overrides them)."""
    label = humanise(name)
    return {
        "higher": f"{label} is higher than typical",
        "lower": f"{label} is lower than typical",
        "missing": f"{label} is missing",
        "category": f"{label} is {{value}} (typical: {{reference}})",
    }


# ---------------------------------------------------------------- coalition tables (cached per k)
_tables_lock = threading.Lock()
_exact_tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
_paired_tables: dict[int, np.ndarray] = {}


def _exact_table(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Z, W) for k players: Z[s, j] = bit j of s (2**k coalitions, plus a False column for the
    inactive fields); W (k, 2**k) with phi = W @ v the Shapley values of the game v."""
    got = _exact_tables.get(k)
    if got is not None:
        return got
    n = 1 << k
    s = np.arange(n, dtype=np.int64)
    z = ((s[:, None] >> np.arange(k, dtype=np.int64)) & 1).astype(bool)
    size = z.sum(axis=1)
    fact = [math.factorial(i) for i in range(k + 1)]
    # weight of the marginal contribution v(S + i) - v(S) with |S| = t: t! (k - t - 1)! / k!
    w_of = np.array([fact[t] * fact[k - t - 1] / fact[k] if t < k else 0.0 for t in range(k + 1)])
    w = np.where(z.T, w_of[np.maximum(size - 1, 0)][None, :], -w_of[size][None, :])
    zext = np.concatenate([z, np.zeros((n, 1), dtype=bool)], axis=1)
    table = (zext, w)
    with _tables_lock:
        if k <= 14:  # 2**14 x 15 bools + 14 x 2**14 floats: keep; larger ones are rebuilt on use
            _exact_tables[k] = table
    return table


def _paired_table(k: int) -> np.ndarray:
    """Rows: the record (all players), then each player added to the reference, then each removed
    from the record; plus the False column for inactive fields."""
    got = _paired_tables.get(k)
    if got is not None:
        return got
    eye = np.eye(k, dtype=bool)
    z = np.concatenate([np.ones((1, k), dtype=bool), eye, ~eye])
    zext = np.concatenate([z, np.zeros((len(z), 1), dtype=bool)], axis=1)
    with _tables_lock:
        _paired_tables[k] = zext
    return zext


_stratified_tables: dict[int, tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}


def _stratified_table(k: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Rows: the record, each player added to the reference, each removed from the record, each pair
    (i < j) added to the reference, each pair removed from the record (plus the False column). And, over
    the vector ``[v(empty), v(rows)...]``, the marginal contributions that enter player i's value as
    index pairs ``(a[i], b[i])`` (each is ``v[a] - v[b]``) with their weights: the size-0 one, the k - 1
    size-1 ones ``v({i, j}) - v({j})``, the k - 1 size-(k-2) ones ``v(N - j) - v(N - i - j)`` and the
    size-(k-1) one; a stratum's weight is the mean over all sizes of the cubic through the four
    strata's means, over the stratum's count (k >= 5)."""
    got = _stratified_tables.get(k)
    if got is not None:
        return got
    eye = np.eye(k, dtype=bool)
    iu, ju = np.triu_indices(k, 1)
    pairs = eye[iu] | eye[ju]
    z = np.concatenate([np.ones((1, k), dtype=bool), eye, ~eye, pairs, ~pairs])
    zext = np.concatenate([z, np.zeros((len(z), 1), dtype=bool)], axis=1)
    known = np.vander(np.array([0.0, 1.0, k - 2.0, k - 1.0]), 4)
    w = np.vander(np.arange(k, dtype=np.float64), 4).mean(axis=0) @ np.linalg.inv(known)
    full, single, drop1 = 1, 2, 2 + k  # offsets in [v(empty), rows...]
    pair, drop2 = 2 + 2 * k, 2 + 2 * k + len(iu)
    pair_of = np.zeros((k, k), dtype=np.int64)
    pair_of[iu, ju] = pair_of[ju, iu] = np.arange(len(iu))
    a = np.zeros((k, 2 * k), dtype=np.intp)
    b = np.zeros((k, 2 * k), dtype=np.intp)
    for i in range(k):
        js = np.array([j for j in range(k) if j != i], dtype=np.intp)
        a[i] = [single + i, *(pair + pair_of[i, js]), *(drop1 + js), full]
        b[i] = [0, *(single + js), *(drop2 + pair_of[i, js]), drop1 + i]
    weights = np.concatenate([[w[0]], np.full(k - 1, w[1] / (k - 1)), np.full(k - 1, w[2] / (k - 1)), [w[3]]])
    table = (zext, (a, b, weights))
    with _tables_lock:
        if k <= 64:
            _stratified_tables[k] = table
    return table


_sampled_tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _sampled_table(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Antithetic permutations: rows are the growing prefixes (the empty one excluded, the full one
    once per permutation) and ``order`` says which player each step adds."""
    got = _sampled_tables.get(k)
    if got is not None:
        return got
    rng = np.random.default_rng(SAMPLED_SEED + k)
    perms = [rng.permutation(k) for _ in range(SAMPLED_PERMUTATIONS)]
    perms += [p[::-1] for p in perms]
    order = np.array(perms, dtype=np.int64)  # (P, k)
    rows = np.zeros((len(perms), k, k + 1), dtype=bool)
    for p, perm in enumerate(perms):
        for step in range(k):
            rows[p, step, perm[: step + 1]] = True
    table = (rows.reshape(-1, k + 1), order)
    with _tables_lock:
        if k <= 64:
            _sampled_tables[k] = table
    return table


# ---------------------------------------------------------------- plans and per-thread buffers
class Plan(NamedTuple):
    """How to explain the records whose encoded columns differ from the reference in one pattern: the
    active fields (schema positions), the method used for them, its table (``_attribute``'s ``extra``),
    the coalition mask over feature columns (rows, n_features), and, precomputed once for the
    microsecond path, ``gather``: for each cell of the coalition matrix, its source in the thread's
    ``[reference row, record row]`` buffer (one ``np.take`` fills the matrix; None for plans too big
    for that path), the active fields' names and which active fields (positions in ``active``) may be
    reasons."""

    active: tuple[int, ...]
    how: str
    extra: Any
    mask: np.ndarray
    gather: np.ndarray | None
    names: tuple[str, ...]
    candidates: tuple[int, ...]


class _Slot:
    """One thread's buffer for one record's ``rows`` coalitions: on LiteRT with float32 I/O the input
    and output tensors of an interpreter of exactly that batch, filled and read in place (no padding,
    no resize, no set_tensor/get_tensor copies), with its native invoke; otherwise a plain matrix
    scored through ``engine.run``. ``full`` is ``[v(empty), v(rows)...]`` for the stratified table."""

    __slots__ = ("inp", "flat", "out", "peak", "invoke", "full", "interpreter")

    def __init__(self, engine: Any, rows: int, n_features: int, v0: float) -> None:
        from .backends.litert import LiteRTEngine

        got = engine.fixed_batch(rows) if isinstance(engine, LiteRTEngine) else None
        self.interpreter: Any = None
        self.out: np.ndarray | None = None
        self.invoke: Callable[[], Any] | None = None
        inp = None
        if got is not None:
            inp, out, invoke, self.interpreter = got
            if out.dtype == np.float32 and inp.flags.c_contiguous:
                self.out, self.invoke = out, invoke
            else:
                inp = None
        if inp is None:
            inp = np.zeros((rows, n_features), dtype=np.float32)
        self.inp: np.ndarray = inp
        self.flat: np.ndarray = inp.reshape(-1)  # a view: inp is C-contiguous
        #: the largest bit pattern of the output (a float32 in [+0.0, 1.0] is one of 0 ... 0x3F800000);
        #: up to SMALL_ROWS rows Python's max over a memoryview costs less than a numpy reduction
        self.peak: Callable[[], int] | None = None
        if self.out is not None:
            bits = self.out.view(np.uint32)
            self.peak = partial(max, bits.data) if rows <= SMALL_ROWS else bits.max
        self.full = np.empty(rows + 1)
        self.full[0] = v0


#: the largest bit pattern of a float32 in [+0.0, 1.0] (1.0 itself)
_ONE_BITS = 0x3F800000
#: coalition batches up to this many rows check their scores' range in Python, larger ones in numpy
SMALL_ROWS = 48
_set_dict = object.__setattr__  # frozen dataclasses: fill __dict__ at once instead of one setattr per field


# ---------------------------------------------------------------- the explainer
class Explainer:
    """Explains records for one Predictor (built on first use of ``Predictor.explain``; thread-safe:
    immutable after construction but for its plan caches; each thread has its own buffers and the
    engine gives each thread its own interpreter)."""

    def __init__(self, predictor: Any, method: str | None = None) -> None:
        m: Manifest = predictor.info
        self.spec = ExplainSpec.from_manifest(m)
        self.method = method or self.spec.method
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {self.method!r}")
        self._predictor = predictor
        self._engine = predictor.engine
        self._pre = predictor._pre
        self._threshold = float(m.decision.threshold)
        self._pos, self._neg = m.schema.positive_label, m.schema.negative_label
        steps = m.preprocessing.steps
        self._fields = tuple(s.field for s in steps)
        spans: list[tuple[int, int]] = []
        pos = 0
        for s in steps:
            spans.append((pos, pos + s.width))
            pos += s.width
        self._spans = tuple(spans)
        # column -> index of its field in preprocessing order
        self._col_field = np.concatenate([np.full(b - a, i, dtype=np.int64) for i, (a, b) in enumerate(spans)])
        self._kinds = tuple(isinstance(s, NumericStep) for s in steps)
        self._protected = frozenset(self.spec.protected)
        try:
            ref_row, _ = self._pre.record(self.spec.reference)
        except InputError as err:
            raise ManifestError(
                f"manifest explain.reference.record: the bundle's own preprocessing rejects it ({err.reason})"
            ) from None
        self._ref = np.array(ref_row, dtype=np.float32)
        self._ref.flags.writeable = False
        self._zero = bytes(self._ref.nbytes)
        self._n = len(self._ref)
        ref_p = self._engine.run(self._ref[None, :])
        self.reference_score = float(ref_p[0])
        if not 0.0 <= self.reference_score <= 1.0:
            raise BackendError(f"{self._engine.name}: the reference applicant scored {self.reference_score!r}")
        self._ref_values = tuple(self.spec.reference[f] for f in self._fields)
        # per field: (name, numeric?, the reference's value, its reason texts, that value as a float (None:
        # it is none) and as text)
        self._reason_info = tuple(
            (f, num, ref, self.spec.texts[f], _as_float(ref), _text(ref))
            for f, num, ref in zip(self._fields, self._kinds, self._ref_values)
        )
        self._zeros = dict.fromkeys(self._fields, 0.0)
        self._cat_steps = {s.field: s for s in steps if isinstance(s, CategoricalStep)}
        self._starts = np.array([a for a, _ in spans], dtype=np.intp)
        self._protected_idx = frozenset(i for i, f in enumerate(self._fields) if f in self._protected)
        # method -> active fields -> the plan for that set: most records share few sets (the fields
        # equal to the reference, typically categories at the reference's mode, are the same ones);
        # method -> the pattern of differing columns -> its plan (one comparison finds it)
        self._plans: dict[str, dict[bytes, Plan]] = {m: {} for m in METHODS}
        self._patterns: dict[str, dict[bytes, Plan]] = {m: {} for m in METHODS}
        self._local = threading.local()

    # ------------------------------------------------------------ one record
    def explain(self, record: Mapping[str, Any], max_reasons: int = 4, method: str | None = None) -> Explanation:
        local = self._local
        try:
            both, x, raw, features, differs = local.row
        except AttributeError:
            both, x, raw, features, differs = local.row = self._row_buffers()
        raw[:] = self._zero
        flags = self._pre.encode_into(record, features)  # as Preprocessor.record (read each call: it tiers up)
        how = method or self.method
        np.not_equal(x, self._ref, out=differs)
        try:
            plan = self._patterns[how][differs.tobytes()]
        except KeyError:
            plan = self._plan_of(x, how)
        gather = plan.gather
        try:
            slot = local.slots[len(plan.mask)]
        except (AttributeError, KeyError):
            slot = self._slot(len(plan.mask))
        if slot is None or gather is None:
            return self._explain_rows([(record, x.tolist(), flags)], max_reasons, how, [(x.copy(), plan)])[0]
        # every coalition row: the reference applicant with the coalition's columns from the record
        both.take(gather, out=slot.flat, mode="wrap")  # (wrap: unbuffered; the method: no dispatch layer)
        peak = slot.peak
        if peak is not None:
            try:
                slot.invoke()
            except (ValueError, RuntimeError) as exc:
                raise BackendError(f"{self._engine.name}: inference failed while explaining ({exc})") from None
            v: np.ndarray = slot.out
            if peak() > _ONE_BITS:  # outside [+0.0, 1.0] (or -0.0): the full check decides
                self._check_range(v)
        else:
            v = self._engine.run(slot.inp)
            self._check_range(v)
        return self._from_scores(record, flags, plan, v, slot.full, max_reasons)

    def _from_scores(
        self,
        record: Mapping[str, Any],
        flags: tuple[str, ...],
        plan: Plan,
        v: np.ndarray,
        full: np.ndarray,
        max_reasons: int,
    ) -> Explanation:
        """The Explanation from one record's coalition scores ``v`` (checked to be in [0, 1]); ``full``:
        a float64 buffer of len(v) + 1 holding v(empty) = the reference's score at 0."""
        used = plan.how
        k = len(plan.active)
        if used == "stratified":
            phi, p = _stratified(k, v, self.reference_score, plan.extra, full)
        else:  # paired reads the scores as Python floats either way; exact and sampled compute in float64
            phi, p = _attribute(
                used, k, v if used == "paired" else v.astype(np.float64), self.reference_score, plan.extra
            )
        return self._finish(record, flags, plan, phi, p, max_reasons)

    def explain_encoded(
        self,
        items: Sequence[tuple[Mapping[str, Any], Sequence[float], tuple[str, ...]]],
        max_reasons: int = 4,
        method: str | None = None,
    ) -> list[Explanation]:
        """Explain already-encoded records ``(record, features, flags)``: all coalitions of a block of
        them go through the engine as one batch."""
        out: list[Explanation] = []
        chosen = method or self.method
        block: list[tuple[Mapping[str, Any], Sequence[float], tuple[str, ...]]] = []
        rows = 0
        for item in items:
            block.append(item)
            rows += _rows_bound(chosen, len(self._fields))
            if rows >= EXPLAIN_BLOCK:
                out.extend(self._explain_rows(block, max_reasons, chosen))
                block, rows = [], 0
        if block:
            out.extend(self._explain_rows(block, max_reasons, chosen))
        return out

    def _explain_rows(
        self,
        items: Sequence[tuple[Mapping[str, Any], Sequence[float], tuple[str, ...]]],
        max_reasons: int,
        method: str,
        planned: Sequence[tuple[np.ndarray, Plan]] | None = None,
    ) -> list[Explanation]:
        ref = self._ref
        if planned is None:
            xs = [np.array(row, dtype=np.float32) for _record, row, _flags in items]
            planned = [(x, self._plan_of(x, method)) for x in xs]
        mats = [np.where(plan.mask, x, ref) for x, plan in planned]
        big = mats[0] if len(mats) == 1 else np.concatenate(mats)
        v_all = self._engine.run(big).astype(np.float64) if len(big) else np.zeros(0)
        self._check_range(v_all)
        out = []
        start = 0
        v0 = self.reference_score
        for (record, _row, flags), (_x, plan) in zip(items, planned):
            n = len(plan.mask)
            phi, p = _attribute(plan.how, len(plan.active), v_all[start : start + n], v0, plan.extra)
            out.append(self._finish(record, flags, plan, phi, p, max_reasons))
            start += n
        return out

    def _check_range(self, v: np.ndarray) -> None:
        if len(v) and not (0.0 <= v.min() and v.max() <= 1.0):  # also catches NaN
            raise BackendError(f"{self._engine.name}: the model returned a value outside [0, 1] while explaining")

    def _row_buffers(self) -> tuple[np.ndarray, np.ndarray, memoryview, memoryview, np.ndarray]:
        """This thread's ``[reference row, record row]`` buffer (plans gather coalition rows from it), the
        record row (a view), its bytes (zeroed per record), its float32 view for the encoder (memoryview
        writes cost half of numpy's) and the differs-from-reference mask."""
        n = self._n
        both = np.zeros(2 * n, dtype=np.float32)
        both[:n] = self._ref
        x = both[n:]
        features = x.data
        return both, x, features.cast("B"), features, np.zeros(n, dtype=bool)

    def _slot(self, rows: int) -> _Slot | None:
        """This thread's buffer for ``rows`` coalitions (None: too many, or none at all: the batch path)."""
        local = self._local
        try:
            slots: dict[int, _Slot | None] = local.slots
        except AttributeError:
            slots = local.slots = {}
        slot = slots.get(rows)
        if slot is None and rows not in slots:
            ok = 0 < rows <= FIXED_BATCH_ROWS
            slot = slots[rows] = _Slot(self._engine, rows, len(self._ref), self.reference_score) if ok else None
        return slot

    def _plan_of(self, x: np.ndarray, method: str) -> Plan:
        """The cached plan for a record's encoded row: looked up by which columns differ from the
        reference (one comparison), else by which fields do (one reduceat), else built."""
        patterns = self._patterns.get(method)
        if patterns is None:
            raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
        differs = x != self._ref
        pkey = differs.tobytes()
        plan = patterns.get(pkey)
        if plan is not None:
            return plan
        active_mask = np.logical_or.reduceat(differs, self._starts)
        key = active_mask.tobytes()
        plans = self._plans[method]
        plan = plans.get(key)
        if plan is None:
            plan = self._plan(active_mask, method, self._col_field)
            if len(plans) < MAX_PLANS and plan.mask.size <= PLAN_CACHE_CELLS:
                plans[key] = plan
            else:
                return plan
        if len(patterns) < MAX_PATTERNS:
            patterns[pkey] = plan
        return plan

    def _plan(self, active_mask: np.ndarray, method: str, col_field: np.ndarray) -> Plan:
        """The plan of one set of active fields under ``method`` (see :class:`Plan`)."""
        active = np.flatnonzero(active_mask)
        k = len(active)
        colpos = np.full(len(self._fields), k, dtype=np.int64)
        colpos[active] = np.arange(k)
        colpos = colpos[col_field]
        how = _resolve(method, k)
        extra: Any = None
        if how == "exact":
            z, extra = _exact_table(k)
            z = z[1:]  # coalition 0 is the reference: its score is known
        elif how == "paired":
            z = _paired_table(k)
        elif how == "stratified":
            z, extra = _stratified_table(k)
        else:
            z, extra = _sampled_table(k)
        mask = np.ascontiguousarray(z[:, colpos])
        mask.flags.writeable = False
        gather = None
        if 0 < len(mask) <= FIXED_BATCH_ROWS:  # column j from the reference (j) or the record (n + j)
            gather = (np.arange(self._n, dtype=np.intp) + self._n * mask).ravel()
        names = tuple(self._fields[i] for i in active)
        candidates = tuple(j for j, i in enumerate(active) if i not in self._protected_idx)
        return Plan(tuple(active.tolist()), how, extra, mask, gather, names, candidates)

    def _finish(
        self,
        record: Mapping[str, Any],
        flags: tuple[str, ...],
        plan: Plan,
        phi: list[float],
        p: float,
        max_reasons: int,
    ) -> Explanation:
        """The Explanation from the active fields' attributions ``phi`` and the record's score ``p``."""
        d = p >= self._threshold
        score = Score(p, d, self._pos if d else self._neg, flags)
        if len(phi) == len(self._fields):  # every field differs from the reference
            contributions = dict(zip(self._fields, phi))
        else:
            contributions = self._zeros.copy()  # schema order, 0.0 for the fields equal to the reference
            contributions.update(zip(plan.names, phi))
        # reasons: the positive attributions of unprotected fields, largest first (a stable sort, also
        # reversed: ties keep schema order, as ``active`` is in schema order)
        order = [j for j in plan.candidates if phi[j] > 0.0]
        if order:
            order.sort(key=phi.__getitem__, reverse=True)
            reasons = self._reasons(record, plan.active, phi, order[: max(0, max_reasons)])
        else:
            reasons = ()
        e = _new(Explanation)
        _set_dict(
            e,
            "__dict__",
            {
                "score": score,
                "reasons": reasons,
                "reference_score": self.reference_score,
                "contributions": contributions,
                "method": plan.how,
            },
        )
        return e

    def _reasons(
        self, record: Mapping[str, Any], active: tuple[int, ...], phi: list[float], order: list[int]
    ) -> tuple[Reason, ...]:
        """The Reasons of the active fields at positions ``order`` (their attributions in ``phi``)."""
        info, get, out = self._reason_info, record.get, []
        for j in order:
            name, numeric, ref, texts, ref_float, ref_text = info[active[j]]
            value: Any = get(name)
            t = type(value)
            if numeric and ref_float is not None and (t is int or (t is float and value == value)):  # common cases
                direction = "higher" if float(value) > ref_float else "lower"
            elif t is str and not numeric and value.strip():
                direction = "category"
            elif _missing(value):
                direction = "missing"
            elif numeric:
                try:
                    direction = "higher" if float(value) > float(ref) else "lower"
                except (TypeError, ValueError):
                    direction = "higher"
            else:
                direction = "category"
            text = texts[direction]
            if "{" in text:
                text = text.replace("{value}", value if t is str else _text(value)).replace("{reference}", ref_text)
            r = _new(Reason)
            _set_dict(r, "__dict__", {"field": name, "direction": direction, "contribution": phi[j], "text": text})
            out.append(r)
        return tuple(out)


def _rows_bound(method: str, k: int) -> int:
    """At most how many engine rows one record of ``k`` active fields needs under ``method``."""
    how = _resolve(method, k)
    if how == "exact":
        return 1 << k
    if how == "paired":
        return 2 * k + 1
    if how == "stratified":
        return 1 + 2 * k + k * (k - 1)
    return 2 * SAMPLED_PERMUTATIONS * k


def _resolve(method: str, k: int) -> str:
    if k == 0:
        return "exact"
    if method == "auto":
        method = "stratified"
    if method == "exact" and k > EXACT_LIMIT:
        return "sampled"
    if method == "stratified" and (1 << k) - 1 <= k * k + k + 1:
        return "exact"  # k <= 5: no more rows than stratified (and its four sizes need k >= 4)
    return method


def _attribute(how: str, k: int, v: np.ndarray, v0: float, extra: Any) -> tuple[list[float], float]:
    """(attributions of the k active fields, the record's score) from the coalition scores ``v``
    (float64). The paired method, the one on the microsecond path, stays in plain Python: for ~10
    fields a dozen numpy calls cost more than the arithmetic."""
    if how == "paired":
        vals = v.tolist()
        p = vals[0]
        phi = [0.5 * ((u - v0) + (p - d)) for u, d in zip(vals[1 : k + 1], vals[k + 1 :])]
        return _efficient(phi, p - v0), p
    if how == "exact":
        p = float(v[-1]) if len(v) else v0
        if k == 0:
            return [], p
        full = np.empty(len(v) + 1)
        full[0] = v0
        full[1:] = v
        phi = extra @ full
        # a field that changes no score (an int8 model's grid can swallow its effect) sums its marginal
        # contributions of exactly 0 in another order than the product: rounding noise, not a reason
        phi[np.abs(phi) < EXACT_NOISE] = 0.0
        out: list[float] = phi.tolist()
        return out, p
    if how == "stratified":
        return _stratified(k, v, v0, extra)
    # sampled: each permutation's chain v(empty)=v0, prefixes...; marginal of each added player
    order = extra
    chains = v.reshape(len(order), k)
    prev = np.concatenate([np.full((len(order), 1), v0), chains[:, :-1]], axis=1)
    marg = chains - prev
    acc = np.zeros(k)
    np.add.at(acc, order.ravel(), marg.ravel())
    acc /= len(order)
    return acc.tolist(), float(chains[0, -1])


def _stratified(
    k: int,
    v: np.ndarray,
    v0: float,
    plan: tuple[np.ndarray, np.ndarray, np.ndarray],
    full: np.ndarray | None = None,
) -> tuple[list[float], float]:
    """The stratified attribution: every marginal contribution as one difference (a player that
    changes nothing gets exactly 0), weighted, then the efficiency spread. ``full``: a float64 buffer
    of len(v) + 1 already holding ``v0`` first (a thread's, reused), else one is made."""
    a, b, weights = plan
    p = float(v[0])
    if full is None:
        full = np.empty(len(v) + 1)
        full[0] = v0
    full[1:] = v
    return _efficient(((full[a] - full[b]) @ weights).tolist(), p - v0), p


def _efficient(phi: list[float], total: float) -> list[float]:
    """``phi`` with ``total - sum(phi)`` spread over the players in proportion to ``|phi|`` (so the sum
    is ``total`` and a player at 0 stays at 0; all at 0: spread equally)."""
    residual = total - sum(phi)
    weight = sum(map(abs, phi))
    if weight > 0.0:
        scale = residual / weight
        return [c + scale * abs(c) for c in phi]
    return [c + residual / len(phi) for c in phi] if phi else phi


def _as_float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError, OverflowError):
        return None


def _missing(v: Any) -> bool:
    if v is None or (isinstance(v, str) and v.strip() == ""):
        return True
    if isinstance(v, float):
        return math.isnan(v)
    return False


def _text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def explain_records(
    explainer: Explainer, records: Iterable[Mapping[str, Any]], max_reasons: int = 4
) -> list[ExplainedResult]:
    """``score_batch(records, reasons=True)``: every record scored and explained, a bad one rejected
    with exactly the error ``score`` raises (it never sinks the others)."""
    encode = explainer._pre.record
    good: list[tuple[Mapping[str, Any], Sequence[float], tuple[str, ...]]] = []
    where: list[int] = []
    out: list[ExplainedResult] = []
    for i, r in enumerate(records):
        try:
            row, flags = encode(r)
        except InputError as err:
            out.append(ExplainedResult(i, "rejected", None, err.at_row(i), None))
            continue
        good.append((r, row, flags))
        where.append(len(out))
        out.append(ExplainedResult(i, "scored"))
    for j, e in zip(where, explainer.explain_encoded(good, max_reasons)):
        out[j] = ExplainedResult(out[j].row, "scored", e.score, None, e)
    return out


__all__ = [
    "Reason",
    "Explanation",
    "ExplainedResult",
    "ExplainSpec",
    "Explainer",
    "default_texts",
    "humanise",
    "explain_records",
    "METHODS",
    "EXACT_LIMIT",
]
