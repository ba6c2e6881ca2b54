"""A tiny but real run directory for the bench and report tests: ``python -m tests.edgefin.bench_rundir OUT``.

Trains a small dense model with the real ``edgefin.train`` on a few hundred synthetic rows, then
converts it to tflite-fp32, tflite-int8 and onnx-fp32 bundles with the runtime engineer's fixture
helpers (tests/fixtures/bundles.py) using the run's own schema and preprocessing, and writes a
bundles/parity.json. TensorFlow runs only in this subprocess, never in the pytest process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

VARIANTS = ("tflite-fp32", "tflite-int8", "onnx-fp32")


def synthetic_csv(path: Path, n: int = 500, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    income = rng.gamma(4.0, 30.0, n).round(1)
    age = rng.integers(18, 75, n)
    home = rng.choice(["owner", "rent", "parents"], n, p=[0.5, 0.35, 0.15])
    logit = -0.02 * (income - 120) - 0.03 * (age - 45) + 0.9 * (home == "rent")
    bad = rng.random(n) < 1 / (1 + np.exp(-logit))
    lines = ["Status,Income,Age,Home"]
    for i in range(n):
        inc = "" if i % 37 == 0 else f"{income[i]}"
        lines.append(f"{'bad' if bad[i] else 'good'},{inc},{age[i]},{home[i]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build(out: Path) -> Path:
    from edgefin_runtime.manifest import PreprocessSpec
    from edgefin_runtime.preprocess import Preprocessor

    from edgefin.atomic import write_bytes, write_json
    from edgefin.data.schema import schema_from_dict
    from edgefin.keras_io import load_model
    from edgefin.rundir import RunDir
    from edgefin.train import train
    from tests.fixtures import bundles as fx

    out.mkdir(parents=True, exist_ok=True)
    csv = synthetic_csv(out.parent / f"{out.name}-data.csv")
    train(csv, out, target="Status", positive="bad", hidden=(8,), epochs=4, patience=2, seed=1)
    rd = RunDir.at(out)
    schema = schema_from_dict(json.loads(rd.schema_json.read_text()))
    spec = PreprocessSpec.from_dict(json.loads(rd.preprocess_json.read_text()))
    threshold = float(json.loads(rd.metrics_json.read_text())["threshold"])
    model = load_model(rd.model_path("dense"))
    from edgefin.data.io import read_table
    from edgefin.data.schema import to_columns

    frame = read_table(rd.split_path("train"))
    x = Preprocessor(schema, spec).transform_columns(to_columns(frame, schema, "train"))
    golden = [
        {k: (None if v != v else v) for k, v in rec.items() if k != "Status"}
        for rec in frame.head(3).to_dict("records")
    ]
    parity = {"variants": {}}
    for v in VARIANTS:
        data, manifest = fx.make_bundle(
            schema, spec, v, fx.convert(model, v, x), threshold=threshold, golden_records=golden, tolerance=1e-5
        )
        write_bytes(rd.bundles_dir / f"{v}.efb", data)
        parity["variants"][v] = {"passed": True, "note": "fixture"}
    write_json(rd.parity_json, parity)
    return out


def _code_key() -> str:
    h = hashlib.sha256()
    for f in [
        Path(__file__),
        REPO / "tests" / "fixtures" / "bundles.py",
        REPO / "edgefin" / "train.py",
        REPO / "edgefin" / "model.py",
        *sorted((REPO / "edgefin" / "data").glob("*.py")),
        *sorted((REPO / "runtime" / "edgefin_runtime").rglob("*.py")),
    ]:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="session")
def bench_run_cached(request: pytest.FixtureRequest) -> Path:
    """The tiny run directory, built once per code version in a subprocess (TensorFlow stays out of pytest)."""
    d = Path(request.config.cache.mkdir(f"edgefin-bench-run-{_code_key()}")) / "run"
    if not (d / "bundles" / "parity.json").is_file():
        if d.exists():
            shutil.rmtree(d)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-m", "tests.edgefin.bench_rundir", str(d)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0:
            pytest.fail(f"building the bench run directory failed:\n{proc.stderr[-4000:]}")
    return d


@pytest.fixture()
def bench_run(bench_run_cached: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny run directory (tests may write reports into it)."""
    dst = tmp_path / "run"
    shutil.copytree(bench_run_cached, dst, ignore=shutil.ignore_patterns("report"))
    return dst


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
