"""/v1/explain (reason codes) and drift counters (/metrics, /v1/drift) over HTTP."""

from __future__ import annotations

import json

import pytest
from conftest import Served, parse_metrics
from explain_fixtures import with_sections

import edgefin_runtime
from edgefin_runtime.cli import main as cli_main
from edgefin_runtime.drift import DriftMonitor

RECORDS = [
    {"Income": 120.0, "Age": 35, "Home": "rent", "Job": "fixed"},
    {"Income": None, "Age": 61, "Home": "owner", "Job": "freelance"},
    {"Income": 15.0, "Age": 23, "Home": "castle", "Job": "partime"},
    {"Age": 30, "Home": "rent"},
    {"Income": 50.0, "Home": "rent"},  # rejected: Age is required
]


@pytest.fixture(scope="module")
def explained(tiny_bundles, tmp_path_factory):
    d = tmp_path_factory.mktemp("explain")
    return with_sections(tiny_bundles["tflite-int8"], d / "tiny-explained.efb")


@pytest.fixture(scope="module")
def server(explained, tmp_path_factory):
    s = Served([str(explained)], tmp_path_factory.mktemp("serve-explain"))
    yield s
    assert s.stop() == 0


def test_explain_equals_score_reasons(server, explained, tmp_path, capsys):
    """/v1/explain rows are `edgefin-run score --reasons` rows, scores and contributions bit for bit."""
    r = server.post("/v1/explain", content=json.dumps(RECORDS))
    assert r.status_code == 200, r.text
    rows = r.json()["results"]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in RECORDS))
    capsys.readouterr()
    assert cli_main(["score", str(explained), str(src), "--reasons", "-q"]) == 0
    assert rows == [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    p = edgefin_runtime.load(explained)
    for rec, row in zip(RECORDS[:4], rows):
        e = p.explain(rec)
        assert row["score"] == e.score.probability and row["reference_score"] == e.reference_score
        assert row["reasons"] == [x.to_dict() for x in e.reasons]
    assert rows[4]["status"] == "rejected" and rows[4]["error_type"] == "MissingFieldError"


def test_explain_max_reasons_and_bad_values(server):
    one = server.post("/v1/explain?max_reasons=1", content=json.dumps(RECORDS[2])).json()["results"][0]
    assert len(one["reasons"]) <= 1
    for bad in ("0", "x", "33", "-1"):
        r = server.post(f"/v1/explain?max_reasons={bad}", content=json.dumps(RECORDS[0]))
        assert r.status_code == 400 and r.json()["error_type"] == "BadRequest"


def test_explain_without_a_section_is_409(serve, tiny_bundles):
    s = serve(str(tiny_bundles["onnx-fp32"]))
    r = s.post("/v1/explain", content=json.dumps(RECORDS[0]))
    assert r.status_code == 409 and r.json()["error_type"] == "NoExplainSection"
    assert s.get("/v1/drift").status_code == 409
    assert "edgefin_drift_psi" not in s.get("/metrics").text


def test_drift_counters(server, explained):
    before = parse_metrics(server.get("/metrics").text).get(("edgefin_drift_records_total", ()), 0)
    batch = [dict(RECORDS[0], Age=20 + i % 50) for i in range(40)]  # the columnar path
    server.post("/v1/score", content=json.dumps(batch))
    server.post("/v1/score", content=json.dumps(RECORDS))  # 4 scored, 1 rejected (not counted)
    m = parse_metrics(server.get("/metrics").text)
    assert m[("edgefin_drift_records_total", ())] - before == 44
    assert (("edgefin_drift_psi", (("field", "Age"),))) in m and ("edgefin_drift_psi", (("field", "score"),)) in m
    d = server.get("/v1/drift").json()
    mon = DriftMonitor.from_json(json.dumps(d["counts"]), edgefin_runtime.load(explained))
    assert mon.n == m[("edgefin_drift_records_total", ())] == d["report"]["n"]
    assert d["report"]["fields"]["Age"]["psi"] == m[("edgefin_drift_psi", (("field", "Age"),))]
