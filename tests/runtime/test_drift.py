"""Drift monitoring on the device: bin counts against the bundle's training bins, PSI, merge, JSON."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from explain_fixtures import fixture_module, with_sections

import edgefin_runtime
from edgefin_runtime.drift import (
    DriftMonitor,
    DriftReference,
    chi2_ppf,
    critical_value,
    level,
    psi,
)
from edgefin_runtime.errors import InputError, ManifestError


@pytest.fixture(scope="module")
def bundle(tiny_bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_sections(tiny_bundles["tflite-int8"], tmp_path_factory.mktemp("drift") / "d.efb")


def records(n: int, seed: int) -> list[dict[str, Any]]:
    cols, _ = fixture_module().tiny_data(n, seed)
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def test_psi_hand_checked() -> None:
    # two bins: observed 0.6 / 0.4 against 0.5 / 0.5:
    # (0.6-0.5) ln(0.6/0.5) + (0.4-0.5) ln(0.4/0.5) = 0.1*0.18232 + 0.1*0.22314 = 0.040546
    value, used = psi([0.6, 0.4], [0.5, 0.5], 100, 1000)
    assert used == 2 and value == pytest.approx(0.1 * math.log(1.2) + 0.1 * math.log(1.25), abs=1e-12)
    assert value == pytest.approx(0.040546, abs=1e-6)
    # a bin empty on both sides is left out; one empty on one side gets half an observation (0.5/n)
    v2, used2 = psi([0.6, 0.4, 0.0, 0.0], [0.5, 0.4, 0.1, 0.0], 100, 1000)
    assert used2 == 3
    assert v2 == pytest.approx((0.1) * math.log(0.6 / 0.5) + (0.005 - 0.1) * math.log(0.005 / 0.1), abs=1e-12)
    assert level(0.05) == "stable" and level(0.1) == "moderate" and level(0.3) == "significant"


def test_chi2_quantiles_and_critical_value() -> None:
    # table values of the chi-square 95% quantile
    for df, want in ((1, 3.841459), (2, 5.991465), (9, 16.918978), (10, 18.307038), (50, 67.504807)):
        assert chi2_ppf(0.95, df) == pytest.approx(want, abs=1e-5)
    assert chi2_ppf(0.99, 4) == pytest.approx(13.276704, abs=1e-5)
    assert critical_value(500, 2000, 10) == pytest.approx((1 / 500 + 1 / 2000) * 16.918978, rel=1e-6)
    assert critical_value(100, 2000, 10) > critical_value(10_000, 2000, 10)


def test_monitor_counts_and_report(bundle: Path) -> None:
    pred = edgefin_runtime.load(str(bundle))
    mon = DriftMonitor(pred)
    recs = records(400, seed=1)  # same process as training data, another seed
    mon.observe(recs)
    assert mon.n == 400
    c = mon.counts()
    assert all(sum(v) == 400 for v in c["fields"].values())
    assert c["scored"] == 400 and sum(c["score"]) == 400
    rep = mon.report()
    for f in rep.fields.values():
        assert f.psi >= 0 and f.critical > 0
    assert rep.score is not None
    # no drift: nothing is flagged as drifted at 95% (with 5 series, a false alarm is possible but rare)
    assert rep.drifted == [] or max(rep.fields[n].psi for n in rep.drifted if n in rep.fields) < 0.1
    json.dumps(rep.to_dict())


def test_shifted_data_is_flagged(bundle: Path) -> None:
    pred = edgefin_runtime.load(str(bundle))
    recs = records(400, seed=2)
    for r in recs:
        if r["Income"] is not None:
            r["Income"] = r["Income"] * 0.4
        r["Home"] = "rent" if r["Home"] == "owner" else r["Home"]
    mon = DriftMonitor(pred)
    mon.observe(recs)
    rep = mon.report()
    assert rep.fields["Income"].psi > 0.25 and rep.fields["Income"].exceeds_critical
    assert rep.fields["Home"].level == "significant"
    assert {"Income", "Home"} <= set(rep.drifted)
    assert "Age" not in rep.drifted


def test_missing_unseen_and_out_of_range_shares(bundle: Path) -> None:
    pred = edgefin_runtime.load(str(bundle))
    mon = DriftMonitor(pred)
    recs = [
        {"Income": None, "Age": 30, "Home": "castle", "Job": None},
        {"Income": 9999.0, "Age": 30, "Home": "rent", "Job": "fixed"},
        {"Income": 50.0, "Age": 99, "Home": "owner", "Job": "spaceman"},
        {"Income": 50.0, "Age": 30, "Home": "owner", "Job": "fixed"},
    ]
    mon.observe(recs, scores=[0.1, 0.2, 0.3, 0.4])
    rep = mon.report()
    assert rep.fields["Income"].missing_share == 0.25
    assert rep.fields["Income"].out_of_range_share == 0.25  # 9999 > the schema's max 300
    assert rep.fields["Age"].out_of_range_share == 0.25
    assert rep.fields["Home"].unseen_share == 0.25
    assert rep.fields["Job"].unseen_share == 0.25 and rep.fields["Job"].missing_share == 0.25


def test_record_path_equals_batch_path_and_merge_is_exact(bundle: Path) -> None:
    pred = edgefin_runtime.load(str(bundle))
    recs = records(300, seed=3)
    scores = [pred.score(r).probability for r in recs]
    whole = DriftMonitor(pred)
    whole.observe(recs, scores=scores)
    one_by_one = DriftMonitor(pred)
    for r, s in zip(recs, scores):
        one_by_one.observe_record(r, s)
    assert one_by_one.counts() == whole.counts()
    # two devices / windows, merged, equal the whole; through JSON too
    a, b = DriftMonitor(pred), DriftMonitor(pred)
    a.observe(recs[:120], scores=scores[:120])
    b.observe(recs[120:], scores=scores[120:])
    merged = DriftMonitor.from_json(a.to_json(), pred).merge(DriftMonitor.from_json(b.to_json()))
    assert merged.counts() == whole.counts()
    assert merged.report().to_dict() == whole.report().to_dict()
    # columns (a mapping of arrays) count the same as records
    cols = DriftMonitor(pred)
    cols.observe({k: [r[k] for r in recs] for k in recs[0]}, scores=np.array(scores))
    assert cols.counts() == whole.counts()


def test_threads_count_exactly(bundle: Path) -> None:
    pred = edgefin_runtime.load(str(bundle))
    recs = records(200, seed=4)
    mon = DriftMonitor(pred)

    def work() -> None:
        for r in recs:
            mon.observe_record(r, 0.5)
        mon.observe(recs[:50], scores=[0.5] * 50)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    single = DriftMonitor(pred)
    for _ in range(4):
        for r in recs:
            single.observe_record(r, 0.5)
        single.observe(recs[:50], scores=[0.5] * 50)
    assert mon.n == 4 * 250 and mon.counts() == single.counts()


def test_refuses_mismatched_or_bad_input(bundle: Path, tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    pred = edgefin_runtime.load(str(bundle))
    mon = DriftMonitor(pred)
    with pytest.raises(InputError, match="not one record"):
        mon.observe({"Income": 1.0, "Age": 30, "Home": "rent", "Job": "fixed"})
    with pytest.raises(InputError, match="3 scores for 2 records"):
        mon.observe(records(2, 5), scores=[0.1, 0.2, 0.3])
    with pytest.raises(InputError, match="format"):
        DriftMonitor.from_json('{"format": "x"}')
    other = with_sections(tiny_bundles["tflite-fp32"], tmp_path / "o.efb")
    with pytest.raises(ValueError, match="different reference"):
        mon.merge(DriftMonitor(edgefin_runtime.load(str(other))))
    with pytest.raises(ManifestError, match="no drift section"):
        DriftMonitor(edgefin_runtime.load(str(tiny_bundles["tflite-fp32"])))
    bad = dict(pred.info.drift)  # type: ignore[arg-type]
    bad["fields"] = {**bad["fields"], "Age": {**bad["fields"]["Age"], "shares": [1.0]}}
    with pytest.raises(ManifestError, match=r"drift.fields.Age.shares"):
        DriftReference.from_dict(bad)


def test_the_bundle_holds_no_data_row(bundle: Path) -> None:
    """Bins are rounded quantiles, the reference applicant a rounded aggregate: no training value verbatim
    except values that are common (a category, a round number shared by many rows)."""
    pred = edgefin_runtime.load(str(bundle))
    cols, _ = fixture_module().tiny_data()
    incomes = [v for v in cols["Income"] if v is not None]
    ref = pred.info.explain["reference"]["record"]  # type: ignore[index]
    assert ref["Income"] not in incomes
    edges = pred.info.drift["fields"]["Income"]["edges"]  # type: ignore[index]
    assert not set(edges) & set(incomes)
