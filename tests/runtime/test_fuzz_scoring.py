"""Fuzzing the scoring path: any record gives a Score with a finite probability in [0, 1] or a typed
InputError, never another exception; batches and columns account for every row (in = scored +
rejected) and agree with the single-record path. The long version is
``benchmarks/security_sweep.py --long --categories hostile-input`` (200k records)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
from hostile_records import SPECIALS, dict_records, records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgefin_runtime.errors import InputError
from edgefin_runtime.preprocess import Policy, Preprocessor

NAMES = ("Income", "Age", "Home", "Job")
_HC = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=_HC)
FUZZ_MANY = settings(max_examples=60, deadline=None, suppress_health_check=_HC)  # lists of records
ENGINES = ("tflite-int8", "onnx-fp32")


def _check_score(p, rec):
    try:
        s = p.score(rec)
    except InputError as err:
        assert str(err)  # a message, naming the field where there is one
        return None
    assert isinstance(s.probability, float) and math.isfinite(s.probability) and 0.0 <= s.probability <= 1.0
    assert s.decision == (s.probability >= p.threshold)
    return s


@pytest.mark.parametrize("variant", ENGINES)
@pytest.mark.parametrize("policy", ["lenient", "strict"])
@FUZZ
@given(rec=records(NAMES))
def test_any_record_gives_a_score_or_a_typed_error(predictors, variant, policy, rec):
    p = predictors[variant].with_policy(policy)
    _check_score(p, rec)


@FUZZ_MANY
@given(recs=st.lists(records(NAMES), max_size=30))
def test_batches_account_for_every_row_and_match_single_scores(predictors, recs):
    p = predictors["onnx-fp32"]
    res = p.score_batch(recs)
    assert [r.row for r in res] == list(range(len(recs)))
    scored = sum(r.ok for r in res)
    rejected = sum(not r.ok for r in res)
    assert scored + rejected == len(recs)
    for rec, r in zip(recs, res):
        single = _check_score(p, rec)
        if r.ok:
            assert single is not None and r.score.probability == single.probability
            assert math.isfinite(r.score.probability)
        else:
            assert single is None and isinstance(r.error, InputError) and r.error.row == r.row


@FUZZ_MANY
@given(recs=st.lists(dict_records(NAMES), min_size=1, max_size=25))
def test_record_and_columns_paths_agree(predictors, recs):
    """The same rows as dicts and as columns: same features, or both reject."""
    m = predictors["tflite-int8"].info
    pre = Preprocessor(m.schema, m.preprocessing, Policy())
    cols = {n: [r.get(n) for r in recs] for n in NAMES}
    res = pre.columns(cols)
    for i, r in enumerate(recs):
        row = {n: r.get(n) for n in NAMES if n in r}
        try:
            feats, _ = pre.record(row)
        except InputError:
            assert i in res.errors, f"row {i} {row!r}: record path rejects, columns path accepts"
            continue
        assert i not in res.errors, f"row {i} {row!r}: columns path rejects ({res.errors.get(i)}), record accepts"
        assert np.array_equal(np.asarray(feats, dtype=np.float32), res.matrix[i]), row


@FUZZ_MANY
@given(recs=st.lists(dict_records(NAMES), max_size=25))
def test_columns_scores_are_finite_or_nan_for_rejected_rows(predictors, recs):
    p = predictors["tflite-int8"]
    cols = {n: [r.get(n) for r in recs] for n in NAMES}
    cs = p.score_columns(cols)
    ok = ~cs.rejected
    assert len(cs) == len(recs) == int(ok.sum()) + len(cs.errors)
    assert np.isfinite(cs.probabilities[ok]).all() and np.isnan(cs.probabilities[~ok]).all()
    assert not cs.decisions[~ok].any()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("inf"), 10**400])
def test_non_finite_never_becomes_a_plausible_score(predictors, value):
    for v in ENGINES:
        p = predictors[v]
        with pytest.raises(InputError):
            p.score({"Income": 1.0, "Age": value, "Home": "rent", "Job": "fixed"})  # Age allows no missing
        rec = {"Income": value, "Age": 30, "Home": "rent", "Job": "fixed"}
        if value != value:  # NaN (any float type)
            assert "imputed:Income" in p.score(rec).flags  # NaN means missing; Income allows missing
        else:
            with pytest.raises(InputError):
                p.score(rec)


@pytest.mark.parametrize("value", SPECIALS, ids=lambda v: type(v).__name__ + ":" + repr(v)[:12])
def test_every_special_value_in_every_field(predictors, value):
    p = predictors["onnx-fp32"]
    for name in NAMES:
        rec = {"Income": 100.0, "Age": 40, "Home": "rent", "Job": "fixed", name: value}
        _check_score(p, rec)


def test_deeply_nested_and_huge_values_are_rejected_quickly(predictors):
    deep = 1.0
    for _ in range(100_000):
        deep = [deep]
    for value in (deep, "z" * 10_000_000, [0.0] * 1_000_000, 10**3000):
        for name in NAMES:
            with pytest.raises(InputError):
                predictors["onnx-fp32"].score({"Income": 1.0, "Age": 30, "Home": "rent", "Job": "fixed", name: value})


def test_cli_rows_in_equal_scored_plus_rejected(tiny_bundles, tmp_path):
    """edgefin-run score over hostile JSON Lines: one output row per input row, in order."""
    import random

    from hostile_records import record

    rng = random.Random(3)
    lines = []
    for _ in range(300):
        rec = record(rng, NAMES)
        try:
            lines.append(json.dumps(rec, allow_nan=True))
        except (TypeError, ValueError, RecursionError):
            lines.append(rng.choice(("{not json", "[1, 2]", '"text"', "", "null", '{"Income": NaN}')))
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgefin_runtime.cli",
            "score",
            str(tiny_bundles["tflite-int8"]),
            str(src),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    non_blank = [x for x in lines if x.strip()]
    assert len(rows) == len(non_blank)  # blank lines are not records; every other line is a row
    assert [r["row"] for r in rows] == list(range(1, len(rows) + 1))
    scored = [r for r in rows if r["status"] == "scored"]
    rejected = [r for r in rows if r["status"] == "rejected"]
    assert len(scored) + len(rejected) == len(rows) and scored and rejected
    assert all(math.isfinite(r["score"]) and 0 <= r["score"] <= 1 for r in scored)
    assert all(r["error"] and r["error_type"].endswith("Error") for r in rejected)
    m = re.search(r"(\d+) rows in, (\d+) scored, (\d+) rejected", proc.stderr)
    assert m, proc.stderr
    assert tuple(map(int, m.groups())) == (len(rows), len(scored), len(rejected))


@pytest.mark.parametrize("value", [1e37, -1e37, 10**37, 1e12, 3.4e38])
def test_extreme_values_are_rejected_and_never_sink_a_batch(predictors, value):
    """Found by the long sweep: Age=1e37 passed validation and the TFLite fp32 model's float32
    arithmetic overflowed to NaN, which the predictor refused for the whole batch."""
    for v in ("tflite-fp32", "tflite-int8", "onnx-fp32"):
        p = predictors[v]
        for name in ("Income", "Age"):
            bad = {"Income": 100.0, "Age": 40, "Home": "rent", "Job": "fixed", name: value}
            with pytest.raises(InputError, match="too large to score"):
                p.score(bad)
            res = p.score_batch([{"Income": 100.0, "Age": 40, "Home": "rent", "Job": "fixed"}, bad])
            assert [r.status for r in res] == ["scored", "rejected"]
            cs = p.score_columns(
                {
                    k: [100.0 if k == "Income" else 40 if k == "Age" else "rent" if k == "Home" else "fixed", bad[k]]
                    for k in bad
                }
            )
            assert cs.rejected.tolist() == [False, True]
