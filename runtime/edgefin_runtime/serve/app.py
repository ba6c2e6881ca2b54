"""The Starlette application: JSON endpoints, limits, bearer auth, scoring off the event loop.

Small bodies (a single record, a handful) are parsed, scored and rendered on the event loop: that
costs microseconds, less than handing them to a thread. Larger bodies go to the :class:`Limiter`'s
worker threads (parse, score and render all happen there), so a 1,000-record batch never stalls the
loop. Each request reads the serving model once (``ModelHolder.score_batch``), so a hot swap never
mixes two models in one response, and every response names the model (``x-edgefin-model`` header,
``model`` in the body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..cli_io import _no_duplicates, result_row
from ..errors import BackendError, InputError, RecordTypeError
from ..holder import ModelHolder, ModelInfo, SwapReport
from ..predictor import Predictor
from .accesslog import AccessLog, ASGIApp, EventLog
from .config import ServeConfig, bearer_ok
from .drift import DriftTracker, drift_gauges
from .limits import Limiter, Overloaded, TimedOut
from .metrics import ServeMetrics
from .openapi import openapi
from .reload import Reloader, model_id

JSON = "application/json"


class Problem(Exception):
    """A request that cannot be served: its HTTP status, a type name and a message for the client."""

    def __init__(self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message, self.headers = status, error_type, message, headers or {}


class _Rejected:
    """A JSON object that repeated a key: rejected like the CLI rejects such a line."""

    __slots__ = ("error",)

    def __init__(self, error: InputError) -> None:
        self.error = error


def _pairs(pairs: list[tuple[str, Any]]) -> Any:
    try:
        return _no_duplicates(pairs)
    except InputError as err:
        return _Rejected(err)


#: built once: json.loads with options builds a new decoder on every call
_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


def _record(item: Any) -> Any:
    """An array element as ``edgefin-run score`` reads a JSON line: an object, else the same error."""
    if isinstance(item, dict):
        return item
    if isinstance(item, _Rejected):
        return item.error
    return RecordTypeError(f"expected a JSON object of field names to values, got {type(item).__name__}")


def parse_records(body: bytes, max_records: int) -> list[Any]:
    """The records of a body (an object is one record, an array many); bad JSON or shape -> Problem.

    An element that is not an object, or an object that repeats a key, becomes the InputError that
    ``edgefin-run score`` reports for such a JSON line: rejected individually, the others scored.
    """
    try:
        doc = _DECODER.decode(body.decode("utf-8-sig"))  # a BOM is dropped, as `edgefin-run score` does
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Problem(400, "MalformedJSON", f"the body is not valid JSON ({str(exc)[:120]})") from None
    if isinstance(doc, _Rejected):
        return [doc.error]
    if isinstance(doc, dict):
        return [doc]
    if isinstance(doc, list):
        if len(doc) > max_records:
            raise Problem(413, "TooManyRecords", f"the body holds {len(doc)} records; the limit is {max_records}")
        return [_record(d) for d in doc]
    raise Problem(
        400, "MalformedJSON", f"expected a JSON object (one record) or an array of records, got {type(doc).__name__}"
    )


@dataclass(frozen=True)
class Scored:
    """A rendered /v1/score response and what the metrics and the access log need from it."""

    body: bytes
    model: ModelInfo
    records: int
    rejected: dict[str, int]


def score_body(
    holder: ModelHolder,
    body: bytes,
    max_records: int,
    drift: DriftTracker | None = None,
    reasons: int = 0,
) -> Scored:
    """Parse, score (and with ``reasons``, explain) one request and render it with the runtime's own
    result rows, as ``edgefin-run score [--reasons]`` writes them. One predictor for the whole call."""
    items = parse_records(body, max_records)
    predictor, model = serving(holder)
    good = [r for r in items if not isinstance(r, InputError)]
    if reasons:
        if predictor.info.explain is None:
            raise Problem(
                409,
                "NoExplainSection",
                f"the serving bundle ({model.variant}) has no explain section: it was built before reason "
                "codes; convert it again with a current edgefin to serve /v1/explain",
            )
        scored: list[Any] = predictor.score_batch(good, reasons=True, max_reasons=reasons)
    else:
        scored = predictor.score_batch(good)
    results = iter(scored)
    rows: list[dict[str, Any]] = []
    rejected: dict[str, int] = {}
    kept: list[Any] = []
    probabilities: list[float] = []
    for row, item in enumerate(items, 1):
        outcome: Any = item
        explanation = None
        if not isinstance(item, InputError):
            r = next(results)
            explanation = getattr(r, "explanation", None)
            outcome = r.score if r.ok else r.error
            if r.ok:
                kept.append(item)
                probabilities.append(r.score.probability)
        if isinstance(outcome, InputError):
            name = type(outcome).__name__
            rejected[name] = rejected.get(name, 0) + 1
        rows.append(result_row(row, outcome, explanation))
    if drift is not None:
        drift.observe(predictor, kept, probabilities)
    payload = {"model": model_id(model), "results": rows}
    return Scored(_dumps(payload), model, len(items), rejected)


#: built once: json.dumps with options builds a new encoder on every call
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _dumps(payload: Any) -> bytes:
    return _ENCODER.encode(payload).encode("utf-8")


def serving(holder: ModelHolder) -> tuple[Predictor, ModelInfo]:
    """The serving predictor and its ModelInfo, read consistently even while a swap happens."""
    while True:
        predictor, info = holder.predictor, holder.model
        if holder.predictor is predictor and info.sha256 == predictor.bundle_sha256:
            return predictor, info


Handler = Callable[[Request], Awaitable[Response]]


class Service:
    """Everything one running service holds: the model, its limits, metrics, log and reloader."""

    def __init__(self, config: ServeConfig, holder: ModelHolder, log: EventLog, access: EventLog) -> None:
        self.config, self.holder, self.log, self.access = config, holder, log, access
        self.metrics = ServeMetrics()
        self.limiter = Limiter(config.workers, config.queue_depth, config.timeout)
        self.reloader = Reloader(holder, config.bundle, self._reported)
        self.drift = DriftTracker(config.drift)
        self.draining = False
        #: the 'listening' event, written when signals are handled (a test may act on it at once)
        self.announce: dict[str, Any] = {}
        self._openapi: tuple[str, bytes] = ("", b"")
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ plumbing
    def _response(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        h = {"x-edgefin-model": self.holder.model.sha256, **(headers or {})}
        return Response(_dumps(payload), status_code=status, media_type=JSON, headers=h)

    def _problem(self, p: Problem) -> Response:
        payload = {"ok": False, "status": p.status, "error_type": p.error_type, "error": p.message}
        return self._response(payload, p.status, p.headers)

    def _guard(self, handler: Handler, *, auth: bool = True) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                if auth:
                    self._authorize(request)
                return await handler(request)
            except Problem as p:
                request.scope["edgefin"]["error_type"] = p.error_type
                return self._problem(p)

        return endpoint

    def _authorize(self, request: Request) -> None:
        token = self.config.token
        if token is not None and not bearer_ok(request.headers.get("authorization"), token):
            raise Problem(
                401,
                "Unauthorized",
                "this service needs 'Authorization: Bearer <token>'",
                {"www-authenticate": 'Bearer realm="edgefin"'},
            )

    async def _body(self, request: Request, deadline: float, keep: bool = True) -> bytes:
        """The body, at most ``max_body_bytes`` (413 beyond), by ``deadline`` (408 after it); with
        ``keep=False`` it is read and dropped (an overloaded service still answers on a clean connection)."""
        cap = self.config.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise Problem(400, "BadRequest", "Content-Length is not a number")
            if int(length) > cap:
                raise Problem(413, "BodyTooLarge", f"the body has {int(length)} bytes; the limit is {cap}")

        async def read() -> bytes:
            chunks, total = [], 0
            async for chunk in request.stream():
                total += len(chunk)
                if total > cap:
                    raise Problem(413, "BodyTooLarge", f"the body is over the limit of {cap} bytes")
                if keep:
                    chunks.append(chunk)
            return b"".join(chunks)

        try:
            return await asyncio.wait_for(read(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise Problem(408, "RequestTimeout", f"the body did not arrive within {self.config.timeout:g} s") from None

    # ------------------------------------------------------------ endpoints
    async def score(self, request: Request) -> Response:
        return await self._scoring(request, 0)

    async def explain(self, request: Request) -> Response:
        text = request.query_params.get("max_reasons", "4")
        if not text.isdigit() or not 1 <= int(text) <= 32:
            raise Problem(400, "BadRequest", f"max_reasons: expected an integer from 1 to 32, got {text[:20]!r}")
        return await self._scoring(request, int(text))

    async def _scoring(self, request: Request, reasons: int) -> Response:
        deadline = time.monotonic() + self.config.timeout
        info = request.scope["edgefin"]
        length = request.headers.get("content-length")
        small = length is not None and length.isdigit() and int(length) <= self.config.inline_bytes
        try:
            if small and not reasons:  # a record or a handful: microseconds, cheaper than a thread hand-off
                body = await self._body(request, deadline)
                info["bytes"] = len(body)
                out = score_body(self.holder, body, self.config.max_records, self.drift)
            else:
                try:
                    admission = self.limiter.admit()  # before the body: at most workers + queue bodies held
                except Overloaded:
                    await self._body(request, deadline, keep=False)
                    raise
                try:
                    body = await self._body(request, deadline)
                    info["bytes"] = len(body)
                    args = (self.holder, body, self.config.max_records, self.drift, reasons)
                    out = await self.limiter.run(admission, deadline, score_body, *args)
                finally:
                    self.limiter.release(admission)
        except Overloaded:
            self.metrics.overloaded.inc()
            raise Problem(
                503,
                "Overloaded",
                f"all {self.config.workers} workers are busy and {self.config.queue_depth} requests wait; retry",
                {"retry-after": "1"},
            ) from None
        except TimedOut:
            self.metrics.timeouts.inc()
            raise Problem(504, "Timeout", f"the request took longer than {self.config.timeout:g} s") from None
        except BackendError as exc:
            raise Problem(500, "BackendError", str(exc)) from None
        self.metrics.scored(out.records - sum(out.rejected.values()), out.rejected)
        info.update(records=out.records, rejected=sum(out.rejected.values()), rejected_by=out.rejected)
        return Response(out.body, media_type=JSON, headers={"x-edgefin-model": out.model.sha256})

    async def drift_counts(self, request: Request) -> Response:
        predictor, model = serving(self.holder)
        mon = self.drift.monitor(predictor)
        if mon is None:
            why = "drift counting is off (--no-drift)" if not self.config.drift else "its bundle has no drift section"
            raise Problem(409, "NoDriftSection", f"no drift counts for the serving model: {why}")
        payload = {"model": model_id(model), "report": mon.report().to_dict(), "counts": json.loads(mon.to_json())}
        return self._response(payload, headers={"x-edgefin-model": model.sha256})

    async def info(self, request: Request) -> Response:
        predictor, model = serving(self.holder)
        d = predictor.info.to_dict()
        keys = ("format_version", "min_runtime_version", "created_at", "producer", "schema", "decision", "model")
        manifest = {k: d[k] for k in (*keys, "metrics", "parity") if k in d}
        c = self.config
        return self._response(
            {
                "model": model_id(model),
                "bundle": {"path": c.bundle, "sha256": model.sha256, "loaded_at": model.loaded_at},
                "manifest": manifest,
                "policy": {
                    "unknown_fields": predictor.policy.unknown_fields,
                    "unseen_categories": predictor.policy.unseen_categories,
                    "missing": predictor.policy.missing,
                },
                "limits": {
                    "workers": c.workers,
                    "queue_depth": c.queue_depth,
                    "timeout_s": c.timeout,
                    "max_records": c.max_records,
                    "max_body_bytes": c.max_body_bytes,
                },
                "auth": c.token is not None,
                "last_reload": self._last_reload(),
            },
            headers={"x-edgefin-model": model.sha256},
        )

    def _last_reload(self) -> dict[str, Any] | None:
        history = self.holder.history
        if not history:
            return None
        r = history[-1]
        return {"ok": r.ok, "seconds": round(r.seconds, 4), "error_type": type(r.error).__name__ if r.error else None}

    async def healthz(self, request: Request) -> Response:
        return self._response({"ok": True})

    async def readyz(self, request: Request) -> Response:
        if self.draining:
            return self._response({"ready": False, "reason": "shutting down"}, 503)
        return self._response({"ready": True, "model": model_id(self.holder.model)})

    async def metrics_text(self, request: Request) -> Response:
        model = self.holder.model
        gauges = {
            "edgefin_workers": ("Scoring threads (requests scored at once).", float(self.config.workers)),
            "edgefin_workers_busy": ("Scoring threads busy now.", float(self.limiter.running)),
            "edgefin_queue_depth": ("Requests admitted beyond the workers (then 503).", float(self.config.queue_depth)),
            "edgefin_queued": (
                "Requests admitted but not on a worker (reading their body or waiting).",
                float(self.limiter.queued),
            ),
        }
        labels = {"id": model.sha256, "variant": model.variant, "engine": model.engine}
        text = self.metrics.render(labels, model.generation, gauges)
        mon = self.drift.monitor(serving(self.holder)[0])
        if mon is not None:
            text += "\n".join(drift_gauges(mon)) + "\n"
        return Response(
            text, media_type="text/plain; version=0.0.4; charset=utf-8", headers={"x-edgefin-model": model.sha256}
        )

    async def openapi_json(self, request: Request) -> Response:
        predictor, model = serving(self.holder)
        if self._openapi[0] != model.sha256:
            c = self.config
            doc = openapi(
                predictor.schema, auth=c.token is not None, max_records=c.max_records, max_body_bytes=c.max_body_bytes
            )
            self._openapi = (model.sha256, _dumps(doc))
        return Response(self._openapi[1], media_type=JSON, headers={"x-edgefin-model": model.sha256})

    async def reload(self, request: Request) -> Response:
        if self.config.token is None:
            raise Problem(
                403,
                "Forbidden",
                "reloading over HTTP needs a bearer token: start the service with --token-file "
                "(or send SIGHUP, or use --watch)",
            )
        self._authorize(request)
        report = await self.reloader.reload("http")
        payload: dict[str, Any] = {
            "ok": report.ok,
            "model": model_id(report.serving),
            "seconds": round(report.seconds, 4),
        }
        if not report.ok:
            payload.update(status=422, error_type=type(report.error).__name__, error=str(report.error))
        return self._response(payload, 200 if report.ok else 422, {"x-edgefin-model": report.serving.sha256})

    # ------------------------------------------------------------ reloads, lifespan
    def _reported(self, trigger: str, report: SwapReport) -> None:
        error_type = type(report.error).__name__ if report.error is not None else ""
        self.metrics.reload(trigger, report.ok, error_type)
        fields: dict[str, Any] = {"trigger": trigger, "ok": report.ok, "seconds": round(report.seconds, 4)}
        if not report.ok:
            fields.update(error_type=error_type, error=str(report.error), kept=model_id(report.serving))
        else:
            fields["model"] = model_id(report.serving)
        self.log.write("reload", **fields)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, AttributeError):  # no SIGHUP on Windows
            loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reloader.reload("sighup")))
        if self.config.watch:
            self._spawn(self.reloader.watch(self.config.watch_interval))
        if self.announce:
            self.log.write("listening", **self.announce)
        try:
            yield
        finally:
            with contextlib.suppress(NotImplementedError, AttributeError):
                loop.remove_signal_handler(signal.SIGHUP)
            for task in list(self._tasks):
                task.cancel()
            self.limiter.close()
            self.reloader.close()

    def app(self) -> ASGIApp:
        """The ASGI application: the routes inside the access-log middleware."""
        g = self._guard
        routes = [
            Route("/v1/score", g(self.score), methods=["POST"]),
            Route("/v1/explain", g(self.explain), methods=["POST"]),
            Route("/v1/drift", g(self.drift_counts), methods=["GET"]),
            Route("/v1/info", g(self.info), methods=["GET"]),
            Route("/v1/admin/reload", g(self.reload, auth=False), methods=["POST"]),
            Route("/healthz", g(self.healthz, auth=False), methods=["GET"]),
            Route("/readyz", g(self.readyz, auth=False), methods=["GET"]),
            Route("/metrics", g(self.metrics_text), methods=["GET"]),
            Route("/openapi.json", g(self.openapi_json), methods=["GET"]),
        ]
        return AccessLog(Starlette(routes=routes, lifespan=self.lifespan), self.access, self.metrics)
