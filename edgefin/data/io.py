"""Read tabular data (CSV or Parquet) with errors that name the file and say what to do.

Every problem a user can cause with a data file (it is missing, a folder, unreadable, not really
CSV/Parquet, empty, or has duplicate column names) becomes :class:`edgefin.errors.DataError`;
pandas' and pyarrow's own exceptions never reach the user.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .. import atomic
from ..errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".csv.zip")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes: the source-data hash that bundles carry as provenance."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_format(path: str | os.PathLike[str]) -> str:
    """'parquet' or 'csv', decided by the file name (anything not Parquet is read as CSV)."""
    name = Path(path).name.lower()
    return "parquet" if name.endswith(PARQUET_SUFFIXES) else "csv"


def describe_row(source: str | os.PathLike[str], index: int) -> str:
    """Where row ``index`` (0-based data row) lives, in the words a user can find it with."""
    if data_format(source) == "csv":
        return f"{source} line {index + 2}"  # line 1 is the header
    return f"{source} row {index}"


def read_table(path: str | os.PathLike[str], *, na_values: Iterable[str] = (), role: str = "data") -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame with a fresh 0..n-1 index.

    ``na_values`` adds text that means "missing" (CSV only) on top of pandas' defaults ('', 'NA',
    'null', ...). ``role`` names the file in messages ("data", "test data", ...).
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{role} file {p} not found; check the path (relative paths start at {Path.cwd()})")
    if p.is_dir():
        raise DataError(f"{role} file {p} is a directory; pass a CSV or Parquet file")
    if not os.access(p, os.R_OK):
        raise DataError(f"{role} file {p} is not readable (permission denied); fix its permissions")
    if p.stat().st_size == 0:
        raise DataError(f"{role} file {p} is empty (0 bytes); expected a header row and data rows")
    fmt = data_format(p)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(p)
        else:
            sep = "\t" if p.name.lower().endswith((".tsv", ".tsv.gz")) else ","
            frame = pd.read_csv(p, sep=sep, na_values=list(na_values) or None, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{role} file {p} has no columns (is it empty?); expected a header row and data rows") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{role} file {p} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 CSV or as Parquet"
        ) from None
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{role} file {p} is not valid CSV: {_first_line(exc)}; check quoting and the number of fields per line"
        ) from None
    except MemoryError:
        raise DataError(f"{role} file {p} does not fit in memory; sample it or use fewer columns") from None
    except Exception as exc:  # pyarrow/fastparquet raise many types for corrupt files
        kind = "Parquet" if fmt == "parquet" else "CSV"
        raise DataError(
            f"{role} file {p} cannot be read as {kind} ({type(exc).__name__}: {_first_line(exc)}); "
            f"check that it really is a {kind} file (the format is chosen by its suffix)"
        ) from None
    return check_frame(frame, str(p), role=role)


def check_frame(frame: pd.DataFrame, source: str, *, role: str = "data") -> pd.DataFrame:
    """Checks shared by files and in-memory frames: columns, rows, unique string column names."""
    if frame.shape[1] == 0:
        raise DataError(f"{role} {source} has no columns; expected a header row and data rows")
    if len(frame) == 0:
        raise DataError(f"{role} {source} has a header but no data rows; add rows or pick another file")
    names = [str(c) for c in frame.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"{role} {source} has duplicate column names {dupes}; rename them so each is unique")
    frame = frame.copy()
    frame.columns = names
    return frame.reset_index(drop=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write a split atomically; an object column mixing types is kept as text."""
    buf = io.BytesIO()
    try:
        frame.to_parquet(buf, index=True)
    except Exception:  # pyarrow refuses mixed object columns (e.g. a dropped column)
        fixed = frame.copy()
        for c in fixed.columns:
            if fixed[c].dtype == object:
                fixed[c] = fixed[c].map(lambda v: None if pd.isna(v) else str(v))
        buf = io.BytesIO()
        fixed.to_parquet(buf, index=True)
    atomic.write_bytes(path, buf.getvalue())
