"""Importing the runtime, loading a bundle and scoring never imports TensorFlow, pandas or pyarrow."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys
import edgefin_runtime
p = edgefin_runtime.load(sys.argv[1])
rec = {"Income": 120.0, "Age": 35, "Home": "rent", "Job": "fixed"}
s = p.score(rec)
b = p.score_batch([rec, {"Age": "x"}])
c = p.score_columns({k: [v, v] for k, v in rec.items()})
print(json.dumps({"p": s.probability, "batch": [r.status for r in b], "cols": c.probabilities.tolist(),
                  "loaded": sorted(m for m in ("tensorflow", "tf_keras", "keras", "pandas", "pyarrow", "edgefin",
                                               "click", "rich") if m in sys.modules)}))
"""


@pytest.mark.parametrize("which", ["tflite-int8", "onnx-fp32"])
def test_no_heavy_imports_when_scoring(tiny_bundles, which) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_bundles[which])], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []  # not TensorFlow, not pandas/pyarrow, not the toolkit or its CLI libraries
    assert out["batch"] == ["scored", "rejected"]
    assert out["cols"] == [out["p"], out["p"]]


def test_cli_help_imports_no_engine() -> None:
    code = (
        "import sys, edgefin_runtime.cli as c\n"
        "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'ai_edge_litert', 'tensorflow') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "['numpy']"  # numpy only: engines load with a bundle


EXPLAIN_SCRIPT = r"""
import json, sys
import edgefin_runtime
from edgefin_runtime.drift import DriftMonitor
p = edgefin_runtime.load(sys.argv[1])
rec = {"Income": 20.0, "Age": 23, "Home": "rent", "Job": "partime"}
e = p.explain(rec)
b = p.score_batch([rec, {"Age": "x"}], reasons=True)
m = DriftMonitor(p)
m.observe([rec, rec])
m.observe_record(rec, e.score.probability)
r = m.report()
print(json.dumps({"reasons": [x.field for x in e.reasons], "batch": [x.status for x in b], "n": r.n,
                  "loaded": sorted(m for m in ("tensorflow", "tf_keras", "keras", "pandas", "pyarrow", "edgefin",
                                               "edgefin_converters", "click", "rich", "scipy") if m in sys.modules)}))
"""


def test_explain_and_drift_import_nothing_heavy(tiny_bundles, tmp_path) -> None:
    from explain_fixtures import with_sections

    path = with_sections(tiny_bundles["tflite-int8"], tmp_path / "e.efb")
    proc = subprocess.run(
        [sys.executable, "-c", EXPLAIN_SCRIPT, str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []  # reason codes and drift run without TensorFlow, pandas, scipy or the toolkit
    assert out["batch"] == ["scored", "rejected"] and out["n"] == 3 and out["reasons"]
