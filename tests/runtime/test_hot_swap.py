"""Hot swap: a bad bundle never replaces a good one; swaps under load lose nothing and mix nothing."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from security_bundles import GOLDEN_RECORDS, expected_score, tiny_onnx_bundle

from edgefin_runtime.bundle import read_bundle
from edgefin_runtime.errors import BundleFormatError, IntegrityError, SelfTestError, SignatureError
from edgefin_runtime.holder import ModelHolder, Served
from edgefin_runtime.manifest import GoldenVector

RECORDS = [
    {"Income": 50.0 + 7 * i, "Age": 20 + i % 60, "Home": ("own", "rent", "other", None)[i % 4]} for i in range(64)
]


@pytest.fixture(scope="module")
def bundles():
    return {seed: tiny_onnx_bundle(seed) for seed in (0, 1, 2)}


@pytest.fixture(scope="module")
def sha_to_seed(bundles):
    return {read_bundle(b).sha256: seed for seed, b in bundles.items()}


def _bad_golden_bundle() -> bytes:
    good = read_bundle(tiny_onnx_bundle(0)).manifest
    golden = (GoldenVector(dict(GOLDEN_RECORDS[0]), 0.999),) + good.golden[1:]
    return tiny_onnx_bundle(0, golden=golden)


def test_results_say_which_model_scored(bundles, sha_to_seed):
    h = ModelHolder(bundles[0])
    s = h.score(RECORDS[0])
    assert isinstance(s, Served) and sha_to_seed[s.model.sha256] == 0 and s.model.generation == 0
    assert s.model.variant == "onnx-fp32" and s.model.engine == "onnx"
    assert s.result.probability == pytest.approx(expected_score(0, RECORDS[0]), abs=1e-6)
    info = h.swap(bundles[1])
    assert info.generation == 1 and h.generation == 1 and sha_to_seed[info.sha256] == 1
    s = h.score(RECORDS[0])
    assert sha_to_seed[s.model.sha256] == 1
    assert s.result.probability == pytest.approx(expected_score(1, RECORDS[0]), abs=1e-6)


@pytest.mark.parametrize(
    "kind, error",
    [
        ("corrupt", IntegrityError),
        ("truncated", BundleFormatError),
        ("not_a_bundle", BundleFormatError),
        ("golden_mismatch", SelfTestError),
        ("missing_file", BundleFormatError),
    ],
)
def test_failed_swap_keeps_the_old_model_serving(bundles, kind, error, tmp_path):
    h = ModelHolder(bundles[0])
    before = h.model
    bad = {
        "corrupt": bytes(b ^ 0xFF if i == len(bundles[1]) - 60 else b for i, b in enumerate(bundles[1])),
        "truncated": bundles[1][:-10],
        "not_a_bundle": b"#!/bin/sh\nrm -rf /\n",
        "golden_mismatch": _bad_golden_bundle(),
        "missing_file": tmp_path / "nope.efb",
    }[kind]
    with pytest.raises(error):
        h.swap(bad)
    assert h.model == before and isinstance(h.last_error, error)
    assert h.score(RECORDS[1]).model == before
    report = h.try_swap(bad)
    assert not report.ok and report.serving == before and isinstance(report.error, error) and report.reason
    assert h.swap(bundles[2]).generation == 1 and h.last_error is None
    assert [r.ok for r in h.history] == [False, False, True]


def test_signature_policy_survives_swaps(bundles):
    pytest.importorskip("cryptography")
    from edgefin_runtime.signing import generate_keypair, sign_bundle

    priv, pub = generate_keypair()
    h = ModelHolder(sign_bundle(bundles[0], priv), trusted_keys=[pub])
    with pytest.raises(SignatureError, match="unsigned"):
        h.swap(bundles[1])  # the holder's trusted keys apply to every swap
    assert h.generation == 0
    assert h.swap(sign_bundle(bundles[1], priv)).generation == 1


def test_caller_check_can_veto_a_model(bundles):
    def only_seed0(p):
        if p.bundle_sha256 != read_bundle(bundles[0]).sha256:
            raise RuntimeError("canary records scored differently")

    h = ModelHolder(bundles[0], check=only_seed0)
    with pytest.raises(RuntimeError, match="canary"):
        h.swap(bundles[1])
    assert h.generation == 0 and "canary" in h.history[-1].reason


def test_self_test_cannot_be_disabled(bundles):
    with pytest.raises(ValueError, match="self-tests"):
        ModelHolder(bundles[0], self_test=False)
    h = ModelHolder(bundles[0])
    with pytest.raises(ValueError, match="self-tests"):
        h.swap(bundles[1], self_test=False)


def test_swap_if_changed_polls_a_file(bundles, tmp_path):
    path = tmp_path / "current.efb"
    path.write_bytes(bundles[0])
    h = ModelHolder(path)
    assert h.swap_if_changed(path) is None
    path.write_bytes(bundles[1])
    assert h.swap_if_changed(path).ok and h.generation == 1
    path.unlink()
    report = h.swap_if_changed(path)
    assert not report.ok and "not found" in report.reason and h.generation == 1


def test_swaps_under_load_lose_nothing_and_never_mix_models(bundles, sha_to_seed):
    """8 scoring threads (single and batch) while the main thread swaps 60 times, a third of the
    swaps bad; every request gets a result, and each result matches the model it names."""
    h = ModelHolder(bundles[0])
    refs = {seed: [expected_score(seed, r) for r in RECORDS] for seed in bundles}
    stop = threading.Event()
    counts, problems, seen = [], [], set()
    bad = bundles[2][:-1]

    def worker(k: int) -> None:
        sent = got = 0
        try:
            while not stop.is_set() or sent < 200:
                i = (sent * 7 + k) % len(RECORDS)
                if k % 2:
                    sent += 1
                    s = h.score(RECORDS[i])
                    got += 1
                    seed = sha_to_seed[s.model.sha256]
                    seen.add((seed, s.model.generation))
                    if abs(s.result.probability - refs[seed][i]) > 1e-6:
                        problems.append(f"row {i}: {s.result.probability} is not model {seed}'s score")
                else:
                    rows = [(i + j) % len(RECORDS) for j in range(16)]
                    sent += len(rows)
                    s = h.score_batch([RECORDS[r] for r in rows])
                    got += len(s.result)
                    seed = sha_to_seed[s.model.sha256]
                    for r, res in zip(rows, s.result):
                        if not res.ok or abs(res.score.probability - refs[seed][r]) > 1e-6:
                            problems.append(f"batch row {r}: mixed or wrong result under model {seed}")
        except Exception as exc:  # noqa: BLE001 - any exception is a failure of the property under test
            problems.append(f"thread {k}: {type(exc).__name__}: {exc}")
        counts.append((sent, got))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    ok_swaps = 0
    for n in range(60):
        if n % 3 == 2:
            assert not h.try_swap(bad).ok
        else:
            h.swap(bundles[n % 2])
            ok_swaps += 1
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not problems, problems[:5]
    assert len(counts) == 8 and all(sent == got for sent, got in counts)
    assert h.generation == ok_swaps
    assert len(seen) >= 10, f"the scoring threads saw only {len(seen)} model generations"
    kept = range(60)[-32:]  # the history is bounded
    assert [r.ok for r in h.history] == [n % 3 != 2 for n in kept]


def test_old_model_keeps_serving_its_in_flight_reference(bundles, sha_to_seed):
    h = ModelHolder(bundles[0])
    pinned = h.predictor
    h.swap(bundles[1])
    assert sha_to_seed[pinned.bundle_sha256] == 0
    assert pinned.score(RECORDS[3]).probability == pytest.approx(expected_score(0, RECORDS[3]), abs=1e-6)
    assert sha_to_seed[h.score(RECORDS[3]).model.sha256] == 1


def test_holder_accepts_a_ready_predictor(bundles):
    from edgefin_runtime.predictor import load

    p = load(bundles[2])
    h = ModelHolder(p)
    assert h.predictor is p and repr(h).startswith("ModelHolder(variant='onnx-fp32'")
    assert replace(h.model, loaded_at=0).generation == 0
