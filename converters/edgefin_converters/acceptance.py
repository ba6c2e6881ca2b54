"""Generate a bundle's acceptance set: synthetic records, never a row of anyone's data.

A device proves a bundle on its own CPU by scoring the acceptance set and comparing with the scores
recorded on the build machine (``edgefin_runtime.acceptance``). The records are made from the
schema and the preprocessing spec only, never copied from rows:

* **spread** - per-feature quantile-like values recombined at random: a numeric value is drawn
  between two adjacent bin edges of the spec (its edges are training quantiles) or, without edges,
  at ``mean + z * scale`` for a normal quantile ``z``, clipped to the schema's (robust, rounded)
  range and rounded to 4 significant digits; a category by its training frequency when known, else
  uniformly; a field that may be missing is missing as often as in training (at least 2%). The
  candidates are then chosen to spread evenly over the source model's scores.
* **edge** - range ends of every numeric field, and a missing value for every field that allows it.
  Only known categories are used (the set is unseen-free, so it means the same under any policy).
* **near** - records whose source score lands next to the decision threshold, so a small engine
  shift changes decisions: pairs of candidates on either side of the threshold are interpolated
  (numeric fields only) and the mixing weight is bisected until the source score hits a target
  spread over ``threshold +/- NEAR_BAND``.

Every record is checked against the data rows the converter has (training, validation, test):
a record equal to one of them (every field equal, missing equal missing) is perturbed or replaced.
Deterministic for a seed. TensorFlow-free: the source model is reached through ``score``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from edgefin_runtime.manifest import FieldSpec, NumericStep, PreprocessSpec, Schema
from edgefin_runtime.plan import canonical_category
from edgefin_runtime.preprocess import Preprocessor

from .errors import ConversionFailedError

#: records per bundle: 128 (about 5 KB of a bundle compressed; see the converters README figures)
DEFAULT_COUNT = 128
MIN_COUNT, MAX_COUNT = 16, 1024
#: the subset carried as ``golden`` for the fast self-test at load()
GOLDEN_COUNT = 8
#: near-threshold records aim at source scores spread over threshold +/- NEAR_BAND
NEAR_BAND = 0.01
NEAR_SHARE = 0.5
EDGE_SHARE = 0.25
_POOL = 1024  # random candidates scored per round
_BISECT = 30
_DIGITS = 4  # significant digits of a spread/edge numeric value
_NEAR_DIGITS = 5  # near-threshold values keep a digit more so rounding moves the score little

Score = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Generated:
    """The acceptance records, the source model's scores on them, why each is there, and the golden subset."""

    records: list[dict[str, Any]]
    source_scores: np.ndarray
    kinds: list[str]
    golden: list[int]
    seed: int


def category_frequencies(schema: Schema, columns: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Each categorical field's known categories with their share of the given rows (aggregate counts only)."""
    out: dict[str, dict[str, float]] = {}
    for f in schema.fields:
        if f.kind != "categorical" or f.name not in columns:
            continue
        counts = dict.fromkeys(f.categories, 0)
        for v in columns[f.name]:
            c = _canon(v)
            if c in counts:
                counts[c] += 1
        total = sum(counts.values())
        if total:
            out[f.name] = {c: n / total for c, n in counts.items()}
    return out


def generate(
    schema: Schema,
    spec: PreprocessSpec,
    score: Score,
    threshold: float,
    *,
    avoid: Iterable[Mapping[str, Any]] = (),
    frequencies: Mapping[str, Mapping[str, float]] | None = None,
    count: int = DEFAULT_COUNT,
    seed: int = 0,
) -> Generated:
    """``count`` synthetic records (see the module docstring) with their source scores.

    ``score`` maps an encoded float32 matrix to the source model's probabilities; ``avoid`` are raw
    column mappings (the data's splits) no record may equal. Raises ConversionFailedError when the
    data leaves too few distinct records to choose from (e.g. a few categorical fields whose every
    combination is a data row).
    """
    if not MIN_COUNT <= count <= MAX_COUNT:
        raise ValueError(f"acceptance count: expected {MIN_COUNT}..{MAX_COUNT}, got {count}")
    gen = _Generator(schema, spec, score, float(threshold), frequencies or {}, seed)
    gen.forbid(avoid)
    n_edge = min(int(count * EDGE_SHARE), len(gen.edge_plan()))
    n_near = int(count * NEAR_SHARE)
    edges = gen.edges(n_edge)
    near = gen.near(n_near)
    spread = gen.spread(count - len(edges) - len(near))
    chosen = edges + near + spread
    if len(chosen) < count:  # too few near-threshold or edge records: fill with more spread
        chosen += gen.spread(count - len(chosen))
    if len(chosen) < count:
        raise ConversionFailedError(
            f"acceptance set: only {len(chosen)} of {count} synthetic records differ from every data row and "
            f"from each other; the schema leaves too few combinations (add numeric fields or lower the count)"
        )
    records = [r for r, _, _ in chosen]
    scores = gen.score_records(records)
    kinds = [k for _, _, k in chosen]
    return Generated(
        records=records,
        source_scores=scores,
        kinds=kinds,
        golden=_golden(records, scores, kinds, schema, threshold),
        seed=seed,
    )


# ---------------------------------------------------------------- the generator
class _Generator:
    def __init__(
        self,
        schema: Schema,
        spec: PreprocessSpec,
        score: Score,
        threshold: float,
        frequencies: Mapping[str, Mapping[str, float]],
        seed: int,
    ) -> None:
        self.schema, self.score, self.t = schema, score, threshold
        self.pre = Preprocessor(schema, spec)
        self.steps = {s.field: s for s in spec.steps}
        self.rng = np.random.default_rng(seed)
        self.freq = frequencies
        self.taken: set[tuple[Any, ...]] = set()  # records chosen so far and data rows
        self.numeric = [f for f in schema.fields if f.kind == "numeric"]

    # ------------------------------------------------------------ data rows
    def forbid(self, tables: Iterable[Mapping[str, Any]]) -> None:
        names = self.schema.names
        for cols in tables:
            present = [n for n in names if n in cols]
            if len(present) != len(names):
                continue  # a table without every field cannot hold a full row equal to a record
            for row in zip(*(cols[n] for n in names)):
                self.taken.add(tuple(_key_value(f, v) for f, v in zip(self.schema.fields, row)))

    def _key(self, rec: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(_key_value(f, rec.get(f.name)) for f in self.schema.fields)

    def _claim(self, rec: dict[str, Any], digits: int) -> dict[str, Any] | None:
        """The record (perturbed if it equals a data row or an earlier record) or None if that fails."""
        for attempt in range(8):
            key = self._key(rec)
            if key not in self.taken:
                self.taken.add(key)
                return rec
            present = [f for f in self.numeric if rec.get(f.name) is not None]
            if not present:
                return None
            f = present[attempt % len(present)]
            v = float(rec[f.name])
            step = abs(v) * 10.0 ** (1 - digits) if v else 10.0 ** (1 - digits)
            rec = {**rec, f.name: _round(v + step * (1 + attempt), digits + 1)}
        return None

    # ------------------------------------------------------------ values
    def _numeric(self, f: FieldSpec, u: np.ndarray) -> np.ndarray:
        step = self.steps[f.name]
        assert isinstance(step, NumericStep)
        if step.n_bins:
            e = np.asarray(step.edges, dtype=np.float64)
            pos = np.clip(u, 0.0, 1.0 - 1e-12) * step.n_bins
            t = pos.astype(np.int64)
            v = e[t] + (pos - t) * (e[t + 1] - e[t])
        else:
            nd = NormalDist()
            z = np.array([nd.inv_cdf(float(min(max(x, 1e-4), 1 - 1e-4))) for x in u])
            v = step.mean + z * step.scale
        lo, hi = _range(f)
        out: np.ndarray = np.clip(v, lo, hi)
        return out

    def _categorical(self, f: FieldSpec, n: int) -> list[str]:
        cats = list(f.categories)
        share = self.freq.get(f.name)
        p = np.array([share.get(c, 0.0) for c in cats]) if share else np.ones(len(cats))
        if not p.sum() > 0:
            p = np.ones(len(cats))
        return [cats[i] for i in self.rng.choice(len(cats), size=n, p=p / p.sum())]

    def random(self, n: int) -> list[dict[str, Any]]:
        """``n`` recombined records: every numeric field at stratified quantile positions, shuffled."""
        cols: dict[str, list[Any]] = {}
        for f in self.schema.fields:
            if f.kind == "numeric":
                u = (self.rng.permutation(n) + self.rng.random(n)) / n
                cols[f.name] = [_round(float(v), _DIGITS) for v in self._numeric(f, u)]
            else:
                cols[f.name] = self._categorical(f, n)
            if f.allow_missing:
                miss = self.rng.random(n) < min(max(f.missing_share, 0.02), 0.2)
                cols[f.name] = [None if m else v for m, v in zip(miss, cols[f.name])]
        return [{f.name: cols[f.name][i] for f in self.schema.fields} for i in range(n)]

    def score_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not records:
            return np.zeros(0)
        res = self.pre.columns({f.name: [r.get(f.name) for r in records] for f in self.schema.fields})
        if res.errors:  # pragma: no cover - records are made from the schema itself
            raise ConversionFailedError(
                f"acceptance set: the preprocessing rejects a generated record "
                f"({res.errors[min(res.errors)]}); this is a bug"
            )
        p = np.asarray(self.score(res.matrix), dtype=np.float64).reshape(-1)
        if p.shape[0] != len(records) or not np.isfinite(p).all():
            raise ConversionFailedError("acceptance set: the source model gave no finite score for every record")
        return p

    # ------------------------------------------------------------ the three kinds
    def edge_plan(self) -> list[tuple[str, str]]:
        plan = [
            (f.name, end)
            for f in self.numeric
            for end in ("min", "max")
            if _range(f)[0 if end == "min" else 1] not in (-math.inf, math.inf)
        ]
        plan += [(f.name, "missing") for f in self.schema.fields if f.allow_missing]
        return plan

    def edges(self, n: int) -> list[tuple[dict[str, Any], float, str]]:
        plan = self.edge_plan()
        if n <= 0 or not plan:
            return []
        order = self.rng.permutation(len(plan))[:n] if n < len(plan) else np.arange(len(plan))
        bases = self.random(len(order))
        out = []
        for base, k in zip(bases, order):
            name, end = plan[int(k)]
            if end == "missing":
                base[name] = None
            else:
                lo, hi = _range(self.schema.field(name))
                base[name] = _round(lo if end == "min" else hi, _DIGITS + 2)
            rec = self._claim(base, _DIGITS)
            if rec is not None:
                out.append((rec, math.nan, "edge"))
        return out

    def spread(self, n: int) -> list[tuple[dict[str, Any], float, str]]:
        """``n`` random records chosen evenly over the source score's range."""
        if n <= 0:
            return []
        pool = self.random(max(_POOL, 4 * n))
        scores = self.score_records(pool)
        order = np.argsort(scores, kind="stable")
        out: list[tuple[dict[str, Any], float, str]] = []
        picks = np.unique(np.linspace(0, len(order) - 1, n).round().astype(np.int64))
        first = set(picks.tolist())
        rest = [int(order[k]) for k in range(len(order)) if k not in first]
        for i in [int(order[k]) for k in picks] + rest:
            if len(out) >= n:
                break
            rec = self._claim(pool[i], _DIGITS)
            if rec is not None:
                out.append((rec, float(scores[i]), "spread"))
        return out

    def near(self, n: int) -> list[tuple[dict[str, Any], float, str]]:
        """``n`` records whose source score lands within NEAR_BAND of the threshold (bisection between
        pairs that straddle it); falls back to the closest random candidates when none straddle."""
        if n <= 0:
            return []
        out: list[tuple[dict[str, Any], float, str]] = []
        targets = self.t + np.linspace(-NEAR_BAND, NEAR_BAND, n) * 0.9
        for _ in range(4):  # rounds: each scores a fresh pool
            need = n - len(out)
            if need <= 0 or not self.numeric:
                break
            pool = self.random(_POOL)
            s = self.score_records(pool)
            pairs = self._pairs(pool, s, 3 * need)
            if not pairs:
                continue
            tgt = np.resize(targets[len(out) :], len(pairs))
            found = self._bisect(pairs, tgt)
            for rec, p in found:
                if len(out) >= n:
                    break
                if abs(p - self.t) <= NEAR_BAND:
                    claimed = self._claim(rec, _NEAR_DIGITS)
                    if claimed is not None:
                        out.append((claimed, p, "near"))
        if len(out) < n:  # no pair straddles the threshold: the closest candidates instead
            pool = self.random(_POOL)
            s = self.score_records(pool)
            for i in np.argsort(np.abs(s - self.t), kind="stable"):
                if len(out) >= n:
                    break
                claimed = self._claim(pool[int(i)], _DIGITS)
                if claimed is not None:
                    out.append((claimed, float(s[i]), "near"))
        return out

    def _pairs(self, pool: list[dict[str, Any]], s: np.ndarray, n: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(a, b): b keeps a's categories and missing values but takes another record's numeric values,
        and a and b score on opposite sides of the threshold."""
        below, above = np.flatnonzero(s < self.t), np.flatnonzero(s >= self.t)
        if not below.size or not above.size:
            return []
        m = 2 * n  # a alternates between the two sides, so a threshold in a tail still gets pairs
        a_idx = np.where(
            np.arange(m) % 2 == 0,
            below[self.rng.integers(below.size, size=m)],
            above[self.rng.integers(above.size, size=m)],
        )
        b = []
        for i in a_idx:
            other = above if s[i] < self.t else below
            j = int(other[self.rng.integers(len(other))])
            b.append(
                {
                    f.name: (
                        pool[j][f.name]
                        if f.kind == "numeric" and pool[i][f.name] is not None and pool[j][f.name] is not None
                        else pool[i][f.name]
                    )
                    for f in self.schema.fields
                }
            )
        sb = self.score_records(b)
        sa = s[a_idx]
        keep = np.flatnonzero((sa < self.t) != (sb < self.t))[:n]
        return [(pool[int(a_idx[k])], b[int(k)]) for k in keep]

    def _bisect(
        self,
        pairs: list[tuple[dict[str, Any], dict[str, Any]]],
        targets: np.ndarray,
    ) -> list[tuple[dict[str, Any], float]]:
        a = [p[0] for p in pairs]
        b = [p[1] for p in pairs]
        sa = self.score_records(a)
        lo, hi = np.zeros(len(pairs)), np.ones(len(pairs))
        below_a = sa < targets  # the side of the target the lambda=0 end is on
        for _ in range(_BISECT):
            mid = (lo + hi) / 2
            s = self.score_records(self._mix(a, b, mid, digits=None))
            go_up = (s < targets) == below_a
            lo = np.where(go_up, mid, lo)
            hi = np.where(go_up, hi, mid)
        recs = self._mix(a, b, (lo + hi) / 2, digits=_NEAR_DIGITS)
        scores = self.score_records(recs)
        return list(zip(recs, scores.tolist()))

    def _mix(
        self, a: list[dict[str, Any]], b: list[dict[str, Any]], lam: np.ndarray, digits: int | None
    ) -> list[dict[str, Any]]:
        out = []
        for ra, rb, w in zip(a, b, lam.tolist()):
            rec = dict(ra)
            for f in self.numeric:
                va, vb = ra[f.name], rb[f.name]
                if va is not None and vb is not None:
                    v = float(va) + w * (float(vb) - float(va))
                    rec[f.name] = v if digits is None else _round(v, digits)
            out.append(rec)
        return out


# ---------------------------------------------------------------- the golden subset
def _golden(
    records: list[dict[str, Any]],
    scores: np.ndarray,
    kinds: list[str],
    schema: Schema,
    threshold: float,
    count: int = GOLDEN_COUNT,
) -> list[int]:
    """~``count`` indices: edge records with missing values first, then lowest, highest, the two
    nearest the threshold on either side, and score quantiles. Deterministic."""
    chosen: list[int] = []
    seen_missing: set[str] = set()
    for i, r in enumerate(records):
        miss = {f.name for f in schema.fields if r.get(f.name) is None}
        if miss and not miss <= seen_missing:
            chosen.append(i)
            seen_missing |= miss
        if len(chosen) >= max(1, count // 4):
            break
    order = np.argsort(scores, kind="stable")
    below = [int(i) for i in order if scores[i] < threshold]
    above = [int(i) for i in order if scores[i] >= threshold]
    picks = [int(order[0]), int(order[-1])] + below[-1:] + above[:1]
    picks += [int(order[min(int(q * len(order)), len(order) - 1)]) for q in np.linspace(0.1, 0.9, count)]
    for i in picks:
        if len(chosen) >= count:
            break
        if i not in chosen:
            chosen.append(i)
    return chosen


# ---------------------------------------------------------------- helpers
def _range(f: FieldSpec) -> tuple[float, float]:
    return (-math.inf if f.min is None else f.min, math.inf if f.max is None else f.max)


def _round(v: float, digits: int) -> float:
    """``v`` to ``digits`` significant digits, as a plain float (short in JSON)."""
    if v == 0 or not math.isfinite(v):
        return float(v)
    return float(f"{v:.{digits}g}")


def _canon(v: Any) -> str | None:
    try:
        return canonical_category(v)
    except TypeError:
        return None


def _key_value(f: FieldSpec, v: Any) -> Any:
    """A value as a record-equality key: None for missing, a float for numbers, canonical text for categories."""
    if v is None:
        return None
    if f.kind == "categorical":
        return _canon(v)
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ("raw", str(v))
    return None if math.isnan(x) else x


def equal_rows(records: Sequence[Mapping[str, Any]], schema: Schema, tables: Iterable[Mapping[str, Any]]) -> int:
    """How many of ``records`` equal a row of ``tables`` (the check a test runs on a finished bundle)."""
    rows: set[tuple[Any, ...]] = set()
    names = schema.names
    for cols in tables:
        for row in zip(*(cols[n] for n in names)):
            rows.add(tuple(_key_value(f, v) for f, v in zip(schema.fields, row)))
    return sum(tuple(_key_value(f, r.get(f.name)) for f in schema.fields) in rows for r in records)


__all__ = ["DEFAULT_COUNT", "GOLDEN_COUNT", "NEAR_BAND", "Generated", "category_frequencies", "generate", "equal_rows"]
