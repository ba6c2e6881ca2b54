"""Ed25519 signed bundles: the right key passes; unsigned, wrong key, malformed or any changed byte fails
with SignatureError before the manifest is parsed."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

pytest.importorskip("cryptography")

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from security_bundles import tiny_onnx_bundle  # noqa: E402

from edgefin_runtime import bundle as bundle_mod  # noqa: E402
from edgefin_runtime.bundle import pack_members, read_bundle, sha256_hex  # noqa: E402
from edgefin_runtime.errors import SignatureError  # noqa: E402
from edgefin_runtime.signing import (  # noqa: E402
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    sign_bundle,
    signature_for,
    verifier,
)


@pytest.fixture(scope="module")
def keys():
    priv, pub = generate_keypair()
    other_priv, other_pub = generate_keypair()
    return {"priv": priv, "pub": pub, "other_priv": other_priv, "other_pub": other_pub}


@pytest.fixture(scope="module")
def unsigned():
    return tiny_onnx_bundle(seed=1)


@pytest.fixture(scope="module")
def signed(unsigned, keys):
    return sign_bundle(unsigned, keys["priv"])


def _members(data):
    b = read_bundle(data)
    return b.manifest_bytes, b.manifest.model.file, b.model_bytes, b.signature


def test_sign_keeps_manifest_and_model_bytes_and_is_deterministic(unsigned, signed, keys):
    m0, name, model0, sig0 = _members(unsigned)
    m1, _, model1, sig1 = _members(signed)
    assert sig0 is None and sig1 is not None
    assert (m0, model0) == (m1, model1)
    assert sign_bundle(unsigned, keys["priv"]) == signed  # Ed25519 is deterministic
    assert sign_bundle(signed, keys["priv"]) == signed  # re-signing replaces, never stacks
    resigned = sign_bundle(signed, keys["other_priv"])
    assert _members(resigned)[3] != sig1
    read_bundle(resigned, verify_signature=verifier(keys["other_pub"]))


@pytest.mark.parametrize("form", ["pem_bytes", "pem_text", "path", "raw32", "object", "list"])
def test_trusted_key_forms_verify(signed, keys, form, tmp_path):
    pub = load_public_key(keys["pub"])
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    path = tmp_path / "k.pub"
    path.write_bytes(keys["pub"])
    given = {
        "pem_bytes": keys["pub"],
        "pem_text": keys["pub"].decode(),
        "path": path,
        "raw32": raw,
        "object": pub,
        "list": [keys["other_pub"], str(path)],
    }[form]
    b = read_bundle(signed, verify_signature=verifier(given))
    assert b.signature is not None and key_id(pub).encode() in b.signature


def test_unsigned_bundle_rejected_when_a_key_is_configured(unsigned, keys):
    with pytest.raises(SignatureError, match="unsigned"):
        read_bundle(unsigned, verify_signature=verifier(keys["pub"]))
    with pytest.raises(SignatureError, match="unsigned"):
        read_bundle(unsigned, verify_signature=verifier(keys["pub"], require_signature=False))


def test_require_signature_without_keys_is_a_configuration_error():
    with pytest.raises(SignatureError, match="no trusted public key"):
        verifier(None, require_signature=True)
    assert verifier(None, require_signature=False) is None


def test_wrong_key_rejected_and_named(signed, keys):
    with pytest.raises(SignatureError, match=f"signed by key {key_id(load_public_key(keys['pub']))}.*not trusted"):
        read_bundle(signed, verify_signature=verifier(keys["other_pub"]))


def test_private_key_as_trusted_key_is_refused(keys):
    with pytest.raises(SignatureError, match="private key"):
        verifier(keys["priv"])


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x00" * 64,
        b"edgefin-signature-v1\n",
        b"not a signature at all\n" * 3,
        "truncated_b64",
        "noncanonical_b64",
        "extra_line",
        "crlf",
        "short_sig",
    ],
)
def test_malformed_signature_member_rejected(unsigned, signed, keys, bad):
    manifest, name, model, sig = _members(signed)
    if isinstance(bad, str):
        text = sig.decode()
        b64 = text.split("ed25519 ")[1].strip()
        bad = {
            "truncated_b64": text.replace(b64, b64[:-4]),
            "noncanonical_b64": text.replace(b64, b64[:85] + ("B" if b64[85] == "A" else "A") + "=="),
            "extra_line": text + "comment\n",
            "crlf": text.replace("\n", "\r\n"),
            "short_sig": text.replace(b64, base64.b64encode(b"\x01" * 63).decode()),
        }[bad].encode()
    data = pack_members(manifest, name, model, bad)
    with pytest.raises(SignatureError, match="malformed|canonical|does not match|not trusted"):
        read_bundle(data, verify_signature=verifier(keys["pub"]))


def test_every_manifest_byte_change_breaks_the_signature(signed, keys):
    """An attacker who re-packs a consistent archive (valid zip, CRCs) still cannot change one byte."""
    manifest, name, model, sig = _members(signed)
    v = verifier(keys["pub"])
    for i in range(len(manifest)):
        changed = bytearray(manifest)
        changed[i] ^= 0x01
        with pytest.raises(SignatureError, match="does not match"):
            read_bundle(pack_members(bytes(changed), name, model, sig), verify_signature=v)


def test_tampered_model_with_rehashed_manifest_fails_signature(signed, keys):
    manifest, name, model, sig = _members(signed)
    evil_model = model[:-1] + bytes([model[-1] ^ 0xFF])
    doc = json.loads(manifest)
    doc["members"][name] = sha256_hex(evil_model)
    evil_manifest = json.dumps(doc, sort_keys=True, indent=1).encode()
    evil = pack_members(evil_manifest, name, evil_model, sig)
    read_bundle(evil)  # internally consistent: only the signature can tell
    with pytest.raises(SignatureError, match="does not match"):
        read_bundle(evil, verify_signature=verifier(keys["pub"]))


def test_signature_checked_before_manifest_is_parsed(signed, keys, monkeypatch):
    manifest, name, model, sig = _members(signed)
    hostile = pack_members(b'{"format_version": NaN' + b"[" * 5000, name, model, sig)

    def must_not_parse(*_a, **_k):
        raise AssertionError("the manifest was parsed before the signature was checked")

    monkeypatch.setattr(bundle_mod, "strict_loads", must_not_parse)
    monkeypatch.setattr(bundle_mod, "parse_manifest", must_not_parse)
    with pytest.raises(SignatureError):
        read_bundle(hostile, verify_signature=verifier(keys["pub"]))


def test_encrypted_private_key_needs_its_password(unsigned, keys):
    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"s3cret")
    )
    with pytest.raises(SignatureError, match="password"):
        load_private_key(pem)
    with pytest.raises(SignatureError):
        load_private_key(pem, password=b"wrong")
    signed = sign_bundle(unsigned, load_private_key(pem, password=b"s3cret"))
    read_bundle(signed, verify_signature=verifier(k.public_key()))


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
        (b"\x01" * 31, "not a PEM public key"),
        ("/nonexistent/key.pub", "file not found"),
        (12345, "expected a path"),
    ],
)
def test_bad_public_keys_are_typed(bad, fragment):
    with pytest.raises(SignatureError, match=fragment):
        load_public_key(bad)


def test_public_key_cannot_sign(unsigned, keys):
    with pytest.raises(SignatureError, match="public key"):
        signature_for(b"{}", keys["pub"])


def test_non_ed25519_key_rejected():
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(SignatureError, match="Ed25519"):
        load_public_key(pem)


def test_signing_module_does_not_import_cryptography_until_needed():
    code = (
        "import sys, edgefin_runtime, edgefin_runtime.signing as s;"
        "assert s.verifier(None) is None;"
        "assert 'cryptography' not in sys.modules, 'cryptography imported eagerly'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
