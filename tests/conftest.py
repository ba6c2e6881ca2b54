"""Suite-wide settings. In CI (CI=true) hypothesis runs derandomised, so a run is reproducible;
locally it explores new examples each time (and the long fuzz runs live in benchmarks/)."""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# ---------------------------------------------------------------- the fast tier (`make test-fast`)
# Test modules whose tests train (or fine-tune, or convert) a TensorFlow model, directly or through a
# fixture; `pytest -m "not slow"` leaves them out, as it does any test marked slow by hand. The guard
# below keeps the list honest: in the fast tier, a test that imports TensorFlow fails and is named.
TRAINS_MODELS = {
    "tests/converters/test_acceptance_bundles.py",
    "tests/converters/test_cli_convert.py",
    "tests/converters/test_onnx_isa.py",
    "tests/converters/test_repair*.py",
    "tests/converters/test_user_model.py",
    "tests/converters/test_variants.py",
    "tests/edgefin/test_bench_harness.py",
    "tests/edgefin/test_cli_train.py",
    "tests/edgefin/ingest/test_*.py",
    "tests/edgefin/test_compress_errors.py",
    "tests/edgefin/test_compress_prune.py",
    "tests/edgefin/test_compress_qat.py",
    "tests/edgefin/test_compress_run.py",
    "tests/edgefin/test_keras_io.py",
    "tests/edgefin/test_model.py",
    "tests/edgefin/test_report.py",
    "tests/edgefin/test_tfmot_compat.py",
    "tests/edgefin/targets/test_run.py",
}

# single tests of the fast modules that run a long sweep in subprocesses (tens of seconds each)
LONG_SWEEPS = {
    "tests/runtime/test_corruption.py::test_every_byte_flip_and_truncation_is_rejected_in_a_subprocess",
    "tests/edgefin/test_atomic_faults.py::test_kill_9_at_random_moments_never_leaves_a_partial_file",
    "tests/edgefin/targets/test_isa_x86_v2.py::*",  # under qemu
}


def _fast(config: pytest.Config) -> bool:
    return config.getoption("markexpr", "") == "not slow"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The fast tier does not even import the modules that train (their imports alone take seconds)."""
    if _fast(config) and _trains(collection_path, config):
        return True
    return None


def _trains(path: Path, config: pytest.Config) -> bool:
    rel = path.relative_to(Path(str(config.rootpath))).as_posix() if path.is_relative_to(str(config.rootpath)) else ""
    return any(fnmatch.fnmatch(rel, pattern) for pattern in TRAINS_MODELS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _trains(Path(str(item.path)), config) or any(fnmatch.fnmatch(item.nodeid, p) for p in LONG_SWEEPS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fast_tier_trains_no_model(request: pytest.FixtureRequest) -> Iterator[None]:
    """In the fast tier (-m "not slow"), fail the first test that brings TensorFlow into the process."""
    fast = _fast(request.config)
    before = "tensorflow" in sys.modules
    yield
    if fast and not before and "tensorflow" in sys.modules:
        pytest.fail(
            f"{request.node.nodeid} imported TensorFlow: mark it slow (or list its module in "
            f"tests/conftest.py TRAINS_MODELS) so `make test-fast` stays fast"
        )
