"""edgefin_runtime.dask on a real LocalCluster (2 worker processes, 1 thread each), reached through its
scheduler address as a remote cluster would be: the same scores as one process, bit for bit, on good
and bad rows; the bundle loaded once per worker process; the CLI's --engine local and dask."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scale_data

dd = pytest.importorskip("dask.dataframe", reason="edgefin-runtime[dask] is not installed")
distributed = pytest.importorskip("dask.distributed", reason="edgefin-runtime[dask] is not installed")

from edgefin_runtime import dask as efdask  # noqa: E402
from edgefin_runtime.cli import main  # noqa: E402
from edgefin_runtime.scale import bundle_bytes, worker_loads  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    ) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    """A client that knows the cluster only by its scheduler address."""
    with distributed.Client(cluster.scheduler_address) as c:
        yield c


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return scale_data.frame(3000, seed=1)


@pytest.mark.parametrize("variant", ["tflite-int8", "onnx-fp32"])
def test_dask_scores_equal_one_process_row_for_row(
    client: Any, data: pd.DataFrame, tiny_bundles: dict[str, Path], predictors: dict[str, Any], variant: str
) -> None:
    ddf = dd.from_pandas(data, npartitions=7)
    scored = efdask.score(ddf, tiny_bundles[variant])
    assert list(scored.columns) == ["id", "score", "decision", "label", "flags", "error_type", "field", "error"]
    out = scored.compute()
    assert out.dtypes.to_dict() == scored._meta.dtypes.to_dict()  # the explicit meta is what partitions give
    want = scale_data.expected(predictors[variant], data)
    assert want["rejected"].sum() > 100 and {"MissingFieldError", "NonFiniteError"} <= set(want["error_type"].dropna())
    scale_data.assert_same(out, want)


def test_strict_policy_and_explicit_keys(
    client: Any, data: pd.DataFrame, tiny_bundles: dict[str, Path], predictors: dict[str, Any]
) -> None:
    ddf = dd.from_pandas(data, npartitions=4)
    out = efdask.score(ddf, tiny_bundles["tflite-int8"], policy="strict", key_columns=["id", "Home"]).compute()
    assert list(out.columns[:2]) == ["id", "Home"]
    scale_data.assert_same(out, scale_data.expected(predictors["tflite-int8"].with_policy("strict"), data))


def test_bundle_is_loaded_once_per_worker_process(
    client: Any, data: pd.DataFrame, tiny_bundles: dict[str, Path]
) -> None:
    raw, sha = bundle_bytes(tiny_bundles["tflite-fp32"])
    ddf = dd.from_pandas(data, npartitions=10)
    efdask.score(ddf, raw).compute()
    efdask.score(ddf, raw).compute()  # a second job: the workers' cache answers
    loads = client.run(worker_loads, sha)
    assert len(loads) == 2 and set(loads.values()) <= {0, 1} and sum(loads.values()) >= 1, loads


def test_mixed_types_in_an_object_column_are_rejected_row_by_row(
    client: Any, tiny_bundles: dict[str, Path], predictors: dict[str, Any]
) -> None:
    """pandas can hold a wrong type in one row (Parquet cannot): that row alone is rejected."""
    pdf = pd.DataFrame(
        {
            "id": np.arange(6),
            "Income": np.array([10.0, "12", True, None, 5, 7.5], dtype=object),
            "Age": [30.0] * 6,
            "Home": ["rent"] * 6,
            "Job": ["fixed"] * 6,
        }
    )
    import dask

    with dask.config.set({"dataframe.convert-string": False}):  # keep the object column as it is
        ddf = dd.from_pandas(pdf, npartitions=2, sort=False)
        out = efdask.score(ddf, tiny_bundles["tflite-int8"]).compute()
    want = scale_data.expected(predictors["tflite-int8"], pdf)
    assert want["error_type"].tolist()[1:3] == ["FieldTypeError", "FieldTypeError"]
    scale_data.assert_same(out, want)


def test_reasons_are_those_of_the_record_path(client: Any, data: pd.DataFrame, tiny_bundles: dict[str, Path]) -> None:
    import edgefin_runtime

    raw = scale_data.with_explain(tiny_bundles["onnx-fp32"])
    sub = data.iloc[:800]
    scored = efdask.score(dd.from_pandas(sub, npartitions=3), raw, reasons=True, max_reasons=2)
    out = scored.compute()
    assert list(scored._meta.columns)[-1] == "reasons" and out.dtypes.to_dict() == scored._meta.dtypes.to_dict()
    p = edgefin_runtime.load(raw)
    scale_data.assert_same(out, scale_data.expected(p, sub))
    scale_data.assert_same_reasons(out, scale_data.expected_reasons(p, sub, 2))


def test_cli_local_reasons(data: pd.DataFrame, tiny_bundles: dict[str, Path], tmp_path: Path) -> None:
    import edgefin_runtime

    raw = scale_data.with_explain(tiny_bundles["tflite-int8"])
    (tmp_path / "b.efb").write_bytes(raw)
    sub = data.iloc[:500]
    sub.to_parquet(tmp_path / "in.parquet")
    argv = ["score", str(tmp_path / "b.efb"), str(tmp_path / "in.parquet"), "--output", str(tmp_path / "o")]
    assert main([*argv, "--reasons", "--max-reasons", "2", "-q"]) == 0
    want = scale_data.expected_reasons(edgefin_runtime.load(raw), sub, 2)
    scale_data.assert_same_reasons(pd.read_parquet(tmp_path / "o"), want)


def _write_parts(data: pd.DataFrame, d: Path) -> Path:
    d.mkdir()
    data.iloc[:1000].to_parquet(d / "part-0.parquet")
    data.iloc[1000:].to_parquet(d / "part-1.parquet")
    return d


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_cli_engines_write_every_row_and_count_rejections(
    cluster: Any,
    data: pd.DataFrame,
    tiny_bundles: dict[str, Path],
    predictors: dict[str, Any],
    tmp_path: Path,
    capsys: Any,
    engine: str,
) -> None:
    src = _write_parts(data, tmp_path / "in")
    out = tmp_path / "scores"
    extra = ["--cluster", cluster.scheduler_address] if engine == "dask" else []
    argv = ["score", str(tiny_bundles["onnx-fp32"]), str(src / "*.parquet"), "--engine", engine, "--output", str(out)]
    code = main(argv + extra)
    assert code == 0, capsys.readouterr().err
    want = scale_data.expected(predictors["onnx-fp32"], data)
    scale_data.assert_same(pd.read_parquet(out), want)
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["rows_in"] == 3000 == summary["scored"] + summary["rejected"]
    assert summary["rejected_by_type"] == want["error_type"].dropna().value_counts().to_dict()
    err = capsys.readouterr().err
    assert f"3000 rows in, {summary['scored']} scored, {summary['rejected']} rejected" in err


def test_cli_parquet_input_defaults_to_the_local_engine_and_refuses_a_used_output(
    data: pd.DataFrame, tiny_bundles: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    src = tmp_path / "one.parquet"
    data.to_parquet(src)
    out = tmp_path / "scores"
    assert main(["score", str(tiny_bundles["tflite-int8"]), str(src), "--output", str(out), "-q"]) == 0
    assert len(pd.read_parquet(out)) == 3000
    assert main(["score", str(tiny_bundles["tflite-int8"]), str(src), "--output", str(out)]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert main(["score", str(tiny_bundles["tflite-int8"]), str(tmp_path / "none" / "*.parquet"), "-o", "x"]) == 2
    assert "holds no Parquet files" in capsys.readouterr().err
