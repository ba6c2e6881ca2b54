"""The Python matrix's helpers (tests/runtime/python_matrix.py, used by noxfile.py): the final check must
fail on a failed test, on a test no session of a Python passed (a test needing both engines must pass in
the both-engines session), and on scores that differ between Pythons for one engine version, and pass when
everything agrees; the both-engines session selects exactly the tests both one-engine sessions skipped for
the engine they lacked; an interpreter is found in pyenv, on PATH or through uv, or its absence is reported
with what was tried (never silently skipped)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.python_matrix import (
    PINNED_PYTHONS,
    check,
    check_scores,
    check_tests,
    find_interpreter,
    junit_outcomes,
    needing_both_engines,
    node_id,
)

REPO = Path(__file__).resolve().parents[2]

SKIP = '<skipped message="[matrix: litert only] needs onnx"/>'

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.runtime.test_a" name="test_one"/>
<testcase classname="tests.runtime.test_a" name="test_two">{skip}</testcase>
<testcase classname="tests.runtime.test_b" name="test_three">{three}</testcase>
</testsuite></testsuites>"""


def _scores(python: str, engine: str, version: str, values: list[float]) -> dict:
    site = f"/venv/lib/python{python[:4]}/site-packages/edgefin_runtime/__init__.py"
    return {
        "python": python,
        "engine": engine,
        "engine_version": version,
        "runtime_file": site,
        "scores": {"v": values},
    }


def test_junit_outcomes_reads_passed_skipped_and_failed(tmp_path: Path) -> None:
    p = tmp_path / "junit-3.9-litert.xml"
    p.write_text(JUNIT.format(skip=SKIP, three='<failure message="boom"/>'))
    assert junit_outcomes(p) == {
        "tests.runtime.test_a::test_one": "passed",
        "tests.runtime.test_a::test_two": "skipped-engine",
        "tests.runtime.test_b::test_three": "failed",
    }
    p.write_text(
        JUNIT.format(skip='<skipped message="no reason"/>', three="<skipped message=\"could not import 'uvicorn'\"/>")
    )
    assert junit_outcomes(p)["tests.runtime.test_a::test_two"] == "skipped"
    assert junit_outcomes(p)["tests.runtime.test_b::test_three"] == "skipped-extra"


def test_a_test_skipped_in_every_engine_session_of_a_python_is_a_problem() -> None:
    runs = {
        ("3.9", "litert"): {"t::a": "passed", "t::b": "skipped"},
        ("3.9", "onnx"): {"t::a": "skipped", "t::b": "passed"},
        ("3.13", "litert"): {"t::a": "passed", "t::b": "skipped"},
        ("3.13", "onnx"): {"t::a": "skipped", "t::b": "skipped"},
    }
    assert check_tests(runs) == ["python 3.13: t::b passed in no session (skipped in every one)"]
    runs[("3.13", "onnx")]["t::b"] = "failed"
    assert check_tests(runs) == ["python 3.13 / onnx: t::b failed"]


def test_a_test_needing_both_engines_must_pass_in_the_both_engines_session() -> None:
    runs = {
        ("3.9", "litert"): {"t::a": "passed", "t::both": "skipped-engine", "t::serve": "skipped-extra"},
        ("3.9", "onnx"): {"t::a": "passed", "t::both": "skipped-engine", "t::serve": "skipped-extra"},
    }
    notes: list[str] = []
    # no both-engines session: the test ran nowhere, which is a problem now (it used to be a note)
    assert check_tests(runs, notes) == [
        "python 3.9: t::both needs both engines and passed in no session (the both-engines session has no report)"
    ]
    assert notes == ["python 3.9: needs the serve extra (uvicorn), not run here: t::serve"]
    runs[("3.9", "both")] = {"t::both": "passed"}
    assert check_tests(runs) == []
    runs[("3.9", "both")] = {"t::both": "failed"}
    assert check_tests(runs) == ["python 3.9 / both: t::both failed"]
    runs[("3.9", "both")] = {}  # the session ran but did not run it
    assert check_tests(runs) == [
        "python 3.9: t::both needs both engines and passed in no session (the both-engines session ran)"
    ]
    # skipped for another reason in one of the sessions: a plain problem
    del runs[("3.9", "both")]
    runs[("3.9", "onnx")]["t::both"] = "skipped"
    assert check_tests(runs) == ["python 3.9: t::both passed in no session (skipped in every one)"]


def test_node_ids_of_junit_cases_point_at_the_test_module() -> None:
    assert node_id("tests.runtime.test_wheel", "test_x[a-b]", REPO) == "tests/runtime/test_wheel.py::test_x[a-b]"
    assert (
        node_id("tests.runtime.test_python_matrix.TestK", "test_y", REPO)
        == "tests/runtime/test_python_matrix.py::TestK::test_y"
    )
    with pytest.raises(ValueError, match="no test module"):
        node_id("tests.runtime.no_such_module", "test_z", REPO)


def test_the_both_engines_session_runs_what_both_one_engine_sessions_skipped_for_the_other(tmp_path: Path) -> None:
    case = '<testcase classname="tests.runtime.test_wheel" name="{}">{}</testcase>'
    skip = '<skipped message="[matrix: {} only] this bundle needs X"/>'

    def report(engine: str, cases: dict[str, str]) -> None:
        body = "".join(case.format(n, s) for n, s in cases.items())
        (tmp_path / f"junit-3.9-{engine}.xml").write_text(f"<testsuites><testsuite>{body}</testsuite></testsuites>")

    report("litert", {"test_both": skip.format("litert"), "test_onnx": skip.format("litert"), "test_ok": ""})
    with pytest.raises(FileNotFoundError, match="onnx session of Python 3.9 did not run"):
        needing_both_engines(tmp_path, "3.9", REPO)
    report("onnx", {"test_both": skip.format("onnx"), "test_onnx": "", "test_ok": '<skipped message="other"/>'})
    assert needing_both_engines(tmp_path, "3.9", REPO) == ["tests/runtime/test_wheel.py::test_both"]


def _exe(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _fake_uv(tmp_path: Path, installs: bool) -> Path:
    """A stand-in for uv: ``python find`` answers from a folder ``python install`` fills (or fails to)."""
    managed = tmp_path / "managed"
    log = tmp_path / "uv.log"
    install = (
        f'mkdir -p {managed} && : > {managed}/"$3"; exit 0' if installs else 'echo "error: no network" >&2; exit 1'
    )
    script = f"""#!/bin/sh
echo "$@ UV_PYTHON_DOWNLOADS=$UV_PYTHON_DOWNLOADS" >> {log}
if [ "$2" = find ]; then pin="$5"; [ -e {managed}/"$pin" ] && echo {managed}/"$pin" && exit 0; exit 2; fi
if [ "$2" = install ]; then {install}; fi
exit 3
"""
    return _exe(tmp_path / "bin" / "uv", script)


def test_an_interpreter_comes_from_pyenv_then_path_and_never_from_a_pyenv_shim(tmp_path: Path) -> None:
    root = tmp_path / "pyenv"
    for v in ("3.9.2", "3.9.18", "3.10.13"):
        _exe(root / "versions" / v / "bin" / f"python{v[:4].rstrip('.')}")
    found = find_interpreter("3.9", pyenv_root=str(root), path_env="", uv=None, download=False)
    assert (found.path, found.source) == (str(root / "versions/3.9.18/bin/python3.9"), "pyenv")  # newest patch
    shim = _exe(root / "shims" / "python3.12", "#!/usr/bin/env bash\nexec pyenv exec python3.12\n")
    on_path = _exe(tmp_path / "usr" / "python3.12")
    path_env = os.pathsep.join([str(shim.parent), str(on_path.parent)])
    found = find_interpreter("3.12", pyenv_root=str(root), path_env=path_env, uv=None, download=False)
    assert (found.path, found.source) == (str(on_path), "PATH")


def test_a_missing_interpreter_is_installed_with_uv_pinned_or_reported_with_what_was_tried(tmp_path: Path) -> None:
    kw: dict[str, Any] = {"pyenv_root": str(tmp_path / "nopyenv"), "path_env": "", "env": {"PATH": "/usr/bin"}}
    uv = _fake_uv(tmp_path / "ok", installs=True)
    off = find_interpreter("3.13", uv=str(uv), download=False, **kw)
    assert off.path is None and "downloads are off (MATRIX_DOWNLOAD=never)" in off.error
    got = find_interpreter("3.13", uv=str(uv), download=True, **kw)
    assert (got.path, got.source) == (str(tmp_path / "ok" / "managed" / PINNED_PYTHONS["3.13"]), "downloaded")
    calls = (tmp_path / "ok" / "uv.log").read_text()
    assert f"python install {PINNED_PYTHONS['3.13']} UV_PYTHON_DOWNLOADS=manual" in calls  # the exact release
    again = find_interpreter("3.13", uv=str(uv), download=True, **kw)
    assert again.source == "uv-managed"  # installed once, found after

    broken = _fake_uv(tmp_path / "offline", installs=False)
    lost = find_interpreter("3.9", uv=str(broken), download=True, **kw)
    assert lost.path is None
    assert "pyenv (" in lost.error and "python3.9 on PATH" in lost.error
    assert f"'uv python install {PINNED_PYTHONS['3.9']}' failed: error: no network" in lost.error
    bogus = find_interpreter("3.99", uv=str(uv), download=True, **kw)
    assert bogus.path is None and "not a Python of the matrix" in bogus.error


def test_scores_must_be_identical_across_pythons_for_one_engine_version() -> None:
    same = [_scores("3.9.18", "onnx", "1.19.2", [0.25, 0.5]), _scores("3.10.13", "onnx", "1.19.2", [0.25, 0.5])]
    problems, summary = check_scores(same + [_scores("3.13.0", "onnx", "1.32.0", [0.25, 0.5000001])])
    assert problems == []
    assert "onnx 1.19.2: 2 scores identical across Python 3.9.18, 3.10.13" in summary
    differ = [same[0], _scores("3.10.13", "onnx", "1.19.2", [0.25, 0.5000001])]
    problems, _ = check_scores(differ)
    assert problems == ["onnx 1.19.2: v scores differ between Python 3.9.18 and 3.10.13 (1 of 2 records)"]


def test_scores_from_the_source_tree_instead_of_the_wheel_are_a_problem() -> None:
    r = _scores("3.9.18", "litert", "2.1.0", [0.5])
    r["runtime_file"] = "/work/main/runtime/edgefin_runtime/__init__.py"
    problems, _ = check_scores([r])
    assert problems == [
        "python 3.9.18 / litert: scored with /work/main/runtime/edgefin_runtime/__init__.py, not the wheel"
    ]


def test_check_reads_a_results_directory_and_flags_a_session_without_scores(tmp_path: Path) -> None:
    (tmp_path / "junit-3.9-litert.xml").write_text(JUNIT.format(skip=SKIP, three=""))
    (tmp_path / "junit-3.9-onnx.xml").write_text(JUNIT.format(skip="", three=""))
    (tmp_path / "scores-3.9-litert.json").write_text(json.dumps(_scores("3.9.18", "litert", "2.1.0", [0.5])))
    problems, summary = check(tmp_path)
    assert problems == [f"2 one-engine test reports but 1 score files in {tmp_path}"]
    assert "python 3.9 / litert: 2 passed" in summary
    (tmp_path / "scores-3.9-onnx.json").write_text(json.dumps(_scores("3.9.18", "onnx", "1.19.2", [0.5])))
    assert check(tmp_path)[0] == []
