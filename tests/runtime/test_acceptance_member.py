"""The acceptance set's own bundle member, ``acceptance.json``: written by build_bundle, hashed with the
other members, carried through signing and read-modify-write, parsed only when first read (load()
leaves it alone), and bundles that embed the set in manifest.json (built before the member) still read."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace

import pytest

import edgefin_runtime
from edgefin_runtime import acceptance
from edgefin_runtime.bundle import build_bundle, pack_members, read_bundle, sha256_hex
from edgefin_runtime.errors import BundleFormatError, IntegrityError, ManifestError, SignatureError
from edgefin_runtime.manifest import ACCEPTANCE_NAME, DeferredAcceptance


def _unparsed(manifest: object) -> bool:
    return type(vars(manifest)["acceptance"]) is DeferredAcceptance


def test_build_bundle_writes_the_set_to_its_own_hashed_member(tiny_bundles, variant):
    b = read_bundle(tiny_bundles[variant])
    assert b.acceptance_bytes is not None and "acceptance" not in json.loads(b.manifest_bytes)
    assert b.manifest.members[ACCEPTANCE_NAME] == sha256_hex(b.acceptance_bytes)
    doc = json.loads(b.acceptance_bytes)
    assert doc["fields"] and len(doc["records"]) == len(doc["scores"]) == 64
    # one record per line: a reader (or a diff) sees the records, and the member stays compact
    assert b.acceptance_bytes.count(b"\n") == len(doc) + len(doc["records"]) + 3


def test_load_leaves_the_set_unparsed_until_it_is_read(tiny_bundles):
    p = edgefin_runtime.load(tiny_bundles["onnx-fp32"])
    assert _unparsed(p.info)
    p.score(dict(p.info.golden[0].record))
    assert _unparsed(p.info)
    acc = p.info.acceptance
    assert acc is not None and len(acc.records) == 64 and not _unparsed(p.info)
    assert p.info.acceptance is acc  # parsed once
    assert acceptance.check(p).passed


def test_a_read_modify_write_keeps_the_set(tiny_bundles):
    b = read_bundle(tiny_bundles["tflite-fp32"])
    data, _ = build_bundle(replace(b.manifest, model_card={"title": "changed"}), b.model_bytes)
    again = read_bundle(data)
    assert again.acceptance_bytes == b.acceptance_bytes
    assert again.manifest.acceptance == b.manifest.acceptance
    assert again.manifest.model_card == {"title": "changed"}


def test_equal_manifests_compare_equal_whether_or_not_parsed(tiny_bundles):
    one, two = read_bundle(tiny_bundles["tflite-int8"]), read_bundle(tiny_bundles["tflite-int8"])
    assert one.manifest.acceptance is not None and not _unparsed(one.manifest) and _unparsed(two.manifest)
    assert one.manifest == two.manifest
    assert pickle.loads(pickle.dumps(two.manifest)) == one.manifest


def test_a_bundle_that_embeds_the_set_in_its_manifest_still_loads_and_verifies(rebundle):
    data = rebundle("onnx-fp32", lambda d: None, embed_acceptance=True)
    b = read_bundle(data)
    assert b.acceptance_bytes is None and "acceptance" in json.loads(b.manifest_bytes)
    p = edgefin_runtime.load(data)
    assert not _unparsed(p.info) and len(p.info.acceptance.records) == 64
    assert acceptance.check(p).passed


def test_a_set_both_embedded_and_in_its_member_is_refused(rebundle, tiny_bundles):
    b = read_bundle(tiny_bundles["onnx-fp32"])
    d = json.loads(b.manifest_bytes)
    d["acceptance"] = json.loads(b.acceptance_bytes)
    body = json.dumps(d, sort_keys=True, indent=1).encode()
    with pytest.raises(ManifestError, match=r"in manifest\.json and in acceptance\.json"):
        edgefin_runtime.load(pack_members(body, b.manifest.model.file, b.model_bytes, None, b.acceptance_bytes))


def test_the_member_is_covered_by_the_hashes(tiny_bundles):
    b = read_bundle(tiny_bundles["onnx-fp32"])
    changed = b.acceptance_bytes.replace(b'"seed":', b'"seed" :', 1)
    with pytest.raises(IntegrityError, match=r"sha256 of 'acceptance\.json'"):
        edgefin_runtime.load(pack_members(b.manifest_bytes, b.manifest.model.file, b.model_bytes, None, changed))
    with pytest.raises(IntegrityError, match="do not match the manifest's list"):
        edgefin_runtime.load(pack_members(b.manifest_bytes, b.manifest.model.file, b.model_bytes, None))


def test_a_malformed_member_loads_and_scores_but_verify_refuses_it(rebundle, tiny_bundles, tmp_path, capsys):
    def text(d):
        d["acceptance"]["scores"] = d["acceptance"]["scores"][:-1]

    data = rebundle("onnx-fp32", text)
    p = edgefin_runtime.load(data)
    assert p.score(dict(p.info.golden[0].record)).probability == pytest.approx(p.info.golden[0].score, abs=1e-5)
    with pytest.raises(ManifestError, match=r"acceptance\.json: acceptance\.scores: expected 64 scores"):
        acceptance.check(p)
    path = tmp_path / "bad.efb"
    path.write_bytes(data)
    from edgefin_runtime.cli import main

    code = main(["verify", str(path)])
    assert code != 0 and "acceptance.scores" in capsys.readouterr().err


@pytest.fixture(scope="module")
def keys():
    pytest.importorskip("cryptography")
    from edgefin_runtime.signing import generate_keypair

    return generate_keypair()


def test_signing_keeps_the_member_and_covers_it(tiny_bundles, keys):
    from edgefin_runtime.signing import sign_bundle, verifier

    priv, pub = keys
    unsigned = read_bundle(tiny_bundles["tflite-int8"])
    signed = read_bundle(sign_bundle(tiny_bundles["tflite-int8"], priv), verify_signature=verifier([pub]))
    assert signed.acceptance_bytes == unsigned.acceptance_bytes and signed.manifest_bytes == unsigned.manifest_bytes
    # a changed set, re-hashed into the manifest: consistent, but the signature no longer matches
    evil = signed.acceptance_bytes.replace(b'"seed":', b'"seed" :', 1)
    d = json.loads(signed.manifest_bytes)
    d["members"][ACCEPTANCE_NAME] = sha256_hex(evil)
    body = json.dumps(d, sort_keys=True, indent=1).encode()
    tampered = pack_members(body, signed.manifest.model.file, signed.model_bytes, signed.signature, evil)
    read_bundle(tampered)
    with pytest.raises(SignatureError, match="does not match"):
        read_bundle(tampered, verify_signature=verifier([pub]))


def test_a_bundle_with_the_member_says_which_runtime_reads_it(tiny_bundles, rebundle):
    from edgefin_runtime.manifest import ACCEPTANCE_MEMBER_SINCE
    from edgefin_runtime.version import version_tuple

    m = read_bundle(tiny_bundles["onnx-fp32"]).manifest
    assert version_tuple(m.min_runtime_version) >= version_tuple(ACCEPTANCE_MEMBER_SINCE)
    b = read_bundle(rebundle("onnx-fp32", lambda d: d.pop("acceptance")))
    data, written = build_bundle(replace(b.manifest, min_runtime_version="0.1.0"), b.model_bytes)
    assert written.min_runtime_version == "0.1.0" and ACCEPTANCE_NAME not in written.members  # no member, no need


def test_repr_shows_an_unparsed_set_without_parsing_it(rebundle):
    p = edgefin_runtime.load(rebundle("onnx-fp32", lambda d: d["acceptance"]["scores"].pop()))
    text = repr(p.info)  # a malformed set: repr must neither parse nor raise
    assert "DeferredAcceptance(acceptance.json" in text and _unparsed(p.info)


def test_an_unknown_member_says_a_newer_runtime_may_know_it(tiny_bundles):
    b = read_bundle(tiny_bundles["onnx-fp32"])
    data = pack_members(b.manifest_bytes, b.manifest.model.file, b.model_bytes, None, b.acceptance_bytes)
    import io
    import zipfile

    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("explain.json", b"{}")
    with pytest.raises(BundleFormatError, match=r"unexpected member 'explain\.json'.*upgrade edgefin-runtime"):
        edgefin_runtime.load(buf.getvalue())


def test_the_bundle_hash_is_the_files_though_the_file_is_not_kept(tiny_bundles, variant, keys):
    """Bundle.sha256 is computed on first use from the members (the file was accepted only as their
    canonical layout), so a loaded model keeps no second copy of its file."""
    import hashlib

    from edgefin_runtime.signing import sign_bundle

    path = tiny_bundles[variant]
    b = read_bundle(path)
    assert "_sha256" not in vars(b) and not any(
        isinstance(v, bytes) and len(v) >= path.stat().st_size for v in vars(b).values()
    )
    assert b.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    signed = sign_bundle(path, keys[0])
    assert read_bundle(signed).sha256 == hashlib.sha256(signed).hexdigest()
