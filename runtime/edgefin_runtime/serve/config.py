"""The service's settings, the loopback rule and bearer-token authentication."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field

from ..cli_io import UsageProblem

#: a bearer token shorter than this is refused: it could be guessed
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ServeConfig:
    """What ``edgefin-run serve`` was asked for (the defaults are the CLI's)."""

    bundle: str
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    queue_depth: int = 32
    timeout: float = 10.0
    max_body_bytes: int = 1 << 20
    max_records: int = 1024
    inline_bytes: int = 2048
    token: bytes | None = field(default=None, repr=False)
    watch: bool = False
    watch_interval: float = 1.0
    max_connections: int = 512
    drift: bool = True
    http: str = "auto"
    loop: str = "auto"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; any other name or address is not loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(path: str) -> bytes:
    """The bearer token: the file's one line, without surrounding white space."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4097)
    except OSError as exc:
        raise UsageProblem(f"--token-file {path}: cannot read it ({exc.strerror})") from None
    token = raw.strip()
    if len(raw) > 4096 or b"\n" in token or b"\r" in token:
        raise UsageProblem(f"--token-file {path}: expected one line holding the token")
    if len(token) < MIN_TOKEN_CHARS:
        raise UsageProblem(
            f"--token-file {path}: the token has {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
            f"(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if not all(0x21 <= b <= 0x7E for b in token):
        raise UsageProblem(f"--token-file {path}: the token must be printable ASCII without spaces")
    return token


def check_listen(host: str, token: bytes | None) -> None:
    """Binding anything but loopback needs a token (customer data must not be open to the network)."""
    if token is None and not is_loopback(host):
        raise UsageProblem(
            f"--host {host} is not a loopback address: serving on the network needs --token-file "
            f"(clients then send 'Authorization: Bearer <token>')"
        )


def bearer_ok(header: str | None, token: bytes) -> bool:
    """Constant-time comparison of an 'Authorization: Bearer ...' header with the token."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode("latin-1", "replace"), token)
