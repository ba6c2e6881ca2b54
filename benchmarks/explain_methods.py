"""Which cheap attribution scheme names the same top-4 reasons as exact float Shapley? (issue 16)

    uv run --no-sync python benchmarks/explain_methods.py --run runs/demo \
        --out benchmarks/results/explain-methods-demo.json

For every test record and every bundle given, the whole coalition game is scored once through the
runtime's own engine: all 2^n coalitions of the n schema fields (the record's encoded columns for the
fields in the coalition, the bundle's reference applicant's for the others), 8,192 rows a record at 13
fields. Every scheme below is then evaluated on that table, so each scheme's figure uses exactly the
values the device would compute, and its cost is the number of coalition rows it needs per record:

* ``exact``: Shapley values of the game (all 2^n - 1 rows; the toolkit's validation reference when
  computed on the float32 bundle, ``--float-variant``);
* ``exact logit -> rescale``: exact Shapley values of the logit game ``log(v / (1 - v))`` mapped back
  to probability with efficiency kept (DeepSHAP-style rescale: phi_p = phi_logit * (p(x) - p(r)) /
  (logit(x) - logit(r))): the best any logit-space approximation can do;
* ``paired`` (the runtime's): mean of "add the field to the reference" and "remove it from the
  record" (2n + 1 rows), residual spread by |attribution|; ``paired logit -> rescale`` the same in
  logit space; the residual spread by |add - remove| or equally instead (``paired spread=...``);
* ``sampled P``: P antithetic permutation pairs (the runtime's tables, 2 P n rows), in probability
  and in logit space;
* ``stratified`` (the runtime's default, ``exact`` up to 5 fields): per field the mean marginal contribution at
  coalition sizes 0, 1, n - 2 and n - 1 (all singles, pairs, all-but-one and all-but-two: 1 + 2n +
  n(n - 1) rows), a cubic in the size through them (exact for interactions of up to 4 fields),
  averaged over sizes; in probability and logit space;
* ``paired -> exact top m + rest``: exact Shapley over the m fields ``paired`` ranks highest plus one
  player holding all the others (2n + 2^(m+1) rows, two engine calls).

Logit of a quantised output: values are clipped to half the smallest positive step of the output
grid (int8: 1/256) so that 0 and 1 stay finite. Agreement (``edgefin.explain.ranking``: positive
contributions, largest first, ties by schema order; ``set`` / ``ordered`` / ``top1``) is against the
exact values of the float bundle on the same records; ``fragility`` says how often the exact 4th and
5th contributions are within 5% / 10% of each other.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from explain_bench import load_without_protected, records_of

from edgefin_runtime.explain import EXACT_NOISE, SAMPLED_PERMUTATIONS, _exact_table, _sampled_table

from edgefin.explain.ranking import agreement, top_reasons


def game_table(path: Path, test: pd.DataFrame) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(records, 2^n) coalition scores through the bundle's engine (coalition s: bit j = field j from the
    record, fields in preprocessing order), the field names in that order, and which fields of each
    record differ from the reference (the others are null players: exactly 0, as in the runtime)."""
    pred = load_without_protected(path)
    ex = pred.explainer()
    recs = records_of(test, list(pred.schema.names))
    nf = len(ex._fields)
    s = np.arange(1 << nf)
    z = ((s[:, None] >> np.arange(nf)) & 1).astype(bool)
    colmask = np.repeat(z, [b - a for a, b in ex._spans], axis=1)
    out = np.zeros((len(recs), 1 << nf))
    active = np.zeros((len(recs), nf), dtype=bool)
    for i, r in enumerate(recs):
        row, _ = pred._pre.record(r)
        x = np.asarray(row, dtype=np.float32)
        active[i] = np.logical_or.reduceat(x != ex._ref, ex._starts)
        out[i] = pred.engine.run(np.where(colmask, x, ex._ref))
    return out, list(ex._fields), active


class Schemes:
    """Every scheme over a game table G (records, 2^n)."""

    _cache: dict[int, Schemes] = {}

    @classmethod
    def of(cls, nf: int) -> Schemes:
        got = cls._cache.get(nf)
        if got is None:
            got = cls._cache[nf] = cls(nf)
        return got

    def __init__(self, nf: int) -> None:
        self.nf = nf
        self.full = (1 << nf) - 1
        self.bits = 1 << np.arange(nf)
        self.w = _exact_table(nf)[1]

    def exact(self, g: np.ndarray) -> np.ndarray:
        phi = g @ self.w.T
        phi[np.abs(phi) < EXACT_NOISE] = 0.0  # the runtime's rule: rounding noise of a field with no effect
        return phi

    def paired(self, g: np.ndarray, spread: str = "abs") -> np.ndarray:
        v0, p = g[:, :1], g[:, self.full : self.full + 1]
        add = g[:, self.bits] - v0
        rem = p - g[:, self.full ^ self.bits]
        phi = 0.5 * (add + rem)
        weights = {"abs": np.abs(phi), "interaction": np.abs(rem - add), "equal": (add != 0) | (rem != 0)}
        return spread_residual(phi, (p - v0)[:, 0], np.asarray(weights[spread], dtype=np.float64))

    def sampled(self, g: np.ndarray, pairs: int) -> np.ndarray:
        order = _sampled_table(self.nf)[1]
        order = np.concatenate([order[:pairs], order[SAMPLED_PERMUTATIONS : SAMPLED_PERMUTATIONS + pairs]])
        phi = np.zeros((len(g), self.nf))
        for perm in order:
            s, prev = 0, g[:, 0]
            for j in perm:
                s |= 1 << int(j)
                phi[:, j] += g[:, s] - prev
                prev = g[:, s]
        return phi / len(order)

    def stratified(self, g: np.ndarray) -> np.ndarray:
        k, bits, full = self.nf, self.bits, self.full
        v0, p = g[:, 0], g[:, full]
        m = np.zeros((len(g), k, 4))
        m[:, :, 0] = g[:, bits] - v0[:, None]
        m[:, :, 3] = p[:, None] - g[:, full ^ bits]
        for i in range(k):
            others = [j for j in range(k) if j != i]
            m[:, i, 1] = (g[:, [bits[i] | bits[j] for j in others]] - g[:, [bits[j] for j in others]]).mean(1)
            m[:, i, 2] = (
                g[:, [full ^ bits[j] for j in others]] - g[:, [full ^ bits[i] ^ bits[j] for j in others]]
            ).mean(1)
        sizes = np.array([0, 1, k - 2, k - 1], dtype=np.float64)
        coef = np.linalg.solve(np.vander(sizes, 4), m.reshape(-1, 4).T)
        phi = (np.vander(np.arange(k, dtype=np.float64), 4) @ coef).mean(0).reshape(len(g), k)
        return spread_residual(phi, p - v0, np.abs(phi))

    def grouped(self, g: np.ndarray, top: int) -> np.ndarray:
        pr = self.paired(g)
        out = np.zeros_like(pr)
        w = _exact_table(top + 1)[1]
        for r in range(len(g)):
            cand = list(np.argsort(-pr[r], kind="stable")[:top])
            rest = [j for j in range(self.nf) if j not in cand]
            players = [1 << int(j) for j in cand] + [sum(1 << j for j in rest)]
            masks = [sum(players[b] for b in range(top + 1) if (s >> b) & 1) for s in range(1 << (top + 1))]
            phi = w @ g[r, masks]
            out[r, cand] = phi[:top]
            weight = np.abs(pr[r, rest])
            if weight.sum() > 0:
                out[r, rest] = phi[top] * weight / weight.sum()
        return out


SchemeFn = Callable[["Schemes", np.ndarray, np.ndarray], np.ndarray]


def by_subgame(g: np.ndarray, active: np.ndarray, fn: SchemeFn) -> np.ndarray:
    """A scheme run as the runtime runs it: on each record's game over its k active fields only (the
    fields equal to the reference are no players and get exactly 0); records grouped by k."""
    out = np.zeros(active.shape)
    ks = active.sum(axis=1)
    eps = logit_eps(g)
    for k in np.unique(ks):
        k = int(k)
        idx = np.flatnonzero(ks == k)
        if k == 0:
            continue
        sub_bits = ((np.arange(1 << k)[:, None] >> np.arange(k)) & 1).astype(np.int64)  # (2^k, k)
        sub = np.empty((len(idx), 1 << k))
        players = np.empty((len(idx), k), dtype=np.int64)
        for j, r in enumerate(idx):
            players[j] = np.flatnonzero(active[r])
            sub[j] = g[r, sub_bits @ (1 << players[j])]
        phi = fn(Schemes.of(k), sub, logit(sub, eps))
        for j, r in enumerate(idx):
            out[r, players[j]] = phi[j]
    return out


def spread_residual(phi: np.ndarray, total: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The runtime's efficiency repair: total - sum(phi) spread over the fields in proportion to weight."""
    phi = phi.copy()
    ws = weight.sum(1)
    ok = ws > 0
    phi[ok] += ((total - phi.sum(1))[ok] / ws[ok])[:, None] * weight[ok]
    return phi


def logit_eps(g: np.ndarray) -> float:
    """Where the logit clips a whole game table: half its smallest positive step on a quantised output
    grid (few distinct values), else 1e-7."""
    values = np.unique(g)
    positive = values[values > 0]
    return float(positive.min() / 2) if len(values) < 4096 and len(positive) else 1e-7


def logit(g: np.ndarray, eps: float) -> np.ndarray:
    v = np.clip(g, eps, 1 - eps)
    out: np.ndarray = np.log(v / (1 - v))
    return out


def rescale(phi_logit: np.ndarray, g: np.ndarray, lg: np.ndarray) -> np.ndarray:
    full = g.shape[1] - 1
    dp, dl = g[:, full] - g[:, 0], lg[:, full] - lg[:, 0]
    out = phi_logit.copy()
    ok = np.abs(dl) > 1e-12
    out[ok] *= (dp[ok] / dl[ok])[:, None]
    return out


def fragility(phi: np.ndarray) -> dict[str, float]:
    gaps = []
    for row in phi:
        s = np.sort(row[row > 0])[::-1]
        if len(s) >= 5:
            gaps.append((s[3] - s[4]) / s[3])
    g = np.array(gaps)
    return {
        "rows_with_5_positive": len(g),
        "gap_lt_5pct": float(np.mean(g < 0.05)),
        "gap_lt_10pct": float(np.mean(g < 0.1)),
    }


def quantisation_bound(ref_phi: np.ndarray, phi: np.ndarray, fields: list[str], g: np.ndarray) -> dict[str, Any]:
    """How the exact top-4 of a quantised game relates to its output grid: the share of records whose
    exact float 4th and 5th contributions are closer than one output step, and how many of the exact
    disagreements fall there."""
    values = np.unique(g)
    step = float(np.min(np.diff(values))) if len(values) > 1 else 0.0
    gaps = []
    for row in ref_phi:
        s = np.sort(row[row > 0])[::-1]
        gaps.append(s[3] - s[4] if len(s) >= 5 else np.inf)
    gap = np.array(gaps)
    bad = np.array([set(a) != set(b) for a, b in zip(top_reasons(phi, fields, 4), top_reasons(ref_phi, fields, 4))])
    err = np.abs(phi - ref_phi)
    wide = gap >= 2 * step
    return {
        "output_step": step,
        "records_float_gap_below_1_step": round(float(np.mean(gap < step)), 4),
        "disagreements": int(bad.sum()),
        "disagreements_with_float_gap_below_1_step": round(float(np.mean(gap[bad] < step)), 4) if bad.any() else None,
        "disagreements_with_float_gap_below_2_steps": round(float(np.mean(gap[bad] < 2 * step)), 4)
        if bad.any()
        else None,
        "set_agreement_where_float_gap_at_least_2_steps": round(1 - float(bad[wide].mean()), 4) if wide.any() else None,
        "records_float_gap_at_least_2_steps": int(wide.sum()),
        "abs_error_vs_float_median": float(np.median(err)),
        "abs_error_vs_float_p90": float(np.quantile(err, 0.9)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="run directory (bundles with explain sections, data/)")
    ap.add_argument(
        "--variants", default="tflite-fp32,tflite-fp16,tflite-dynamic,tflite-int8,tflite-int8-ptq,onnx-int8"
    )
    ap.add_argument("--float-variant", default="tflite-fp32")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    test = pd.read_parquet(args.run / "data" / "test.parquet")
    t0 = time.time()
    ref_game, fields, active = game_table(args.run / "bundles" / f"{args.float_variant}.efb", test)
    ref_phi = by_subgame(ref_game, active, lambda sc, g, lg: sc.exact(g))
    ref_top = top_reasons(ref_phi, fields, 4)

    def exact_rows(k: int) -> int:
        return (1 << k) - 1

    def fallback(k: int, rows: int) -> int:  # the runtime's exact where it needs no more rows
        return min(rows, exact_rows(k))

    schemes: dict[str, tuple[Callable[[int], int], SchemeFn]] = {
        "exact": (exact_rows, lambda sc, g, lg: sc.exact(g)),
        "exact logit -> rescale": (exact_rows, lambda sc, g, lg: rescale(sc.exact(lg), g, lg)),
        "paired": (lambda k: 2 * k + 1, lambda sc, g, lg: sc.paired(g)),
        "paired logit -> rescale": (lambda k: 2 * k + 1, lambda sc, g, lg: rescale(sc.paired(lg), g, lg)),
        "paired spread=interaction": (lambda k: 2 * k + 1, lambda sc, g, lg: sc.paired(g, "interaction")),
        "paired spread=equal": (lambda k: 2 * k + 1, lambda sc, g, lg: sc.paired(g, "equal")),
        "stratified": (
            lambda k: exact_rows(k) if k <= 5 else 1 + 2 * k + k * (k - 1),
            lambda sc, g, lg: sc.exact(g) if sc.nf <= 5 else sc.stratified(g),
        ),
        "stratified logit -> rescale": (
            lambda k: exact_rows(k) if k <= 5 else 1 + 2 * k + k * (k - 1),
            lambda sc, g, lg: rescale(sc.exact(lg) if sc.nf <= 5 else sc.stratified(lg), g, lg),
        ),
    }
    for pairs in (4, 8, 32):
        schemes[f"sampled {pairs}x2"] = (lambda k, n=pairs: 2 * n * k, lambda sc, g, lg, n=pairs: sc.sampled(g, n))
        schemes[f"sampled {pairs}x2 logit -> rescale"] = (
            lambda k, n=pairs: 2 * n * k,
            lambda sc, g, lg, n=pairs: rescale(sc.sampled(lg, n), g, lg),
        )
    for m in (5, 7):
        schemes[f"paired -> exact top {m} + rest"] = (
            lambda k, m=m: fallback(k, 2 * k + 1 + (1 << (m + 1)) - 2),
            lambda sc, g, lg, m=m: sc.exact(g) if sc.nf <= m + 1 else sc.grouped(g, m),
        )
    ks = active.sum(axis=1)
    result: dict[str, Any] = {
        "run": str(args.run),
        "records": len(ref_game),
        "fields": fields,
        "fields_differing_from_reference_mean": round(float(ks.mean()), 2),
        "float_variant": args.float_variant,
        "reference": "exact Shapley values of the float variant's game (same records, same reference applicant)",
        "fragility_of_exact_float_top4": fragility(ref_phi),
        "variants": {},
    }
    for variant in args.variants.split(","):
        g = ref_game if variant == args.float_variant else game_table(args.run / "bundles" / f"{variant}.efb", test)[0]
        rows = {}
        for name, (cost, fn) in schemes.items():
            a = agreement(top_reasons(by_subgame(g, active, fn), fields, 4), ref_top, 4)
            mean_rows = float(np.mean([cost(int(k)) for k in ks]))
            rows[name] = {
                "rows_per_record_mean": round(mean_rows, 1),
                "rows_at_13_fields": cost(len(fields)),
                **{k: round(float(a[k]), 4) for k in ("set", "ordered", "top1")},
            }
            print(
                f"{variant:16s} {name:34s} rows {mean_rows:7.1f}  set {a['set']:.3f}  ordered {a['ordered']:.3f}  "
                f"top1 {a['top1']:.3f}",
                file=sys.stderr,
            )
        entry: dict[str, Any] = {"distinct_scores": int(len(np.unique(g))), "schemes": rows}
        if len(np.unique(g)) < 4096:  # a quantised output grid
            entry["quantisation"] = quantisation_bound(
                ref_phi, by_subgame(g, active, lambda sc, gg, lg: sc.exact(gg)), fields, g
            )
        result["variants"][variant] = entry
    result["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
