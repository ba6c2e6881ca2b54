"""The Python matrix's helpers (``make test-runtime-matrix``, noxfile.py): what each session records and
the final check over all of them.

Each session (one Python x one engine, the runtime installed from its wheel) runs the TensorFlow-free
runtime tests with a JUnit report, then :func:`write_scores` scores the credit fixture bundles of its
engine and writes the probabilities to JSON. :func:`check` then asserts, over every session:
- no test failed anywhere, and every test passed on every Python in at least one engine session (a test
  that needs the other engine is skipped in a one-engine venv, so it must pass in the other one);
- scores are identical, bit for bit, across Python versions for the same engine version.

Runs on Python 3.9 (it is executed inside the matrix's venvs): no 3.10+ syntax evaluated at run time.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

#: the credit fixture bundles each engine scores (tests/fixtures/bundles.py build_credit)
CREDIT_VARIANTS = {"litert": ("tflite-fp32", "tflite-int8"), "onnx": ("onnx-fp32",)}


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


def check_tests(runs: dict[tuple[str, str], dict[str, str]], notes: list[str] | None = None) -> list[str]:
    """Problems across sessions keyed (python, engine): failures, and tests no engine session of a
    Python passed. A test every session of a Python skipped for the engine it lacks needs both engines
    in one process, and the serve tests need the serve extra: both are listed in ``notes`` (they run
    in ``make test``), not counted as problems; a Python with one engine session only has no excuse."""
    problems: list[str] = []
    by_python: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    engines: dict[str, set[str]] = defaultdict(set)
    for (python, engine), outcomes in sorted(runs.items()):
        engines[python].add(engine)
        for tid, outcome in outcomes.items():
            if outcome == "failed":
                problems.append(f"python {python} / {engine}: {tid} failed")
            by_python[python][tid].append(outcome)
    for python, tests in sorted(by_python.items()):
        never = sorted(t for t, outcomes in tests.items() if "passed" not in outcomes and "failed" not in outcomes)
        both = [t for t in never if len(engines[python]) > 1 and set(tests[t]) == {"skipped-engine"}]
        extra = [t for t in never if set(tests[t]) == {"skipped-extra"}]
        if notes is not None:
            notes.extend(f"python {python}: needs both engines in one process, not run here: {t}" for t in both)
            notes.extend(f"python {python}: needs the serve extra (uvicorn), not run here: {t}" for t in extra)
        problems.extend(
            f"python {python}: {t} passed in no engine session (skipped in every one)"
            for t in never
            if t not in both and t not in extra
        )
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
    if len(scores) != len(runs):
        problems.append(f"{len(runs)} test reports but {len(scores)} score files in {results_dir}")
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
