"""Reading data files: CSV and Parquet agree; every bad file is a DataError naming it."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from edgefin.data.io import check_frame, describe_row, file_sha256, read_table
from edgefin.errors import DataError
from tests.fixtures.tabular import loans


def test_csv_and_parquet_read_the_same_rows(tmp_path):
    frame = loans(50)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    a = read_table(tmp_path / "a.csv")
    b = read_table(tmp_path / "a.parquet")
    assert list(a.columns) == list(frame.columns) == list(b.columns)
    assert len(a) == len(b) == 50
    assert list(a.index) == list(range(50))
    pd.testing.assert_series_equal(a["income"], b["income"], check_dtype=False)
    assert a["region"].isna().sum() == frame["region"].isna().sum()


def test_na_values_mark_extra_text_missing(tmp_path):
    (tmp_path / "d.csv").write_text("x,y\n1,a\nn.a.,b\n3,a\n")
    assert not pd.api.types.is_numeric_dtype(read_table(tmp_path / "d.csv")["x"])
    frame = read_table(tmp_path / "d.csv", na_values=["n.a."])
    assert pd.api.types.is_numeric_dtype(frame["x"]) and frame["x"].isna().sum() == 1


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"data file .*nope\.csv not found"):
        read_table(tmp_path / "nope.csv")


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_table(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"e\.csv is empty"):
        read_table(tmp_path / "e.csv")


def test_blank_lines_only(tmp_path):
    (tmp_path / "e.csv").write_text("\n\n")
    with pytest.raises(DataError, match="no columns"):
        read_table(tmp_path / "e.csv")


def test_header_without_rows(tmp_path):
    (tmp_path / "h.csv").write_text("a,b,target\n")
    with pytest.raises(DataError, match="no data rows"):
        read_table(tmp_path / "h.csv")


def test_unreadable_parquet(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match=r"bad\.parquet cannot be read as Parquet"):
        read_table(tmp_path / "bad.parquet")


def test_not_utf8(tmp_path):
    (tmp_path / "latin.csv").write_bytes("name,x\nM\xfcller,1\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_table(tmp_path / "latin.csv")


def test_ragged_csv(tmp_path):
    (tmp_path / "r.csv").write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(DataError, match=r"r\.csv is not valid CSV"):
        read_table(tmp_path / "r.csv")


def test_permission_denied(tmp_path, monkeypatch):
    (tmp_path / "p.csv").write_text("a,b\n1,2\n")
    monkeypatch.setattr("edgefin.data.io.os.access", lambda *_: False)
    with pytest.raises(DataError, match="not readable"):
        read_table(tmp_path / "p.csv")


def test_duplicate_columns_in_a_frame():
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(DataError, match="duplicate column names"):
        check_frame(frame, "<frame>")


def test_sha256_and_row_descriptions(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a\n1\n")
    assert file_sha256(p) == hashlib.sha256(b"a\n1\n").hexdigest()
    assert describe_row("x.csv", 0) == "x.csv line 2"
    assert describe_row("x.parquet", 7) == "x.parquet row 7"
