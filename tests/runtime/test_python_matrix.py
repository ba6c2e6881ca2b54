"""The Python matrix's final check (tests/runtime/python_matrix.py, run by noxfile.py's matrix_check):
it must fail on a failed test, on a test no engine session of a Python passed, and on scores that differ
between Pythons for one engine version; and pass when everything agrees."""

from __future__ import annotations

import json
from pathlib import Path

from tests.runtime.python_matrix import check, check_scores, check_tests, junit_outcomes

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
    assert check_tests(runs) == ["python 3.13: t::b passed in no engine session (skipped in every one)"]
    runs[("3.13", "onnx")]["t::b"] = "failed"
    assert check_tests(runs) == ["python 3.13 / onnx: t::b failed"]


def test_a_test_each_one_engine_session_skipped_for_the_other_engine_is_named_not_hidden() -> None:
    runs = {
        ("3.9", "litert"): {"t::a": "passed", "t::both": "skipped-engine", "t::serve": "skipped-extra"},
        ("3.9", "onnx"): {"t::a": "passed", "t::both": "skipped-engine", "t::serve": "skipped-extra"},
    }
    notes: list[str] = []
    assert check_tests(runs, notes) == []
    assert notes == [
        "python 3.9: needs both engines in one process, not run here: t::both",
        "python 3.9: needs the serve extra (uvicorn), not run here: t::serve",
    ]
    # one engine session only (the other failed before its tests): nothing excuses the skip
    del runs[("3.9", "onnx")]
    assert check_tests(runs) == ["python 3.9: t::both passed in no engine session (skipped in every one)"]
    # skipped for another reason in one of the sessions: still a problem
    runs[("3.9", "onnx")] = {"t::a": "passed", "t::both": "skipped", "t::serve": "skipped-extra"}
    assert check_tests(runs) == ["python 3.9: t::both passed in no engine session (skipped in every one)"]


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
    assert problems == [f"2 test reports but 1 score files in {tmp_path}"]
    assert "python 3.9 / litert: 2 passed" in summary
    (tmp_path / "scores-3.9-onnx.json").write_text(json.dumps(_scores("3.9.18", "onnx", "1.19.2", [0.5])))
    assert check(tmp_path)[0] == []
