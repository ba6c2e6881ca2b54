"""`edgefin convert` and `edgefin inspect` on a tiny run: table, --json, exit codes, failing gates,
missing/corrupted models, interrupted writes, and bundle verification."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile

import pytest
from click.testing import CliRunner

from edgefin.cli.main import cli
from edgefin.rundir import RunDir
from tests.converters.util import FIXTURE_FLIP_RATE, manifest_of

GATE = ["--max-flip-rate", str(FIXTURE_FLIP_RATE)]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def cli_bundles(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "bundles"
    result = run("convert", run_dir, "--variants", "tflite-int8,onnx-fp32", "--out", out, "--json", *GATE)
    assert result.exit_code == 0, result.output + result.stderr
    return out, result


def test_convert_prints_a_table_and_json(cli_bundles):
    out, result = cli_bundles
    doc = json.loads(result.stdout)
    assert doc["passed"] is True and doc["stage"] == "dense" and doc["gated"] is True
    assert [v["variant"] for v in doc["variants"]] == ["tflite-int8", "onnx-fp32"]
    for v in doc["variants"]:
        assert v["size"] > 0 and v["gzip_size"] > 0 and 0.5 < v["auc"] <= 1
        assert (out / f"{v['variant']}.efb").exists() and v["bundle"].endswith(f"{v['variant']}.efb")
    assert (out / "parity.json").exists()
    for column in ("variant", "size", "gzip", "AUC", "flips", "max|dp|", "parity", "tflite-int8", "pass"):
        assert column in result.stderr  # the rich table goes to stderr, JSON alone to stdout


def test_inspect_shows_the_manifest(cli_bundles):
    out, _ = cli_bundles
    result = run("inspect", out / "tflite-int8.efb")
    assert result.exit_code == 0, result.output + result.stderr
    text = result.stdout
    for pattern in (
        r"variant\s+tflite-int8: engine litert",
        r"golden self-test \(\d+ vectors",
        r"input\s+\d+ fields -> \d+ features",
        r"preprocess\s+\d+ steps -> \d+ features",
        r"decision\s+probability >= ",
        "parity vs the dense Keras model: passed",
        "internal input quantisation",
        "tensorflow 2.",
    ):
        assert re.search(pattern, text), pattern


def test_inspect_json_is_the_verified_manifest(cli_bundles):
    out, _ = cli_bundles
    result = run("inspect", out / "onnx-fp32.efb", "--json")
    assert result.exit_code == 0, result.output + result.stderr
    doc = json.loads(result.stdout)
    assert doc["verified"] is True and doc["self_test"]["golden"] == len(doc["manifest"]["golden"])
    assert doc["manifest"] == manifest_of(out / "onnx-fp32.efb")


def test_inspect_prints_square_brackets_from_the_bundle_intact(cli_bundles, tmp_path):
    """Strings from a bundle are data, never rich markup: a hostile '[/x' neither crashes nor vanishes."""
    out, _ = cli_bundles
    src = out / "tflite-int8.efb"
    manifest = json.loads(zipfile.ZipFile(src).read("manifest.json"))
    field = manifest["schema"]["fields"][0]["name"]
    category = next(f["categories"][0] for f in manifest["schema"]["fields"] if f["kind"] == "categorical")
    positive = manifest["schema"]["positive_label"]
    hostile = {
        field: "[/x] [bold]field[/bold]",
        category: "[/category]",
        positive: "[red]yes[/x",
        manifest["producer"]["tool"]: "[link=x]tool[/",
    }
    texts = {n: zipfile.ZipFile(src).read(n).decode() for n in ("manifest.json", "acceptance.json")}
    for old, new in hostile.items():  # every occurrence, so the schema, steps, golden and acceptance agree
        assert json.dumps(old) in texts["manifest.json"]
        texts = {n: t.replace(json.dumps(old), json.dumps(new)) for n, t in texts.items()}
    old_hash = hashlib.sha256(zipfile.ZipFile(src).read("acceptance.json")).hexdigest()
    new_hash = hashlib.sha256(texts["acceptance.json"].encode()).hexdigest()
    texts["manifest.json"] = texts["manifest.json"].replace(old_hash, new_hash)
    bad = tmp_path / "hostile.efb"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, texts[info.filename].encode() if info.filename in texts else zin.read(info.filename))
    result = run("inspect", bad)
    assert result.exit_code == 0, result.output + result.stderr
    for new in hostile.values():
        assert new in result.stdout, new
    assert "golden self-test" in result.stdout  # verified like any other bundle


def test_inspect_rejects_a_corrupted_bundle(cli_bundles, tmp_path):
    out, _ = cli_bundles
    data = bytearray((out / "onnx-fp32.efb").read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.efb"
    bad.write_bytes(bytes(data))
    result = run("inspect", bad)
    assert result.exit_code == 2
    assert "bad.efb" in result.stderr and "error" in result.stderr
    missing = run("inspect", tmp_path / "nope.efb")
    assert missing.exit_code == 2 and "not found" in missing.stderr


def test_failing_gate_exits_3_but_writes_everything(run_dir, tmp_path):
    out = tmp_path / "b"
    result = run("convert", run_dir, "--variants", "tflite-fp16,tflite-fp32", "--max-fp16-delta", "0", "--out", out)
    assert result.exit_code == 3, result.output + result.stderr
    assert "quality gate failed" in result.stderr and "tflite-fp16: max |delta p|" in result.stderr
    assert "FAIL" in result.stderr  # the table is still printed
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"] is False and report["gated"] is True
    assert report["variants"]["tflite-fp16"]["passed"] is False and report["variants"]["tflite-fp32"]["passed"]
    failed = manifest_of(out / "tflite-fp16.efb")
    assert failed["parity"]["passed"] is False and failed["parity"]["failures"]
    assert manifest_of(out / "tflite-fp32.efb")["parity"]["passed"] is True


def test_no_gate_accepts_a_failed_gate(run_dir, tmp_path):
    result = run(
        "convert", run_dir, "--variants", "tflite-fp16", "--max-fp16-delta", "0", "--no-gate", "--out", tmp_path
    )
    assert result.exit_code == 0, result.output + result.stderr
    assert "bundles were written anyway" in result.stderr
    m = manifest_of(tmp_path / "tflite-fp16.efb")
    assert m["parity"]["passed"] is False and m["parity"]["gated"] is False


def test_unknown_variant_is_a_usage_error_listing_the_valid_ones(run_dir):
    result = run("convert", run_dir, "--variants", "tflite-int4")
    assert result.exit_code == 2
    assert "tflite-int4" in result.stderr and "tflite-fp32" in result.stderr and "onnx-int8" in result.stderr


def test_missing_source_model(run_dir, tmp_path):
    broken = tmp_path / "run"
    shutil.copytree(run_dir, broken)
    result = run("convert", broken, "--stage", "pruned")
    assert result.exit_code == 2 and "models/pruned.keras is missing" in result.stderr
    assert "edgefin compress" in result.stderr
    RunDir.at(broken).model_path("dense").unlink()
    result = run("convert", broken)
    assert result.exit_code == 2 and "no model found under models/" in result.stderr


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupted_source_model(run_dir, tmp_path, damage):
    broken = tmp_path / "run"
    shutil.copytree(run_dir, broken)
    model = RunDir.at(broken).model_path("dense")
    data = model.read_bytes()
    model.write_bytes(b"not a keras file" * 10 if damage == "garbage" else data[: len(data) // 2])
    result = run("convert", broken, "--variants", "tflite-fp32", "--out", tmp_path / "b")
    assert result.exit_code == 1, result.output + result.stderr
    assert "cannot load Keras model" in result.stderr and "dense.keras" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not (tmp_path / "b").exists()


def test_interrupted_write_leaves_no_partial_bundle(run_dir, tmp_path, monkeypatch):
    from edgefin_converters import bundle_writer

    out = tmp_path / "b"
    first = run("convert", run_dir, "--variants", "tflite-fp32,onnx-fp32", "--out", out)
    assert first.exit_code == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []

    def crash_on_second(path):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle_writer, "_before_replace", crash_on_second)
    result = run("convert", run_dir, "--variants", "tflite-fp32,onnx-fp32", "--out", out)
    assert result.exit_code != 0
    assert calls == ["tflite-fp32.efb", "onnx-fp32.efb"]
    names = sorted(p.name for p in out.iterdir())
    assert names == ["onnx-fp32.efb", "parity.json", "tflite-fp32.efb"]  # no temporary file left behind
    assert (out / "onnx-fp32.efb").read_bytes() == before["onnx-fp32.efb"]  # the old bundle survives whole
    for name in ("onnx-fp32.efb", "tflite-fp32.efb"):
        manifest_of(out / name)  # both verify


def test_config_file_values_are_defaults_and_flags_win(run_dir, tmp_path):
    config = tmp_path / "convert.toml"
    config.write_text('[convert]\nvariants = "tflite-fp16"\nmax-fp16-delta = 0.0\n', encoding="utf-8")
    failed = run("convert", run_dir, "--config", config, "--out", tmp_path / "a", "-q")
    assert failed.exit_code == 3  # the file's strict fp16 gate applies
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["parity.json", "tflite-fp16.efb"]
    ok = run("convert", run_dir, "--config", config, "--max-fp16-delta", "0.001", "--out", tmp_path / "b", "-q")
    assert ok.exit_code == 0, ok.stderr  # the flag wins over the file


def test_inspect_without_self_test_still_verifies_hashes(cli_bundles):
    out, _ = cli_bundles
    result = run("inspect", out / "tflite-int8.efb", "--no-self-test")
    assert result.exit_code == 0 and "self-test skipped" in result.stdout
