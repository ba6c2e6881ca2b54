"""Ed25519 signatures for bundles (needs the ``[signing]`` extra: the ``cryptography`` package).

The ``signature`` member signs the exact bytes of ``manifest.json`` (prefixed by a domain tag);
the manifest carries the sha256 of the model member and the reader insists on the canonical zip
layout, so one signature covers every byte of the bundle. Verification runs before the manifest is
parsed: an unsigned bundle (when a key is configured), an untrusted key, a malformed signature or
any changed byte is a :class:`~edgefin_runtime.errors.SignatureError`.

Signature member format (ASCII, one line each, nothing else)::

    edgefin-signature-v1
    key <first 16 hex digits of sha256(raw public key)>
    ed25519 <base64 of the 64-byte signature>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Union, cast

from .errors import SignatureError

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DOMAIN = b"edgefin-bundle-manifest-v1\x00"
HEADER = "edgefin-signature-v1"
_FORMAT = re.compile(rb"edgefin-signature-v1\nkey ([0-9a-f]{16})\ned25519 ([A-Za-z0-9+/]{86}==)\n")
MAX_KEY_FILE_BYTES = 16 * 1024

KeySource = Union[str, "os.PathLike[str]", bytes, bytearray, "Ed25519PublicKey"]
PrivateKeySource = Union[str, "os.PathLike[str]", bytes, bytearray, "Ed25519PrivateKey"]
Verifier = Callable[[bytes, "bytes | None", str], None]


def _crypto() -> Any:
    """Import the Ed25519 primitives, or say which extra to install."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise SignatureError(
            "signature checks need the 'cryptography' package; install edgefin-runtime[signing]"
        ) from None
    return SimpleNamespace(InvalidSignature=InvalidSignature, serialization=serialization, ed25519=ed25519)


# ---------------------------------------------------------------- keys
def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key, shown in messages and written into signatures."""
    c = _crypto()
    raw = public_key.public_bytes(c.serialization.Encoding.Raw, c.serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PEM in PKCS#8, public PEM in SubjectPublicKeyInfo)."""
    c = _crypto()
    private = c.ed25519.Ed25519PrivateKey.generate()
    priv_pem = private.private_bytes(
        c.serialization.Encoding.PEM, c.serialization.PrivateFormat.PKCS8, c.serialization.NoEncryption()
    )
    pub_pem = private.public_key().public_bytes(
        c.serialization.Encoding.PEM, c.serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return priv_pem, pub_pem


def _key_bytes(source: Any, what: str) -> tuple[bytes, str]:
    """The bytes of a key given as a path, PEM text or raw bytes, and a label for messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), f"{what} <bytes>"
    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        return source.encode("ascii", "replace"), f"{what} <PEM text>"
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_KEY_FILE_BYTES + 1)
        except FileNotFoundError:
            raise SignatureError(f"{what} {path}: file not found") from None
        except OSError as exc:
            raise SignatureError(f"{what} {path}: cannot be read ({exc.strerror})") from None
        if len(data) > MAX_KEY_FILE_BYTES:
            raise SignatureError(f"{what} {path}: {len(data)}+ bytes is too large for a key file")
        return data, f"{what} {path}"
    raise SignatureError(f"{what}: expected a path, PEM text, raw bytes or a key object, got {type(source).__name__}")


def load_public_key(source: KeySource) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file or text, a raw 32-byte key, or a key object."""
    c = _crypto()  # the cryptography modules, imported on first use: typed Any, hence the casts
    if isinstance(source, c.ed25519.Ed25519PublicKey):
        return cast("Ed25519PublicKey", source)
    data, label = _key_bytes(source, "public key")
    if len(data) == 32 and not data.startswith(b"-----"):
        return cast("Ed25519PublicKey", c.ed25519.Ed25519PublicKey.from_public_bytes(data))
    if b"PRIVATE KEY" in data:
        raise SignatureError(
            f"{label}: this is a private key; give the device the public key "
            f"(the .pub file from 'edgefin keygen') and keep the private key off it"
        )
    try:
        key = c.serialization.load_pem_public_key(data)
    except Exception as exc:  # ValueError for bad PEM, UnsupportedAlgorithm for unknown key types
        raise SignatureError(
            f"{label}: not a PEM public key or raw 32-byte Ed25519 key ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(key, c.ed25519.Ed25519PublicKey):
        raise SignatureError(f"{label}: expected an Ed25519 key, got {type(key).__name__}")
    return cast("Ed25519PublicKey", key)


def load_private_key(source: PrivateKeySource, password: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM (PKCS#8) file or text, a raw 32-byte seed, or a key object."""
    c = _crypto()
    if isinstance(source, c.ed25519.Ed25519PrivateKey):
        return cast("Ed25519PrivateKey", source)
    data, label = _key_bytes(source, "private key")
    if len(data) == 32 and not data.startswith(b"-----"):
        return cast("Ed25519PrivateKey", c.ed25519.Ed25519PrivateKey.from_private_bytes(data))
    if b"PUBLIC KEY" in data:
        raise SignatureError(f"{label}: this is a public key; signing needs the private key (.key)")
    try:
        key = c.serialization.load_pem_private_key(data, password=password)
    except TypeError as exc:  # password missing or given for an unencrypted key
        raise SignatureError(
            f"{label}: {exc} (the password goes in an environment variable named by 'edgefin sign --password-env VAR')"
        ) from None
    except Exception as exc:
        raise SignatureError(
            f"{label}: not a PEM private key or raw 32-byte Ed25519 seed ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(key, c.ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{label}: expected an Ed25519 key, got {type(key).__name__}")
    return cast("Ed25519PrivateKey", key)


def load_trusted_keys(keys: KeySource | Iterable[KeySource] | None) -> list[Ed25519PublicKey]:
    """One key or several (a key, a path, PEM text, raw bytes, or an iterable of those)."""
    if keys is None:
        return []
    if isinstance(keys, (str, bytes, bytearray, memoryview, os.PathLike)) or not isinstance(keys, Iterable):
        keys = [keys]  # type: ignore[list-item]
    return [load_public_key(k) for k in keys]


# ---------------------------------------------------------------- sign and verify
def signature_for(manifest_bytes: bytes, private_key: PrivateKeySource) -> bytes:
    """The signature member for these exact manifest bytes."""
    key = load_private_key(private_key)
    sig = key.sign(DOMAIN + bytes(manifest_bytes))
    kid = key_id(key.public_key())
    return f"{HEADER}\nkey {kid}\ned25519 {base64.b64encode(sig).decode('ascii')}\n".encode("ascii")


def parse_signature(member: bytes, label: str) -> tuple[str, bytes]:
    """(key id, 64 signature bytes) from a signature member; SignatureError when malformed."""
    m = _FORMAT.fullmatch(member)
    if m is None:
        raise SignatureError(
            f"bundle {label}: the signature member is malformed (expected the "
            f"'{HEADER}' format written by 'edgefin sign'); re-sign the bundle"
        )
    try:
        sig = base64.b64decode(m.group(2), validate=True)
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern admits only valid base64
        raise SignatureError(f"bundle {label}: the signature member holds invalid base64") from None
    if len(sig) != 64 or base64.b64encode(sig) != m.group(2):
        raise SignatureError(f"bundle {label}: the signature member is not a canonical 64-byte Ed25519 signature")
    return m.group(1).decode("ascii"), sig


def verify_manifest(manifest_bytes: bytes, member: bytes | None, keys: list[Ed25519PublicKey], label: str) -> str:
    """Check the signature over ``manifest_bytes`` against ``keys``; return the signing key's id."""
    c = _crypto()
    if member is None:
        raise SignatureError(
            f"bundle {label}: unsigned, but a signature from a trusted key is required; "
            f"sign it with 'edgefin sign {label} --key KEY'"
        )
    if not keys:
        raise SignatureError(f"bundle {label}: no trusted public key is configured to check its signature")
    kid, sig = parse_signature(member, label)
    message = DOMAIN + bytes(manifest_bytes)
    for key in keys:
        try:
            key.verify(sig, message)
        except c.InvalidSignature:
            continue
        return key_id(key)
    trusted = ", ".join(key_id(k) for k in keys)
    if kid in {key_id(k) for k in keys}:
        raise SignatureError(
            f"bundle {label}: the signature does not match the bundle (key {kid}); the "
            f"bundle was modified after it was signed - rebuild or re-download it"
        )
    raise SignatureError(
        f"bundle {label}: signed by key {kid}, which is not trusted (trusted: {trusted}); "
        f"sign it with a trusted key or add its public key"
    )


def verifier(
    trusted_keys: KeySource | Iterable[KeySource] | None = None, require_signature: bool = False
) -> Verifier | None:
    """The ``verify_signature`` callable for :func:`edgefin_runtime.bundle.read_bundle`.

    Giving trusted keys makes a signature mandatory: otherwise an attacker could simply delete the
    signature member. ``require_signature`` without keys is a configuration error. With neither,
    returns None (no signature check; hashes still catch corruption, not tampering).
    """
    keys = load_trusted_keys(trusted_keys)
    if not keys:
        if require_signature:
            raise SignatureError(
                "a signature is required but no trusted public key was given; pass trusted_keys=... (CLI: --key PUB)"
            )
        return None

    def verify(manifest_bytes: bytes, member: bytes | None, label: str) -> None:
        verify_manifest(manifest_bytes, member, keys, label)

    return verify


def sign_bundle(bundle: bytes | str | os.PathLike[str], private_key: PrivateKeySource) -> bytes:
    """Sign (or re-sign) bundle bytes: the manifest, model and acceptance-set bytes stay identical, only
    the signature member is added or replaced. The bundle is fully verified first and after."""
    from .bundle import pack_members, read_bundle

    key = load_private_key(private_key)
    old = read_bundle(bundle)
    member = signature_for(old.manifest_bytes, key)
    signed = pack_members(old.manifest_bytes, old.manifest.model.file, old.model_bytes, member, old.acceptance_bytes)
    read_bundle(signed, verify_signature=verifier([key.public_key()]))
    return signed


__all__ = [
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "load_trusted_keys",
    "sign_bundle",
    "signature_for",
    "verifier",
    "verify_manifest",
]
