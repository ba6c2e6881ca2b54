"""The Python matrix's helpers (``make test-runtime-matrix``, noxfile.py): what each session records and
the final check over all of them.

Each session (one Python x one engine, the runtime installed from its wheel) runs the TensorFlow-free
runtime tests with a JUnit report, then :func:`write_scores` scores the credit fixture bundles of its
engine and writes the probabilities to JSON. A third session per Python has both engines and runs the
tests both one-engine sessions skipped for the engine they lacked (:func:`needing_both_engines`).
:func:`check` then asserts, over every session:
- no test failed anywhere, and every test passed on every Python in at least one session (a test that
  needs the other engine is skipped in a one-engine venv, so it must pass in the other one or, needing
  both, in the both-engines session);
- scores are identical, bit for bit, across Python versions for the same engine version.

:func:`find_interpreter` says which interpreter each Python of the matrix uses (pyenv's, PATH's, uv's,
or one it downloads) or why there is none. Runs on Python 3.9 (it is executed inside the matrix's venvs):
no 3.10+ syntax evaluated at run time.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

#: the Python versions of the matrix, oldest first (the runtime's requires-python >= 3.9)
ALL_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
#: the exact CPython each version gets when the machine has none (``uv python install``, a python-build-
#: standalone build): the patch releases of the reference machine's pyenv, so a machine that downloads its
#: interpreters tests what the README reports
PINNED_PYTHONS = {"3.9": "3.9.18", "3.10": "3.10.13", "3.11": "3.11.7", "3.12": "3.12.1", "3.13": "3.13.0"}


class Interpreter:
    """Where a matrix version's interpreter comes from: ``path`` (None: none found), ``source`` (pyenv, PATH,
    uv-managed, downloaded) and, when it could not be had, ``error`` saying what was tried."""

    def __init__(self, version: str, path: str | None, source: str, error: str = "") -> None:
        self.version, self.path, self.source, self.error = version, path, source, error

    def __repr__(self) -> str:
        return f"Interpreter({self.version!r}, {self.path!r}, {self.source!r})"


def _version_key(p: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", Path(p).parents[1].name)]


def _is_shim(path: str) -> bool:
    """A pyenv (or similar) shim script: it runs whatever version is selected, not a fixed interpreter."""
    with open(path, "rb") as f:
        head = f.read(512)
    return head.startswith(b"#!") and b"pyenv" in head


def _uv_find(uv: str, pin: str, env: dict[str, str]) -> str | None:
    """The uv-managed interpreter of exactly ``pin`` already installed, else None (never downloads)."""
    proc = subprocess.run(
        [uv, "python", "find", "--managed-python", "--no-python-downloads", pin],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    path = proc.stdout.strip()
    return path if proc.returncode == 0 and path else None


def find_interpreter(
    version: str,
    *,
    pyenv_root: str,
    path_env: str,
    uv: str | None,
    download: bool,
    env: dict[str, str] | None = None,
) -> Interpreter:
    """The interpreter for ``version`` (X.Y), first found of: pyenv's newest X.Y.* under ``pyenv_root``;
    ``pythonX.Y`` on ``path_env`` (pyenv's shims left out: a shim of a version pyenv lacks only fails);
    uv's managed install of the pinned patch release; with ``download``, ``uv python install`` of it
    (python-build-standalone; UV_PYTHON_INSTALL_MIRROR / UV_PYTHON_DOWNLOADS_JSON_URL point uv at a mirror).
    A version none of these gives comes back with ``path=None`` and ``error`` naming what was tried."""
    if version not in PINNED_PYTHONS:
        return Interpreter(version, None, "", f"not a Python of the matrix (choose from {', '.join(ALL_PYTHONS)})")
    pyenv = sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), key=_version_key)
    if pyenv:
        return Interpreter(version, pyenv[-1], "pyenv")
    on_path = next(
        (
            c
            for c in (shutil.which(f"python{version}", path=d) for d in path_env.split(os.pathsep) if d)
            if c and not _is_shim(c)
        ),
        None,
    )
    if on_path:
        return Interpreter(version, on_path, "PATH")
    pin = PINNED_PYTHONS[version]
    tried = f"pyenv ({pyenv_root}/versions/{version}.*), python{version} on PATH"
    if uv is None:
        return Interpreter(version, None, "", f"{tried}; no uv to find or install CPython {pin}")
    env = dict(os.environ if env is None else env)
    found = _uv_find(uv, pin, env)
    if found:
        return Interpreter(version, found, "uv-managed")
    if not download:
        return Interpreter(version, None, "", f"{tried}, uv-managed {pin}; downloads are off (MATRIX_DOWNLOAD=never)")
    # `uv python install` is the one command allowed to download (UV_PYTHON_DOWNLOADS=manual); no python3.X
    # shim is written to ~/.local/bin
    install_env = {**env, "UV_PYTHON_DOWNLOADS": "manual", "UV_PYTHON_INSTALL_BIN": "0"}
    proc = subprocess.run([uv, "python", "install", pin], capture_output=True, text=True, env=install_env, timeout=1800)
    found = _uv_find(uv, pin, env) if proc.returncode == 0 else None
    if found:
        return Interpreter(version, found, "downloaded")
    why = " ".join((proc.stderr or proc.stdout).split())
    why = why if len(why) <= 700 else f"{why[:450]} ... {why[-220:]}"
    return Interpreter(version, None, "", f"{tried}, uv-managed {pin}; 'uv python install {pin}' failed: {why}")


#: the credit fixture bundles each engine scores (tests/fixtures/bundles.py build_credit)
CREDIT_VARIANTS = {"litert": ("tflite-fp32", "tflite-int8"), "onnx": ("onnx-fp32",)}
#: the one-engine sessions of each Python; a third session per Python, "both", has both engines
ENGINES = ("litert", "onnx")
BOTH = "both"


def write_scores(bundles: Path, engine: str, out: Path) -> dict[str, Any]:
    """Score credit-sample.jsonl with the engine's credit bundles (single records and columns) and write
    ``{python, engine, engine_version, numpy, runtime_file, scores: {variant: [...]}}`` to ``out``."""
    import numpy as np

    import edgefin_runtime

    records = [json.loads(line) for line in (bundles / "credit-sample.jsonl").read_text().splitlines()]
    scores: dict[str, list[float]] = {}
    for variant in CREDIT_VARIANTS[engine]:
        pred = edgefin_runtime.load(bundles / f"credit-{variant}.efb")
        single = [pred.score(r).probability for r in records]
        cols = pred.score_columns({k: [r.get(k) for r in records] for k in records[0]})
        as_float32 = np.asarray(single, dtype=np.float32)
        if not np.array_equal(as_float32, cols.probabilities):
            raise AssertionError(f"{variant}: the record and columns paths disagree on this Python")
        scores[variant] = single
    if engine == "litert":
        from importlib.metadata import version

        engine_version = version("ai-edge-litert")
    else:
        import onnxruntime

        engine_version = onnxruntime.__version__
    result = {
        "python": ".".join(map(str, sys.version_info[:3])),
        "engine": engine,
        "engine_version": engine_version,
        "numpy": np.__version__,
        "runtime_file": edgefin_runtime.__file__,
        "records": len(records),
        "scores": scores,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return result


#: top-level packages a matrix venv does not have: the toolkit and the converters (TensorFlow), and the
#: serve/spark/dask extras' frameworks (their tests run in make test, on the toolkit's Python)
TOOLKIT_PACKAGES = (
    "edgefin", "edgefin_converters", "tensorflow", "tf_keras",
    "pyspark", "dask", "distributed", "uvicorn", "starlette", "httpx",
)  # fmt: skip


def _imports(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif (  # pytest.importorskip("X"): the module needs X as much as an import does
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "importorskip"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def toolkit_test_modules(test_dir: Path) -> dict[str, str]:
    """test module -> the toolkit import that keeps it out of the matrix, directly or through a helper
    module of ``test_dir`` (``tests.runtime.X`` or ``X``) it imports, at any depth. They run in ``make test``."""
    cache: dict[Path, set[str]] = {}

    def needs(path: Path, seen: frozenset[Path]) -> str | None:
        if path not in cache:
            cache[path] = _imports(path)
        for name in sorted(cache[path]):
            if name.split(".")[0] in TOOLKIT_PACKAGES:
                return name
            local = test_dir / (name.rsplit(".", 1)[-1] + ".py")
            if (name.startswith("tests.runtime.") or "." not in name) and local.is_file() and local not in seen:
                found = needs(local, seen | {local})
                if found:
                    return f"{found} (through {name})"
        return None

    out = {}
    for path in sorted(test_dir.rglob("test_*.py")):
        reason = needs(path, frozenset({path}))
        local_conftest = path.parent / "conftest.py"
        if reason is None and path.parent != test_dir and local_conftest.is_file():
            reason = needs(local_conftest, frozenset({local_conftest}))
        if reason:
            out[path.relative_to(test_dir).as_posix()] = reason
    return out


#: skip reasons that say what a one-engine venv lacks (tests/runtime/conftest.py) or that the serve
#: extra's framework is absent (tests/runtime/serve/conftest.py): not a failure, reported by name
ENGINE_SKIP = "[matrix: "
EXTRA_SKIP = "could not import 'uvicorn'"


def junit_outcomes(path: Path) -> dict[str, str]:
    """test id -> 'passed' | 'failed' | 'skipped' | 'skipped-engine' (the venv lacks the other engine)
    | 'skipped-extra' (the serve extra's framework is not in the matrix) from a pytest JUnit XML report."""
    out: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        tid = f"{case.get('classname')}::{case.get('name')}"
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            out[tid] = "failed"
        elif skipped is not None:
            text = f"{skipped.get('message', '')} {skipped.text or ''}"
            kind = "skipped-engine" if ENGINE_SKIP in text else "skipped-extra" if EXTRA_SKIP in text else "skipped"
            out[tid] = kind if out.get(tid) != "failed" else "failed"
        else:
            out.setdefault(tid, "passed")
    return out


def node_id(classname: str, name: str, repo: Path) -> str:
    """pytest's node id of a JUnit test case (``tests.runtime.test_a.TestX`` + ``test_y[p]`` ->
    ``tests/runtime/test_a.py::TestX::test_y[p]``): the longest dotted prefix that is a module file."""
    parts = classname.split(".")
    for i in range(len(parts), 0, -1):
        module = Path(*parts[:i]).with_suffix(".py")
        if (repo / module).is_file():
            return "::".join([module.as_posix(), *parts[i:], name])
    raise ValueError(f"no test module under {repo} for the JUnit class {classname!r}")


def needing_both_engines(results_dir: Path, python: str, repo: Path) -> list[str]:
    """Node ids of the tests that both one-engine sessions of ``python`` skipped for the engine they lack
    (they load a LiteRT and an ONNX bundle in one process): the both-engines session runs exactly these.
    Fails when either one-engine report is missing (run the matrix sessions first)."""
    outcomes: list[dict[str, str]] = []
    for engine in ENGINES:
        report = results_dir / f"junit-{python}-{engine}.xml"
        if not report.is_file():
            raise FileNotFoundError(f"{report} is missing: the {engine} session of Python {python} did not run")
        outcomes.append(junit_outcomes(report))
    both = sorted(set.intersection(*({t for t, o in out.items() if o == "skipped-engine"} for out in outcomes)))
    return [node_id(classname, name, repo) for classname, name in (t.split("::", 1) for t in both)]


def check_tests(runs: dict[tuple[str, str], dict[str, str]], notes: list[str] | None = None) -> list[str]:
    """Problems across sessions keyed (python, engine), engine one of litert, onnx, both: failures, and
    tests no session of a Python passed. A test the one-engine sessions skip for the engine they lack must
    pass in that Python's both-engines session. Only the serve tests (they need the serve extra's
    framework, not in the matrix; they run in ``make test``) are listed in ``notes`` instead."""
    problems: list[str] = []
    by_python: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for (python, engine), outcomes in sorted(runs.items()):
        for tid, outcome in outcomes.items():
            if outcome == "failed":
                problems.append(f"python {python} / {engine}: {tid} failed")
            by_python[python][tid].append(outcome)
    for python, tests in sorted(by_python.items()):
        never = sorted(t for t, outcomes in tests.items() if "passed" not in outcomes and "failed" not in outcomes)
        extra = [t for t in never if set(tests[t]) == {"skipped-extra"}]
        if notes is not None:
            notes.extend(f"python {python}: needs the serve extra (uvicorn), not run here: {t}" for t in extra)
        for t in never:
            if t in extra:
                continue
            if set(tests[t]) == {"skipped-engine"}:
                where = "ran" if (python, BOTH) in runs else "has no report"
                problems.append(
                    f"python {python}: {t} needs both engines and passed in no session (the both-engines "
                    f"session {where})"
                )
            else:
                problems.append(f"python {python}: {t} passed in no session (skipped in every one)")
    return problems


def check_scores(results: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(problems, summary lines): within one engine version, every Python's scores must be identical."""
    problems: list[str] = []
    summary: list[str] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[(r["engine"], r["engine_version"])].append(r)
        if "site-packages" not in r["runtime_file"]:
            problems.append(f"python {r['python']} / {r['engine']}: scored with {r['runtime_file']}, not the wheel")
    for (engine, ver), rs in sorted(groups.items()):
        ref = rs[0]
        pythons = ", ".join(r["python"] for r in rs)
        for r in rs[1:]:
            for variant, vals in ref["scores"].items():
                other = r["scores"].get(variant)
                if other != vals:
                    n = sum(a != b for a, b in zip(vals, other or [])) if other else len(vals)
                    problems.append(
                        f"{engine} {ver}: {variant} scores differ between Python {ref['python']} and "
                        f"{r['python']} ({n} of {len(vals)} records)"
                    )
        n = sum(len(v) for v in ref["scores"].values())
        summary.append(
            f"{engine} {ver}: {n} scores identical across Python {pythons}"
            if len(rs) > 1
            else f"{engine} {ver}: only Python {pythons} (nothing to compare with)"
        )
    return problems, summary


def max_diff_between_versions(results: list[dict[str, Any]]) -> list[str]:
    """Informative: the largest score difference between engine versions of the same engine."""
    lines = []
    for engine in sorted({r["engine"] for r in results}):
        by_ver = {r["engine_version"]: r for r in results if r["engine"] == engine}
        vers = sorted(by_ver)
        for a, b in zip(vers, vers[1:]):
            d = max(
                (
                    abs(x - y)
                    for v in by_ver[a]["scores"]
                    for x, y in zip(by_ver[a]["scores"][v], by_ver[b]["scores"][v])
                ),
                default=0.0,
            )
            lines.append(f"{engine}: {a} vs {b}: largest score difference {d:.3g}")
    return lines


def check(results_dir: Path) -> tuple[list[str], list[str]]:
    """Read every session's junit-*.xml and scores-*.json under ``results_dir``: (problems, summary)."""
    runs = {}
    for xml in sorted(results_dir.glob("junit-*.xml")):
        python, engine = xml.stem[len("junit-") :].rsplit("-", 1)
        runs[(python, engine)] = junit_outcomes(xml)
    scores = [json.loads(p.read_text()) for p in sorted(results_dir.glob("scores-*.json"))]
    notes: list[str] = []
    problems = check_tests(runs, notes)
    score_problems, summary = check_scores(scores)
    problems += score_problems
    if not runs:
        problems.append(f"no session reports (junit-*.xml) in {results_dir}")
    one_engine = [k for k in runs if k[1] != BOTH]  # the both-engines session scores nothing of its own
    if len(scores) != len(one_engine):
        problems.append(f"{len(one_engine)} one-engine test reports but {len(scores)} score files in {results_dir}")
    passed = {k: sum(o == "passed" for o in v.values()) for k, v in runs.items()}
    summary = [f"python {p} / {e}: {n} passed" for (p, e), n in sorted(passed.items())] + notes + summary
    return problems, summary + max_diff_between_versions(scores)


if __name__ == "__main__":  # python -m / path: write_scores BUNDLES ENGINE OUT | check DIR
    if sys.argv[1] == "write_scores":
        r = write_scores(Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
        print(f"scores: {r['engine']} {r['engine_version']} on Python {r['python']} -> {sys.argv[4]}")
    else:
        probs, lines = check(Path(sys.argv[2]))
        print("\n".join(lines))
        print("\n".join(probs), file=sys.stderr)
        raise SystemExit(1 if probs else 0)
