"""Fixtures for the runtime tests: tiny real bundles (TFLite fp32/int8, ONNX) built once per code version.

The bundles are built by ``tests/fixtures/bundles.py`` in a subprocess (TensorFlow never enters the
pytest process) and cached in pytest's cache directory under a key that hashes the builder and the
runtime code that computes the golden scores, so a change to either rebuilds them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtime" / "edgefin_runtime"
VARIANTS = ("tflite-fp32", "tflite-int8", "tflite-int8-io", "onnx-fp32")


def _code_key() -> str:
    h = hashlib.sha256()
    files = [
        REPO / "tests" / "fixtures" / "bundles.py",
        REPO / "converters" / "edgefin_converters" / "acceptance.py",
        *sorted(RUNTIME.glob("*.py")),
        *sorted((RUNTIME / "backends").glob("*.py")),
    ]
    for f in files:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def build_fixture_bundles(out: Path, family: str = "tiny") -> None:
    """Run the TensorFlow builder in a child process; fail with its output if it fails."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fixtures.bundles", str(out), "--family", family],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        pytest.fail(f"building fixture bundles failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


#: a directory of fixture bundles built beforehand (``python -m tests.fixtures.bundles DIR``): the Python
#: matrix (noxfile.py) builds them once with the toolkit and runs these tests where TensorFlow is absent
PREBUILT_ENV = "EDGEFIN_TEST_BUNDLES"


@pytest.fixture(scope="session")
def tiny_dir(request: pytest.FixtureRequest) -> Path:
    """A directory holding tiny-<variant>.efb for every fixture variant and tiny-keras.h5."""
    prebuilt = os.environ.get(PREBUILT_ENV)
    if prebuilt:
        d = Path(prebuilt)
        missing = [v for v in VARIANTS if not (d / f"tiny-{v}.efb").is_file()]
        if missing:
            pytest.fail(
                f"{PREBUILT_ENV}={prebuilt}: no tiny-<variant>.efb for {missing}; build them with "
                f"'python -m tests.fixtures.bundles {prebuilt}'"
            )
        return d
    d = Path(request.config.cache.mkdir(f"edgefin-tiny-{_code_key()}"))
    with open(d / ".lock", "w") as lock:  # pytest-xdist workers share the cache: one builds, the others wait
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all((d / f"tiny-{v}.efb").is_file() for v in VARIANTS):
            build_fixture_bundles(d)
    return d


@pytest.fixture(scope="session")
def tiny_bundles(tiny_dir: Path) -> dict[str, Path]:
    return {v: tiny_dir / f"tiny-{v}.efb" for v in VARIANTS}


class _Predictors(dict):  # type: ignore[type-arg]
    """variant -> Predictor, each loaded (and self-tested) on first use."""

    def __init__(self, paths: dict[str, Path]) -> None:
        super().__init__()
        self._paths = paths

    def __missing__(self, variant: str) -> Any:
        import edgefin_runtime
        from edgefin_runtime.errors import BackendError

        try:
            self[variant] = edgefin_runtime.load(self._paths[variant])
        except BackendError as exc:
            # in a one-engine matrix venv: skip now, before hypothesis shrinks an example that cannot pass
            if os.environ.get(ENGINE_ENV) and "which is not installed" in str(exc):
                pytest.skip(f"[matrix: {os.environ[ENGINE_ENV]} only] {str(exc).split(' (')[0]}")
            raise
        return self[variant]


@pytest.fixture(scope="session")
def predictors(tiny_bundles: dict[str, Path]) -> dict[str, Any]:
    """One loaded (and self-tested) Predictor per variant, shared by the tests that only read. Loaded on
    first use, so a venv with one engine (the Python matrix) runs the tests of that engine's variants."""
    return _Predictors(tiny_bundles)


@pytest.fixture(params=VARIANTS)
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def good_record() -> dict[str, Any]:
    return {"Income": 120.0, "Age": 35, "Home": "rent", "Job": "fixed"}


@pytest.fixture
def rebundle(tiny_bundles: dict[str, Path]) -> Callable[..., bytes]:
    """Rebuild a fixture bundle with a changed manifest, re-hashed consistently (a 'valid' mutant); the
    acceptance set is the manifest's "acceptance" key for ``mutate`` (tests/fixtures/repack.py)."""
    from tests.fixtures.repack import repack

    def make(variant: str, mutate: Callable[[dict[str, Any]], None], **kw: Any) -> bytes:
        return repack(tiny_bundles[variant], mutate, **kw)

    return make


# ---------------------------------------------------------------- the Python matrix's one-engine venvs
#: set by noxfile.py: the one engine installed in the venv. A test that needs the other engine is skipped
#: with that reason and runs in the matrix's session of the other engine; the matrix's final check
#: (noxfile.py, matrix_check) fails when a test passed in neither session of a Python.
ENGINE_ENV = "EDGEFIN_TEST_ENGINE"


#: the engine module a one-engine venv lacks
_OTHER_ENGINE_MODULE = {"litert": "onnxruntime", "onnx": "ai_edge_litert"}


def _absent_engine(exc: BaseException | None) -> str | None:
    """The runtime's 'engine not installed' message anywhere in the exception's chain, else None."""
    from edgefin_runtime.errors import BackendError

    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, BackendError) and "which is not installed" in str(exc):
            return str(exc).split(" (")[0]
        # a child process (CLI, cold start) failed that way: its stderr is in the assertion's message
        if isinstance(exc, AssertionError) and "BackendError: this bundle needs" in str(exc):
            text = str(exc)
            return text[text.index("this bundle needs") :].split(" (")[0]
        # the other engine's module imported by a test, or named in a child's stderr that pytest's
        # assertion message shortened before "this bundle needs"
        other = _OTHER_ENGINE_MODULE.get(os.environ.get(ENGINE_ENV, ""))
        if other and (
            (isinstance(exc, ModuleNotFoundError) and exc.name == other)
            or (isinstance(exc, AssertionError) and f"No module named '{other}'" in str(exc))
        ):
            return f"needs {other}, which this venv does not have"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


#: "this bundle needs X, which is not installed" errors created during the current test (one-engine venvs
#: only): the CLI run in-process turns one into an exit code, so the failing assertion cannot carry it
_ABSENT: list[str] = []


def _record_absent_engines() -> None:
    from edgefin_runtime.errors import BackendError

    init = BackendError.__init__

    def recording_init(self: BackendError, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if "which is not installed" in str(self):
            _ABSENT.append(str(self).split(" (")[0])

    BackendError.__init__ = recording_init  # type: ignore[method-assign]

    # a child process (the CLI) that failed for the other engine: its stderr says so
    run = subprocess.run

    def recording_run(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        proc = run(*args, **kwargs)
        err = proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) else proc.stderr
        if isinstance(err, str) and "which is not installed" in err and "this bundle needs" in err:
            _ABSENT.append(err[err.index("this bundle needs") :].split(" (")[0])
        return proc

    subprocess.run = recording_run  # type: ignore[assignment]


if os.environ.get(ENGINE_ENV):
    _record_absent_engines()


def _other_engine_skips() -> Generator[None, Any, Any]:
    _ABSENT.clear()
    try:
        return (yield)
    except Exception as exc:
        reason = (_absent_engine(exc) or (_ABSENT[0] if _ABSENT else None)) if os.environ.get(ENGINE_ENV) else None
        if reason is None:
            raise
        pytest.skip(f"[matrix: {os.environ[ENGINE_ENV]} only] {reason}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _other_engine_skips())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _other_engine_skips())
