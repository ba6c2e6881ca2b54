"""The probe script and its launcher: output parsing, typed load errors, a process that dies."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from edgefin.targets import get_target, launch
from edgefin.targets.errors import ProbeError


def _good() -> dict:
    return {
        "probe": 1,
        "platform": {},
        "bundles": {
            "b": {
                "loaded": True,
                "sets": {
                    "ref:b": {"single": [0.1, None], "batch": [0.1, 0.2]},
                    "test": {"error": {"type": "X", "message": "m"}},
                },
            }
        },
    }


def test_check_output_accepts_the_documented_shape() -> None:
    assert launch.check_output(_good(), "native")["bundles"]["b"]["loaded"]


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update(probe=2), "version-1"),
        (lambda d: d.pop("bundles"), "'bundles'"),
        (lambda d: d["bundles"]["b"].pop("loaded"), "lacks 'loaded'"),
        (lambda d: d["bundles"]["b"]["sets"]["ref:b"].update(batch="0.1"), "batch path"),
        (lambda d: d["bundles"]["b"]["sets"]["ref:b"].update(single=[0.1, "x"]), "single path"),
    ],
)
def test_check_output_names_what_is_wrong(mutate, match) -> None:
    d = _good()
    mutate(d)
    with pytest.raises(ProbeError, match=match):
        launch.check_output(d, "x86-64-v2")


def test_died_says_which_signal() -> None:
    assert "SIGILL" in launch.ProbeRun("t", None, -signal.SIGILL, 1.0).died
    assert "exited with code 1" in launch.ProbeRun("t", None, 1, 1.0).died
    assert launch.ProbeRun("t", {"probe": 1}, 0, 1.0).died is None


def test_a_probe_killed_by_sigill_yields_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, signal, sys\nprint('@@probe x (1/1)', file=sys.stderr, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGILL)\n"
    )
    monkeypatch.setattr(launch, "PROBE", script)
    lines: list[str] = []
    run = launch.run_probe(get_target("native"), {"sets": {}, "bundles": []}, on_line=lines.append)
    assert run.output is None and run.returncode == -signal.SIGILL and "SIGILL" in run.died
    assert lines == ["x (1/1)"]


def test_probe_scores_a_real_bundle_and_reports_a_damaged_one(tiny_dir: Path, tmp_path: Path) -> None:
    import edgefin_runtime

    good = tiny_dir / "tiny-onnx-fp32.efb"
    bad = tmp_path / "damaged.efb"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    pred = edgefin_runtime.load(good)
    records = [dict(g.record) for g in pred.info.golden] + [{"Income": "lots"}]
    job = {
        "sets": {"r": records},
        "bundles": [
            {"name": "good", "path": str(good), "sets": ["r"]},
            {"name": "bad", "path": str(bad), "sets": ["r"]},
        ],
    }
    run = launch.run_probe(get_target("native"), job)
    assert run.output is not None, run.stderr_tail
    g = run.output["bundles"]["good"]
    assert g["loaded"] and g["bundle_sha256"] == pred.bundle_sha256 and g["self_test"]["golden"] >= 1
    r = g["sets"]["r"]
    assert r["single"][:-1] == [pred.score(rec).probability for rec in records[:-1]]
    assert r["single"][-1] is None and r["batch"][-1] is None and r["rejected"] == 1
    assert "lots" not in str(r)  # no record value in the output
    b = run.output["bundles"]["bad"]
    assert not b["loaded"] and b["error"]["type"] in {"IntegrityError", "BundleFormatError"}
    assert run.output["platform"]["machine"]
