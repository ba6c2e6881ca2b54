"""Read, verify and build .efb bundles (a zip read in memory, never extracted).

Reading checks, before any parser sees the model bytes: total size cap, the zip structure, a fixed
allowlist of flat member names (no duplicates, no directories, no symlinks), per-member size caps
(the declared and the real size, so a compression bomb is stopped), strict JSON for the manifest,
the manifest contract and versions, and the sha256 of every member the manifest lists.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Union

from .errors import BundleFormatError, IntegrityError
from .jsonutil import strict_loads
from .manifest import MANIFEST_NAME, MODEL_NAMES, SIGNATURE_NAME, Manifest

MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_MODEL_BYTES = 48 * 1024 * 1024
MAX_SIGNATURE_BYTES = 1024
ALLOWED_MEMBERS = {MANIFEST_NAME, SIGNATURE_NAME, *MODEL_NAMES.values()}
_CAPS = {MANIFEST_NAME: MAX_MANIFEST_BYTES, SIGNATURE_NAME: MAX_SIGNATURE_BYTES,
         **{n: MAX_MODEL_BYTES for n in MODEL_NAMES.values()}}
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: the parsed manifest, its exact bytes, the model bytes, the signature."""

    manifest: Manifest
    manifest_bytes: bytes
    model_bytes: bytes
    signature: bytes | None
    source: str
    sha256: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(source: Source) -> tuple[bytes, str]:
    """The raw bundle bytes and a label for messages; refuses anything over the size cap."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = "<bytes>"
    else:
        path = Path(os.fspath(source))
        label = str(path)
        try:
            st = path.stat()
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
    if not data.startswith(b"PK\x03\x04"):
        raise BundleFormatError(f"bundle {label}: not an edgefin bundle (expected a zip archive)")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise BundleFormatError(f"bundle {label}: damaged zip archive ({exc})") from None
    if len(infos) > len(ALLOWED_MEMBERS):
        raise BundleFormatError(f"bundle {label}: {len(infos)} members, at most {len(ALLOWED_MEMBERS)} allowed")
    seen: dict[str, bytes] = {}
    for info in infos:
        name = info.filename
        if name not in ALLOWED_MEMBERS:
            raise BundleFormatError(
                f"bundle {label}: unexpected member {name[:80]!r} (allowed: {sorted(ALLOWED_MEMBERS)})")
        if name in seen:
            raise BundleFormatError(f"bundle {label}: duplicate member {name!r}")
        mode = (info.external_attr >> 16) & 0o170000
        if mode and mode != stat.S_IFREG:
            raise BundleFormatError(f"bundle {label}: member {name!r} is not a regular file (symlink or device)")
        if info.flag_bits & 0x1:
            raise BundleFormatError(f"bundle {label}: member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleFormatError(f"bundle {label}: member {name!r} uses an unsupported compression method")
        cap = _CAPS[name]
        if info.file_size > cap:
            raise BundleFormatError(f"bundle {label}: member {name!r} declares {info.file_size} bytes "
                                    f"(cap {cap})")
        try:
            with zf.open(info) as fh:
                body = fh.read(cap + 1)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError, RuntimeError) as exc:
            raise BundleFormatError(f"bundle {label}: member {name!r} cannot be read ({exc})") from None
        except Exception as exc:  # zlib.error and friends from a damaged stream
            raise BundleFormatError(f"bundle {label}: member {name!r} is damaged ({type(exc).__name__}: {exc})") from None
        if len(body) > cap:
            raise BundleFormatError(f"bundle {label}: member {name!r} inflates beyond {cap} bytes (compression bomb?)")
        seen[name] = body
    if MANIFEST_NAME not in seen:
        raise BundleFormatError(f"bundle {label}: no {MANIFEST_NAME} member")
    return seen


def parse_manifest(manifest_bytes: bytes, label: str) -> Manifest:
    raw = strict_loads(manifest_bytes, f"bundle {label}: {MANIFEST_NAME}")
    return Manifest.from_dict(raw)


def verify_members(manifest: Manifest, members: dict[str, bytes], label: str) -> None:
    """Every non-manifest, non-signature member is listed in the manifest with a matching hash."""
    listed = set(manifest.members)
    present = set(members) - {MANIFEST_NAME, SIGNATURE_NAME}
    if listed != present:
        raise IntegrityError(f"bundle {label}: members {sorted(present)} do not match the manifest's list "
                             f"{sorted(listed)}")
    for name, expected in manifest.members.items():
        actual = sha256_hex(members[name])
        if actual != expected:
            raise IntegrityError(f"bundle {label}: sha256 of {name!r} is {actual[:16]}..., the manifest says "
                                 f"{expected[:16]}...; the bundle is corrupted or was modified - rebuild or "
                                 f"re-download it")


def read_bundle(source: Source, *, verify_signature: "object | None" = None) -> Bundle:
    """Read and verify a bundle. ``verify_signature(manifest_bytes, signature)`` runs before parsing."""
    data, label = read_bytes(source)
    members = read_members(data, label)
    manifest_bytes = members[MANIFEST_NAME]
    signature = members.get(SIGNATURE_NAME)
    if verify_signature is not None:
        verify_signature(manifest_bytes, signature, label)  # type: ignore[operator]
    manifest = parse_manifest(manifest_bytes, label)
    verify_members(manifest, members, label)
    return Bundle(manifest=manifest, manifest_bytes=manifest_bytes, model_bytes=members[manifest.model.file],
                  signature=signature, source=label, sha256=sha256_hex(data))


def build_bundle(manifest: Manifest, model_bytes: bytes, signature: bytes | None = None) -> tuple[bytes, Manifest]:
    """Deterministic zip bytes for a manifest and its model (member hashes filled in here)."""
    manifest = replace(manifest, members={manifest.model.file: sha256_hex(model_bytes)})
    manifest_bytes = manifest.to_json_bytes()
    Manifest.from_dict(strict_loads(manifest_bytes, "new manifest"))  # never write what we cannot read
    return pack_members(manifest_bytes, manifest.model.file, model_bytes, signature), manifest


def pack_members(manifest_bytes: bytes, model_name: str, model_bytes: bytes, signature: bytes | None) -> bytes:
    """Zip the members in a fixed order with fixed timestamps, so equal inputs give equal bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        items = [(MANIFEST_NAME, manifest_bytes), (model_name, model_bytes)]
        if signature is not None:
            items.append((SIGNATURE_NAME, signature))
        for name, body in items:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, body)
    return buf.getvalue()
