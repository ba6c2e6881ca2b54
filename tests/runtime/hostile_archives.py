"""A catalogue of hostile bundles: each kind of attack on the archive, its expected error and message.

Shared by ``test_hostile_archives.py`` and ``benchmarks/security_sweep.py``. A raw zip writer gives
full control over every header field (names, sizes, flags, attributes, extra fields), which
``zipfile`` would not let us get wrong on purpose.
"""

from __future__ import annotations

import functools
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from security_bundles import tiny_onnx_bundle

from edgefin_runtime.bundle import pack_members, read_bundle
from edgefin_runtime.errors import BundleFormatError, IntegrityError, ManifestError
from edgefin_runtime.manifest import AcceptanceSet

REG = 0o100644 << 16
LNK = 0o120777 << 16


@dataclass
class Entry:
    name: bytes
    data: bytes  # bytes as stored in the archive (compressed when method != 0)
    method: int = 0
    usize: int | None = None  # declared uncompressed size (default: len(data) when stored)
    csize: int | None = None
    crc: int | None = None
    flags: int = 0
    ext_attr: int = REG
    extra: bytes = b""
    local_name: bytes | None = None
    offset: int | None = None  # central directory's pointer to the local header


def raw_zip(
    entries: list[Entry], *, comment: bytes = b"", prefix: bytes = b"", suffix: bytes = b"", count: int | None = None
) -> bytes:
    out = bytearray(prefix)
    central = bytearray()
    for e in entries:
        usize = len(e.data) if e.usize is None else e.usize
        csize = len(e.data) if e.csize is None else e.csize
        crc = zlib.crc32(e.data) & 0xFFFFFFFF if e.crc is None else e.crc
        lname = e.name if e.local_name is None else e.local_name
        offset = len(out) if e.offset is None else e.offset
        out += (
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                20,
                e.flags,
                e.method,
                0,
                0x5021,
                crc,
                csize,
                usize,
                len(lname),
                len(e.extra),
            )
            + lname
            + e.extra
            + e.data
        )
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                0x314,
                20,
                e.flags,
                e.method,
                0,
                0x5021,
                crc,
                csize,
                usize,
                len(e.name),
                len(e.extra),
                0,
                0,
                0,
                e.ext_attr,
                offset,
            )
            + e.name
            + e.extra
        )
    n = len(entries) if count is None else count
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), len(out), len(comment)) + comment
    return bytes(out) + suffix


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


@functools.cache
def _zeros_deflated(n: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\0" * (1 << 20)
    parts = [c.compress(chunk) for _ in range(n >> 20)]
    return b"".join(parts) + c.flush()


@dataclass(frozen=True)
class Case:
    kind: str
    build: Callable[[], bytes]
    error: type
    fragment: str


def cases() -> list[Case]:
    good = tiny_onnx_bundle(seed=5)
    b = read_bundle(good)
    man, model, acceptance = b.manifest_bytes, b.model_bytes, b.acceptance_bytes

    def with_manifest(text: bytes, model_bytes: bytes = model, name: str = "model.onnx") -> bytes:
        return pack_members(text, name, model_bytes, None, acceptance)

    def mutated(fn: Callable[[dict[str, Any]], Any]) -> bytes:
        d = json.loads(man)
        fn(d)
        return with_manifest(json.dumps(d, sort_keys=True, indent=1).encode())

    def entries(*extra: Entry, manifest: bytes = man) -> list[Entry]:
        return [Entry(b"manifest.json", manifest), Entry(b"model.onnx", model), *extra]

    nested = b'{"a":' * 20000 + b"1" + b"}" * 20000
    # the same kind of bundle with an acceptance set: its own member, acceptance.json
    gold = b.manifest.golden
    with_set = tiny_onnx_bundle(
        seed=5,
        acceptance=AcceptanceSet(
            records=tuple(g.record for g in gold),
            scores=tuple(g.score for g in gold),
            source_scores=tuple(g.score for g in gold),
            source_stage="dense",
        ),
    )
    sb = read_bundle(with_set)
    sman, acc = sb.manifest_bytes, sb.acceptance_bytes
    assert acc is not None

    def acc_entries(*members: Entry) -> list[Entry]:
        return [Entry(b"manifest.json", sman), Entry(b"model.onnx", model), *members]

    C = Case
    return [
        C(
            "acceptance member twice",
            lambda: raw_zip(acc_entries(Entry(b"acceptance.json", acc), Entry(b"acceptance.json", acc))),
            BundleFormatError,
            "duplicate member",
        ),
        C(
            "acceptance member deflated",
            lambda: raw_zip(
                acc_entries(Entry(b"acceptance.json", _deflate(acc), method=8, usize=len(acc), crc=zlib.crc32(acc)))
            ),
            BundleFormatError,
            "compressed",
        ),
        C(
            "acceptance member a symlink",
            lambda: raw_zip(acc_entries(Entry(b"acceptance.json", b"/etc/shadow", ext_attr=LNK))),
            BundleFormatError,
            "symlink",
        ),
        C(
            "acceptance member over its cap",
            lambda: raw_zip(acc_entries(Entry(b"acceptance.json", b" " * (4 * 1024 * 1024 + 1) + acc))),
            BundleFormatError,
            "declares",
        ),
        C(
            "acceptance member before the model",
            lambda: raw_zip(
                [Entry(b"manifest.json", sman), Entry(b"acceptance.json", acc), Entry(b"model.onnx", model)]
            ),
            IntegrityError,
            "canonical",
        ),
        C(
            "acceptance member the manifest does not list",
            lambda: pack_members(man, "model.onnx", model, None, acc),
            IntegrityError,
            "do not match the manifest's list",
        ),
        C(
            "acceptance member the manifest lists, missing",
            lambda: pack_members(sman, "model.onnx", model, None),
            IntegrityError,
            "do not match the manifest's list",
        ),
        C("not a zip", lambda: b"#!/bin/sh\necho pwned\n" * 10, BundleFormatError, "not an edgefin bundle"),
        C("empty file", lambda: b"", BundleFormatError, "empty file"),
        C("zip magic, garbage body", lambda: b"PK\x03\x04" + b"\xff" * 200, BundleFormatError, "damaged zip"),
        C("truncated archive", lambda: good[: len(good) // 2], BundleFormatError, "damaged zip"),
        C(
            "path traversal",
            lambda: raw_zip(entries(Entry(b"../../etc/cron.d/x", b"* * * * * root sh"))),
            BundleFormatError,
            "must be flat",
        ),
        C(
            "absolute path",
            lambda: raw_zip(entries(Entry(b"/etc/passwd", b"root::0:0"))),
            BundleFormatError,
            "must be flat",
        ),
        C(
            "backslash path",
            lambda: raw_zip(entries(Entry(b"..\\..\\evil.dll", b"MZ"))),
            BundleFormatError,
            "must be flat",
        ),
        C("drive letter", lambda: raw_zip(entries(Entry(b"C:evil", b"x"))), BundleFormatError, "must be flat"),
        C("directory entry", lambda: raw_zip(entries(Entry(b"model.onnx/", b""))), BundleFormatError, "must be flat"),
        C(
            "nested member",
            lambda: raw_zip([Entry(b"manifest.json", man), Entry(b"sub/model.onnx", model)]),
            BundleFormatError,
            "must be flat",
        ),
        C(
            "unexpected member",
            lambda: raw_zip(entries(Entry(b"README.txt", b"hi"))),
            BundleFormatError,
            "unexpected member 'README.txt'",
        ),
        C(
            "unicode look-alike name",
            lambda: raw_zip([Entry("manifest.js\u043en".encode(), man, flags=0x800), Entry(b"model.onnx", model)]),
            BundleFormatError,
            "non-ASCII",
        ),
        C(
            "NUL in name",
            lambda: raw_zip([Entry(b"manifest.json\x00.exe", man), Entry(b"model.onnx", model)]),
            IntegrityError,
            "canonical",
        ),
        C(
            "invalid UTF-8 name",
            lambda: raw_zip([Entry(b"\xff\xfe.json", man, flags=0x800)]),
            BundleFormatError,
            "damaged zip",
        ),
        C(
            "duplicate members",
            lambda: raw_zip(entries(Entry(b"model.onnx", model))),
            BundleFormatError,
            "duplicate member",
        ),
        C(
            "too many members",
            lambda: raw_zip(entries(*(Entry(f"x{i}".encode(), b"") for i in range(50)))),
            BundleFormatError,
            "at most",
        ),
        C(
            "symlink member",
            lambda: raw_zip([Entry(b"manifest.json", man), Entry(b"model.onnx", b"/etc/shadow", ext_attr=LNK)]),
            BundleFormatError,
            "symlink",
        ),
        C(
            "encrypted flag",
            lambda: raw_zip([Entry(b"manifest.json", man, flags=0x1), Entry(b"model.onnx", model)]),
            BundleFormatError,
            "encrypted",
        ),
        C(
            "strong-encryption flag",
            lambda: raw_zip([Entry(b"manifest.json", man, flags=0x41), Entry(b"model.onnx", model)]),
            BundleFormatError,
            "encrypted",
        ),
        C(
            "compression bomb (honest sizes)",
            lambda: raw_zip(
                [
                    Entry(b"manifest.json", man),
                    Entry(b"model.onnx", _zeros_deflated(64 << 20), method=8, usize=64 << 20, crc=0),
                ]
            ),
            BundleFormatError,
            "declares",
        ),
        C(
            "compression bomb (lying sizes)",
            lambda: raw_zip(
                [
                    Entry(b"manifest.json", man),
                    Entry(b"model.onnx", _zeros_deflated(64 << 20), method=8, usize=1000, crc=0),
                ]
            ),
            BundleFormatError,
            "compressed",
        ),
        C(
            "deflated members",
            lambda: raw_zip(
                [
                    Entry(b"manifest.json", _deflate(man), method=8, usize=len(man), crc=zlib.crc32(man)),
                    Entry(b"model.onnx", model),
                ]
            ),
            BundleFormatError,
            "compressed",
        ),
        C(
            "unsupported method (lzma)",
            lambda: raw_zip([Entry(b"manifest.json", man, method=14), Entry(b"model.onnx", model)]),
            BundleFormatError,
            "compressed",
        ),
        C(
            "huge declared size",
            lambda: raw_zip([Entry(b"manifest.json", man, usize=0xFFFFFFF0), Entry(b"model.onnx", model)]),
            BundleFormatError,
            "declares",
        ),
        C(
            "zip64 extra field",
            lambda: raw_zip(
                [
                    Entry(
                        b"manifest.json",
                        man,
                        usize=0xFFFFFFFF,
                        csize=0xFFFFFFFF,
                        extra=struct.pack("<HHQQ", 1, 16, 1 << 40, 1 << 40),
                    ),
                    Entry(b"model.onnx", model),
                ]
            ),
            BundleFormatError,
            "declares",
        ),
        C("zip64 writer", lambda: _zip64_written(man, model), IntegrityError, "canonical"),
        C(
            "oversized manifest",
            lambda: raw_zip(entries(manifest=b" " * (4 * 1024 * 1024 + 1) + man)),
            BundleFormatError,
            "declares",
        ),
        C("deeply nested JSON", lambda: with_manifest(nested), BundleFormatError, "nested deeper"),
        C(
            "NaN in JSON",
            lambda: with_manifest(man.replace(b'"threshold": 0.5', b'"threshold": NaN')),
            BundleFormatError,
            "NaN",
        ),
        C(
            "Infinity via 1e999",
            lambda: with_manifest(man.replace(b'"threshold": 0.5', b'"threshold": 1e999')),
            BundleFormatError,
            "infinity",
        ),
        C(
            "duplicate JSON keys",
            lambda: with_manifest(man.replace(b'"threshold": 0.5', b'"threshold": 0.5, "threshold": 0.01')),
            BundleFormatError,
            "duplicate key",
        ),
        C(
            "manifest not UTF-8",
            lambda: with_manifest(man.replace(b'"onnx-fp32"', b'"onnx-\xff\xfe"')),
            BundleFormatError,
            "UTF-8",
        ),
        C("manifest with BOM", lambda: with_manifest(b"\xef\xbb\xbf" + man), BundleFormatError, "BOM"),
        C("manifest is a list", lambda: with_manifest(b"[]"), ManifestError, "top level"),
        C("no manifest", lambda: raw_zip([Entry(b"model.onnx", model)]), BundleFormatError, "no manifest.json"),
        C(
            "missing model member",
            lambda: raw_zip([Entry(b"manifest.json", man)]),
            BundleFormatError,
            "exactly one model member",
        ),
        C(
            "two model members",
            lambda: raw_zip(entries(Entry(b"model.tflite", model))),
            BundleFormatError,
            "exactly one model member",
        ),
        C(
            "wrong model member for engine",
            lambda: with_manifest(man, name="model.tflite"),
            IntegrityError,
            "do not match the manifest",
        ),
        C(
            "manifest lists an absent member",
            lambda: mutated(lambda d: d["members"].update({"model.tflite": "0" * 64})),
            IntegrityError,
            "do not match the manifest",
        ),
        C(
            "model swapped, hash stale",
            lambda: with_manifest(man, model_bytes=model[:-1] + b"\x00"),
            IntegrityError,
            "sha256 of 'model.onnx'",
        ),
        C(
            "hash not hex",
            lambda: mutated(lambda d: d["members"].update({"model.onnx": "Z" * 64})),
            ManifestError,
            "sha256",
        ),
        C(
            "bad CRC",
            lambda: raw_zip([Entry(b"manifest.json", man, crc=zlib.crc32(man) ^ 1), Entry(b"model.onnx", model)]),
            IntegrityError,
            "CRC",
        ),
        C(
            "name differs in local header",
            lambda: raw_zip([Entry(b"manifest.json", man, local_name=b"manifest.jsoN"), Entry(b"model.onnx", model)]),
            BundleFormatError,
            "cannot be read",
        ),
        C("overlapping members", lambda: _overlapping(man, model), BundleFormatError, "cannot be read"),
        C(
            "data descriptor flag",
            lambda: raw_zip([Entry(b"manifest.json", man, flags=0x8), Entry(b"model.onnx", model)]),
            IntegrityError,
            "canonical",
        ),
        C(
            "extra field (timestamps)",
            lambda: raw_zip(
                [Entry(b"manifest.json", man, extra=struct.pack("<HHBI", 0x5455, 5, 1, 0)), Entry(b"model.onnx", model)]
            ),
            IntegrityError,
            "canonical",
        ),
        C("archive comment", lambda: raw_zip(entries(), comment=b"innocent"), IntegrityError, "canonical"),
        C("prepended data (polyglot)", lambda: b"MZ\x90\x00" + good, BundleFormatError, "not an edgefin bundle"),
        C("appended data", lambda: good + b"\x00" * 16, IntegrityError, "unexpected bytes"),
        C(
            "members reordered",
            lambda: raw_zip([Entry(b"model.onnx", model), Entry(b"manifest.json", man)]),
            IntegrityError,
            "canonical",
        ),
        C("wrong entry count", lambda: raw_zip(entries(), count=1), IntegrityError, "canonical"),
        C(
            "contract violation (hostile types)",
            lambda: mutated(lambda d: d["model"].update({"engine": ["onnx"]})),
            ManifestError,
            "engine",
        ),
    ]


def _zip64_written(man: bytes, model: bytes) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in (("manifest.json", man), ("model.onnx", model)):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = REG
            with zf.open(info, "w", force_zip64=True) as fh:
                fh.write(body)
    return buf.getvalue()


def _overlapping(man: bytes, model: bytes) -> bytes:
    """Two central-directory entries pointing at the same local header (the 'overlap' bomb trick)."""
    return raw_zip([Entry(b"manifest.json", man), Entry(b"model.onnx", man, offset=0)])
