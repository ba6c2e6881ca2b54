"""Converted bundles carry an acceptance set of synthetic records: no record (acceptance or golden)
equals any row of the data, on the bundled credit data and on a synthetic table; every fresh bundle
passes verify on the machine that built it; an engine shifted by 0.02 near the threshold fails it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgefin_converters.acceptance import equal_rows
from edgefin_runtime.manifest import Manifest

from edgefin.convert import ConvertOptions, convert_run
from tests.converters.util import FIXTURE_FLIP_RATE, manifest_of, split_columns

REPO = Path(__file__).resolve().parents[2]
CREDIT = REPO / "edgefin" / "datasets" / "credit_scoring.csv"
VARIANTS = "tflite-fp32,tflite-int8-ptq,onnx-int8"


def _all_rows(csv: Path, manifest: Manifest) -> dict[str, np.ndarray]:
    """Every row of the data file (train, validation and test alike) as typed columns."""
    from edgefin.data.io import read_table
    from edgefin.data.schema import to_columns

    return to_columns(read_table(csv), manifest.schema, str(csv))


def _records(m: Manifest) -> list[dict]:
    return [*m.acceptance.records, *(g.record for g in m.golden)]  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def loans_bundles(run_dir, tmp_path_factory):
    return convert_run(
        run_dir,
        ConvertOptions(variants=VARIANTS, max_flip_rate=FIXTURE_FLIP_RATE, out=tmp_path_factory.mktemp("acc-loans")),
    )


@pytest.fixture(scope="module")
def credit_bundles(tmp_path_factory):
    """A small model trained on the bundled credit data, converted (two variants)."""
    from edgefin.train import train

    run = tmp_path_factory.mktemp("acc-credit") / "run"
    train(CREDIT, run, target="Status", positive="bad", hidden=(16,), epochs=8, patience=4, seed=5, bins="0")
    return convert_run(
        run,
        ConvertOptions(variants="tflite-fp32,tflite-int8-ptq", max_flip_rate=FIXTURE_FLIP_RATE, out=run / "bundles"),
    )


def test_no_credit_bundle_contains_a_data_row(credit_bundles):
    from edgefin_runtime.bundle import read_bundle

    for name, path in credit_bundles.bundles.items():
        m = read_bundle(path).manifest
        rows = _all_rows(CREDIT, m)
        assert len(next(iter(rows.values()))) == 4454
        assert m.acceptance is not None and len(m.acceptance.records) == 128
        assert equal_rows(_records(m), m.schema, [rows]) == 0, name
        # the check is not vacuous: a data row put into the same comparison is found
        first = {k: (None if (isinstance(v[0], float) and np.isnan(v[0])) else v[0]) for k, v in rows.items()}
        assert equal_rows([first], m.schema, [rows]) == 1


def test_no_loans_bundle_contains_a_data_row(loans_bundles, loans_csv):
    from edgefin_runtime.bundle import read_bundle

    for name, path in loans_bundles.bundles.items():
        m = read_bundle(path).manifest
        assert equal_rows(_records(m), m.schema, [_all_rows(loans_csv, m)]) == 0, name


def test_schema_ranges_are_rounded_robust_quantiles_not_the_extremes(credit_bundles):
    from edgefin_runtime.bundle import read_bundle

    m = read_bundle(credit_bundles.bundles["tflite-fp32"]).manifest
    rows = _all_rows(CREDIT, m)
    train, _ = split_columns(credit_bundles.out_dir.parent, "train")  # ranges are fitted on the training split
    for f in m.schema.fields:
        if f.kind != "numeric":
            continue
        v = train[f.name][~np.isnan(train[f.name])]
        assert float(f"{f.min:.2g}") == f.min and float(f"{f.max:.2g}") == f.max  # 2 significant digits
        assert f.min <= np.quantile(v, 0.005) and f.max >= np.quantile(v, 0.995) * (1 - 1e-12)
    income = m.schema.field("Income")
    assert income.max < np.nanmax(rows["Income"])  # the richest applicant's income is not published


def test_goldens_are_a_synthetic_subset_of_the_acceptance_set(loans_bundles):
    for path in loans_bundles.bundles.values():
        d = manifest_of(path)
        rows = [dict(zip(d["acceptance"]["fields"], r)) for r in d["acceptance"]["records"]]
        assert 6 <= len(d["golden"]) <= 8
        for g in d["golden"]:
            i = rows.index(g["record"])
            assert d["acceptance"]["scores"][i] == g["score"]
        kinds = d["acceptance"]["kinds"]
        assert kinds.count("near") == 64 and kinds.count("edge") > 0


def test_fresh_bundles_pass_verify_on_the_build_machine(loans_bundles):
    from edgefin_runtime.cli import main

    for path in loans_bundles.bundles.values():
        assert main(["verify", str(path), "--json"]) == 0


@pytest.mark.parametrize("name", VARIANTS.split(","))
def test_an_engine_shifted_by_002_near_the_threshold_fails_verify(loans_bundles, name, capsys):
    """(b) of the gate: 0.02 near the threshold exceeds every variant's tolerance (at most 0.01), and the
    near-threshold records put that shift in front of the gate; (c) noise within the tolerance passes."""
    import edgefin_runtime
    from edgefin_runtime import acceptance

    from tests.fixtures.engines import perturbed

    pred = edgefin_runtime.load(loans_bundles.bundles[name])
    tol = pred.info.golden_tolerance
    assert tol < 0.02
    rep = acceptance.check(perturbed(pred, shift=0.02, window=0.05))
    assert not rep.passed
    assert rep.build.paths["single"].max_abs_delta > tol and rep.build.paths["batch"].max_abs_delta > tol
    assert rep.build.flips > 0
    print(
        json.dumps(
            {
                "variant": name,
                "tolerance": tol,
                "max_abs_delta": rep.build.max_abs_delta,
                "flips": rep.build.flips,
                "source_flips": rep.source.flips,
            }
        )
    )
    assert acceptance.check(perturbed(pred, shift=0.0, noise=0.9 * tol)).passed
