"""Corruption: every single-byte change and every truncation of real bundles is rejected with a typed
error, and the process never dies. The sweep runs in worker processes (benchmarks/security_sweep.py)
so that a native crash would be seen and counted, not kill the test run.

CI flips every byte of four bundles two ways (x ^ 0x01, x ^ 0xFF); the documented long run
(``security_sweep.py --long``) tries all 255 other values of every byte.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from security_bundles import tiny_onnx_bundle

from edgefin_runtime.bundle import read_bundle
from edgefin_runtime.errors import BundleError

REPO = Path(__file__).resolve().parents[2]
SWEEP = REPO / "benchmarks" / "security_sweep.py"


def _sweep(tmp_path: Path, bundles: Path, categories: str, env: dict[str, str] | None = None) -> dict:
    out = tmp_path / "sweep.json"
    proc = subprocess.run(
        [sys.executable, str(SWEEP), "--bundles", str(bundles), "--categories", categories, "--json", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    assert out.exists(), proc.stderr[-3000:]
    return {"returncode": proc.returncode, **json.loads(out.read_text())}


@pytest.fixture(scope="module")
def sweep_bundles(tiny_bundles, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sweep-bundles")
    for v in ("tflite-int8", "onnx-fp32"):
        shutil.copy(tiny_bundles[v], d / f"tiny-{v}.efb")
    return d


def test_every_byte_flip_and_truncation_is_rejected_in_a_subprocess(tmp_path, sweep_bundles):
    doc = _sweep(tmp_path, sweep_bundles, "corruption,truncation,signature")
    assert doc["returncode"] == 0 and doc["ok"], json.dumps(doc["results"], indent=1)[:3000]
    total = 0
    for cat in ("corruption", "truncation", "signature"):
        r = doc["results"][cat]
        assert r["crashes"] == [] and r["counts"].get("untyped", 0) == 0
        assert r["counts"] == {"rejected": r["cases"]}, r["counts"]
        total += r["cases"]
    sizes = {Path(p).name: Path(p).stat().st_size for p in sweep_bundles.iterdir()}
    flips = doc["results"]["corruption"]["cases"]
    assert flips >= 2 * sum(sizes.values())  # every byte of the fixtures (plus the micro and signed ones)
    assert set(doc["results"]["signature"]["errors"]) == {"SignatureError"}
    assert total > 30_000


def test_a_native_crash_in_the_sweep_is_seen_not_fatal(tmp_path, sweep_bundles):
    """The crash path works: a worker killed by SIGSEGV at case 3 is counted, the case skipped,
    and every other case still runs."""
    doc = _sweep(tmp_path, sweep_bundles, "hostile-archive", env={"EDGEFIN_SWEEP_TEST_CRASH_AT": "3"})
    r = doc["results"]["hostile-archive"]
    assert doc["returncode"] == 1 and not doc["ok"]
    assert [c["case"] for c in r["crashes"]] == [3] and r["crashes"][0]["returncode"] < 0
    assert r["counts"]["rejected"] == r["cases"] - 1


def test_in_process_flip_of_every_byte_of_a_micro_bundle():
    """The same property in-process, with the error type checked for each flip (fast: ~3 KB)."""
    data = tiny_onnx_bundle(seed=11)
    for pos in range(len(data)):
        m = bytearray(data)
        m[pos] ^= 0x55
        with pytest.raises(BundleError):
            read_bundle(bytes(m))
    for n in range(len(data)):
        with pytest.raises(BundleError):
            read_bundle(data[:n])
