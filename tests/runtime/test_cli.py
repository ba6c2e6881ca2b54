"""edgefin-run info | verify | score, every exit code, run as a real subprocess."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import edgefin_runtime
from edgefin_runtime import errors
from edgefin_runtime.bundle import read_bundle
from edgefin_runtime.cli import exit_code_for
from edgefin_runtime.cli_io import UsageProblem

CSV_TEXT = (
    "Income,Age,Home,Job\n"
    "120,35,rent,fixed\n"
    ",52,owner,\n"
    "abc,30,rent,fixed\n"
    "\n"
    "80,23,castle,partime\n"
    "1,2\n"
    "15,,rent,fixed\n"
)


def run(*args: Any, stdin: str | None = None, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """python -m edgefin_runtime.cli ARGS (optionally after some setup code)."""
    if prelude:
        code = prelude + "\nfrom edgefin_runtime.cli import main\nraise SystemExit(main(sys.argv[1:]))"
        cmd = [sys.executable, "-c", "import sys\n" + code, *map(str, args)]
    else:
        cmd = [sys.executable, "-m", "edgefin_runtime.cli", *map(str, args)]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture
def fp32(tiny_bundles) -> Path:
    return tiny_bundles["tflite-fp32"]


@pytest.fixture
def csv_file(tmp_path) -> Path:
    p = tmp_path / "in.csv"
    p.write_text(CSV_TEXT, encoding="utf-8")
    return p


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------- info
def test_info_text_and_json(fp32) -> None:
    r = run("info", fp32)
    assert r.returncode == 0, r.stderr
    for text in (
        "tflite-fp32",
        "engine litert",
        "Income",
        "missing allowed",
        "probability >= 0.5 means 'bad'",
        "4 fields -> ",
        "golden     5 vectors",
        "unsigned",
    ):
        assert text in r.stdout
    j = run("info", fp32, "--json")
    assert j.returncode == 0
    doc = json.loads(j.stdout)
    assert doc["manifest"]["model"]["variant"] == "tflite-fp32"
    assert doc["bundle"]["sha256"] == read_bundle(fp32).sha256 and doc["bundle"]["signed"] is False


def test_info_does_not_need_the_engine(tiny_bundles) -> None:
    r = run("info", tiny_bundles["onnx-fp32"], prelude="sys.modules['onnxruntime'] = None")
    assert r.returncode == 0 and "onnx-fp32" in r.stdout


# ---------------------------------------------------------------- verify
def test_verify_ok(variant, tiny_bundles) -> None:
    r = run("verify", tiny_bundles[variant])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK ") and "self-test passed (5 golden vectors" in r.stdout
    assert "XNNPACK" not in r.stderr  # native INFO noise is silenced
    j = json.loads(run("verify", tiny_bundles[variant], "--json").stdout)
    assert j["ok"] is True and j["self_test"]["golden"] == 5 and j["variant"] == variant


def test_verify_self_test_failure_exits_3(rebundle, tmp_path) -> None:
    def wrong(d: dict[str, Any]) -> None:
        d["golden"][0]["score"] = 0.0 if d["golden"][0]["score"] > 0.5 else 1.0

    bad = tmp_path / "bad.efb"
    bad.write_bytes(rebundle("tflite-int8", wrong))
    r = run("verify", bad)
    assert r.returncode == 3 and "SelfTestError" in r.stderr and "Traceback" not in r.stderr
    j = run("verify", bad, "--json")
    assert j.returncode == 3 and json.loads(j.stdout) == {
        "ok": False,
        "error_type": "SelfTestError",
        "error": json.loads(j.stdout)["error"],
        "exit_code": 3,
    }
    assert run("score", bad, "-", "--input-format", "jsonl", stdin="{}\n").returncode == 3


def test_verify_invalid_bundles_exit_2(fp32, rebundle, tmp_path) -> None:
    data = bytearray(fp32.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "tampered.efb"
    tampered.write_bytes(bytes(data))
    r = run("verify", tampered)
    assert r.returncode == 2 and "Error" in r.stderr and "Traceback" not in r.stderr

    def newer(d: dict[str, Any]) -> None:
        d["format_version"] += 1

    future = tmp_path / "future.efb"
    future.write_bytes(rebundle("onnx-fp32", newer))
    r = run("verify", future)
    assert r.returncode == 2 and "VersionError" in r.stderr and "upgrade edgefin-runtime" in r.stderr
    r = run("verify", tmp_path / "missing.efb")
    assert r.returncode == 2 and "not found" in r.stderr


def test_missing_engine_exits_1_with_install_hint(fp32) -> None:
    r = run("verify", fp32, prelude="sys.modules['ai_edge_litert'] = None")
    assert r.returncode == 1
    assert "BackendError" in r.stderr and "pip install 'edgefin-runtime[litert]'" in r.stderr


def test_incompatible_backend_exits_1(fp32) -> None:
    r = run("verify", fp32, "--backend", "onnx")
    assert r.returncode == 1 and "cannot run this bundle" in r.stderr


def test_signature_options(fp32, tmp_path) -> None:
    r = run("verify", fp32, "--require-signature")
    assert r.returncode == 2 and "SignatureError" in r.stderr
    pytest.importorskip("cryptography")
    from edgefin_runtime.signing import generate_keypair, sign_bundle

    priv, pub = generate_keypair()
    (tmp_path / "pub.pem").write_bytes(pub)
    r = run("verify", fp32, "--key", tmp_path / "pub.pem")
    assert r.returncode == 2 and "SignatureError" in r.stderr
    signed = tmp_path / "signed.efb"
    signed.write_bytes(sign_bundle(fp32, priv))
    r = run("verify", signed, "--key", tmp_path / "pub.pem", "--require-signature")
    assert r.returncode == 0 and "signature" in r.stdout
    assert "signature verified" in run("info", signed, "--key", tmp_path / "pub.pem").stdout


# ---------------------------------------------------------------- score
def test_score_csv_to_jsonl(fp32, csv_file) -> None:
    r = run("score", fp32, csv_file)
    assert r.returncode == 0, r.stderr
    rows = jsonl(r.stdout)
    assert [x["row"] for x in rows] == [1, 2, 3, 4, 5, 6]  # blank lines are not rows
    assert [x["status"] for x in rows] == ["scored", "scored", "rejected", "scored", "rejected", "rejected"]
    assert rows[1]["flags"] == ["imputed:Income", "imputed:Job"]
    assert rows[3]["flags"] == ["unseen_category:Home"]
    assert rows[2]["error_type"] == "FieldTypeError" and rows[2]["field"] == "Income" and "score" not in rows[2]
    assert rows[4]["error_type"] == "RecordTypeError" and "cells" in rows[4]["error"]
    assert rows[5]["error_type"] == "MissingFieldError" and rows[5]["field"] == "Age"
    pred = edgefin_runtime.load(fp32)
    assert rows[0]["score"] == pred.score({"Income": 120.0, "Age": 35.0, "Home": "rent", "Job": "fixed"}).probability
    assert rows[0]["decision"] == (rows[0]["score"] >= 0.5) and rows[0]["label"] in ("bad", "good")
    assert "6 rows in, 3 scored, 3 rejected" in r.stderr


def test_score_jsonl_stdin_to_csv_file(tiny_bundles, tmp_path) -> None:
    lines = [
        json.dumps({"Income": 120.0, "Age": 35, "Home": "rent", "Job": "fixed"}),
        "not json",
        json.dumps([1, 2]),
        json.dumps({"Income": 1, "Age": 30, "Home": "rent", "Age ": 1}),
        '{"Age": 30, "Age": 31, "Home": "rent"}',
        json.dumps({"Income": None, "Age": 70, "Home": "owner"}),
    ]
    out = tmp_path / "scores.csv"
    r = run(
        "score", tiny_bundles["onnx-fp32"], "--input-format", "jsonl", "--output", out, stdin="\n".join(lines) + "\n"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]  # no temp files
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [t["status"] for t in table] == ["scored", "rejected", "rejected", "scored", "rejected", "scored"]
    assert table[1]["error_type"] == "RecordTypeError" and "not valid JSON" in table[1]["error"]
    assert table[4]["error_type"] == "FieldTypeError" and "appears twice" in table[4]["error"]
    assert table[5]["flags"] == "imputed:Income;imputed:Job" and table[5]["decision"] in ("true", "false")
    assert float(table[0]["score"]) > 0


def test_strict_stops_at_first_bad_row(fp32, csv_file, tmp_path) -> None:
    r = run("score", fp32, csv_file, "--strict")
    assert r.returncode == 2
    assert [x["row"] for x in jsonl(r.stdout)] == [1, 2]
    assert "stopped at row 3" in r.stderr and "FieldTypeError" in r.stderr
    out = tmp_path / "out.jsonl"
    out.write_text("previous results\n")
    r = run("score", fp32, csv_file, "--strict", "--output", out)
    assert r.returncode == 2 and out.read_text() == "previous results\n"  # never a partial file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.jsonl"]


def test_policy_strict(fp32, tmp_path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("Income,Age,Home,Job,Note\n120,35,rent,fixed,hi\n120,35,castle,fixed,\n")
    lenient = jsonl(run("score", fp32, p).stdout)
    assert [x["status"] for x in lenient] == ["scored", "scored"]
    strict = jsonl(run("score", fp32, p, "--policy", "strict").stdout)
    assert [x["error_type"] for x in strict] == ["UnknownFieldError", "UnknownFieldError"]


def test_score_large_input_in_batches(tiny_bundles, tmp_path) -> None:
    p = tmp_path / "many.jsonl"
    recs = [{"Income": float(i % 300), "Age": 20 + i % 50, "Home": ["rent", "owner", "x"][i % 3]} for i in range(2500)]
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = run("score", tiny_bundles["tflite-int8"], p, "--batch-size", "256", "-q")
    rows = jsonl(r.stdout)
    assert r.returncode == 0 and r.stderr == "" and [x["row"] for x in rows] == list(range(1, 2501))
    pred = edgefin_runtime.load(tiny_bundles["tflite-int8"])
    assert [x["score"] for x in rows[:50]] == [pred.score(rec).probability for rec in recs[:50]]


@pytest.mark.parametrize(
    "args,message",
    [
        ((), "required"),
        (("explode", "x.efb"), "invalid choice"),
        (("score", "{bundle}", "{tmp}/in.txt"), "extension"),
        (("score", "{bundle}", "{tmp}/in.csv", "--batch-size", "0"), "positive integer"),
        (("score", "{bundle}", "{tmp}/absent.csv"), "cannot read input"),
        (("score", "{bundle}", "{tmp}/dupes.csv"), "repeats column"),
        (("score", "{bundle}", "{tmp}/in.csv", "--policy", "maybe"), "invalid choice"),
    ],
)
def test_usage_errors_exit_2(fp32, tmp_path, args, message) -> None:
    (tmp_path / "in.txt").write_text("x")
    (tmp_path / "in.csv").write_text(CSV_TEXT)
    (tmp_path / "dupes.csv").write_text("Age,Age\n1,2\n")
    r = run(*[a.format(bundle=fp32, tmp=tmp_path) for a in args], stdin="")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "text, rows",
    [
        ('\n{"Income": 120.0, "Age": 35, "Home": "rent", "Job": "fixed"}\n{"Age": 40, "Home": "owner"}\n', 2),
        ("Income,Age,Home,Job\n120,35,rent,fixed\n", 1),
        ("", 0),
        ("\ufeffIncome,Age,Home,Job\n120,35,rent,fixed\n", 1),  # a byte-order mark, as Excel writes it
    ],
)
def test_stdin_format_is_sniffed_when_not_given(fp32, text, rows) -> None:
    r = run("score", fp32, stdin=text)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(out) == rows and all(o["status"] == "scored" for o in out)
    assert f"{rows} rows in, {rows} scored" in r.stderr


def test_non_utf8_input_exits_2(fp32, tmp_path) -> None:
    p = tmp_path / "latin1.csv"
    p.write_bytes("Income,Age,Home,Job\n1,30,caf\u00e9,fixed\n".encode("latin-1"))
    r = run("score", fp32, p)
    assert r.returncode == 2 and "UTF-8" in r.stderr


def test_internal_error_exits_1_without_traceback(fp32, csv_file) -> None:
    prelude = (
        "import edgefin_runtime.predictor as p\n"
        "def boom(self, records): raise RuntimeError('simulated bug')\n"
        "p.Predictor.score_batch = boom"
    )
    r = run("score", fp32, csv_file, prelude=prelude)
    assert r.returncode == 1 and "internal error: simulated bug" in r.stderr and "Traceback" not in r.stderr


def test_console_script_is_installed(fp32) -> None:
    exe = Path(sys.executable).with_name("edgefin-run")
    if not exe.exists():
        pytest.skip("edgefin-run console script not installed in this environment")
    r = subprocess.run([str(exe), "verify", str(fp32)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("OK ")


def test_exit_code_mapping() -> None:
    assert exit_code_for(errors.SelfTestError("x")) == 3
    for exc in (
        errors.IntegrityError("x"),
        errors.VersionError("x"),
        errors.SignatureError("x"),
        errors.BundleFormatError("x"),
        errors.ManifestError("x"),
        errors.MissingFieldError("x"),
        UsageProblem("x"),
    ):
        assert exit_code_for(exc) == 2
    assert exit_code_for(errors.BackendError("x")) == 1
    assert exit_code_for(RuntimeError("x")) == 1
