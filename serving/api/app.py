"""The FastAPI app: settings, keys, the model holder, middleware and error handlers.

:func:`create_app` has no side effects beyond building the app; the lifespan loads the model
(into ``app.state.holder``), so importing this module never touches MLflow.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from leadscore.serving.api.bodies import BodyError
from leadscore.serving.api.handoffs import Loop, open_loop
from leadscore.serving.api.handoffs import router as handoff_router
from leadscore.serving.api.metrics import (
    DISCONNECTED,
    METHODS,
    MULTIPROC_ENV,
    OTHER_METHOD,
    Metrics,
)
from leadscore.serving.api.openapi import build_openapi
from leadscore.serving.api.routes import router
from leadscore.serving.api.service import ModelHolder, ModelRefused, build_served
from leadscore.serving.api.shortcut import ScoreShortcut
from leadscore.serving.api.watcher import CheckResult, ModelWatcher
from leadscore.serving.auth import KeyRing
from leadscore.serving.live_drift import DriftRecorder, LiveDrift
from leadscore.serving.runtime import Scorer
from leadscore.serving.settings import Settings

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DESCRIPTION = """\
Calibrated MQL probability, tier and plain-language reasons for one lead or many, next to the
team's written SQL criteria and a recommended action. Send the `X-API-Key` header (scope
`score`; the handoff queue, feedback and outcomes need `feedback`; `/metrics`,
`/v1/model/drift` and `/v1/admin/reload` need `admin`). Bodies use the data contract's field
names; the documentation's "Scoring API" guide walks through a request.
"""


def _version() -> str:
    try:
        return version("leadscore")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


class BodyTimeout(HTTPException):
    """The request body did not arrive within the body timeout (408; the connection closes)."""

    def __init__(self, seconds: float):
        super().__init__(
            status.HTTP_408_REQUEST_TIMEOUT,
            detail=f"the request body did not arrive within {seconds:g} s",
            headers={"Connection": "close"},
        )


class _Exchange:
    """One request as the guard sees it: the body read so far, the response status, whether
    the client went away."""

    def __init__(self, receive: Receive, send: Send, limit: int, body_seconds: float):
        self._receive, self._send = receive, send
        self.limit, self.body_seconds = limit, body_seconds
        self.seen = 0
        self.status = 500
        self.started = False
        self.completed = False
        self.body_done = False
        self.disconnected = False
        self._deadline: float | None = None

    async def receive(self) -> Message:
        """The next request message: 413 over the size limit, 408 past the body deadline
        (counted from the first read), and a note when the client went away."""
        if self.body_done or self.disconnected:  # waiting for a disconnect: no deadline
            message = await self._receive()
        else:
            if self._deadline is None:
                self._deadline = anyio.current_time() + self.body_seconds
            with anyio.move_on_after(self._deadline - anyio.current_time()) as wait:
                message = await self._receive()
            if wait.cancelled_caught:
                raise BodyTimeout(self.body_seconds)
        if message["type"] == "http.disconnect":
            self.disconnected = not self.completed
        elif message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            self.body_done = not message.get("more_body", False)
            if self.seen > self.limit:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, _too_big(self.limit))
        return message

    async def send(self, message: Message) -> None:
        """Pass a response message on, noting the status."""
        if message["type"] == "http.response.start":
            self.started = True
            self.status = int(message["status"])
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.completed = True
        await self._send(message)


def _too_big(limit: int) -> str:
    return f"request body over {limit:,} bytes"


class RequestGuard:
    """Pure ASGI middleware around every request: an unknown method gets 405, a body over the
    limit 413, a body that does not arrive within the body timeout 408; a client that goes away
    is logged in one line (no traceback) and counted with status 499; every request's route
    template, method and status are recorded (from fixed sets: see the metrics module)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        metrics: Metrics,
        body_timeout: float = 10.0,
        shortcut: ScoreShortcut | None = None,
    ):
        self.app = app
        self.limit = max_body_bytes
        self.metrics = metrics
        self.body_timeout = body_timeout
        self.shortcut = shortcut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        exchange = _Exchange(receive, send, self.limit, self.body_timeout)
        try:
            await self._handle(scope, exchange)
        except _GONE as exc:
            if not exchange.disconnected:
                raise
            log.debug("after the client went away: %r", exc)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            code = exchange.status
            if exchange.disconnected:
                code = DISCONNECTED
                log.info(
                    "client went away before the response: %s %s (%d body bytes read)",
                    _method(scope), template, exchange.seen,
                )  # fmt: skip
            elapsed = time.perf_counter() - started
            self.metrics.observe(template, scope.get("method", ""), code, elapsed)

    async def _handle(self, scope: Scope, exchange: _Exchange) -> None:
        if scope.get("method") not in METHODS:
            # before routing: no route sees (and no label counts) an arbitrary method name
            await self._answer(scope, exchange, 405, "method not allowed", {"Allow": _ALLOW})
        elif self._declared_length(scope) > self.limit:
            await self._answer(scope, exchange, 413, _too_big(self.limit))
        else:
            try:
                receive: Receive | None = exchange.receive
                if self.shortcut is not None and self.shortcut.wants(scope):
                    receive = await self.shortcut(scope, exchange.receive, exchange.send)
                if receive is not None:
                    await self.app(scope, receive, exchange.send)
            except BodyTimeout as exc:  # raised where no handler turned it into a response
                if exchange.started:
                    raise
                await self._answer(scope, exchange, exc.status_code, exc.detail, exc.headers)

    @staticmethod
    async def _answer(
        scope: Scope,
        exchange: _Exchange,
        code: int,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        response = JSONResponse({"detail": detail}, status_code=code, headers=headers)
        await response(scope, exchange.receive, exchange.send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0


_ALLOW = "GET, HEAD, POST"  # every method a route of this service answers
# what reading or answering a request raises once its client has gone
_GONE = (ClientDisconnect, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError,
         anyio.EndOfStream)  # fmt: skip


def _method(scope: Scope) -> str:
    method = str(scope.get("method", ""))
    return method if method in METHODS else OTHER_METHOD


def _error_list(errors: Any) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in errors
    ]


async def _body_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BodyError)
    return JSONResponse({"detail": _error_list(exc.errors)}, status_code=422)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _error_list(exc.errors())}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """HTTP errors as FastAPI answers them, except its 400 for a JSON body that is not even
    UTF-8 text (the handoff routes' bodies, parsed by FastAPI): that becomes the 422 every other
    malformed body gets."""
    assert isinstance(exc, StarletteHTTPException)
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
        problem = {"loc": ["body"], "msg": f"invalid JSON: not UTF-8 text (byte {cause.start})",
                   "type": "json_invalid"}  # fmt: skip
        return JSONResponse({"detail": [problem]}, status_code=422)
    return await http_exception_handler(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error (logged)"}, status_code=500)


def install_model(app: FastAPI, uri: str) -> bool:
    """Load `uri` and serve it, or keep the current model and record why not (blocking)."""
    holder: ModelHolder = app.state.holder
    try:
        served = build_served(uri, app.state.settings)
    except ModelRefused as exc:
        holder.refuse(str(exc))
        log.error("model refused: %s", exc)
        return False
    drift: LiveDrift = app.state.drift  # counts per version: a new version starts from zero
    recorder = drift.start(served.ref.version, served.scorer.meta, served.scorer.spec.names)
    holder.install(replace(served, drift=recorder))
    app.state.metrics.served(served.ref.name, served.ref.version, served.ref.alias)
    app.openapi_schema = None  # rebuilt from the new model on next request
    log.info("serving %s (version %s) from %s", served.ref.name, served.ref.version, uri)
    return True


def _watcher(app: FastAPI, settings: Settings) -> ModelWatcher:
    holder: ModelHolder = app.state.holder

    def current() -> Scorer | None:
        served = holder.current
        return served.scorer if served else None

    def note(result: CheckResult) -> None:
        app.state.metrics.reloads.labels(result.result).inc()

    return ModelWatcher(
        settings.model_uri,
        current=current,
        install=lambda: install_model(app, settings.model_uri),
        refused_error=lambda: holder.error,
        on_result=note,
    )


def _store_gauges(app: FastAPI) -> dict[str, Any] | None:
    loop: Loop = app.state.loop
    if loop.store is None:
        return None
    try:
        return loop.store.gauges(datetime.now(UTC))
    except Exception:  # a scrape must not fail because the database hiccups
        log.exception("could not read the handoff gauges")
        return None


def _recorder(app: FastAPI) -> DriftRecorder | None:
    served = app.state.holder.current
    return served.drift if served is not None else None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model before the first request."""
    settings: Settings = app.state.settings
    if settings.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(settings.tracking_uri)
    if not len(app.state.keys):
        log.warning("no API keys configured (LEADSCORE_API_KEYS): every request will get 401")
    await anyio.to_thread.run_sync(install_model, app, settings.model_uri)
    loop: Loop = await anyio.to_thread.run_sync(open_loop, settings)
    app.state.loop = loop
    if loop.recorder is not None:
        loop.recorder.on_pass = app.state.metrics.watch_recorder(loop.recorder.counts)
    watcher: ModelWatcher = app.state.watcher
    # What is loaded by now (the model, the libraries) lives as long as the process: frozen, a
    # full garbage collection no longer walks it, which would pause a request for milliseconds.
    gc.freeze()
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watcher.run, settings.reload_interval_seconds)
            tasks.start_soon(app.state.drift.run, lambda: _recorder(app))
            yield
            tasks.cancel_scope.cancel()
    finally:
        gc.unfreeze()  # an app started in a longer-lived process (tests) leaves nothing frozen
        await anyio.to_thread.run_sync(loop.close)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The scoring API; settings from the environment unless given."""
    settings = settings or Settings()
    app = FastAPI(title="leadscore", version=_version(), description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    secret = settings.api_keys.get_secret_value() if settings.api_keys else None
    app.state.keys = KeyRing.from_sources(secret, settings.api_keys_file)
    app.state.holder = ModelHolder()
    app.state.metrics = Metrics()
    app.state.watcher = _watcher(app, settings)
    app.state.loop = Loop(error="starting")
    app.state.metrics.watch_store(lambda: _store_gauges(app))
    metrics: Metrics = app.state.metrics
    # workers share the metrics directory: it also keeps each drift warning to one line
    app.state.drift = LiveDrift(metrics.drift, metrics.drift_counts, os.environ.get(MULTIPROC_ENV))
    metrics.watch_drift(lambda: app.state.drift.psi_values(_recorder(app)), app.state.drift.flush)
    app.include_router(router)
    app.include_router(handoff_router)
    # imported here: the pages import this package (schemas, the loop), so a module-level import
    # would make a cycle for whoever imports the pages first
    from leadscore.serving.app.routes import mount_pages

    mount_pages(app)  # the reps' pages under /app
    app.state.score_shortcut = ScoreShortcut(app)
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        metrics=app.state.metrics,
        body_timeout=settings.body_timeout_seconds,
        shortcut=app.state.score_shortcut,
    )
    app.add_exception_handler(BodyError, _body_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, app.state.holder.current, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
