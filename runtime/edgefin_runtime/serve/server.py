"""Run the service under uvicorn: bind, announce, serve, and drain on SIGTERM (exit 0)."""

from __future__ import annotations

import math
import signal
import socket
from types import FrameType
from typing import Any

import uvicorn

from ..cli_io import UsageProblem
from ..holder import ModelHolder
from .accesslog import EventLog
from .app import Service
from .config import ServeConfig, is_loopback
from .reload import model_id


class _Server(uvicorn.Server):
    """uvicorn's server, telling the service when shutdown starts (so /readyz answers 503)."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.service.draining:
            self.service.draining = True
            self.service.log.write("draining", signal=signal.Signals(sig).name)
        super().handle_exit(sig, frame)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0: any free port); a clear usage error if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it Nagle + delayed ACK add ~40 ms to every response written in two parts
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageProblem(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(config: ServeConfig, holder: ModelHolder, log: EventLog, access: EventLog) -> int:
    """Serve until SIGTERM or SIGINT; returns 0 after a graceful drain. Service events go to ``log``
    (stderr), one line per request to ``access``."""
    sock = bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    service = Service(config, holder, log, access)
    ucfg = uvicorn.Config(
        service.app(),
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        http=config.http,
        loop=config.loop,
        limit_concurrency=config.max_connections,
        timeout_graceful_shutdown=int(math.ceil(config.timeout)) + 5,
    )
    ucfg.load()  # resolves the HTTP protocol class 'auto' picks (named in the listening event)
    server = _Server(ucfg, service)
    shown = f"[{host}]" if ":" in host else host
    network = not is_loopback(config.host)
    auth = (
        "bearer token required on every route but /healthz and /readyz"
        if config.token is not None
        else "no authentication (loopback only)"
    )
    if network:
        auth = f"NOT loopback ({config.host}): reachable from the network; " + auth
    service.announce = dict(  # written once SIGHUP and SIGTERM are handled (lifespan startup)
        url=f"http://{shown}:{port}",
        host=host,
        port=port,
        network=network,
        auth=auth,
        model=model_id(holder.model),
        workers=config.workers,
        queue_depth=config.queue_depth,
        watch=config.watch,
        http=getattr(ucfg, "http_protocol_class", type(None)).__name__,
        loop=config.loop,
    )

    def stop(sig: int, frame: FrameType | None) -> None:
        """SIGTERM outside uvicorn's own handler: before it is installed, ask for a shutdown; after
        its graceful shutdown (it re-raises the signal) every request has been answered: nothing to do."""
        server.should_exit = True

    previous: Any = signal.signal(signal.SIGTERM, stop)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    log.write("stopped", requests=server.server_state.total_requests)
    return 0
