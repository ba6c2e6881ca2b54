"""load(): all-or-nothing. Hashes, versions, engine, self-test; each failure is a typed error."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgefin_runtime
from edgefin_runtime import (
    BackendError,
    BundleError,
    IntegrityError,
    ManifestError,
    Predictor,
    SelfTestError,
    SignatureError,
    VersionError,
    load,
)
from edgefin_runtime.backends.base import Engine
from edgefin_runtime.bundle import pack_members, read_bundle
from edgefin_runtime.manifest import FORMAT_VERSION, Manifest

GOOD = {"Income": 120.0, "Age": 35, "Home": "rent", "Job": "fixed"}


def test_load_path_and_bytes(variant, tiny_bundles) -> None:
    path = tiny_bundles[variant]
    a, b = load(path), load(path.read_bytes())
    assert isinstance(a, Predictor) and a.score(GOOD) == b.score(GOOD)
    assert isinstance(a.info, Manifest) and a.info.model.variant == variant
    assert a.schema.names == ("Income", "Age", "Home", "Job")
    assert a.bundle_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert a.engine.name == ("onnx" if variant.startswith("onnx") else "litert")
    report = a.self_test()
    assert report["golden"] == 5 and report["max_abs_delta"] <= a.info.golden_tolerance


def test_policy_argument(tiny_bundles) -> None:
    path = tiny_bundles["tflite-fp32"]
    assert load(path, policy="strict").policy == edgefin_runtime.Policy.strict()
    assert load(path, policy=edgefin_runtime.Policy(missing="reject")).policy.missing == "reject"
    with pytest.raises(ValueError, match="policy"):
        load(path, policy="sometimes")


def test_backend_override_only_where_compatible(tiny_bundles) -> None:
    tfl, onx = tiny_bundles["tflite-fp32"], tiny_bundles["onnx-fp32"]
    assert load(tfl, "litert").engine.name == "litert"
    ref = load(tfl, "litert-ref")  # reference kernels: same model, still passes the self-test
    assert abs(ref.score(GOOD).probability - load(tfl).score(GOOD).probability) < 1e-6
    with pytest.raises(BackendError, match="cannot run this bundle"):
        load(tfl, "onnx")
    with pytest.raises(BackendError, match="cannot run this bundle"):
        load(onx, "litert")
    with pytest.raises(BackendError, match="unknown backend"):
        load(tfl, "tensorflow")
    with pytest.raises(BackendError, match="threads"):
        load(tfl, threads=0)


def test_threads_are_configurable(tiny_bundles) -> None:
    assert load(tiny_bundles["onnx-fp32"], threads=2).engine.describe()["threads"] == 2
    assert load(tiny_bundles["onnx-fp32"], inter_op_threads=2).engine.describe()["inter_op_threads"] == 2
    assert load(tiny_bundles["tflite-int8"], threads=2).score(GOOD) == load(tiny_bundles["tflite-int8"]).score(GOOD)


@pytest.mark.parametrize("module,extra", [("ai_edge_litert", "litert"), ("onnxruntime", "onnx")])
def test_missing_engine_package_says_which_extra(monkeypatch, tiny_bundles, module, extra) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    monkeypatch.setitem(sys.modules, f"{module}.interpreter", None)
    variant = "tflite-fp32" if extra == "litert" else "onnx-fp32"
    with pytest.raises(BackendError, match=rf"pip install 'edgefin-runtime\[{extra}\]'"):
        load(tiny_bundles[variant])


def test_newer_format_version_is_rejected_with_upgrade_advice(rebundle) -> None:
    def newer(d: dict[str, Any]) -> None:
        d["format_version"] = FORMAT_VERSION + 1

    with pytest.raises(VersionError, match="upgrade edgefin-runtime"):
        load(rebundle("tflite-fp32", newer))


def test_runtime_minimum_above_installed_is_rejected(rebundle) -> None:
    def needs_future(d: dict[str, Any]) -> None:
        d["min_runtime_version"] = "99.0.0"

    with pytest.raises(VersionError, match=r"needs edgefin-runtime >= 99\.0\.0.*upgrade"):
        load(rebundle("onnx-fp32", needs_future))


def test_self_test_failure_means_no_predictor(rebundle) -> None:
    def wrong_golden(d: dict[str, Any]) -> None:
        d["golden"][2]["score"] = min(1.0, d["golden"][2]["score"] + 0.01)

    data = rebundle("tflite-int8", wrong_golden)
    with pytest.raises(SelfTestError, match=r"golden\[2\].*do not deploy"):
        load(data)
    assert load(data, self_test=False).score(GOOD)  # the caller may opt out explicitly


def test_tolerance_is_the_manifests(rebundle) -> None:
    def nudged(d: dict[str, Any]) -> None:
        d["golden"][0]["score"] += 5e-7
        d["golden_tolerance"] = 1e-6

    load(rebundle("tflite-fp32", nudged))

    def strict_tol(d: dict[str, Any]) -> None:
        d["golden"][0]["score"] += 5e-7
        d["golden_tolerance"] = 0.0

    with pytest.raises(SelfTestError):
        load(rebundle("tflite-fp32", strict_tol))


def test_self_test_needs_golden_vectors(rebundle) -> None:
    def no_golden(d: dict[str, Any]) -> None:
        d["golden"] = []

    with pytest.raises(SelfTestError, match="no golden vectors"):
        load(rebundle("onnx-fp32", no_golden))


def test_golden_record_the_schema_rejects(rebundle) -> None:
    def bad_record(d: dict[str, Any]) -> None:
        d["golden"][0]["record"]["Age"] = "old"

    with pytest.raises(SelfTestError, match="rejected by the bundle's own schema"):
        load(rebundle("onnx-fp32", bad_record))


def test_manifest_that_lies_about_the_model_tensors(rebundle) -> None:
    def wrong_dtype(d: dict[str, Any]) -> None:
        d["model"]["inputs"][0]["dtype"] = "int8"
        d["model"]["inputs"][0]["quantization"] = {"scale": 0.1, "zero_point": 0}

    with pytest.raises(ManifestError, match="says int8"):
        load(rebundle("tflite-fp32", wrong_dtype))

    def wrong_scale(d: dict[str, Any]) -> None:
        d["model"]["inputs"][0]["quantization"]["scale"] *= 2

    with pytest.raises(ManifestError, match="quantization"):
        load(rebundle("tflite-int8-io", wrong_scale))


def test_model_bytes_that_no_engine_can_load(tiny_bundles) -> None:
    for variant in ("tflite-fp32", "onnx-fp32"):
        b = read_bundle(tiny_bundles[variant])
        junk = b"\x00garbage model bytes" * 20
        raw = b.manifest_bytes.replace(
            b.manifest.members[b.manifest.model.file].encode(), hashlib.sha256(junk).hexdigest().encode()
        )
        with pytest.raises(BackendError, match="cannot load"):
            load(pack_members(raw, b.manifest.model.file, junk, None, b.acceptance_bytes))


def test_changed_model_byte_fails_before_the_engine(tiny_bundles) -> None:
    b = read_bundle(tiny_bundles["tflite-fp32"])
    model = bytearray(b.model_bytes)
    model[len(model) // 2] ^= 0x01
    with pytest.raises(IntegrityError, match="sha256"):
        load(pack_members(b.manifest_bytes, b.manifest.model.file, bytes(model), None, b.acceptance_bytes))
    with pytest.raises(BundleError):
        load(b"not a bundle")
    with pytest.raises(BundleError, match="not found"):
        load(Path("/nonexistent/x.efb"))


def test_signature_options(tiny_bundles, tmp_path, monkeypatch) -> None:
    path = tiny_bundles["onnx-fp32"]
    with pytest.raises(SignatureError):
        load(path, require_signature=True)  # no key given
    pytest.importorskip("cryptography")
    from edgefin_runtime.signing import generate_keypair, sign_bundle

    priv, pub = generate_keypair()
    (tmp_path / "pub.pem").write_bytes(pub)
    with pytest.raises(SignatureError):
        load(path, trusted_keys=[tmp_path / "pub.pem"])  # unsigned
    signed = sign_bundle(path, priv)
    assert load(signed, trusted_keys=[tmp_path / "pub.pem"], require_signature=True).score(GOOD)
    monkeypatch.setitem(sys.modules, "edgefin_runtime.signing", None)  # as if signing were not installed
    monkeypatch.delattr(edgefin_runtime, "signing", raising=False)
    with pytest.raises(SignatureError, match=r"edgefin-runtime\[signing\]"):
        load(signed, trusted_keys=[tmp_path / "pub.pem"])
    assert load(signed).score(GOOD)  # no keys requested: signing is not needed


class BrokenEngine(Engine):
    """An engine whose model returns a non-probability (NaN, 1.5)."""

    name = "broken"

    def __init__(self, value: float, n_features: int) -> None:
        self.value, self.n_features, self.threads = value, n_features, 1

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.value, dtype=np.float32)

    def run_one(self, row: Sequence[float]) -> float:
        return self.value


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1.5, -0.25])
def test_non_probability_output_is_never_a_score(tiny_bundles, value) -> None:
    bundle = read_bundle(tiny_bundles["tflite-fp32"])
    pred = Predictor(bundle, BrokenEngine(value, bundle.manifest.preprocessing.n_features))
    with pytest.raises(BackendError, match="not a probability"):
        pred.score(GOOD)
    with pytest.raises(BackendError, match="not a probability"):
        pred.score_batch([GOOD, GOOD])
    with pytest.raises(BackendError, match="not a probability"):
        pred.score_columns({k: [v] for k, v in GOOD.items()})
    with pytest.raises(SelfTestError):
        pred.self_test()


def test_public_surface() -> None:
    for name in (
        "load",
        "Predictor",
        "Score",
        "Result",
        "ColumnsScore",
        "Policy",
        "EdgefinRuntimeError",
        "InputError",
        "BundleError",
        "BackendError",
        "SelfTestError",
        "VersionError",
    ):
        assert name in edgefin_runtime.__all__ and hasattr(edgefin_runtime, name)


def test_load_and_import_leave_the_garbage_collector_as_they_found_it(tiny_bundles, rebundle) -> None:
    import gc
    import subprocess

    assert gc.isenabled()
    load(tiny_bundles["tflite-int8"])
    assert gc.isenabled()

    def wrong_golden(d: dict[str, Any]) -> None:
        d["golden"][0]["score"] = min(1.0, d["golden"][0]["score"] + 0.01)

    with pytest.raises(SelfTestError):
        load(rebundle("tflite-int8", wrong_golden))
    assert gc.isenabled()  # resumed after a failed load too
    gc.disable()
    try:
        load(tiny_bundles["onnx-fp32"])
        assert not gc.isenabled()  # an application that turned it off keeps it off
    finally:
        gc.enable()
    code = "import gc, sys\nif sys.argv[1] == 'off': gc.disable()\nimport edgefin_runtime\nprint(gc.isenabled())"
    for state, expected in (("on", "True"), ("off", "False")):
        out = subprocess.run([sys.executable, "-c", code, state], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected
