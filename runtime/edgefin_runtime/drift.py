"""Population drift on the device: bin counts against the bundle's frozen training bins, and PSI.

The bundle's ``drift`` manifest section (written by the converters from the training split: rounded
quantile edges and proportions, never a row) holds, for every input field and for the score, the
reference bins and the training share of each. :class:`DriftMonitor` counts how the records it
observes fall into the same bins:

* numeric field with interior edges ``e_1 < ... < e_{B-1}``: bin ``j`` holds ``e_j <= x < e_{j+1}``
  (``bisect_right``), then one bin for a missing value; values outside the schema's training range
  ``[min, max]`` are counted apart as out-of-range (they also fall in the outer bins);
* categorical field: one bin per training category, one for an unseen category, one for missing;
* the score: bins between quantiles of the training split's scores by this very variant.

Counts are integers, so monitors of several devices or time windows merge exactly (:meth:`merge`),
memory is constant (a few hundred integers), and :meth:`to_json` / :meth:`from_json` carry the
counts with the reference they refer to. Every update happens under a lock: one monitor may be fed
by any number of threads.

:meth:`DriftMonitor.report` gives per field and for the score the Population Stability Index
``PSI = sum_i (a_i - e_i) ln(a_i / e_i)`` over the bins (``a`` observed shares, ``e`` training
shares; a bin empty on one side gets half an observation there, ``0.5 / n``, so PSI stays finite;
bins empty on both sides are left out), the usual levels (< 0.1 stable, 0.1-0.25 moderate, >= 0.25
significant) and a sample-size-aware 95% critical value: with ``n`` observed and ``m`` training
records and no drift, PSI is approximately ``(1/n + 1/m) * chi2(B - 1)`` distributed (``B`` the bins
used), so ``critical_95 = (1/n + 1/m) * chi2.ppf(0.95, B - 1)``; a PSI above it is unlikely to be
sampling noise, whereas the fixed 0.1 cries wolf on a window of a few hundred records.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError, ManifestError
from .manifest import Manifest
from .plan import canonical_category, pd_na

FORMAT = "edgefin-drift-counts/1"
#: PSI levels: below the first "stable", up to the second "moderate", above "significant"
LEVELS = (0.1, 0.25)
CONFIDENCE = 0.95


# ---------------------------------------------------------------- the reference (manifest section)
@dataclass(frozen=True)
class FieldBins:
    """One field's reference bins: numeric ``edges`` (interior) or categorical ``categories``, the
    training share of every bin (the last one: missing; categorical: unseen before it) and, for a
    numeric field, the schema's training range and the training share outside it."""

    name: str
    kind: str
    shares: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    range: tuple[float | None, float | None] = (None, None)
    out_of_range: float = 0.0

    @property
    def n_bins(self) -> int:
        return len(self.shares)


@dataclass(frozen=True)
class DriftReference:
    """The manifest's ``drift`` section, validated: bins per field and for the score, training rows."""

    fields: tuple[FieldBins, ...]
    score: FieldBins | None
    rows: int
    sha256: str

    @classmethod
    def from_manifest(cls, m: Manifest) -> DriftReference:
        d = getattr(m, "drift", None)
        if d is None:
            raise ManifestError(
                "manifest drift: this bundle has no drift section (built before drift monitoring); "
                "rebuild it with edgefin convert to monitor drift"
            )
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: Any, where: str = "drift") -> DriftReference:
        if not isinstance(d, Mapping):
            raise ManifestError(f"manifest {where}: expected an object, got {type(d).__name__}")
        rows = d.get("rows")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            raise ManifestError(f"manifest {where}.rows: expected the number of training rows (>= 1), got {rows!r}")
        raw = d.get("fields")
        if not isinstance(raw, Mapping) or not raw:
            raise ManifestError(f"manifest {where}.fields: expected an object of field name -> bins")
        fields = tuple(_bins(name, spec, f"{where}.fields.{name}") for name, spec in raw.items())
        sc = d.get("score")
        score = None if sc is None else _bins("score", {**sc, "kind": "score"}, f"{where}.score")
        ref = cls(fields=fields, score=score, rows=rows, sha256="")
        # the fingerprint of what the bins are (the normalised form), so a reference read back from a
        # monitor's JSON matches the bundle's own
        canonical = json.dumps(ref.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
        return cls(fields=fields, score=score, rows=rows, sha256=hashlib.sha256(canonical).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rows": self.rows, "fields": {f.name: _bins_dict(f) for f in self.fields}}
        if self.score is not None:
            sd = _bins_dict(self.score)
            del sd["kind"]
            out["score"] = sd
        return out


def _bins(name: str, spec: Any, where: str) -> FieldBins:
    if not isinstance(spec, Mapping):
        raise ManifestError(f"manifest {where}: expected an object, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in ("numeric", "categorical", "score"):
        raise ManifestError(f"manifest {where}.kind: expected 'numeric' or 'categorical', got {kind!r}")
    shares = spec.get("shares")
    if not isinstance(shares, list) or not all(_finite(s) and 0.0 <= s <= 1.0 for s in shares):
        raise ManifestError(f"manifest {where}.shares: expected a list of proportions in [0, 1]")
    if shares and abs(sum(shares) - 1.0) > 1e-3:
        raise ManifestError(f"manifest {where}.shares: the proportions add up to {sum(shares):.6g}, not 1")
    edges: tuple[float, ...] = ()
    cats: tuple[str, ...] = ()
    rng: tuple[float | None, float | None] = (None, None)
    if kind == "categorical":
        c = spec.get("categories")
        if not isinstance(c, list) or not c or not all(isinstance(x, str) for x in c) or len(set(c)) != len(c):
            raise ManifestError(f"manifest {where}.categories: expected a list of distinct category names")
        cats = tuple(c)
        expected = len(cats) + 2
    else:
        e = spec.get("edges")
        if not isinstance(e, list) or not all(_finite(x) for x in e) or any(b <= a for a, b in zip(e, e[1:])):
            raise ManifestError(f"manifest {where}.edges: expected strictly increasing finite numbers")
        edges = tuple(float(x) for x in e)
        expected = len(edges) + (2 if kind == "numeric" else 1)
        r = spec.get("range", [None, None])
        if not isinstance(r, list) or len(r) != 2 or not all(x is None or _finite(x) for x in r):
            raise ManifestError(f"manifest {where}.range: expected [min, max] (numbers or null)")
        rng = (None if r[0] is None else float(r[0]), None if r[1] is None else float(r[1]))
    if len(shares) != expected:
        raise ManifestError(
            f"manifest {where}.shares: expected {expected} proportions (one per bin), got {len(shares)}"
        )
    oor = spec.get("out_of_range", 0.0)
    if not _finite(oor) or not 0.0 <= oor <= 1.0:
        raise ManifestError(f"manifest {where}.out_of_range: expected a proportion, got {oor!r}")
    return FieldBins(
        name=name,
        kind=kind,
        shares=tuple(float(s) for s in shares),
        edges=edges,
        categories=cats,
        range=rng,
        out_of_range=float(oor),
    )


def _bins_dict(b: FieldBins) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": b.kind, "shares": list(b.shares)}
    if b.kind == "categorical":
        d["categories"] = list(b.categories)
    else:
        d["edges"] = list(b.edges)
        if b.kind == "numeric":
            d["range"] = list(b.range)
            d["out_of_range"] = b.out_of_range
    return d


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ---------------------------------------------------------------- value interpretation
def numeric_values(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, invalid mask) of a numeric column; missing (None, NaN, '', pandas.NA) is NaN;
    a value that is no number (text, inf) is NaN and marked invalid."""
    try:
        arr = np.asarray(column, dtype=np.float64)
        if arr.ndim == 1:
            bad = np.isinf(arr)
            return np.where(bad, np.nan, arr), bad
    except (TypeError, ValueError):
        pass
    vals = list(column)
    out = np.empty(len(vals), dtype=np.float64)
    bad = np.zeros(len(vals), dtype=bool)
    na = pd_na()
    for i, v in enumerate(vals):
        if v is None or v is na or (isinstance(v, str) and v.strip() == ""):
            out[i] = math.nan
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = math.nan
            bad[i] = True
        if math.isinf(f):
            f, bad[i] = math.nan, True
        out[i] = f
    return out, bad


def category_values(column: Any) -> list[str | None]:
    """Canonical category text per value (None: missing; a value no category can be: its str())."""
    out: list[str | None] = []
    for v in column:
        try:
            out.append(canonical_category(v))
        except TypeError:
            out.append(str(v))
    return out


# ---------------------------------------------------------------- binning
def _bin_numeric(b: FieldBins, column: Any) -> tuple[np.ndarray, int]:
    """(counts per bin, out-of-range count) for a numeric column."""
    x, _bad = numeric_values(column)
    miss = np.isnan(x)
    idx = np.searchsorted(np.asarray(b.edges, dtype=np.float64), x, side="right")
    idx[miss] = len(b.edges) + 1
    counts = np.bincount(idx, minlength=b.n_bins)
    lo, hi = b.range
    ok = ~miss
    oor = 0
    if lo is not None:
        oor += int((x[ok] < lo).sum())
    if hi is not None:
        oor += int((x[ok] > hi).sum())
    return counts.astype(np.int64), oor


def _bin_categorical(b: FieldBins, column: Any, lut: Mapping[str, int]) -> np.ndarray:
    unseen, missing = len(b.categories), len(b.categories) + 1
    idx = [missing if c is None else lut.get(c, unseen) for c in category_values(column)]
    return np.bincount(np.asarray(idx, dtype=np.int64), minlength=b.n_bins).astype(np.int64)


def _bin_scores(b: FieldBins, scores: Any) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    s = s[~np.isnan(s)]
    idx = np.searchsorted(np.asarray(b.edges, dtype=np.float64), s, side="right")
    return np.bincount(idx, minlength=b.n_bins).astype(np.int64)


# ---------------------------------------------------------------- the monitor
class DriftMonitor:
    """Counts observed records into the bundle's reference bins; merge, serialise, report PSI.

    ``DriftMonitor(predictor)`` reads the reference from the predictor's bundle (and scores records
    with it when no scores are given); ``DriftMonitor(reference=ref)`` needs no predictor (then
    scores are counted only when given).
    """

    def __init__(self, predictor: Any = None, *, reference: DriftReference | None = None) -> None:
        if reference is None:
            if predictor is None:
                raise ValueError("DriftMonitor: give a predictor or a reference")
            reference = DriftReference.from_manifest(predictor.info)
        self.reference = reference
        self._predictor = predictor
        self._lock = threading.Lock()
        self._luts = {f.name: {c: i for i, c in enumerate(f.categories)} for f in reference.fields}
        self._n = 0
        self._counts = {f.name: np.zeros(f.n_bins, dtype=np.int64) for f in reference.fields}
        self._oor = {f.name: 0 for f in reference.fields if f.kind == "numeric"}
        self._score = None if reference.score is None else np.zeros(reference.score.n_bins, dtype=np.int64)
        self._scored = 0

    # ------------------------------------------------------------ observing
    def observe(self, data: Any, scores: Sequence[float] | np.ndarray | None = None) -> None:
        """Count a batch: a list (iterable) of record dicts, or columns (a mapping of equal-length
        arrays, a pandas DataFrame, a pyarrow Table). ``scores``: the batch's probabilities (NaN for a
        rejected row); None scores it with the predictor (if there is one)."""
        columns = _columns(data)
        n = _length(columns, self.reference)
        fields = {}
        oor = {}
        for b in self.reference.fields:
            col = columns.get(b.name)
            if col is None:
                col = [None] * n
            if b.kind == "numeric":
                fields[b.name], oor[b.name] = _bin_numeric(b, col)
            else:
                fields[b.name] = _bin_categorical(b, col, self._luts[b.name])
        score_counts = None
        if self.reference.score is not None:
            if scores is None and self._predictor is not None:
                scores = self._predictor.score_columns(columns).probabilities
            if scores is not None:
                if len(scores) != n:
                    raise InputError(f"drift: {len(scores)} scores for {n} records")
                score_counts = _bin_scores(self.reference.score, scores)
        with self._lock:
            self._n += n
            for k, c in fields.items():
                self._counts[k] += c
            for k, o in oor.items():
                self._oor[k] += o
            if score_counts is not None and self._score is not None:
                self._score += score_counts
                self._scored += int(score_counts.sum())

    def observe_record(self, record: Mapping[str, Any], score: float | None = None) -> None:
        """Count one record (and its score when given): the serving path, no numpy per field."""
        updates: list[tuple[np.ndarray, int]] = []
        oor: list[str] = []
        na = pd_na()
        for b in self.reference.fields:
            v: Any = record.get(b.name)
            if b.kind == "numeric":
                miss = v is None or v is na or (isinstance(v, str) and v.strip() == "")
                x = math.nan
                if not miss:
                    try:
                        x = float(v)
                    except (TypeError, ValueError):
                        x = math.nan
                if math.isnan(x) or math.isinf(x):
                    updates.append((self._counts[b.name], len(b.edges) + 1))
                    continue
                updates.append((self._counts[b.name], bisect_right(b.edges, x)))
                lo, hi = b.range
                if (lo is not None and x < lo) or (hi is not None and x > hi):
                    oor.append(b.name)
            else:
                try:
                    c = canonical_category(v)
                except TypeError:
                    c = str(v)
                i = len(b.categories) + 1 if c is None else self._luts[b.name].get(c, len(b.categories))
                updates.append((self._counts[b.name], i))
        si = -1
        if score is not None and self.reference.score is not None and not math.isnan(score):
            si = bisect_right(self.reference.score.edges, float(score))
        with self._lock:
            self._n += 1
            for arr, i in updates:
                arr[i] += 1
            for name in oor:
                self._oor[name] += 1
            if si >= 0 and self._score is not None:
                self._score[si] += 1
                self._scored += 1

    # ------------------------------------------------------------ counts
    @property
    def n(self) -> int:
        """Records observed."""
        return self._n

    def counts(self) -> dict[str, Any]:
        """A consistent snapshot of every counter (plain ints): what :meth:`to_json` writes."""
        with self._lock:
            return {
                "n": self._n,
                "scored": self._scored,
                "fields": {k: v.tolist() for k, v in self._counts.items()},
                "out_of_range": dict(self._oor),
                "score": None if self._score is None else self._score.tolist(),
            }

    def merge(self, other: DriftMonitor) -> DriftMonitor:
        """Add another monitor's counts to this one (exact); both must use the same reference."""
        if other.reference.sha256 != self.reference.sha256:
            raise ValueError(
                "DriftMonitor.merge: the monitors use different reference bins (different bundles or "
                "builds); only counts against the same reference add up"
            )
        snap = other.counts()
        with self._lock:
            self._add(snap)
        return self

    def _add(self, snap: Mapping[str, Any]) -> None:
        self._n += int(snap["n"])
        self._scored += int(snap.get("scored", 0))
        for k, v in snap["fields"].items():
            self._counts[k] += np.asarray(v, dtype=np.int64)
        for k, v in snap.get("out_of_range", {}).items():
            self._oor[k] += int(v)
        if snap.get("score") is not None and self._score is not None:
            self._score += np.asarray(snap["score"], dtype=np.int64)

    def to_json(self) -> str:
        """The counts and the reference they refer to, as one JSON document (no data rows)."""
        return json.dumps(
            {
                "format": FORMAT,
                "reference_sha256": self.reference.sha256,
                "reference": self.reference.to_dict(),
                "counts": self.counts(),
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes, predictor: Any = None) -> DriftMonitor:
        """A monitor from :meth:`to_json` output; with ``predictor``, its bundle must have the same reference."""
        try:
            d = json.loads(text)
        except ValueError as exc:
            raise InputError(f"drift counts: not valid JSON ({str(exc)[:120]})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise InputError(f"drift counts: expected a JSON object with format {FORMAT!r}")
        ref = DriftReference.from_dict(d.get("reference"), "drift counts reference")
        if predictor is not None:
            own = DriftReference.from_manifest(predictor.info)
            if own.sha256 != ref.sha256:
                raise ValueError("DriftMonitor.from_json: the counts were made against another bundle's reference")
            ref = own
        mon = cls(predictor, reference=ref)
        mon._add(_checked_counts(d.get("counts"), ref))
        return mon

    # ------------------------------------------------------------ the report
    def report(self, confidence: float = CONFIDENCE) -> DriftReport:
        """PSI per field and for the score, levels, critical values and data-quality shares."""
        snap = self.counts()
        m = self.reference.rows
        fields = {}
        for b in self.reference.fields:
            counts = snap["fields"][b.name]
            fields[b.name] = _field_drift(b, counts, m, confidence, snap["out_of_range"].get(b.name, 0))
        score = None
        if self.reference.score is not None and snap["score"] is not None:
            score = _field_drift(self.reference.score, snap["score"], m, confidence, 0)
        return DriftReport(n=snap["n"], reference_rows=m, fields=fields, score=score, confidence=confidence)


def _checked_counts(c: Any, ref: DriftReference) -> dict[str, Any]:
    where = "drift counts"
    if not isinstance(c, dict):
        raise InputError(f"{where}: 'counts' must be an object")

    def ints(v: Any, n: int, what: str) -> list[int]:
        if not isinstance(v, list) or len(v) != n or not all(isinstance(x, int) and x >= 0 for x in v):
            raise InputError(f"{where}: {what} must be {n} non-negative integers")
        return v

    fields = c.get("fields")
    if not isinstance(fields, dict) or set(fields) != {b.name for b in ref.fields}:
        raise InputError(f"{where}: 'fields' must hold counts for exactly the reference's fields")
    for b in ref.fields:
        ints(fields[b.name], b.n_bins, f"fields.{b.name}")
    if ref.score is not None and c.get("score") is not None:
        ints(c["score"], ref.score.n_bins, "score")
    for k in ("n", "scored"):
        if not isinstance(c.get(k, 0), int) or c.get(k, 0) < 0:
            raise InputError(f"{where}: '{k}' must be a non-negative integer")
    return c


def _columns(data: Any) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        if data and all(not hasattr(v, "__len__") or isinstance(v, str) for v in data.values()):
            raise InputError("drift: observe() takes a list of records or a mapping of columns, not one record")
        return data
    import sys

    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(data, pd.DataFrame):
        return {k: data[k].to_numpy() for k in data.columns}
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(data, (pa.Table, pa.RecordBatch)):
        return {k: data.column(k).to_pylist() for k in data.column_names}
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise InputError(f"drift: observe() takes records or columns, got {type(data).__name__}")
    recs = list(data)
    for i, r in enumerate(recs):
        if not isinstance(r, Mapping):
            raise InputError(f"drift: record {i} is a {type(r).__name__}, not a mapping of field -> value")
    names = {k for r in recs for k in r}
    return {k: [r.get(k) for r in recs] for k in names} if recs else {}


def _length(columns: Mapping[str, Any], ref: DriftReference) -> int:
    lengths = {len(columns[b.name]) for b in ref.fields if b.name in columns}
    if not lengths:
        lengths = {len(v) for v in columns.values()} or {0}
    if len(lengths) != 1:
        raise InputError(f"drift: columns of different lengths {sorted(lengths)}")
    return lengths.pop()


# ---------------------------------------------------------------- PSI and its critical value
@dataclass(frozen=True)
class FieldDrift:
    """One field's (or the score's) drift against training."""

    name: str
    psi: float
    level: str
    critical: float
    exceeds_critical: bool
    bins: int
    n: int
    shares: tuple[float, ...]
    reference_shares: tuple[float, ...]
    missing_share: float | None = None
    reference_missing_share: float | None = None
    unseen_share: float | None = None
    out_of_range_share: float | None = None
    reference_out_of_range_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["shares"], d["reference_shares"] = list(self.shares), list(self.reference_shares)
        return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class DriftReport:
    """PSI per field and for the score (None when no scores were counted)."""

    n: int
    reference_rows: int
    fields: Mapping[str, FieldDrift]
    score: FieldDrift | None
    confidence: float = CONFIDENCE
    levels: tuple[float, float] = field(default=LEVELS)

    @property
    def drifted(self) -> list[str]:
        """Fields (and 'score') whose PSI exceeds both the 0.1 level and the critical value."""
        items = list(self.fields.values()) + ([self.score] if self.score is not None else [])
        return [f.name for f in items if f.exceeds_critical and f.psi >= self.levels[0]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "reference_rows": self.reference_rows,
            "confidence": self.confidence,
            "levels": list(self.levels),
            "drifted": self.drifted,
            "fields": {k: v.to_dict() for k, v in self.fields.items()},
            "score": None if self.score is None else self.score.to_dict(),
        }


def psi(actual: Sequence[float], expected: Sequence[float], n: int, m: int) -> tuple[float, int]:
    """(PSI, bins used) of observed shares ``actual`` (n records) against ``expected`` (m records).

    Bins empty on both sides are left out; a bin empty on one side gets half an observation there
    (``0.5 / n`` or ``0.5 / m``) so the logarithm stays finite."""
    total = 0.0
    used = 0
    for a, e in zip(actual, expected):
        if a <= 0.0 and e <= 0.0:
            continue
        used += 1
        a = a if a > 0.0 else 0.5 / max(n, 1)
        e = e if e > 0.0 else 0.5 / max(m, 1)
        total += (a - e) * math.log(a / e)
    return total, used


def critical_value(n: int, m: int, bins: int, confidence: float = CONFIDENCE) -> float:
    """The PSI a drift-free sample of ``n`` exceeds with probability ``1 - confidence``:
    ``(1/n + 1/m) * chi2.ppf(confidence, bins - 1)``."""
    if n <= 0 or bins < 2:
        return math.inf if n <= 0 else 0.0
    return (1.0 / n + 1.0 / m) * chi2_ppf(confidence, bins - 1)


def level(value: float, levels: tuple[float, float] = LEVELS) -> str:
    return "stable" if value < levels[0] else ("moderate" if value < levels[1] else "significant")


def _field_drift(b: FieldBins, counts: Sequence[int], m: int, confidence: float, oor: int) -> FieldDrift:
    n = int(sum(counts))
    shares = tuple(c / n for c in counts) if n else tuple(0.0 for _ in counts)
    value, used = psi(shares, b.shares, n, m) if n else (0.0, 0)
    crit = critical_value(n, m, used, confidence)
    extra: dict[str, Any] = {}
    if b.kind != "score":
        extra["missing_share"] = shares[-1] if n else 0.0
        extra["reference_missing_share"] = b.shares[-1]
    if b.kind == "categorical":
        extra["unseen_share"] = shares[-2] if n else 0.0
    if b.kind == "numeric":
        extra["out_of_range_share"] = oor / n if n else 0.0
        extra["reference_out_of_range_share"] = b.out_of_range
    return FieldDrift(
        name=b.name,
        psi=value,
        level=level(value),
        critical=crit,
        exceeds_critical=n > 0 and value > crit,
        bins=used,
        n=n,
        shares=shares,
        reference_shares=b.shares,
        **extra,
    )


def chi2_ppf(p: float, df: int) -> float:
    """The ``p`` quantile of the chi-square distribution with ``df`` degrees of freedom (bisection on
    the regularised lower incomplete gamma function; exact to ~1e-10, no scipy)."""
    if not 0.0 < p < 1.0 or df < 1:
        raise ValueError(f"chi2_ppf: need 0 < p < 1 and df >= 1, got p={p}, df={df}")
    lo, hi = 0.0, max(1.0, df + 10.0 * math.sqrt(2.0 * df) + 20.0)
    while _chi2_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _chi2_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def _chi2_cdf(x: float, df: int) -> float:
    return _gammainc(df / 2.0, x / 2.0)


def _gammainc(a: float, x: float) -> float:
    """Regularised lower incomplete gamma P(a, x) (series below a + 1, continued fraction above)."""
    if x <= 0.0:
        return 0.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(10000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return min(1.0, total * math.exp(log_front))
    # Lentz's continued fraction for Q(a, x)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return max(0.0, 1.0 - math.exp(log_front) * h)


__all__ = [
    "DriftMonitor",
    "DriftReference",
    "DriftReport",
    "FieldBins",
    "FieldDrift",
    "psi",
    "critical_value",
    "chi2_ppf",
    "level",
    "numeric_values",
    "category_values",
]
