"""Every endpoint and error status of `edgefin-run serve`, over HTTP against the real server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, Served, parse_metrics

import edgefin_runtime
from edgefin_runtime.cli import main as cli_main

GOOD = {"Income": 120.0, "Age": 35, "Home": "rent", "Job": "fixed"}
#: a rejected mix: missing required field, wrong type, not an object, unseen category (lenient: scored)
MIXED = [
    GOOD,
    {"Income": 80.0, "Home": "owner", "Job": "fixed"},
    {"Income": "lots", "Age": 40, "Home": "rent", "Job": "fixed"},
    3,
    {"Income": 1e6, "Age": 99, "Home": "castle-zz-secret", "Job": None},
    None,
]
MAX_RECORDS = 300


@pytest.fixture(scope="module")
def server(tiny_bundles, tmp_path_factory):
    s = Served(
        [str(tiny_bundles["tflite-int8"]), "--max-records", str(MAX_RECORDS), "--max-body-bytes", "60000"],
        tmp_path_factory.mktemp("serve"),
    )
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def predictor(tiny_bundles):
    return edgefin_runtime.load(tiny_bundles["tflite-int8"])


def _records(predictor, n):
    recs = [dict(r) for r in predictor.info.acceptance.records]
    return (recs * (n // len(recs) + 1))[:n]


def test_health_ready_and_model_id(server, predictor):
    r = server.get("/healthz")
    assert r.status_code == 200 and r.json() == {"ok": True}
    r = server.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True
    assert r.json()["model"]["id"] == predictor.bundle_sha256 == r.headers["x-edgefin-model"]
    assert server.started["network"] is False and "loopback" in server.started["auth"]


def test_single_record_equals_in_process_bit_for_bit(server, predictor):
    for rec in _records(predictor, 128):
        r = server.post("/v1/score", content=json.dumps(rec))
        assert r.status_code == 200
        body = r.json()
        assert body["model"]["id"] == predictor.bundle_sha256 == r.headers["x-edgefin-model"]
        [res] = body["results"]
        try:
            s = predictor.score(rec)
        except edgefin_runtime.InputError as err:
            assert res["status"] == "rejected" and res["error_type"] == type(err).__name__
            continue
        # JSON floats round-trip through repr: the same float64 bits
        assert res["score"] == s.probability and repr(res["score"]) == repr(s.probability)
        assert (res["decision"], res["label"], tuple(res["flags"]), res["row"]) == (s.decision, s.label, s.flags, 1)


@pytest.mark.parametrize("n", [1, 20, 64, 65, 300])
def test_batches_equal_edgefin_run_score(server, predictor, tmp_path, capsys, n):
    """The same records through `edgefin-run score` (JSON Lines) and /v1/score give identical rows."""
    recs = (MIXED + _records(predictor, n))[:n]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    capsys.readouterr()
    assert cli_main(["score", str(predictor.source), str(src), "-q"]) == 0
    cli_rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    r = server.post("/v1/score", content=json.dumps(recs))
    assert r.status_code == 200, r.text
    http_rows = r.json()["results"]
    assert http_rows == cli_rows  # same keys, values, rows, error types and messages
    scored = [x for x in http_rows if x["status"] == "scored"]
    batch = predictor.score_batch([x for x in recs])
    assert [x["score"] for x in scored] == [b.score.probability for b in batch if b.ok]


def test_a_utf8_bom_is_dropped_like_the_cli(server):
    r = server.post("/v1/score", content=b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "scored"


def test_duplicate_keys_are_rejected_like_the_cli(server):
    body = '[{"Income": 1, "Income": 2, "Age": 30, "Home": "rent"}, {"Income": 1, "Age": 30, "Home": "rent"}]'
    rows = server.post("/v1/score", content=body).json()["results"]
    assert rows[0]["status"] == "rejected" and rows[0]["error_type"] == "FieldTypeError"
    assert rows[0]["field"] == "Income" and rows[1]["status"] == "scored"
    one = server.post("/v1/score", content='{"Age": 1, "Age": 2}').json()["results"]
    assert one[0]["error_type"] == "FieldTypeError" and one[0]["row"] == 1


@pytest.mark.parametrize(
    "body, status, error_type",
    [
        (b"{not json", 400, "MalformedJSON"),
        (b"", 400, "MalformedJSON"),
        (b"\xff\xfe\x00", 400, "MalformedJSON"),
        (b"42", 400, "MalformedJSON"),
        (b'"a record?"', 400, "MalformedJSON"),
        (json.dumps([{}] * (MAX_RECORDS + 1)).encode(), 413, "TooManyRecords"),
        (b"[" + b" " * 60001 + b"]", 413, "BodyTooLarge"),
    ],
)
def test_error_statuses(server, body, status, error_type):
    r = server.post("/v1/score", content=body)
    assert r.status_code == status, r.text
    e = r.json()
    assert e == {"ok": False, "status": status, "error_type": error_type, "error": e["error"]} and e["error"]
    assert r.headers["x-edgefin-model"]  # even an error names the model serving


def test_chunked_body_over_the_cap_is_413(server):
    def chunks():
        for _ in range(100):
            yield b" " * 1000

    r = server.post("/v1/score", content=chunks())
    assert r.status_code == 413 and r.json()["error_type"] == "BodyTooLarge"


def test_routes_and_methods(server):
    assert server.get("/v1/score").status_code == 405
    assert server.post("/healthz").status_code == 405
    assert server.get("/nope").status_code == 404
    r = server.post("/v1/admin/reload")  # no token configured: HTTP reload is off
    assert r.status_code == 403 and "--token-file" in r.json()["error"]


def test_info(server, predictor):
    info = server.get("/v1/info").json()
    assert info["model"]["id"] == predictor.bundle_sha256 and info["model"]["generation"] == 0
    assert [f["name"] for f in info["manifest"]["schema"]["fields"]] == list(predictor.schema.names)
    assert info["manifest"]["decision"]["threshold"] == predictor.threshold
    assert info["limits"]["max_records"] == MAX_RECORDS and info["auth"] is False
    assert "acceptance" not in info["manifest"] and "golden" not in info["manifest"]


def test_openapi(server, predictor):
    doc = server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    paths = {"/v1/score", "/v1/explain", "/v1/drift", "/v1/info", "/healthz", "/readyz", "/metrics"}
    assert set(doc["paths"]) == paths | {"/v1/admin/reload", "/openapi.json"}
    for path, ops in doc["paths"].items():  # every documented route exists with its method
        for method in ops:
            assert server.client.request(method.upper(), path, content=b"{}").status_code not in (404, 405), path
    rec = doc["components"]["schemas"]["Record"]
    assert list(rec["properties"]) == list(predictor.schema.names)
    assert rec["required"] == [f.name for f in predictor.schema.fields if not f.allow_missing]
    assert doc["components"]["schemas"]["Result"]["properties"].keys() >= {"row", "status", "score", "error_type"}


def test_metrics_count_requests_rejections_and_latency(server, predictor):
    before = parse_metrics(server.get("/metrics").text)
    rows = server.post("/v1/score", content=json.dumps(MIXED)).json()["results"]
    rejected = {}
    for x in rows:
        if x["status"] == "rejected":
            rejected[x["error_type"]] = rejected.get(x["error_type"], 0) + 1
    after = parse_metrics(server.get("/metrics").text)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    for error_type, n in rejected.items():
        assert delta("edgefin_rejected_records_total", error_type=error_type) == n
    assert delta("edgefin_records_total", outcome="scored") == len(rows) - sum(rejected.values())
    assert delta("edgefin_requests_total", route="/v1/score", status="200") == 1
    assert delta("edgefin_request_duration_seconds_count", route="/v1/score") == 1
    assert delta("edgefin_request_duration_seconds_bucket", route="/v1/score", le="+Inf") == 1
    assert delta("edgefin_requests_total", route="/metrics", status="200") == 1  # the first scrape
    m = predictor.info.model
    assert (
        after[("edgefin_model_info", (("engine", "litert"), ("id", predictor.bundle_sha256), ("variant", m.variant)))]
        == 1
    )
    assert after[("edgefin_overload_rejections_total", ())] == 0


def test_access_log_has_no_record_contents(server):
    server.post("/v1/score", content=json.dumps(MIXED))
    server.get("/healthz")
    log = server.stderr()
    assert "castle-zz-secret" not in log and "1000000" not in log and "lots" not in log
    reqs = server.events("request")
    assert reqs and all({"id", "method", "route", "status", "ms", "model"} <= set(e) for e in reqs)
    last_score = [e for e in reqs if e["route"] == "/v1/score" and e["status"] == 200][-1]
    assert last_score["records"] == len(MIXED) and last_score["rejected"] >= 3
    assert set(last_score["rejected_by"]) >= {"MissingFieldError", "FieldTypeError", "RecordTypeError"}


def test_non_loopback_needs_a_token(tiny_bundles):
    proc = subprocess.run(
        [sys.executable, "-m", "edgefin_runtime.cli", "serve", str(tiny_bundles["onnx-fp32"]), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2 and "--token-file" in proc.stderr and "loopback" in proc.stderr


def test_invalid_bundle_and_missing_extra_exit_codes(tmp_path):
    bad = tmp_path / "bad.efb"
    bad.write_bytes(b"PK not a bundle")
    assert cli_main(["serve", str(bad), "--port", "0"]) == 2
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from edgefin_runtime.cli import main\n"
        f"sys.exit(main(['serve', {str(bad)!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1 and "edgefin-runtime[serve]" in proc.stderr


def test_short_token_is_refused(tiny_bundles, tmp_path):
    tok = tmp_path / "tok"
    tok.write_text("short\n")
    assert cli_main(["serve", str(tiny_bundles["onnx-fp32"]), "--token-file", str(tok)]) == 2
    assert Path(tok).exists()
