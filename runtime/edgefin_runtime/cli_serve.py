"""``edgefin-run serve BUNDLE``: score over HTTP on the device (needs ``edgefin-runtime[serve]``).

The bundle is loaded, verified, self-tested and acceptance-checked before the port opens (exit 2 for
an invalid bundle, 3 for a failed self-test, as ``verify``). Then it serves until SIGTERM (graceful
drain, exit 0). Loopback by default; any other address needs ``--token-file``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

HELP = "serve a bundle over HTTP: /v1/score, /v1/explain, /v1/info, /metrics ... (needs [serve])"


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 86400, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser, common: Callable[..., None]) -> None:
    common(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback 127.0.0.1)")
    parser.add_argument("--port", type=_count(0), default=8080, help="TCP port (default 8080; 0: any free port)")
    parser.add_argument(
        "--workers", type=_count(1), default=2, help="scoring threads: requests scored at once (default 2)"
    )
    parser.add_argument(
        "--queue-depth",
        type=_count(0),
        default=32,
        help="requests that may wait for a worker; beyond: 503 (default 32)",
    )
    parser.add_argument("--timeout", type=_seconds, default=10.0, help="per-request timeout in seconds (default 10)")
    parser.add_argument("--max-body-bytes", type=_count(1), default=1 << 20, help="larger bodies: 413 (default 1 MiB)")
    parser.add_argument(
        "--max-records", type=_count(1), default=1024, help="more records per request: 413 (default 1024)"
    )
    parser.add_argument(
        "--max-connections",
        type=_count(1),
        default=512,
        help="open connections before uvicorn answers 503 (default 512)",
    )
    parser.add_argument(
        "--token-file", default=None, metavar="F", help="bearer token (one line); required for a non-loopback --host"
    )
    parser.add_argument("--watch", action="store_true", help="swap to the bundle file when it changes (verified first)")
    parser.add_argument("--watch-interval", type=_seconds, default=1.0, help="seconds between checks (default 1)")
    parser.add_argument(
        "--policy",
        choices=("lenient", "strict"),
        default="lenient",
        help="input policy, as for score (default lenient)",
    )
    parser.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default="auto",
        help="HTTP parser (auto: httptools when installed, else h11)",
    )
    parser.add_argument(
        "--loop", choices=("auto", "asyncio", "uvloop"), default="auto", help="event loop (auto: uvloop when installed)"
    )
    parser.add_argument("--no-drift", action="store_true", help="do not count records against the bundle's drift bins")
    parser.add_argument(
        "--access-log", default="-", metavar="FILE|-|off", help="JSON lines per request: stderr (-), a file, or off"
    )


def run(args: argparse.Namespace) -> int:
    from .errors import EdgefinRuntimeError

    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise EdgefinRuntimeError("serve needs uvicorn and starlette: pip install 'edgefin-runtime[serve]'") from None
    from .cli import _quiet_native_stderr
    from .serve.accesslog import EventLog, open_log
    from .serve.config import ServeConfig, check_listen, read_token
    from .serve.reload import open_holder
    from .serve.server import serve

    token = read_token(args.token_file) if args.token_file else None
    check_listen(args.host, token)
    load_kwargs: dict[str, Any] = {
        "backend": args.backend,
        "policy": args.policy,
        "threads": args.threads,
        "trusted_keys": args.key or None,
        "require_signature": args.require_signature,
    }
    access = open_log(args.access_log)
    with _quiet_native_stderr():
        holder = open_holder(args.bundle, **load_kwargs)
    config = ServeConfig(
        bundle=args.bundle,
        host=args.host,
        port=args.port,
        workers=args.workers,
        queue_depth=args.queue_depth,
        timeout=args.timeout,
        max_body_bytes=args.max_body_bytes,
        max_records=args.max_records,
        token=token,
        watch=args.watch,
        watch_interval=args.watch_interval,
        max_connections=args.max_connections,
        drift=not args.no_drift,
        http=args.http,
        loop=args.loop,
    )
    import sys

    return serve(config, holder, EventLog(sys.stderr), access)
