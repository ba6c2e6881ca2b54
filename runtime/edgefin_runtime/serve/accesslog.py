"""Structured access log: one JSON object per line, never a record's contents (customer data).

The middleware times every HTTP request, counts it in the metrics, and writes: time, request id,
client address, method, route, status, duration, body size, records scored and rejected (with error
types, never messages: a message may quote a value), and the id of the model that answered.
Service events (start, reload, shutdown) go to the same stream through :class:`EventLog`.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import IO, Any

from .metrics import ServeMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: routes counted under their own name in the metrics; anything else is "other" (bounded label set)
ROUTES = frozenset(
    {
        "/v1/score",
        "/v1/explain",
        "/v1/drift",
        "/v1/info",
        "/v1/admin/reload",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    }
)


class EventLog:
    """JSON lines to a stream (stderr by default) or nowhere; thread-safe, flushed per line."""

    def __init__(self, stream: IO[str] | None) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def write(self, event: str, **fields: Any) -> None:
        if self.stream is None:
            return
        line = json.dumps({"ts": round(time.time(), 6), "event": event, **fields}, ensure_ascii=False)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def open_log(target: str) -> EventLog:
    """'-' for stderr, 'off' for none, else a file opened for appending (line-buffered)."""
    if target == "off":
        return EventLog(None)
    if target == "-":
        return EventLog(sys.stderr)
    return EventLog(open(target, "a", encoding="utf-8", buffering=1))  # noqa: SIM115 - lives with the process


class AccessLog:
    """ASGI middleware: handlers put what they know about a request in ``scope['edgefin']``."""

    def __init__(self, app: ASGIApp, log: EventLog, metrics: ServeMetrics) -> None:
        self.app, self.log, self.metrics = app, log, metrics
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        info: dict[str, Any] = {}
        scope["edgefin"] = info
        status = [500]
        model = [""]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                for k, v in message.get("headers", ()):
                    if k == b"x-edgefin-model":
                        model[0] = v.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - t0
            path = scope.get("path", "")
            route = path if path in ROUTES else "other"
            self.metrics.request(route, status[0], seconds)
            client = scope.get("client")
            self.log.write(
                "request",
                id=next(self._ids),
                client=f"{client[0]}:{client[1]}" if client else None,
                method=scope.get("method"),
                route=route,
                status=status[0],
                ms=round(seconds * 1000, 3),
                model=model[0] or None,
                **info,
            )
