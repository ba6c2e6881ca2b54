"""Hot swap over HTTP, SIGHUP and --watch: verified before it serves; a failure keeps the old model."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
from conftest import TOKEN, auth
from security_bundles import GOLDEN_RECORDS, tiny_onnx_bundle

import edgefin_runtime
from edgefin_runtime.bundle import read_bundle
from edgefin_runtime.manifest import GoldenVector

RECORD = {"Income": 100.0, "Age": 30, "Home": "rent"}
RECORDS = [
    {"Income": 50.0 + 7 * i, "Age": 20 + i % 60, "Home": ("own", "rent", "other", None)[i % 4]} for i in range(40)
]


@pytest.fixture(scope="module")
def seeds():
    return {seed: tiny_onnx_bundle(seed) for seed in (0, 1)}


@pytest.fixture(scope="module")
def ids(seeds):
    return {seed: read_bundle(b).sha256 for seed, b in seeds.items()}


def _bad_golden() -> bytes:
    good = read_bundle(tiny_onnx_bundle(0)).manifest
    return tiny_onnx_bundle(0, golden=(GoldenVector(dict(GOLDEN_RECORDS[0]), 0.999),) + good.golden[1:])


def _put(path, data: bytes) -> None:
    """Deploy a bundle as a device would: a new file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _score(server, record=RECORD):
    r = server.post("/v1/score", content=json.dumps(record), headers=auth())
    assert r.status_code == 200, r.text
    return r.json()


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_http_reload_success_and_failures(serve, tmp_path, token_file, seeds, ids):
    path = tmp_path / "model.efb"
    path.write_bytes(seeds[0])
    s = serve(str(path), "--token-file", str(token_file))
    assert _score(s)["model"]["id"] == ids[0]
    assert s.post("/v1/admin/reload").status_code == 401
    assert s.post("/v1/admin/reload", headers=auth("x" * len(TOKEN))).status_code == 401

    _put(path, seeds[1])
    r = s.post("/v1/admin/reload", headers=auth())
    assert r.status_code == 200 and r.json()["ok"] is True
    assert r.json()["model"] == {"id": ids[1], "variant": "onnx-fp32", "engine": "onnx", "generation": 1}
    body = _score(s)
    expected = edgefin_runtime.load(seeds[1]).score(RECORD).probability
    assert body["model"]["id"] == ids[1] and body["results"][0]["score"] == expected

    # failures: damaged file, a model that misses its golden scores, a missing file
    for data, error_type in (
        (seeds[0][:-40], "BundleFormatError"),
        (_bad_golden(), "SelfTestError"),
        (None, "BundleFormatError"),
    ):
        if data is None:
            path.unlink()
        else:
            _put(path, data)
        r = s.post("/v1/admin/reload", headers=auth())
        assert r.status_code == 422, r.text
        e = r.json()
        assert e["ok"] is False and e["error_type"] == error_type and e["error"]
        assert e["model"]["id"] == ids[1] and r.headers["x-edgefin-model"] == ids[1]  # the old one serves
        assert _score(s)["model"]["id"] == ids[1]
        assert s.metric("edgefin_reload_last_failed", auth()) == 1
    assert s.metric("edgefin_reloads_total", auth(), trigger="http", outcome="failed") == 3
    assert s.metric("edgefin_reloads_total", auth(), trigger="http", outcome="ok") == 1
    assert s.metric("edgefin_reload_last_error", auth(), error_type="BundleFormatError") == 1
    logged = s.events("reload")
    assert [e["ok"] for e in logged] == [True, False, False, False]
    assert logged[2]["error_type"] == "SelfTestError" and logged[2]["kept"]["id"] == ids[1]
    assert s.get("/v1/info", headers=auth()).json()["last_reload"]["ok"] is False

    _put(path, seeds[0])
    assert s.post("/v1/admin/reload", headers=auth()).status_code == 200
    assert s.metric("edgefin_reload_last_failed", auth()) == 0
    assert _score(s)["model"] == {"id": ids[0], "variant": "onnx-fp32", "engine": "onnx", "generation": 2}


def test_sighup_reload(serve, tmp_path, seeds, ids):
    path = tmp_path / "model.efb"
    path.write_bytes(seeds[0])
    s = serve(str(path))
    _put(path, seeds[1])
    s.signal(signal.SIGHUP)
    assert _wait(lambda: s.get("/readyz").json()["model"]["id"] == ids[1])
    _put(path, b"not a bundle at all")
    s.signal(signal.SIGHUP)
    assert _wait(lambda: s.metric("edgefin_reloads_total", trigger="sighup", outcome="failed") == 1)
    assert _score(s)["model"]["id"] == ids[1]
    assert s.proc.poll() is None  # SIGHUP never kills the service


def test_watch_swaps_when_the_file_changes(serve, tmp_path, seeds, ids):
    path = tmp_path / "model.efb"
    path.write_bytes(seeds[0])
    s = serve(str(path), "--watch", "--watch-interval", "0.1")
    _put(path, seeds[1])
    assert _wait(lambda: _score(s)["model"]["id"] == ids[1])
    _put(path, _bad_golden())
    assert _wait(lambda: s.metric("edgefin_reloads_total", trigger="watch", outcome="failed") == 1)
    assert _score(s)["model"]["id"] == ids[1]
    ok = s.metric("edgefin_reloads_total", trigger="watch", outcome="ok")
    time.sleep(0.5)  # an unchanged file is not reloaded again and again
    assert s.metric("edgefin_reloads_total", trigger="watch", outcome="failed") == 1
    assert s.metric("edgefin_reloads_total", trigger="watch", outcome="ok") == ok == 1


def test_signature_required_on_every_swap(serve, tmp_path, token_file, seeds, ids):
    pytest.importorskip("cryptography")
    from edgefin_runtime.signing import generate_keypair, sign_bundle

    priv, pub = generate_keypair()
    key = tmp_path / "branch.pub"
    key.write_bytes(pub)
    path = tmp_path / "model.efb"
    path.write_bytes(sign_bundle(seeds[0], priv))
    s = serve(str(path), "--require-signature", "--key", str(key), "--token-file", str(token_file))
    signed_id = _score(s)["model"]["id"]
    _put(path, seeds[1])  # unsigned
    r = s.post("/v1/admin/reload", headers=auth())
    assert r.status_code == 422 and r.json()["error_type"] == "SignatureError"
    assert _score(s)["model"]["id"] == signed_id
    _put(path, sign_bundle(seeds[1], priv))
    r = s.post("/v1/admin/reload", headers=auth())
    assert r.status_code == 200 and r.json()["model"]["generation"] == 1


def test_swaps_under_load_lose_nothing_and_mix_nothing(serve, tmp_path, token_file, seeds, ids):
    """Scoring threads run while the bundle flips between two models: every response is 200 and its
    results are exactly that model's scores for the request."""
    path = tmp_path / "model.efb"
    path.write_bytes(seeds[0])
    s = serve(str(path), "--token-file", str(token_file), "--workers", "2")
    body = json.dumps(RECORDS)
    expected = {}
    for seed in (0, 1):
        p = edgefin_runtime.load(seeds[seed])
        expected[ids[seed]] = [r.score.probability for r in p.score_batch(RECORDS)]
    stop = threading.Event()
    seen: list[tuple[int, str, list[float]]] = []

    def client():
        import httpx

        with httpx.Client(base_url=s.base, timeout=60, headers=auth()) as c:
            while not stop.is_set():
                r = c.post("/v1/score", content=body)
                out = r.json()
                seen.append((r.status_code, out["model"]["id"], [x["score"] for x in out["results"]]))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            _put(path, seeds[(i + 1) % 2])
            assert s.post("/v1/admin/reload", headers=auth()).status_code == 200
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(seen) > 20 and {model for _, model, _ in seen} == set(expected)
    for status, model, scores in seen:
        assert status == 200 and scores == expected[model]
    assert s.metric("edgefin_model_generation", auth()) == 20
