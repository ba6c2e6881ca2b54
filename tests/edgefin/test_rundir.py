"""RunDir lineage: the stages are read from what compress recorded, not guessed from the files present."""

from __future__ import annotations

import pytest

from edgefin import atomic
from edgefin.errors import RunDirError
from edgefin.rundir import RunDir


def run_with(tmp_path, models, record=None):
    rd = RunDir.at(tmp_path / "run")
    for stage in models:
        rd.model_path(stage).parent.mkdir(parents=True, exist_ok=True)
        rd.model_path(stage).write_bytes(b"stands in for a model")
    if record is not None:
        stages, final = record
        atomic.write_json(rd.compress_json, {"stages": {s: {} for s in stages}, "final_stage": final})
    return rd


@pytest.mark.parametrize(
    "stages, latest, qat_float",
    [
        (("dense", "pruned"), "pruned", "pruned"),
        (("dense", "pruned", "qat"), "qat", "pruned"),
        (("dense", "pruned", "clustered"), "clustered", "pruned"),
        (("dense", "pruned", "clustered", "qat"), "qat", "pruned"),
    ],
)
def test_stages_come_from_compress_json(tmp_path, stages, latest, qat_float):
    rd = run_with(tmp_path, stages, (stages, stages[-1]))
    assert rd.compressed_stages() == stages  # in pipeline order although the file's keys are sorted
    assert rd.latest_stage() == latest and rd.qat_float_stage() == qat_float


def test_the_record_wins_over_files_it_does_not_name(tmp_path):
    """A qat.keras that compress did not record (left behind, copied in) is not taken for the run's stage."""
    rd = run_with(tmp_path, ("dense", "pruned", "qat"), (("dense", "pruned"), "pruned"))
    assert rd.latest_stage() == "pruned"
    rd = run_with(tmp_path, ("dense", "qat"), (("dense", "qat"), "qat"))
    assert rd.qat_float_stage() == "dense"  # recorded without a pruned stage


@pytest.mark.parametrize(
    "models, latest, qat_float",
    [
        (("dense",), "dense", "dense"),
        (("dense", "pruned"), "pruned", "pruned"),
        (("dense", "qat"), "qat", "dense"),
        (("dense", "pruned", "qat"), "qat", "pruned"),
    ],
)
def test_without_a_record_the_model_files_decide(tmp_path, models, latest, qat_float):
    """Trained or imported runs, and compressions that did not finish, have no compress.json."""
    rd = run_with(tmp_path, models)
    assert rd.compressed_stages() is None
    assert rd.latest_stage() == latest and rd.qat_float_stage() == qat_float


def test_no_model_at_all(tmp_path):
    with pytest.raises(RunDirError, match="no model found under models/"):
        run_with(tmp_path, ()).latest_stage()


@pytest.mark.parametrize(
    "doc",
    [
        {"final_stage": "qat"},
        {"stages": {"dense": {}, "pruned": {}}, "final_stage": "qat"},
        {"stages": {"dense": {}, "mystery": {}}, "final_stage": "mystery"},
        {"stages": [], "final_stage": "dense"},
        ["dense"],
    ],
)
def test_a_record_without_valid_stages_is_a_clear_error(tmp_path, doc):
    rd = run_with(tmp_path, ("dense", "pruned"))
    atomic.write_json(rd.compress_json, doc)
    with pytest.raises(RunDirError, match=r"compress\.json does not record its stages.*re-run 'edgefin compress'"):
        rd.latest_stage()
