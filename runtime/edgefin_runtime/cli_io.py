"""Input readers and output writers for ``edgefin-run score`` (CSV and JSON Lines, no pandas).

Readers yield ``(row, record_or_error)`` with 1-based data-row numbers (for CSV, row 1 is the line
after the header; blank lines are skipped and not counted). A row that cannot become a record (a
malformed JSON line, a CSV line with the wrong number of cells) is yielded as an InputError so it
is reported like any other rejected row. Output is written atomically when it goes to a file.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from .atomic import open_atomic
from .errors import FieldTypeError, InputError, RecordTypeError
from .manifest import Schema
from .preprocess import parse_text_record

FORMATS = ("csv", "jsonl")
CSV_COLUMNS = ("row", "status", "score", "decision", "label", "flags", "error_type", "field", "error")


class UsageProblem(Exception):
    """A problem with the command line or the input file as a whole (exit 2)."""


def detect_format(path: str | None, given: str | None) -> str | None:
    """The input format: as given, else from the file's extension; None for stdin (sniffed from its
    first non-blank line by :func:`read_rows`: '{' means JSON Lines, anything else CSV)."""
    if given:
        return given
    if path is None or path == "-":
        return None
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise UsageProblem(f"cannot tell the format of {path} from its extension; pass --input-format csv or jsonl")


@contextmanager
def open_input(path: str | None) -> Iterator[IO[str]]:
    if path is None or path == "-":
        yield io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")  # a BOM (Excel) is dropped
        return
    try:
        fh = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UsageProblem(f"cannot read input {path}: {exc.strerror}") from None
    with fh:
        yield fh


def read_rows(fh: IO[str], fmt: str | None, schema: Schema) -> Iterator[tuple[int, Any]]:
    """(row number, record dict or InputError) for every data row; ``fmt=None`` sniffs it."""
    try:
        lines: Iterable[str] = fh
        if fmt is None:
            fmt, lines = _sniff(fh)
        yield from (_csv_rows(lines, schema) if fmt == "csv" else _jsonl_rows(lines))
    except UnicodeDecodeError as exc:
        raise UsageProblem(f"input is not UTF-8 text ({exc.reason} at byte {exc.start} of a block)") from None
    except csv.Error as exc:
        raise UsageProblem(f"input is not valid CSV ({exc})") from None


def _sniff(fh: IO[str]) -> tuple[str, Iterable[str]]:
    """Read up to the first non-blank line: JSON Lines if it starts with '{', else CSV (a header)."""
    head: list[str] = []
    for line in fh:
        head.append(line)
        if line.strip():
            break
    fmt = "jsonl" if head and head[-1].lstrip().startswith("{") else "csv"
    return fmt, itertools.chain(head, fh)


def _csv_rows(fh: Iterable[str], schema: Schema) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(fh)
    header = next((r for r in reader if r), None)
    if header is None:
        return
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise UsageProblem(f"CSV header repeats column(s) {dupes}; each field may appear once")
    row = 0
    for cells in reader:
        if not cells:
            continue
        row += 1
        if len(cells) != len(header):
            yield (
                row,
                RecordTypeError(
                    f"CSV line has {len(cells)} cells but the header has {len(header)}; "
                    f"quote values that contain commas"
                ),
            )
            continue
        yield row, parse_text_record(schema, dict(zip(header, cells)))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise FieldTypeError(f"field '{k}' appears twice in the JSON object", field=k)
        out[k] = v
    return out


def _jsonl_rows(fh: Iterable[str]) -> Iterator[tuple[int, Any]]:
    row = 0
    for line in fh:
        if not line.strip():
            continue
        row += 1
        try:
            rec = json.loads(line, object_pairs_hook=_no_duplicates)
        except InputError as err:
            yield row, err
            continue
        except (ValueError, RecursionError) as exc:
            yield row, RecordTypeError(f"not valid JSON ({str(exc)[:120]})")
            continue
        if not isinstance(rec, dict):
            yield row, RecordTypeError(f"expected a JSON object of field names to values, got {type(rec).__name__}")
            continue
        yield row, rec


# ---------------------------------------------------------------- output
def result_row(row: int, result: Any, explanation: Any = None) -> dict[str, Any]:
    """One output row: a score, or the error that rejected the record; with an explanation
    (``score --reasons``), its reasons and the reference applicant's score."""
    if isinstance(result, InputError):
        return {
            "row": row,
            "status": "rejected",
            "error_type": type(result).__name__,
            "field": result.field,
            "error": result.reason,
        }
    s = result
    out = {
        "row": row,
        "status": "scored",
        "score": s.probability,
        "decision": s.decision,
        "label": s.label,
        "flags": list(s.flags),
    }
    if explanation is not None:
        out["reasons"] = [r.to_dict() for r in explanation.reasons]
        out["reference_score"] = explanation.reference_score
    return out


class Writer:
    """Writes output rows as JSON Lines or CSV to a text stream."""

    def __init__(self, fh: IO[str], fmt: str, reasons: int = 0) -> None:
        self.fh, self.fmt, self.reasons = fh, fmt, reasons
        self._csv = None
        if fmt == "csv":
            self._csv = csv.writer(fh, lineterminator="\n")
            self._csv.writerow(CSV_COLUMNS + reason_columns(reasons))

    def write(self, out: dict[str, Any]) -> None:
        if self._csv is None:
            self.fh.write(json.dumps(out, ensure_ascii=False) + "\n")
            return
        flags = out.get("flags")
        self._csv.writerow(
            [
                out["row"],
                out["status"],
                out.get("score", ""),
                "" if "decision" not in out else str(out["decision"]).lower(),
                out.get("label", ""),
                ";".join(flags) if flags else "",
                out.get("error_type", ""),
                out.get("field") or "",
                out.get("error", ""),
            ]
            + _reason_cells(out, self.reasons)
        )


def reason_columns(n: int) -> tuple[str, ...]:
    """CSV columns of ``score --reasons``: the reference score, then field and text of reasons 1..n."""
    if not n:
        return ()
    return ("reference_score", *(f"reason_{i}_{part}" for i in range(1, n + 1) for part in ("field", "text")))


def _reason_cells(out: dict[str, Any], n: int) -> list[Any]:
    if not n:
        return []
    cells: list[Any] = [out.get("reference_score", "")]
    reasons = out.get("reasons") or []
    for i in range(n):
        cells.extend((reasons[i]["field"], reasons[i]["text"]) if i < len(reasons) else ("", ""))
    return cells


@contextmanager
def open_output(path: str | None) -> Iterator[IO[str]]:
    """stdout, or a file written atomically: a temporary file beside it, fsync, then rename.

    If the command fails, the temporary file is removed and an existing file is left untouched.
    """
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with ExitStack() as stack:
        try:
            fh = stack.enter_context(open_atomic(path, text=True))
        except OSError as exc:  # the folder is missing or not writable
            raise UsageProblem(f"cannot write output {path}: {exc.strerror}") from None
        yield fh
