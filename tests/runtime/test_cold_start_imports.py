"""The scoring path imports only what scoring needs (a device's cold start: process start to first score).

``import edgefin_runtime; load(bundle).score(record)`` in a fresh interpreter is compared with a bare
engine load of the same model: the modules the runtime adds must not include what was deferred to first
use (the hot-swap holder, signing, the CLI, rendering, acceptance checks, the columns encoder, zipfile,
pathlib, OpenSSL's hashlib...). Timing lives in benchmarks/runtime_bench.py, never here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

RUNTIME = r"""
import json, sys
import edgefin_runtime
p = edgefin_runtime.load(sys.argv[1])
s = p.score(json.loads(sys.argv[2]))
built = {
    "Result": "Result" in vars(sys.modules["edgefin_runtime.results"]),  # a namedtuple, built on first use
    "acceptance": type(vars(p.info)["acceptance"]).__name__,  # the set's member, parsed on first read
}
print(json.dumps({"p": s.probability, "modules": sorted(sys.modules), "built": built}))
"""

BARE = {
    "litert": r"""
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_content=open(sys.argv[1], "rb").read(), num_threads=1)
it.allocate_tensors()
it.invoke()
print(json.dumps({"modules": sorted(sys.modules)}))
""",
    "onnx": r"""
import json, sys
import numpy as np
import onnxruntime as ort
s = ort.InferenceSession(open(sys.argv[1], "rb").read(), providers=["CPUExecutionProvider"])
print(json.dumps({"modules": sorted(sys.modules)}))
""",
}

#: deferred to first use: never imported by load() + score()
DEFERRED = (
    "edgefin_runtime.holder",
    "edgefin_runtime.signing",
    "edgefin_runtime.cli",
    "edgefin_runtime.cli_io",
    "edgefin_runtime.render",
    "edgefin_runtime.acceptance",
    "edgefin_runtime.atomic",
    "edgefin_runtime.preprocess_columns",
    "cryptography",
    "pandas",
    "pyarrow",
    "zipfile",
    "pathlib",
    "hashlib",
    "_hashlib",
    "ipaddress",
    "urllib.parse",
    "shutil",
    "bz2",
    "lzma",
    "tempfile",
    "inspect",
    "platform",
    "datetime",
    "tensorflow",
)


#: the standard-library modules the scoring path may add over a bare engine (dataclasses for the manifest
#: types, threading for per-thread engine state, json/zlib/bisect/array for parsing and encoding...)
_ALLOWED_STDLIB = frozenset(
    {
        "__future__",
        "_bisect",
        "_json",
        "_sha256",
        "_sha2",
        "array",
        "bisect",
        "copy",
        "dataclasses",
        "gc",  # built in: the collector is paused while the package imports and a bundle loads
        "json",
        "json.decoder",
        "json.encoder",
        "json.scanner",
        "threading",
        "zlib",
        "reprlib",
        "_weakrefset",
    }
)


def _run(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("which", ["tflite-int8", "onnx-fp32"])
def test_scoring_path_imports_nothing_deferred(tiny_bundles, tmp_path: Path, which: str) -> None:
    bundle = tiny_bundles[which]
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        model = tmp_path / manifest["model"]["file"]
        model.write_bytes(zf.read(manifest["model"]["file"]))
    record = manifest["golden"][0]["record"]
    runtime = _run(RUNTIME, str(bundle), json.dumps(record))
    bare = _run(BARE[manifest["model"]["engine"]], str(model))
    assert abs(runtime["p"] - manifest["golden"][0]["score"]) <= manifest.get("golden_tolerance", 1e-6)
    added = set(runtime["modules"]) - set(bare["modules"])
    assert "edgefin_runtime.predictor" in added  # the comparison sees the runtime's own modules
    assert runtime["built"] == {"Result": False, "acceptance": "DeferredAcceptance"}
    assert sorted(m for m in DEFERRED if m in added) == []
    unexpected = sorted(m for m in added if m.split(".")[0] != "edgefin_runtime" and m not in _ALLOWED_STDLIB)
    assert unexpected == [], f"modules the scoring path adds over a bare {manifest['model']['engine']} load"


def test_lazy_public_names_still_import() -> None:
    code = (
        "import sys, edgefin_runtime as e\n"
        "before = 'edgefin_runtime.holder' in sys.modules\n"
        "from edgefin_runtime import ModelHolder, ModelInfo, Served, SwapReport, Result\n"
        "print(before, ModelHolder.__module__, e.SwapReport is SwapReport, 'ModelHolder' in dir(e),\n"
        "      Result.__module__, e.Result is Result, 'Result' in dir(e), Result(0, 'scored').ok)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "False",
        "edgefin_runtime.holder",
        "True",
        "True",
        "edgefin_runtime.results",
        "True",
        "True",
        "True",
    ]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import edgefin_runtime

        edgefin_runtime.nope  # noqa: B018


def test_a_pickled_result_loads_in_a_process_that_never_built_the_class() -> None:
    """Result is built on first use (results.py); unpickling must build it too, as the same class."""
    from edgefin_runtime import Result

    blob = __import__("pickle").dumps([Result(3, "rejected"), Result(4, "scored", None)])
    code = (
        "import pickle, sys\n"
        "rows = pickle.loads(bytes.fromhex(sys.argv[1]))\n"
        "import edgefin_runtime\n"
        "print(rows[0].row, rows[0].ok, rows[1].ok, type(rows[0]) is edgefin_runtime.Result)"
    )
    proc = subprocess.run([sys.executable, "-c", code, blob.hex()], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["3", "False", "True", "True"]
