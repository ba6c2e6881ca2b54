"""``edgefin-run score --reasons`` and ``edgefin-run drift``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from explain_fixtures import fixture_module, with_sections

import edgefin_runtime
from edgefin_runtime.cli import main


@pytest.fixture(scope="module")
def bundle(tiny_bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return with_sections(tiny_bundles["tflite-int8"], tmp_path_factory.mktemp("cli") / "e.efb")


def write_jsonl(path: Path, recs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return path


def sample(n: int, seed: int) -> list[dict[str, Any]]:
    cols, _ = fixture_module().tiny_data(n, seed)
    return [{k: v[i] for k, v in cols.items()} for i in range(n)]


def test_score_reasons_jsonl_and_csv(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recs = [*sample(20, 7), {"Income": 10.0, "Age": "old", "Home": "rent"}]
    data = write_jsonl(tmp_path / "in.jsonl", recs)
    assert main(["score", str(bundle), str(data), "--reasons", "-q"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    pred = edgefin_runtime.load(str(bundle))
    for rec, row in zip(recs, rows):
        if row["status"] == "rejected":
            assert "reasons" not in row and row["field"] == "Age"
            continue
        e = pred.explain(rec)
        assert row["reasons"] == [r.to_dict() for r in e.reasons] and row["reference_score"] == e.reference_score
    out = tmp_path / "out.csv"
    assert main(["score", str(bundle), str(data), "--reasons", "--max-reasons", "2", "-o", str(out), "-q"]) == 0
    table = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert list(table[0])[-5:] == [
        "reference_score",
        "reason_1_field",
        "reason_1_text",
        "reason_2_field",
        "reason_2_text",
    ]
    for rec, row in zip(recs, table):
        if row["status"] == "scored":
            reasons = pred.explain(rec, max_reasons=2).reasons
            assert [row["reason_1_field"], row["reason_2_field"]][: len(reasons)] == [r.field for r in reasons]
    # without --reasons the output is unchanged
    assert main(["score", str(bundle), str(data), "-q"]) == 0
    assert "reasons" not in capsys.readouterr().out


def test_score_reasons_needs_an_explain_section(tiny_bundles: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", sample(3, 1))
    assert main(["score", str(tiny_bundles["tflite-int8"]), str(data), "--reasons"]) == 2
    err = capsys.readouterr()
    assert "no explain section" in err.err and err.out == ""


def test_drift_command(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    same = write_jsonl(tmp_path / "same.jsonl", sample(300, 11))
    shifted_recs = sample(300, 12)
    for r in shifted_recs:
        r["Income"] = None if r["Income"] is None else r["Income"] * 0.3
    shifted = write_jsonl(tmp_path / "shifted.jsonl", shifted_recs)
    assert main(["drift", str(bundle), str(same)]) == 0
    text = capsys.readouterr().out
    assert "PSI" in text and "Income" in text and "score" in text
    counts = tmp_path / "c.json"
    assert main(["drift", str(bundle), str(shifted), "--json", "--counts", str(counts), "--fail-on-drift"]) == 3
    rep = json.loads(capsys.readouterr().out)
    assert "Income" in rep["drifted"] and rep["n"] == 300
    # merging saved counts: the same file twice doubles n, the shares are unchanged
    assert main(["drift", str(bundle), str(shifted), "--json", "--merge", str(counts)]) == 0
    rep2 = json.loads(capsys.readouterr().out)
    assert rep2["n"] == 600 and rep2["fields"]["Income"]["shares"] == rep["fields"]["Income"]["shares"]


def test_drift_command_without_section(tiny_bundles: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", sample(3, 1))
    assert main(["drift", str(tiny_bundles["tflite-int8"]), str(data), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error_type"] == "ManifestError"
