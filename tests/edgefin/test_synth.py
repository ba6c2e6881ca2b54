"""edgefin synth: rows drawn from a run's statistics (marginals, missing shares, correlations), never
its rows; a chosen share of bad rows of the kinds a typed Parquet column can hold; streamed parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from edgefin_runtime.manifest import FieldSpec, Schema

from edgefin.cli.main import cli
from edgefin.data.schema import schema_to_dict
from edgefin.errors import UsageError
from edgefin.synth import synthesize

SCHEMA = Schema(
    fields=(
        FieldSpec("Income", "numeric", allow_missing=True, min=0.0, max=300.0, missing_share=0.1),
        FieldSpec("Age", "numeric", allow_missing=False, min=18.0, max=75.0),
        FieldSpec("Home", "categorical", allow_missing=False, categories=("owner", "rent", "parents")),
        FieldSpec("Job", "categorical", allow_missing=True, categories=("fixed", "freelance"), missing_share=0.05),
    ),
    target="Status",
    positive_label="bad",
    negative_label="good",
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory with only what synth reads: data/schema.json and data/train.parquet."""
    root = tmp_path_factory.mktemp("run")
    (root / "data").mkdir()
    (root / "data" / "schema.json").write_text(json.dumps(schema_to_dict(SCHEMA)))
    rng = np.random.default_rng(3)
    n = 4000
    age = rng.integers(18, 76, n).astype(float)  # whole numbers
    income = np.clip(20 + 3.0 * age + rng.normal(0, 25, n), 0, None)  # correlated with age
    income[rng.random(n) < 0.1] = np.nan
    home = rng.choice(["owner", "rent", "parents"], n, p=[0.6, 0.3, 0.1])
    job = rng.choice(np.array(["fixed", "freelance", None], dtype=object), n, p=[0.7, 0.25, 0.05])
    status = rng.choice(["bad", "good"], n)
    pd.DataFrame({"Income": income, "Age": age, "Home": home, "Job": job, "Status": status}).to_parquet(
        root / "data" / "train.parquet"
    )
    return root


@pytest.fixture(scope="module")
def synth_out(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("synth") / "rows"
    result = synthesize(run_dir, 60_000, out, bad_share=0.04, seed=5, part_rows=25_000, chunk_rows=10_000)
    return out, result


def test_parts_ids_and_counts(synth_out: tuple[Path, object]) -> None:
    out, result = synth_out
    parts = sorted(out.glob("part-*.parquet"))
    assert [len(pd.read_parquet(p)) for p in parts] == [25_000, 25_000, 10_000]
    rows = pd.read_parquet(out)
    assert list(rows.columns) == ["id", "Income", "Age", "Home", "Job"]
    assert rows["id"].tolist() == list(range(60_000))
    meta = json.loads((out / "_synth.json").read_text())
    assert meta["rows"] == 60_000 and meta["parts"] == 3 and meta["bad_rows"] == result.bad_rows  # type: ignore[attr-defined]
    assert set(meta["bad_by_kind"]) == {"missing_required", "non_finite", "out_of_range", "unseen_category"}


def test_bad_rows_are_the_share_asked_and_of_the_kinds_counted(synth_out: tuple[Path, object]) -> None:
    out, _ = synth_out
    rows = pd.read_parquet(out)
    kinds = json.loads((out / "_synth.json").read_text())["bad_by_kind"]
    assert 0.03 < sum(kinds.values()) / len(rows) < 0.05
    assert all(n > 300 for n in kinds.values())
    # required fields (Age, Home) are null only in missing_required rows
    assert int((rows["Age"].isna() | rows["Home"].isna()).sum()) == kinds["missing_required"]
    numeric = rows[["Income", "Age"]].to_numpy()
    assert int(np.isinf(numeric).any(axis=1).sum()) == kinds["non_finite"]
    far = np.isfinite(numeric) & (numeric > np.array([2000.0, 500.0]))  # 10x the training range beyond its top
    assert int(far.any(axis=1).sum()) == kinds["out_of_range"]
    assert int(((rows["Home"] == "zz-unseen") | (rows["Job"] == "zz-unseen")).sum()) == kinds["unseen_category"]


def test_good_rows_follow_the_training_statistics(run_dir: Path, synth_out: tuple[Path, object]) -> None:
    out, _ = synth_out
    train = pd.read_parquet(run_dir / "data" / "train.parquet")
    rows = pd.read_parquet(out)
    good = rows[np.isfinite(rows["Age"]) & (rows["Age"] < 1000) & rows["Home"].isin(["owner", "rent", "parents"])]
    good = good[~(good["Income"] > 1000) & ~np.isinf(good["Income"])]
    assert (good["Age"] == good["Age"].round()).all()  # whole numbers stay whole
    for q in (0.1, 0.5, 0.9):
        assert abs(good["Age"].quantile(q) - train["Age"].quantile(q)) <= 2.0
        assert abs(good["Income"].quantile(q) - train["Income"].quantile(q)) <= 0.05 * train["Income"].quantile(0.9)
    want = train["Home"].value_counts(normalize=True)
    got = good["Home"].value_counts(normalize=True)
    assert all(abs(got[c] - want[c]) < 0.02 for c in want.index)
    assert abs(good["Income"].isna().mean() - 0.1) < 0.01  # the schema's missing share
    assert abs(good["Job"].isna().mean() - 0.05) < 0.01
    rho_train = train[["Income", "Age"]].corr(method="spearman").iloc[0, 1]
    rho = good[["Income", "Age"]].corr(method="spearman").iloc[0, 1]
    assert rho_train > 0.6 and abs(rho - rho_train) < 0.1  # the copula keeps the dependence


def test_no_training_row_is_copied(run_dir: Path, synth_out: tuple[Path, object]) -> None:
    out, _ = synth_out
    train = pd.read_parquet(run_dir / "data" / "train.parquet").drop(columns=["Status"])
    rows = pd.read_parquet(out).drop(columns=["id"])
    merged = rows.dropna().merge(train.dropna(), how="inner", on=list(train.columns))
    assert len(merged) == 0


def test_same_seed_same_rows_other_seed_other_rows(run_dir: Path, tmp_path: Path) -> None:
    a = pd.read_parquet(synthesize(run_dir, 3000, tmp_path / "a", seed=1).out)
    b = pd.read_parquet(synthesize(run_dir, 3000, tmp_path / "b", seed=1).out)
    c = pd.read_parquet(synthesize(run_dir, 3000, tmp_path / "c", seed=2).out)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_errors_name_the_problem(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="between 0 and 1"):
        synthesize(run_dir, 10, tmp_path / "x", bad_share=1.5)
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not an empty directory"):
        synthesize(run_dir, 10, used)
    assert (used / "keep.txt").read_text() == "mine"


def test_cli(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    res = CliRunner().invoke(cli, ["synth", str(run_dir), "--rows", "500", "--out", str(out), "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] == 500
    assert len(pd.read_parquet(out)) == 500
    res = CliRunner().invoke(
        cli, ["synth", str(run_dir), "--rows", "5", "--out", str(tmp_path / "y"), "--bad-share", "2"]
    )
    assert res.exit_code == 2
    res = CliRunner().invoke(cli, ["synth", str(tmp_path / "nowhere"), "--rows", "5", "--out", str(tmp_path / "z")])
    assert res.exit_code == 2
