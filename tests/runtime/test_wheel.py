"""The runtime's wheel is what a device installs: it holds only ``edgefin_runtime`` (no tests, no toolkit,
no converters), declares Python >= 3.9 and the engine floors, and, installed into a fresh venv (not the
source tree), loads and scores a bundle. The Python matrix (noxfile.py) does the same on every Python."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _uv() -> str:
    uv = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.fail("uv is needed to build the wheel (make bootstraps it into .tools/bin)")
    return uv


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [_uv(), "build", "--wheel", "--package", "edgefin-runtime", "--out-dir", str(out), "--quiet"],
        cwd=REPO,
        check=True,
        timeout=600,
    )
    (whl,) = out.glob("edgefin_runtime-*.whl")
    return whl


def test_the_wheel_holds_only_the_runtime(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    tops = {n.split("/")[0] for n in names}
    assert "edgefin_runtime" in tops and all(t == "edgefin_runtime" or t.endswith(".dist-info") for t in tops), tops
    assert "edgefin_runtime/py.typed" in names
    assert not [n for n in names if "/tests/" in n or n.startswith(("tests/", "edgefin/", "edgefin_converters/"))]
    assert "Requires-Python: >=3.9" in meta
    assert "ai-edge-litert>=2.1.0; extra == 'litert'" in meta and "onnxruntime>=1.19.2; extra == 'onnx'" in meta
    size = wheel.stat().st_size
    print(f"\n{wheel.name}: {size / 1024:.1f} KiB, {len(names)} files")
    assert size < 1024 * 1024, "the runtime wheel is code only: well under 1 MiB"


def test_the_installed_wheel_scores_a_bundle_in_a_fresh_venv(wheel: Path, tiny_bundles, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    uv = _uv()
    subprocess.run([uv, "venv", "--quiet", "-p", sys.executable, str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "-p", str(py), f"edgefin-runtime[onnx] @ {wheel.as_uri()}"],
        check=True,
        timeout=600,
    )
    bundle = tiny_bundles["onnx-fp32"]
    code = (
        "import json, sys, edgefin_runtime as e\n"
        "p = e.load(sys.argv[1])\n"
        "from edgefin_runtime.bundle import read_bundle\n"
        "g = read_bundle(sys.argv[1]).manifest.golden[0]\n"
        "print(json.dumps({'file': e.__file__, 'p': p.score(g.record).probability, 'want': g.score,"
        " 'modules': sorted(m for m in ('tensorflow', 'edgefin', 'edgefin_converters') if m in sys.modules)}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [str(py), "-c", code, str(bundle)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["file"].startswith(str(venv)), out["file"]  # the wheel's copy, not the source tree
    assert abs(out["p"] - out["want"]) <= 1e-6
    assert out["modules"] == []
