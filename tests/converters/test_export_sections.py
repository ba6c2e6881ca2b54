"""Every bundle `edgefin convert` writes carries the explain and drift sections (and the model card):
one reference applicant for all variants, drift bins of each variant's own scores, protected fields
and reason texts as given, and the bundle explains itself on the device."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import edgefin_runtime
from edgefin_runtime.drift import DriftMonitor

from edgefin.convert import ConvertOptions, convert_run
from edgefin.errors import UsageError
from tests.converters.util import FIXTURE_FLIP_RATE

VARIANTS = "tflite-fp32,tflite-int8,onnx-fp32"


@pytest.fixture(scope="module")
def converted(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    reasons = tmp_path_factory.mktemp("reasons") / "r.toml"
    reasons.write_text('[income]\nlower = "Income too low"\n[region]\ncategory = "Region: {value}"\n', encoding="utf-8")
    opts = ConvertOptions(
        variants=VARIANTS,
        max_flip_rate=FIXTURE_FLIP_RATE,
        out=tmp_path_factory.mktemp("bundles"),
        protected=("age",),
        reasons=str(reasons),
    )
    res = convert_run(run_dir, opts)
    return {name: edgefin_runtime.load(str(path)) for name, path in res.bundles.items()}


def test_sections_in_every_bundle(converted: dict[str, object]) -> None:
    refs = set()
    for name, pred in converted.items():
        m = pred.info  # type: ignore[attr-defined]
        assert m.explain is not None and m.drift is not None and m.model_card is not None, name
        assert m.explain["protected"] == ["age"]
        assert m.explain["reasons"]["income"] == {"lower": "Income too low"}
        assert m.explain["reference"]["rows"] >= 30
        refs.add(tuple(sorted(m.explain["reference"]["record"].items())))
        assert set(m.drift["fields"]) == set(m.schema.names)
        assert math.isclose(sum(m.drift["score"]["shares"]), 1.0, abs_tol=1e-5)
    assert len(refs) == 1  # one reference applicant for every variant


def test_bundles_explain_and_monitor_on_the_device(converted: dict[str, object], run_dir: Path) -> None:
    import pandas as pd

    test = pd.read_parquet(run_dir / "data" / "test.parquet")
    for name, pred in converted.items():
        recs = test.drop(columns=["default"]).head(40).astype(object).where(test.notna(), None).to_dict("records")
        for rec in recs:
            e = pred.explain(rec, max_reasons=4)  # type: ignore[attr-defined]
            assert math.isclose(sum(e.contributions.values()), e.score.probability - e.reference_score, abs_tol=1e-9)
            assert "age" not in {r.field for r in e.reasons}
            for r in e.reasons:
                if r.field == "income" and r.direction == "lower":
                    assert r.text == "Income too low"
        mon = DriftMonitor(pred)
        mon.observe(test.drop(columns=["default"]))
        assert mon.report().n == len(test), name


def test_unknown_protected_field_is_refused(run_dir: Path, tmp_path: Path) -> None:
    from edgefin_converters.errors import ModelInputError

    opts = ConvertOptions(variants="tflite-fp32", out=tmp_path, protected=("gender",), max_flip_rate=FIXTURE_FLIP_RATE)
    with pytest.raises((ModelInputError, UsageError), match="gender"):
        convert_run(run_dir, opts)
