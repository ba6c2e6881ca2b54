"""`edgefin keygen` and `edgefin sign`: permissions, no silent overwrite, atomic writes, exit codes."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("cryptography")

from edgefin_runtime.bundle import read_bundle  # noqa: E402
from edgefin_runtime.errors import SignatureError  # noqa: E402
from edgefin_runtime.signing import verifier  # noqa: E402

from edgefin import atomic  # noqa: E402
from edgefin.cli.main import cli  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from security_bundles import tiny_onnx_bundle  # noqa: E402


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture()
def keypair(tmp_path):
    res = run("keygen", "--out", str(tmp_path / "keys" / "branch"), "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_keygen_writes_private_0600_and_public_key(keypair, tmp_path):
    priv, pub = Path(keypair["private_key"]), Path(keypair["public_key"])
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub.stat().st_mode) & 0o044  # readable by others: it is public
    assert priv.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert len(keypair["key_id"]) == 16
    assert sorted(p.name for p in priv.parent.iterdir()) == ["branch.key", "branch.pub"]  # no temp files


def test_keygen_refuses_to_overwrite_without_force(keypair):
    prefix = keypair["private_key"][:-4]
    before = Path(keypair["private_key"]).read_bytes()
    res = CliRunner().invoke(cli, ["keygen", "--out", prefix])
    assert res.exit_code == 2 and "--force" in res.output
    assert Path(keypair["private_key"]).read_bytes() == before
    res = run("keygen", "--out", prefix, "--force", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["key_id"] != keypair["key_id"]
    assert Path(keypair["private_key"]).read_bytes() != before


def test_keygen_failure_leaves_no_half_pair(tmp_path, monkeypatch):
    calls = []

    def crash_on_public(path):
        calls.append(path)
        if path.suffix == ".pub":
            raise OSError("disk full")

    monkeypatch.setattr(atomic, "_before_replace", crash_on_public)
    res = CliRunner().invoke(cli, ["keygen", "--out", str(tmp_path / "k")])
    assert res.exit_code != 0
    assert list(tmp_path.iterdir()) == []


def test_sign_in_place_and_to_out(keypair, tmp_path):
    src = tmp_path / "m.efb"
    src.write_bytes(tiny_onnx_bundle(seed=3))
    out = tmp_path / "signed.efb"
    res = run("sign", str(src), "--key", keypair["private_key"], "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["key_id"] == keypair["key_id"]
    read_bundle(out, verify_signature=verifier(keypair["public_key"]))
    with pytest.raises(SignatureError, match="unsigned"):
        read_bundle(src, verify_signature=verifier(keypair["public_key"]))  # source untouched
    res = run("sign", str(src), "--key", keypair["private_key"], "-q")
    assert res.exit_code == 0 and res.output == ""
    assert src.read_bytes() == out.read_bytes()


def test_sign_rejects_damaged_bundle_and_leaves_it_alone(keypair, tmp_path):
    src = tmp_path / "bad.efb"
    data = bytearray(tiny_onnx_bundle(seed=3))
    data[len(data) // 2] ^= 0xFF
    src.write_bytes(bytes(data))
    res = CliRunner().invoke(cli, ["sign", str(src), "--key", keypair["private_key"]])
    assert res.exit_code == 2 and "error" in res.output
    assert src.read_bytes() == bytes(data)


def test_sign_with_public_key_is_a_usage_error(keypair, tmp_path):
    src = tmp_path / "m.efb"
    src.write_bytes(tiny_onnx_bundle(seed=3))
    res = CliRunner().invoke(cli, ["sign", str(src), "--key", keypair["public_key"]])
    assert res.exit_code == 2 and "public key" in res.output


def test_sign_interrupted_write_keeps_old_bundle(keypair, tmp_path, monkeypatch):
    src = tmp_path / "m.efb"
    original = tiny_onnx_bundle(seed=3)
    src.write_bytes(original)
    monkeypatch.setattr(atomic, "_before_replace", lambda p: (_ for _ in ()).throw(OSError("power cut")))
    res = CliRunner().invoke(cli, ["sign", str(src), "--key", keypair["private_key"]])
    assert res.exit_code != 0
    assert src.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "m.efb"]  # no temp file left


# ---------------------------------------------------------------- end to end with edgefin-run
def edgefin_run(*args: str, capsys) -> tuple[int, str, str]:
    from edgefin_runtime.cli import main as run_main

    code = run_main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_keygen_sign_then_edgefin_run_requires_the_signature(keypair, tmp_path, capsys):
    bundle = tmp_path / "m.efb"
    bundle.write_bytes(tiny_onnx_bundle(seed=4))
    signed = tmp_path / "m.signed.efb"
    assert run("sign", str(bundle), "--key", keypair["private_key"], "--out", str(signed), "-q").exit_code == 0
    pub = keypair["public_key"]

    code, out, err = edgefin_run("verify", str(signed), "--require-signature", "--key", pub, "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["signature_checked"] is True, err
    code, _, err = edgefin_run("verify", str(bundle), "--require-signature", "--key", pub, capsys=capsys)
    assert code == 2 and "unsigned" in err
    code, _, err = edgefin_run("verify", str(bundle), "--key", pub, capsys=capsys)
    assert code == 2 and "unsigned" in err  # a configured key alone makes the signature mandatory
    code, _, err = edgefin_run("verify", str(signed), "--require-signature", capsys=capsys)
    assert code == 2 and "no trusted public key" in err

    other = run("keygen", "--out", str(tmp_path / "other"), "--json")
    code, _, err = edgefin_run("info", str(signed), "--key", json.loads(other.stdout)["public_key"], capsys=capsys)
    assert code == 2 and "not trusted" in err

    tampered = bytearray(signed.read_bytes())
    tampered[100] ^= 0x01
    (tmp_path / "t.efb").write_bytes(bytes(tampered))
    code, _, err = edgefin_run("verify", str(tmp_path / "t.efb"), "--key", pub, capsys=capsys)
    assert code == 2 and "error" in err.lower()

    rec = tmp_path / "in.jsonl"
    rec.write_text('{"Income": 100.0, "Age": 30, "Home": "rent"}\n')
    code, out, err = edgefin_run("score", str(signed), str(rec), "--key", pub, "-q", capsys=capsys)
    assert code == 0 and json.loads(out)["status"] == "scored", err
    code, _, err = edgefin_run("score", str(bundle), str(rec), "--key", pub, capsys=capsys)
    assert code == 2 and "unsigned" in err


def test_inspect_checks_the_signature_with_key(keypair, tmp_path):
    bundle = tmp_path / "m.efb"
    bundle.write_bytes(tiny_onnx_bundle(seed=5))
    signed = tmp_path / "m.signed.efb"
    assert run("sign", str(bundle), "--key", keypair["private_key"], "--out", str(signed), "-q").exit_code == 0
    pub = keypair["public_key"]
    res = run("inspect", str(signed), "--key", pub, "--no-self-test")
    assert res.exit_code == 0 and "signed, signature verified" in res.stdout
    assert "verified   archive structure, member hashes, signature" in res.stdout
    res = run("inspect", str(signed), "--no-self-test")
    assert res.exit_code == 0 and "signed (not verified: pass --key PUB)" in res.stdout
    res = CliRunner().invoke(cli, ["inspect", str(bundle), "--key", pub, "--no-self-test"])
    assert res.exit_code == 2 and "unsigned" in res.stderr  # a key makes the signature mandatory
    other = json.loads(run("keygen", "--out", str(tmp_path / "other"), "--json").stdout)["public_key"]
    res = CliRunner().invoke(cli, ["inspect", str(signed), "--key", other, "--no-self-test"])
    assert res.exit_code == 2 and "not trusted" in res.stderr
