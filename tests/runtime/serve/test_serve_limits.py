"""Auth on non-loopback, overload (503 + Retry-After), per-request timeout (504), SIGTERM drain."""

from __future__ import annotations

import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import TOKEN, auth
from security_bundles import tiny_onnx_bundle

RECORD = {"Income": 100.0, "Age": 30, "Home": "rent"}


@pytest.fixture
def bundle(tmp_path):
    p = tmp_path / "model.efb"
    p.write_bytes(tiny_onnx_bundle(0))
    return p


def test_token_on_a_network_address(serve, bundle, token_file):
    s = serve(str(bundle), "--host", "0.0.0.0", "--token-file", str(token_file))
    assert s.started["network"] is True and "NOT loopback" in s.started["auth"] and "bearer" in s.started["auth"]
    body = json.dumps(RECORD)
    for path, method in (("/v1/score", "post"), ("/v1/info", "get"), ("/metrics", "get"), ("/openapi.json", "get")):
        kw = {"content": body} if method == "post" else {}
        for headers in ({}, auth("wrong-token-wrong-token-wrong"), auth(TOKEN[:-1]), {"Authorization": TOKEN}):
            r = getattr(s.client, method)(path, headers=headers, **kw)
            assert r.status_code == 401, (path, headers)
            assert r.json()["error_type"] == "Unauthorized" and r.headers["www-authenticate"].startswith("Bearer")
        assert getattr(s.client, method)(path, headers=auth(), **kw).status_code == 200
    assert s.get("/healthz").status_code == 200 and s.get("/readyz").status_code == 200  # probes stay open
    assert "t0ken" not in s.stderr()  # the token is never logged


def test_overload_gives_503_with_retry_after(serve, bundle):
    s = serve(str(bundle), "--workers", "1", "--queue-depth", "1", "--max-records", "4000", "--access-log", "off")
    body = json.dumps([RECORD] * 4000)
    statuses: list[int] = []
    for _ in range(5):  # a round of 12 simultaneous large batches against 1 worker + 1 queue slot
        with ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(lambda _: s.post("/v1/score", content=body), range(12)))
        for r in responses:
            statuses.append(r.status_code)
            if r.status_code == 503:
                assert r.headers["retry-after"] == "1" and r.json()["error_type"] == "Overloaded"
            else:
                assert r.status_code == 200 and len(r.json()["results"]) == 4000
        if 503 in statuses:
            break
    assert 503 in statuses and 200 in statuses and set(statuses) == {200, 503}
    assert s.metric("edgefin_overload_rejections_total") == statuses.count(503)
    assert s.metric("edgefin_requests_total", route="/v1/score", status="503") == statuses.count(503)
    assert s.metric("edgefin_workers_busy") == 0 and s.metric("edgefin_queued") == 0


def test_per_request_timeout_gives_504(serve, bundle):
    # 20,000 empty records: a 60 KB body read at once, then far more than 20 ms of work
    s = serve(str(bundle), "--timeout", "0.02", "--max-records", "20000", "--max-body-bytes", "200000")
    r = s.post("/v1/score", content=json.dumps([{}] * 20000))
    assert r.status_code == 504 and r.json()["error_type"] == "Timeout"
    assert s.metric("edgefin_timeouts_total") == 1
    assert s.post("/v1/score", content=json.dumps(RECORD)).status_code == 200  # small ones still answered
    assert _wait_idle(s)


def _wait_idle(s, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.metric("edgefin_workers_busy") == 0:
            return True
        time.sleep(0.05)
    return False


def test_slow_body_times_out_with_408(serve, bundle):
    s = serve(str(bundle), "--timeout", "0.5")
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        reply = _read_response(sock)
    assert reply.startswith(b"HTTP/1.1 408") and b"RequestTimeout" in reply


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def test_sigterm_drains_in_flight_requests_and_exits_0(serve, bundle):
    s = serve(str(bundle))
    body = json.dumps([RECORD, RECORD]).encode()
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sock:
        # a request in flight: headers and half of the body sent
        sock.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        time.sleep(0.3)
        s.signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not s.events("draining") and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):  # no longer accepting
            httpx.get(f"{s.base}/healthz", timeout=5)
        assert s.proc.poll() is None  # still finishing the request in flight
        sock.sendall(body[10:])
        reply = _read_response(sock)
    assert reply.startswith(b"HTTP/1.1 200")
    result = json.loads(reply.partition(b"\r\n\r\n")[2])
    assert [r["status"] for r in result["results"]] == ["scored", "scored"]
    assert s.proc.wait(30) == 0
    assert s.events("draining")[0]["signal"] == "SIGTERM" and s.events("stopped")
