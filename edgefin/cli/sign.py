"""`edgefin keygen` and `edgefin sign`: Ed25519 keys and signed bundles (every write atomic)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .common import emit_json, handle_errors, output_options, stderr


def _password(env: str | None) -> bytes | None:
    if not env:
        return None
    value = os.environ.get(env)
    if value is None:
        raise click.BadParameter(f"environment variable {env} is not set", param_hint="--password-env")
    return value.encode("utf-8")


@click.command(epilog="Example: edgefin keygen --out keys/branch  (writes keys/branch.key and keys/branch.pub)")
@click.option(
    "--out",
    "prefix",
    required=True,
    type=click.Path(dir_okay=False),
    help="Path prefix: writes PREFIX.key (private, mode 0600) and PREFIX.pub (public).",
)
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@output_options
@handle_errors
def keygen(prefix: str, force: bool, as_json: bool, quiet: bool) -> None:
    """Create an Ed25519 key pair for signing bundles. Keep the .key file secret; ship the .pub file."""
    from edgefin_runtime.signing import generate_keypair, key_id, load_public_key

    from .. import atomic
    from ..errors import UsageError

    priv_path, pub_path = Path(prefix + ".key"), Path(prefix + ".pub")
    existing = [str(p) for p in (priv_path, pub_path) if p.exists() or p.is_symlink()]
    if existing and not force:
        raise UsageError(
            f"{', '.join(existing)} already exist(s); refusing to overwrite a key "
            f"(pass --force to replace it, or choose another --out)"
        )
    priv_pem, pub_pem = generate_keypair()
    atomic.write_bytes(priv_path, priv_pem, mode=0o600)
    try:
        atomic.write_bytes(pub_path, pub_pem, mode=0o644)
    except BaseException:
        priv_path.unlink(missing_ok=True)  # never leave half a pair
        raise
    kid = key_id(load_public_key(pub_pem))
    result = {"private_key": str(priv_path), "public_key": str(pub_path), "key_id": kid}
    if as_json:
        emit_json(result)
    elif not quiet:
        stderr.print(f"wrote {priv_path} (private, keep secret) and {pub_path} (public); key id {kid}")


@click.command(epilog="Example: edgefin sign runs/demo/bundles/tflite-int8.efb --key keys/branch.key")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Ed25519 private key (PEM from 'edgefin keygen').",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the signed bundle here instead of replacing BUNDLE.",
)
@click.option(
    "--password-env",
    default=None,
    metavar="VAR",
    help="Environment variable holding the password of an encrypted private key.",
)
@output_options
@handle_errors
def sign(bundle: str, key_path: str, out: str | None, password_env: str | None, as_json: bool, quiet: bool) -> None:
    """Sign a bundle with an Ed25519 private key (verifies the bundle first; replaces any old signature)."""
    from edgefin_runtime.bundle import read_bytes, sha256_hex
    from edgefin_runtime.signing import key_id, load_private_key, sign_bundle

    from .. import atomic

    key = load_private_key(key_path, password=_password(password_env))
    data, _ = read_bytes(bundle)
    signed = sign_bundle(bundle, key)
    target = Path(out) if out else Path(bundle)
    atomic.write_bytes(target, signed)
    result = {
        "bundle": str(target),
        "key_id": key_id(key.public_key()),
        "sha256": sha256_hex(signed),
        "source_sha256": sha256_hex(data),
    }
    if as_json:
        emit_json(result)
    elif not quiet:
        stderr.print(f"signed {target} with key {result['key_id']} (sha256 {result['sha256'][:16]}...)")
