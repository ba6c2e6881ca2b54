"""edgefin_runtime.spark on a real local Spark session (local[2]): the same scores as one process, bit
for bit, on good and bad rows; the bundle loaded once per Python worker; the CLI's --engine spark.

Needs a Java runtime (``make`` installs Debian's openjdk-17-jre-headless as root when it can). Without
one the module is skipped with that reason - except in CI (CI set), where a missing Java fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scale_data

pytest.importorskip("pyspark", reason="edgefin-runtime[spark] (pyspark) is not installed")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    if os.environ.get("CI"):
        pytest.fail("Spark tests need Java: install openjdk-17-jre-headless (make does so as root)", pytrace=False)
    pytest.skip(
        "Spark needs a Java runtime and none is installed (run make as root: it installs openjdk-17-jre-headless)",
        allow_module_level=True,
    )

from edgefin_runtime import spark as efspark  # noqa: E402
from edgefin_runtime.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One local[2] session for the module (starting Spark costs 10-20 s); quiet logs, no UI."""
    from edgefin_runtime.cli_scale import spark_session

    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = spark_session("local[2]", app="edgefin-tests")
    session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "500")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return scale_data.frame(3000)


@pytest.fixture(scope="module")
def df(spark: Any, data: pd.DataFrame) -> Any:
    return spark.createDataFrame(data).repartition(6).cache()


@pytest.mark.parametrize("variant", ["tflite-int8", "onnx-fp32"])
@pytest.mark.parametrize("api", efspark.APIS)
def test_spark_scores_equal_one_process_row_for_row(
    spark: Any,
    df: Any,
    data: pd.DataFrame,
    tiny_bundles: dict[str, Path],
    predictors: dict[str, Any],
    variant: str,
    api: str,
) -> None:
    out = efspark.score(df, tiny_bundles[variant], api=api).toPandas()
    assert list(out.columns) == ["id", *efspark.output_schema(df, []).names]
    want = scale_data.expected(predictors[variant], data)
    assert want["rejected"].sum() > 100 and (~want["rejected"]).sum() > 1000  # both kinds are exercised
    assert {"MissingFieldError", "NonFiniteError"} <= set(want["error_type"].dropna())
    scale_data.assert_same(out, want)


def test_strict_policy_rejects_unseen_categories_like_one_process(
    df: Any, data: pd.DataFrame, tiny_bundles: dict[str, Path], predictors: dict[str, Any]
) -> None:
    out = efspark.score(df, tiny_bundles["tflite-int8"], policy="strict", key_columns=["id"]).toPandas()
    want = scale_data.expected(predictors["tflite-int8"].with_policy("strict"), data)
    assert "CategoryError" in set(want["error_type"].dropna())
    scale_data.assert_same(out, want)


def test_bundle_is_loaded_once_per_python_worker(spark: Any, df: Any, tiny_bundles: dict[str, Path]) -> None:
    """6 partitions in batches of 500 rows on 2 cores: many batches, at most one load per worker
    process (the broadcast bytes are read and self-tested once, then the cache answers)."""
    from edgefin_runtime.scale import bundle_bytes

    raw, _ = bundle_bytes(tiny_bundles["tflite-fp32"])
    m = efspark.ScoreMetrics(spark)
    n = efspark.score(df, raw, metrics=m).count()
    first = m.to_dict()
    assert n == 3000 and first["rows"] == 3000
    assert first["batches"] >= 6
    assert 1 <= first["loads"] <= 2, first  # local[2]: two reused Python workers at most
    m2 = efspark.ScoreMetrics(spark)
    efspark.score(df, raw, metrics=m2).count()
    assert m2.to_dict()["loads"] == 0, "a reused Python worker loaded the same bundle again"


def test_a_wrong_type_column_rejects_every_row_with_its_error(
    spark: Any, tiny_bundles: dict[str, Path], predictors: dict[str, Any]
) -> None:
    """A typed column cannot mix types; a numeric field stored as text is rejected row by row."""
    pdf = pd.DataFrame({"id": np.arange(4), "Income": [1.0] * 4, "Age": ["30", "x", "", "41"], "Home": ["rent"] * 4})
    pdf["Job"] = "fixed"
    out = efspark.score(spark.createDataFrame(pdf), tiny_bundles["tflite-int8"]).toPandas().sort_values("id")
    want = predictors["tflite-int8"].score_columns(pdf.drop(columns=["id"]).astype({"Age": object}))
    assert [type(e).__name__ for e in (want.errors.get(i) for i in range(4))] == out["error_type"].tolist()
    assert out["error_type"].notna().all()


def test_reasons_are_those_of_the_record_path(df: Any, data: pd.DataFrame, tiny_bundles: dict[str, Path]) -> None:
    import edgefin_runtime

    raw = scale_data.with_explain(tiny_bundles["tflite-int8"])
    out = efspark.score(df, raw, reasons=True, max_reasons=3).toPandas()
    assert out.columns[-1] == "reasons"
    p = edgefin_runtime.load(raw)
    scale_data.assert_same(out, scale_data.expected(p, data))
    scale_data.assert_same_reasons(out, scale_data.expected_reasons(p, data, 3))


def test_reasons_need_an_explain_section_checked_on_the_driver(df: Any, tiny_bundles: dict[str, Path]) -> None:
    from edgefin_runtime.errors import ManifestError

    with pytest.raises(ManifestError, match="no explain section"):
        efspark.score(df, tiny_bundles["tflite-int8"], reasons=True)


def test_a_bad_bundle_fails_on_the_driver_before_any_task(df: Any, tmp_path: Path) -> None:
    from edgefin_runtime.errors import BundleError

    bad = tmp_path / "bad.efb"
    bad.write_bytes(b"not a bundle")
    with pytest.raises(BundleError):
        efspark.score(df, bad)


def test_cli_engine_spark_writes_every_row_and_a_summary(
    spark: Any,
    data: pd.DataFrame,
    tiny_bundles: dict[str, Path],
    predictors: dict[str, Any],
    tmp_path: Path,
    capsys: Any,
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    data.iloc[:1700].to_parquet(src / "a.parquet")
    data.iloc[1700:].to_parquet(src / "b.parquet")
    out = tmp_path / "scores"
    code = main(["score", str(tiny_bundles["tflite-int8"]), str(src), "--engine", "spark", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    want = scale_data.expected(predictors["tflite-int8"], data)
    scale_data.assert_same(pd.read_parquet(out), want)
    import json

    summary = json.loads((out / "_summary.json").read_text())
    assert summary["rows_in"] == 3000 == summary["scored"] + summary["rejected"]
    assert summary["rejected"] == int(want["rejected"].sum())
    assert summary["rejected_by_type"] == want["error_type"].dropna().value_counts().to_dict()
    assert "3000 rows in" in capsys.readouterr().err
