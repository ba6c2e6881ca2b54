"""Fixtures for the converter tests: a tiny real run directory (dense, and a copy with a QAT model).

The run is trained by the real ``edgefin.train`` on synthetic loans (a 16-unit model, 30 epochs,
test AUC about 0.8) so the converters see exactly the layout every other step writes; the QAT model
is made with TFMOT's ``quantize_model`` and saved with ``edgefin.keras_io`` as compress does.
TensorFlow is imported in this process: converting is what these tests are about.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.tabular import loans, write_csv

ROWS = 2000  # a 400-row test split


@pytest.fixture(scope="session")
def loans_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(loans(ROWS, seed=11), tmp_path_factory.mktemp("conv-data") / "loans.csv")


@pytest.fixture(scope="session")
def run_dir(loans_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained run directory with models/dense.keras only."""
    from edgefin.train import train

    out = tmp_path_factory.mktemp("conv-runs") / "dense"
    train(loans_csv, out, target="default", positive="yes", hidden=(16,), epochs=30, patience=10, seed=3)
    return out


@pytest.fixture(scope="session")
def qat_run_dir(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run plus a quantisation-aware models/qat.keras fine-tuned from the dense model."""
    from edgefin.data.rundata import encoded_split
    from edgefin.keras_io import load_model, save_model
    from edgefin.rundir import RunDir
    from edgefin.tfcompat import seed_everything
    from edgefin.tfmot_compat import tfmot

    out = tmp_path_factory.mktemp("conv-runs") / "qat"
    shutil.copytree(run_dir, out)
    run = RunDir.at(out)
    seed_everything(3)
    dense = load_model(run.model_path("dense"))
    qat = tfmot.quantization.keras.quantize_model(dense)
    qat.compile(optimizer="adam", loss="binary_crossentropy")
    x, y = encoded_split(run, "train")
    qat.fit(x, y.astype("float32"), epochs=2, batch_size=64, verbose=0)
    save_model(qat, run.model_path("qat"))
    return out
