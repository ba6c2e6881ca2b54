"""The runtime on every Python a branch box has (issue 19): ``make test-runtime-matrix``.

For each Python 3.9 ... 3.13 found on this machine (pyenv's versions, then ``pythonX.Y`` on PATH) and
each engine (LiteRT, ONNX Runtime): a fresh uv venv with the runtime installed from its built wheel (never
the source tree), that one engine and the test tools; the TensorFlow-free runtime tests run against
fixture bundles built ONCE by the toolkit (the repository's .venv, Python 3.11, TensorFlow); then the
credit fixture bundles are scored and the probabilities written to JSON. ``matrix_check`` fails on any
failed test, on a test no engine session of a Python passed, and on scores that differ between Pythons
for the same engine version. A Python that is not found fails ``interpreters`` (never silently skipped).

On the oldest Python the engines are pinned to the lowest versions the runtime's extras allow (the
newest those Pythons get), so the floors declared in runtime/pyproject.toml are the ones tested.

    nox -f noxfile.py -s interpreters fixtures wheel matrix matrix_check     # everything (make)
    EDGEFIN_MATRIX_PYTHONS=3.9,3.13 nox ...                                  # a reduced matrix (CI)
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import nox

REPO = Path(__file__).resolve().parent
WORK = REPO / ".nox" / "_matrix"
RESULTS = WORK / "results"
DIST = WORK / "dist"
ALL_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
PYTHONS = tuple(os.environ.get("EDGEFIN_MATRIX_PYTHONS", ",".join(ALL_PYTHONS)).split(","))
ENGINES = ("litert", "onnx")
ENGINE_PACKAGE = {"litert": "ai-edge-litert", "onnx": "onnxruntime"}
#: the test tools each venv gets besides the wheel (onnx builds the security tests' tiny models; pandas
#: and pyarrow for the DataFrame input tests; cryptography through the runtime's signing extra)
TEST_DEPS = ("pytest>=8", "pytest-timeout>=2.3", "hypothesis>=6.100", "onnx", "pandas", "pyarrow")

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"  # a Python that is not on the machine is reported, never fetched
nox.options.reuse_existing_virtualenvs = False


def find_interpreters() -> dict[str, str | None]:
    """X.Y -> the interpreter used for it: pyenv's newest X.Y.*, else pythonX.Y on PATH; None if neither."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found: dict[str, str | None] = {}
    for v in ALL_PYTHONS:
        pyenv = sorted(
            glob.glob(f"{root}/versions/{v}.*/bin/python{v}"),
            key=lambda p: [int(x) for x in re.findall(r"\d+", Path(p).parents[1].name)],
        )
        found[v] = pyenv[-1] if pyenv else shutil.which(f"python{v}")
    return found


INTERPRETERS = find_interpreters()
# nox resolves "3.9" through PATH: put the interpreters found first on it, so each version is the one
# reported by the `interpreters` session
os.environ["PATH"] = os.pathsep.join(
    [str(Path(p).parent) for p in INTERPRETERS.values() if p] + [os.environ.get("PATH", "")]
)
if shutil.which("uv") is None and (REPO / ".tools" / "bin" / "uv").exists():  # the Makefile's bootstrapped uv
    os.environ["PATH"] = f"{REPO / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
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
    """Which interpreter each Python version of the matrix uses; fails naming any that is missing."""
    for v in ALL_PYTHONS:
        chosen = "in this run" if v in PYTHONS else "not in this run (EDGEFIN_MATRIX_PYTHONS)"
        session.log(f"Python {v}: {INTERPRETERS[v] or 'NOT FOUND'} ({chosen})")
    shutil.rmtree(RESULTS, ignore_errors=True)  # a run's check reads this run's reports only
    missing = [v for v in PYTHONS if not INTERPRETERS.get(v)]
    if missing:
        session.error(
            f"no interpreter for Python {', '.join(missing)} (looked in pyenv's versions and for pythonX.Y on "
            "PATH); install them (pyenv install 3.X) or choose the versions with EDGEFIN_MATRIX_PYTHONS"
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


@nox.session(python=PYTHONS)
@nox.parametrize("engine", ENGINES)
def matrix(session: nox.Session, engine: str) -> None:
    """One Python x one engine: the wheel + that engine, the runtime tests, the credit bundles' scores."""
    whl = _wheel()
    bundles = FIXTURES
    if not (bundles / "credit-sample.jsonl").is_file():
        session.error(f"no fixture bundles in {bundles}: run the 'fixtures' session first")
    pin = (
        f"{ENGINE_PACKAGE[engine]}=={_floor(whl, engine)}"
        if session.python == ALL_PYTHONS[0]
        else ENGINE_PACKAGE[engine]
    )
    session.install(f"edgefin-runtime[{engine},signing] @ {whl.as_uri()}", pin, *TEST_DEPS)
    session.run("python", "-c", "import edgefin_runtime, sys; print(edgefin_runtime.__file__, sys.version)")
    sys.path.insert(0, str(REPO / "tests" / "runtime"))
    from python_matrix import toolkit_test_modules

    ignored = toolkit_test_modules(REPO / "tests" / "runtime")
    ignored["test_wheel.py"] = "builds and installs the wheel itself (this session already runs from it)"
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


@nox.session(python=False)
def matrix_check(session: nox.Session) -> None:
    """Every session's tests and scores together: fails on a failure, a test no session passed, or
    scores that differ between Pythons for one engine version."""
    sys.path.insert(0, str(REPO / "tests" / "runtime"))
    from python_matrix import check

    problems, summary = check(RESULTS)
    for line in summary:
        session.log(line)
    expected = {f"{p}-{e}" for p in PYTHONS for e in ENGINES}
    seen = {x.stem[len("junit-") :] for x in RESULTS.glob("junit-*.xml")}
    problems += [f"session {s} left no report (it failed before its tests ran)" for s in sorted(expected - seen)]
    if problems:
        session.error("the runtime matrix failed:\n  " + "\n  ".join(problems))
