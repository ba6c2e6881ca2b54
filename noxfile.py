"""The runtime on every Python a branch box has (issue 19): ``make test-runtime-matrix``.

For each Python 3.9 ... 3.13 and each engine (LiteRT, ONNX Runtime): a fresh uv venv with the runtime
installed from its built wheel (never the source tree), that one engine and the test tools; the
TensorFlow-free runtime tests run against fixture bundles built ONCE by the toolkit (the repository's .venv,
Python 3.11, TensorFlow); then the credit fixture bundles are scored and the probabilities written to JSON.
A third venv per Python has both engines and runs the tests the one-engine venvs skipped for the engine they
lacked (a LiteRT and an ONNX bundle in one process). ``matrix_check`` fails on any failed test, on a test no
session of a Python passed, and on scores that differ between Pythons for the same engine version.

Interpreters (``interpreters`` session, python_matrix.find_interpreter): pyenv's newest X.Y.*, else
``pythonX.Y`` on PATH, else uv's managed CPython of the pinned patch release (PINNED_PYTHONS), else
``uv python install`` of it (EDGEFIN_MATRIX_DOWNLOAD=never forbids that). A Python none of these gives
fails the run, named with what was tried - never silently skipped.

On the oldest Python the engines are pinned to the lowest versions the runtime's extras allow (the
newest those Pythons get), so the floors declared in runtime/pyproject.toml are the ones tested.

    nox -f noxfile.py -s interpreters                                        # find / install, or fail
    nox -f noxfile.py -s fixtures wheel matrix matrix_both matrix_check      # then everything (make)
    EDGEFIN_MATRIX_PYTHONS=3.9,3.13 nox ...                                  # a reduced matrix (CI)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import nox

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
from tests.runtime.python_matrix import (  # noqa: E402  (the matrix's helpers: they also run inside its venvs)
    ALL_PYTHONS,
    BOTH,
    ENGINES,
    Interpreter,
    check,
    find_interpreter,
    needing_both_engines,
    toolkit_test_modules,
)

WORK = REPO / ".nox" / "_matrix"
RESULTS = WORK / "results"
DIST = WORK / "dist"
PYTHONS = tuple(v.strip() for v in os.environ.get("EDGEFIN_MATRIX_PYTHONS", ",".join(ALL_PYTHONS)).split(","))
#: "auto": a Python the machine lacks is installed with uv (pinned patch release); "never": it fails the run
DOWNLOAD = os.environ.get("EDGEFIN_MATRIX_DOWNLOAD", "auto")
ENGINE_PACKAGE = {"litert": "ai-edge-litert", "onnx": "onnxruntime"}
#: the test tools each venv gets besides the wheel (onnx builds the security tests' tiny models; pandas
#: and pyarrow for the DataFrame input tests; cryptography through the runtime's signing extra)
TEST_DEPS = ("pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100", "onnx", "pandas", "pyarrow")

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"  # a Python that is not on the machine is reported, never fetched
nox.options.reuse_existing_virtualenvs = False


if shutil.which("uv") is None and (REPO / ".tools" / "bin" / "uv").exists():  # the Makefile's bootstrapped uv
    os.environ["PATH"] = f"{REPO / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")  # only the interpreters session installs, pinned
PYENV_ROOT = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))


def _find(version: str, download: bool) -> Interpreter:
    return find_interpreter(
        version, pyenv_root=PYENV_ROOT, path_env=os.environ["PATH"], uv=shutil.which("uv"), download=download
    )


def _put_first_on_path(interpreters: dict[str, Interpreter]) -> None:
    """nox resolves "3.9" through PATH: the chosen interpreters' folders go first, so each version is the one
    the `interpreters` session reported."""
    dirs = [str(Path(i.path).parent) for i in interpreters.values() if i.path]
    os.environ["PATH"] = os.pathsep.join([*dict.fromkeys(dirs), os.environ.get("PATH", "")])


#: found without downloading (a version installed by an earlier `interpreters` session is uv-managed now)
INTERPRETERS = {v: _find(v, download=False) for v in PYTHONS}
_put_first_on_path(INTERPRETERS)
# compile the installed packages' bytecode as pip does on a device: without it (uv's default, with
# PYTHONDONTWRITEBYTECODE set for the tests) every child process the tests start recompiled numpy and
# the runtime from source, ~0.7 s of CPU each instead of ~0.2 s (measured on 3.9 here)
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")


def _fixture_key() -> str:
    """The fixture bundles depend on the builder and on the runtime code that computes their goldens."""
    h = hashlib.sha256()
    files = [REPO / "tests" / "fixtures" / "bundles.py", REPO / "converters" / "edgefin_converters" / "acceptance.py"]
    files += sorted((REPO / "runtime" / "edgefin_runtime").rglob("*.py"))
    for f in files:
        h.update(f.relative_to(REPO).as_posix().encode() + f.read_bytes())
    return h.hexdigest()[:16]


#: computed once per nox run, so editing the runtime while the matrix runs does not orphan its bundles;
#: EDGEFIN_MATRIX_BUNDLES names an already built directory instead (a second nox run started beside a
#: first one in a tree others are editing: the same bundles and goldens for every session)
FIXTURES = (
    Path(os.environ["EDGEFIN_MATRIX_BUNDLES"]).resolve()
    if os.environ.get("EDGEFIN_MATRIX_BUNDLES")
    else WORK / f"bundles-{_fixture_key()}"
)


def _floor(wheel: Path, engine: str) -> str:
    """The lowest engine version the wheel's extra allows (``ai-edge-litert>=2.1.0`` -> 2.1.0)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    m = re.search(
        rf"^Requires-Dist: {re.escape(ENGINE_PACKAGE[engine])}\s*>=\s*([\w.]+).*extra == .{engine}.", text, re.M
    )
    if m is None:
        raise RuntimeError(f"{wheel.name}: no '{ENGINE_PACKAGE[engine]}>=X' floor in the {engine} extra")
    return m.group(1)


def _wheel() -> Path:
    wheels = sorted(DIST.glob("edgefin_runtime-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one runtime wheel in {DIST} (run the 'wheel' session first), found {wheels}")
    return wheels[0]


@nox.session(python=False)
def interpreters(session: nox.Session) -> None:
    """Which interpreter each Python of this run uses (installing a missing one with uv unless
    EDGEFIN_MATRIX_DOWNLOAD=never); fails naming any that could not be had and what was tried."""
    shutil.rmtree(RESULTS, ignore_errors=True)  # a run's check reads this run's reports only
    for v in PYTHONS:
        if INTERPRETERS[v].path is None and DOWNLOAD != "never":
            session.log(f"Python {v}: none on this machine; installing it with uv")
            INTERPRETERS[v] = _find(v, download=True)
    _put_first_on_path(INTERPRETERS)
    for v in ALL_PYTHONS:
        i = INTERPRETERS.get(v)
        if i is None:
            session.log(f"Python {v}: not in this run (EDGEFIN_MATRIX_PYTHONS)")
        elif i.path:
            session.log(f"Python {v}: {i.path} ({i.source})")
    missing = [i for i in INTERPRETERS.values() if i.path is None]
    if missing:
        session.error(
            "no interpreter for Python "
            + "; ".join(f"{i.version} (tried: {i.error})" for i in missing)
            + ". Install it (pyenv install 3.X, the OS package, or uv python install) or choose the versions "
            "with MATRIX_PYTHONS / EDGEFIN_MATRIX_PYTHONS"
        )


@nox.session(python=False)
def fixtures(session: nox.Session) -> None:
    """Build the tiny and credit fixture bundles once with the toolkit (.venv, TensorFlow)."""
    out = FIXTURES
    if (out / "credit-sample.jsonl").is_file() and (out / "tiny-onnx-fp32.efb").is_file():
        session.log(f"fixture bundles up to date in {out}")
        return
    python = REPO / ".venv" / "bin" / "python"
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": str(REPO)}
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for family in ("tiny", "credit"):
        session.run(str(python), "tests/fixtures/bundles.py", str(tmp), "--family", family, env=env, silent=True)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


@nox.session(python=False)
def wheel(session: nox.Session) -> None:
    """Build the runtime's wheel (what a device installs) into .nox/_matrix/dist."""
    shutil.rmtree(DIST, ignore_errors=True)
    session.run("uv", "build", "--wheel", "--package", "edgefin-runtime", "--out-dir", str(DIST), "--quiet")
    session.log(f"{_wheel().name}: {_wheel().stat().st_size / 1024:.1f} KiB")


def _engine_pin(whl: Path, engine: str, session: nox.Session) -> str:
    """The engine's floor on the oldest Python (the version the extra declares is the one tested), else
    its newest release for that Python."""
    package = ENGINE_PACKAGE[engine]
    return f"{package}=={_floor(whl, engine)}" if session.python == ALL_PYTHONS[0] else package


def _check_interpreter(session: nox.Session) -> None:
    """The venv runs on the interpreter the `interpreters` session chose for its version; says where the
    runtime is imported from (the wheel, in site-packages)."""
    out = session.run(
        "python", "-c",
        "import edgefin_runtime, os, sys; print(edgefin_runtime.__file__, sys.version.split()[0]); "
        "print(os.path.realpath(sys.base_prefix))",
        silent=True,
    )  # fmt: skip
    lines = str(out or "").strip().splitlines()
    chosen = INTERPRETERS[str(session.python)].path
    expected = os.path.realpath(Path(chosen).parents[1]) if chosen else None
    if not lines or lines[-1] != expected:
        session.error(f"the venv of Python {session.python} runs on {lines[-1:]}, not on the chosen {chosen}")
    session.log(f"Python {session.python}: {chosen}; runtime {lines[0] if len(lines) > 1 else '?'}")


@nox.session(python=PYTHONS)
@nox.parametrize("engine", ENGINES)
def matrix(session: nox.Session, engine: str) -> None:
    """One Python x one engine: the wheel + that engine, the runtime tests, the credit bundles' scores."""
    whl = _wheel()
    bundles = FIXTURES
    if not (bundles / "credit-sample.jsonl").is_file():
        session.error(f"no fixture bundles in {bundles}: run the 'fixtures' session first")
    session.install(
        f"edgefin-runtime[{engine},signing] @ {whl.as_uri()}", _engine_pin(whl, engine, session), *TEST_DEPS
    )
    _check_interpreter(session)
    ignored = toolkit_test_modules(REPO / "tests" / "runtime")
    for wheel_test in sorted((REPO / "tests" / "runtime").glob("test_wheel*.py")):
        ignored[wheel_test.name] = "builds and installs the distributions itself (this session runs from the wheel)"
    for name, why in ignored.items():
        session.warn(f"not in the matrix (imports what its venv lacks; runs in make test): {name} <- {why}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    tag = f"{session.python}-{engine}"
    env = {"EDGEFIN_TEST_BUNDLES": str(bundles), "EDGEFIN_TEST_ENGINE": engine, "PYTHONDONTWRITEBYTECODE": "1"}
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow",
        "tests/runtime",
        *[f"--ignore=tests/runtime/{name}" for name in ignored],
        f"--junitxml={RESULTS / f'junit-{tag}.xml'}",
        *session.posargs,
        env=env,
    )
    session.run(
        "python", "tests/runtime/python_matrix.py", "write_scores", str(bundles), engine,
        str(RESULTS / f"scores-{tag}.json"), env=env,
    )  # fmt: skip


@nox.session(python=PYTHONS)
def matrix_both(session: nox.Session) -> None:
    """One Python, both engines in one venv: the tests both one-engine sessions of this Python skipped for
    the engine they lacked (a LiteRT and an ONNX bundle in one process). Runs after the matrix sessions."""
    whl = _wheel()
    wanted = needing_both_engines(RESULTS, str(session.python), REPO)
    if not wanted:
        session.log(f"Python {session.python}: no test needs both engines in one process")
        return
    pins = [_engine_pin(whl, e, session) for e in ENGINES]
    # no bytecode compiled: these tests start no child process, so compiling every package costs more than it saves
    session.install(
        f"edgefin-runtime[{','.join(ENGINES)},signing] @ {whl.as_uri()}",
        *pins,
        *TEST_DEPS,
        env={"UV_COMPILE_BYTECODE": "0"},
    )
    _check_interpreter(session)
    session.log(f"Python {session.python}: {len(wanted)} tests need both engines")
    env = {"EDGEFIN_TEST_BUNDLES": str(FIXTURES), "PYTHONDONTWRITEBYTECODE": "1"}  # no EDGEFIN_TEST_ENGINE: no skip
    session.run(
        "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *wanted,
        f"--junitxml={RESULTS / f'junit-{session.python}-{BOTH}.xml'}", *session.posargs, env=env,
    )  # fmt: skip


@nox.session(python=False)
def matrix_check(session: nox.Session) -> None:
    """Every session's tests and scores together: fails on a failure, a test no session passed, or
    scores that differ between Pythons for one engine version."""
    problems, summary = check(RESULTS)
    for line in summary:
        session.log(line)
    expected = {f"{p}-{e}" for p in PYTHONS for e in ENGINES}
    seen = {x.stem[len("junit-") :] for x in RESULTS.glob("junit-*.xml")}
    problems += [f"session {s} left no report (it failed before its tests ran)" for s in sorted(expected - seen)]
    if problems:
        session.error("the runtime matrix failed:\n  " + "\n  ".join(problems))
