"""Read, verify and build .efb bundles (a zip read in memory, never extracted).

Reading checks, before any parser sees the model bytes: total size cap, the zip structure, a fixed
allowlist of flat member names (no duplicates, no directories, no symlinks), per-member size caps
(the declared and the real size, so a compression bomb is stopped), stored (uncompressed) members in
the one canonical layout :func:`pack_members` writes (so every byte of the file is covered by a check),
the signature when one is required, strict JSON for the manifest, the manifest contract and
versions, and the sha256 of every member the manifest lists.

A bundle in the canonical layout (every bundle edgefin writes) is read without ``zipfile``: its
members are taken from the local headers and accepted only if the whole file is byte-identical to
what :func:`pack_members` writes for them. Anything else goes through ``zipfile`` and the full
list of structural checks, which names what is wrong. Both keep ``zipfile``, ``pathlib`` and
OpenSSL's ``hashlib`` out of a device's cold start (~20 ms together).
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from typing import Any, Union

from .errors import BundleFormatError, EdgefinRuntimeError, IntegrityError, ManifestError
from .jsonutil import strict_loads
from .lazy_dataclass import dataclass, replace
from .manifest import ACCEPTANCE_MEMBER_SINCE, ACCEPTANCE_NAME, MANIFEST_NAME, MODEL_NAMES, SIGNATURE_NAME, Manifest
from .version import version_tuple

MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_MODEL_BYTES = 48 * 1024 * 1024
MAX_SIGNATURE_BYTES = 1024
ALLOWED_MEMBERS = {MANIFEST_NAME, ACCEPTANCE_NAME, SIGNATURE_NAME, *MODEL_NAMES.values()}
_CAPS = {
    MANIFEST_NAME: MAX_MANIFEST_BYTES,
    ACCEPTANCE_NAME: MAX_MANIFEST_BYTES,
    SIGNATURE_NAME: MAX_SIGNATURE_BYTES,
    **{n: MAX_MODEL_BYTES for n in MODEL_NAMES.values()},
}
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)

#: what load() and read_bundle() read: a path or the bundle's bytes (a real Union, not a string alias: other
#: modules' annotations use it, and runtime type-hint lookups resolve it there)
Source = Union[str, os.PathLike[str], bytes, bytearray, memoryview]


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: the parsed manifest, its exact bytes, the model bytes, the signature, and the
    ``acceptance.json`` member's bytes (None in bundles without one; ``manifest.acceptance`` parses them)."""

    manifest: Manifest
    manifest_bytes: bytes
    model_bytes: bytes
    signature: bytes | None
    source: str
    acceptance_bytes: bytes | None = None

    @property
    def sha256(self) -> str:
        """The whole file's sha256 (its identity in reports and serving headers), computed on first use:
        a restart that only scores never needs it. Every member's own hash is checked at read, and the
        file was accepted only as the canonical layout of its members, so the file is rebuilt from them
        (not kept: a second copy of every loaded bundle would stay in a device's memory)."""
        digest: str | None = self.__dict__.get("_sha256")
        if digest is None:
            whole = pack_members(
                self.manifest_bytes, self.manifest.model.file, self.model_bytes, self.signature, self.acceptance_bytes
            )
            digest = self.__dict__["_sha256"] = sha256_hex(whole)
        return digest


#: below this many bytes the interpreter's built-in SHA-256 hashes faster than importing OpenSSL's
_SMALL_HASH = 1 << 19


def sha256_hex(data: bytes) -> str:
    """The sha256 hex digest (the same digest whichever implementation computes it)."""
    return _sha256(len(data))(data).hexdigest()  # type: ignore[no-any-return]


def _sha256(size: int) -> Any:
    if size < _SMALL_HASH:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found]  # CPython <= 3.11
        except ImportError:
            try:
                from _sha2 import sha256  # type: ignore[import-not-found]  # CPython >= 3.12
            except ImportError:
                from hashlib import sha256
        return sha256
    from hashlib import sha256

    return sha256


def read_bytes(source: Source) -> tuple[bytes, str]:
    """The raw bundle bytes and a label for messages; refuses anything over the size cap."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = "<bytes>"
    else:
        path = os.fspath(source)
        label = path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise BundleFormatError(f"bundle {label}: file not found") from None
        except OSError as exc:
            raise BundleFormatError(f"bundle {label}: cannot be read ({exc.strerror})") from None
        if not stat.S_ISREG(st.st_mode):
            raise BundleFormatError(f"bundle {label}: not a regular file")
        if st.st_size > MAX_BUNDLE_BYTES:
            raise BundleFormatError(f"bundle {label}: {st.st_size} bytes exceeds the {MAX_BUNDLE_BYTES}-byte cap")
        with open(path, "rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleFormatError(f"bundle {label}: exceeds the {MAX_BUNDLE_BYTES}-byte cap")
    return data, label


def read_members(data: bytes, label: str) -> dict[str, bytes]:
    """Open the zip in memory and return its allowed members, enforcing every structural rule."""
    if not data:
        raise BundleFormatError(f"bundle {label}: empty file (expected an edgefin .efb bundle)")
    if not data.startswith(b"PK\x03\x04"):
        raise BundleFormatError(f"bundle {label}: not an edgefin bundle (expected a zip archive)")
    canonical = _canonical_members(data, label)
    if canonical is not None:
        return canonical
    import io
    import zipfile

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception as exc:  # zipfile raises many types on hostile input (struct, unicode, value...)
        raise BundleFormatError(
            f"bundle {label}: damaged zip archive ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    if len(infos) > len(ALLOWED_MEMBERS):
        raise BundleFormatError(f"bundle {label}: {len(infos)} members, at most {len(ALLOWED_MEMBERS)} allowed")
    seen: dict[str, bytes] = {}
    for info in infos:
        name = info.filename
        _check_member_name(name, label)
        if name in seen:
            raise BundleFormatError(f"bundle {label}: duplicate member {name!r}")
        mode = (info.external_attr >> 16) & 0o170000
        if mode and mode != stat.S_IFREG:
            raise BundleFormatError(f"bundle {label}: member {name!r} is not a regular file (symlink or device)")
        if info.flag_bits & 0x41:
            raise BundleFormatError(f"bundle {label}: member {name!r} is encrypted")
        cap = _CAPS[name]
        if info.file_size > cap or info.compress_size > cap:
            raise BundleFormatError(
                f"bundle {label}: member {name!r} declares {max(info.file_size, info.compress_size)} bytes (cap {cap})"
            )
        if info.compress_type != zipfile.ZIP_STORED:
            raise BundleFormatError(
                f"bundle {label}: member {name!r} is compressed (method "
                f"{info.compress_type}); bundles store members uncompressed"
            )
        try:
            with zf.open(info) as fh:
                body = fh.read(cap + 1)
        except zipfile.BadZipFile as exc:
            if "CRC" in str(exc):
                raise IntegrityError(
                    f"bundle {label}: member {name!r} is corrupted (its CRC-32 does not "
                    f"match); rebuild or re-download the bundle"
                ) from None
            raise BundleFormatError(f"bundle {label}: member {name!r} cannot be read ({exc})") from None
        except Exception as exc:  # struct.error, NotImplementedError, ... from a hostile header
            raise BundleFormatError(
                f"bundle {label}: member {name!r} cannot be read ({type(exc).__name__}: {str(exc)[:120]})"
            ) from None
        if len(body) > cap:
            raise BundleFormatError(f"bundle {label}: member {name!r} inflates beyond {cap} bytes (compression bomb?)")
        seen[name] = body
    if MANIFEST_NAME not in seen:
        raise BundleFormatError(f"bundle {label}: no {MANIFEST_NAME} member")
    models = [n for n in MODEL_NAMES.values() if n in seen]
    if len(models) != 1:
        found = models or "none"
        raise BundleFormatError(
            f"bundle {label}: expected exactly one model member ({' or '.join(MODEL_NAMES.values())}), found {found}"
        )
    _check_canonical(data, _ordered(seen), label)
    return seen


def _canonical_members(data: bytes, label: str) -> dict[str, bytes] | None:
    """The members of a bundle in exactly the layout :func:`pack_members` writes, else None.

    Members are read from the local headers (at most as many as are allowed); they are returned only
    if every name is allowed and unique, every member within its cap, there is a manifest and one
    model, and the whole file equals the canonical layout of these members (so flags, methods,
    CRCs, attributes and the central directory are all what edgefin writes). On None the caller
    reads the archive with ``zipfile`` and reports exactly what is wrong.
    """
    seen: dict[str, bytes] = {}
    offset = 0
    while len(seen) < len(ALLOWED_MEMBERS) and data.startswith(b"PK\x03\x04", offset):
        if offset + 30 > len(data):
            return None
        size, name_len, extra_len = struct.unpack_from("<4xIHH", data, offset + 18)
        start = offset + 30 + name_len + extra_len
        try:
            name = data[offset + 30 : offset + 30 + name_len].decode("ascii")
        except UnicodeDecodeError:
            return None
        if name not in _CAPS or name in seen or size > _CAPS[name] or start + size > len(data):
            return None
        seen[name] = data[start : start + size]
        offset = start + size
    if MANIFEST_NAME not in seen or sum(n in seen for n in MODEL_NAMES.values()) != 1:
        return None
    try:
        _check_canonical(data, _ordered(seen), label)
    except IntegrityError:
        return None
    return seen


def _check_member_name(name: str, label: str) -> None:
    if name in ALLOWED_MEMBERS:
        return
    shown = repr(name[:80])
    if "/" in name or "\\" in name or ".." in name or ":" in name:
        raise BundleFormatError(
            f"bundle {label}: unexpected member {shown}: member names must be flat "
            f"(no folders, absolute paths or '..'); allowed: {sorted(ALLOWED_MEMBERS)}"
        )
    if not name.isascii():
        raise BundleFormatError(
            f"bundle {label}: unexpected member {shown}: non-ASCII name (look-alike "
            f"characters?); allowed: {sorted(ALLOWED_MEMBERS)}"
        )
    raise BundleFormatError(
        f"bundle {label}: unexpected member {shown} (allowed: {sorted(ALLOWED_MEMBERS)}); a bundle built by a "
        f"newer edgefin may carry members this runtime does not know: upgrade edgefin-runtime"
    )


def _ordered(members: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """Members in canonical order: manifest, model, acceptance set, signature."""
    order = [MANIFEST_NAME, *MODEL_NAMES.values(), ACCEPTANCE_NAME, SIGNATURE_NAME]
    return [(n, members[n]) for n in order if n in members]


def _check_canonical(data: bytes, items: list[tuple[str, bytes]], label: str) -> None:
    """The archive must be byte-identical to what :func:`pack_members` writes for these members.

    Zip headers hold bytes no hash covers (timestamps, attributes, padding, comments, gaps between
    members); demanding the canonical layout means that every byte of a bundle is checked.
    """
    view = memoryview(data)
    end = 0
    for offset, piece in _layout(items):
        if view[offset : offset + len(piece)] != piece:
            raise IntegrityError(
                f"bundle {label}: the zip layout near byte {offset} is not the canonical one "
                f"edgefin writes; the bundle was modified or damaged after it was built - "
                f"rebuild or re-download it"
            )
        end = offset + len(piece)
    if end != len(data):
        raise IntegrityError(
            f"bundle {label}: {len(data) - end} unexpected bytes after the archive; the bundle "
            f"was modified or damaged - rebuild or re-download it"
        )


def parse_manifest(manifest_bytes: bytes, label: str, acceptance: bytes | None = None) -> Manifest:
    """The validated manifest; ``acceptance`` (the ``acceptance.json`` member) is parsed on first use."""
    raw = strict_loads(manifest_bytes, f"bundle {label}: {MANIFEST_NAME}")
    try:
        return Manifest.from_dict(raw, acceptance_member=acceptance, label=label)
    except EdgefinRuntimeError:
        raise
    except Exception as exc:  # a contract check that missed a hostile shape must still be typed
        raise ManifestError(
            f"bundle {label}: {MANIFEST_NAME} violates the manifest contract ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None


def verify_members(manifest: Manifest, members: dict[str, bytes], label: str) -> None:
    """Every non-manifest, non-signature member is listed in the manifest with a matching hash."""
    listed = set(manifest.members)
    present = set(members) - {MANIFEST_NAME, SIGNATURE_NAME}
    if listed != present:
        raise IntegrityError(
            f"bundle {label}: members {sorted(present)} do not match the manifest's list {sorted(listed)}"
        )
    for name, expected in manifest.members.items():
        actual = sha256_hex(members[name])
        if actual != expected:
            raise IntegrityError(
                f"bundle {label}: sha256 of {name!r} is {actual[:16]}..., the manifest says "
                f"{expected[:16]}...; the bundle is corrupted or was modified - rebuild or "
                f"re-download it"
            )


def read_bundle(source: Source, *, verify_signature: object | None = None) -> Bundle:
    """Read and verify a bundle. ``verify_signature(manifest_bytes, signature)`` runs before parsing."""
    data, label = read_bytes(source)
    members = read_members(data, label)
    manifest_bytes = members[MANIFEST_NAME]
    signature = members.get(SIGNATURE_NAME)
    if verify_signature is not None:
        verify_signature(manifest_bytes, signature, label)  # type: ignore[operator]
    acceptance = members.get(ACCEPTANCE_NAME)
    manifest = parse_manifest(manifest_bytes, label, acceptance)
    verify_members(manifest, members, label)
    return Bundle(
        manifest=manifest,
        manifest_bytes=manifest_bytes,
        model_bytes=members[manifest.model.file],
        signature=signature,
        source=label,
        acceptance_bytes=acceptance,
    )


def build_bundle(manifest: Manifest, model_bytes: bytes, signature: bytes | None = None) -> tuple[bytes, Manifest]:
    """Deterministic zip bytes for a manifest and its model (member hashes filled in here).

    The acceptance set, if any, goes into its own ``acceptance.json`` member (hashed in ``members``), not
    into manifest.json: a device's ``load()`` then reads the manifest without it."""
    hashes = {manifest.model.file: sha256_hex(model_bytes)}
    acceptance = None if manifest.acceptance is None else manifest.acceptance.to_json_bytes()
    needs = manifest.min_runtime_version
    if acceptance is not None:
        hashes[ACCEPTANCE_NAME] = sha256_hex(acceptance)
        if version_tuple(needs) < version_tuple(ACCEPTANCE_MEMBER_SINCE):  # older runtimes refuse the member
            needs = ACCEPTANCE_MEMBER_SINCE
    manifest = replace(manifest, members=hashes, min_runtime_version=needs)
    manifest_bytes = replace(manifest, acceptance=None).to_json_bytes()
    written = Manifest.from_dict(
        strict_loads(manifest_bytes, "new manifest"), acceptance_member=acceptance, label="<new bundle>"
    )
    written.acceptance  # noqa: B018  # never write what we cannot read: this parses the member as a device would
    return pack_members(manifest_bytes, manifest.model.file, model_bytes, signature, acceptance), manifest


def pack_members(
    manifest_bytes: bytes,
    model_name: str,
    model_bytes: bytes,
    signature: bytes | None,
    acceptance: bytes | None = None,
) -> bytes:
    """Zip the members uncompressed, in a fixed order, with fixed headers: equal inputs give equal bytes.

    Members are stored, not deflated, so no byte of a bundle escapes a check (deflate streams have
    padding bits that decompress the same when flipped) and no inflation can exhaust memory.
    """
    if model_name not in MODEL_NAMES.values():
        raise BundleFormatError(f"model member {model_name!r}: expected one of {sorted(MODEL_NAMES.values())}")
    items = [(MANIFEST_NAME, bytes(manifest_bytes)), (model_name, bytes(model_bytes))]
    if acceptance is not None:
        items.append((ACCEPTANCE_NAME, bytes(acceptance)))
    if signature is not None:
        items.append((SIGNATURE_NAME, bytes(signature)))
    for name, body in items:
        if len(body) > _CAPS[name]:
            raise BundleFormatError(f"member {name!r}: {len(body)} bytes exceeds the {_CAPS[name]}-byte cap")
    return b"".join(piece for _, piece in _layout(items))


_DOS_TIME = 0
_DOS_DATE = ((_FIXED_TIME[0] - 1980) << 9) | (_FIXED_TIME[1] << 5) | _FIXED_TIME[2]
_VERSION = 20
_MADE_BY = (3 << 8) | _VERSION  # Unix, zip spec 2.0
_EXT_ATTR = (stat.S_IFREG | 0o644) << 16


def _layout(items: list[tuple[str, bytes]]) -> list[tuple[int, bytes]]:
    """(offset, bytes) pieces of the canonical stored zip: local headers, bodies, central directory."""
    pieces: list[tuple[int, bytes]] = []
    central: list[bytes] = []
    offset = 0
    for name, body in items:
        raw = name.encode("ascii")
        crc = zlib.crc32(body) & 0xFFFFFFFF
        local = (
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, _VERSION, 0, 0, _DOS_TIME, _DOS_DATE, crc, len(body), len(body), len(raw), 0
            )
            + raw
        )
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                _MADE_BY,
                _VERSION,
                0,
                0,
                _DOS_TIME,
                _DOS_DATE,
                crc,
                len(body),
                len(body),
                len(raw),
                0,
                0,
                0,
                0,
                _EXT_ATTR,
                offset,
            )
            + raw
        )
        pieces.append((offset, local))
        offset += len(local)
        pieces.append((offset, body))
        offset += len(body)
    cd = b"".join(central)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(items), len(items), len(cd), offset, 0)
    pieces.append((offset, cd + eocd))
    return pieces
