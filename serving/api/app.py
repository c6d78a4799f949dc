"""The FastAPI app: settings, keys, the model holder, middleware and error handlers.

:func:`create_app` has no side effects beyond building the app; the lifespan loads the model
(into ``app.state.holder``), so importing this module never touches MLflow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from leadscore.serving.api.bodies import BodyError
from leadscore.serving.api.handoffs import Loop, open_loop
from leadscore.serving.api.handoffs import router as handoff_router
from leadscore.serving.api.metrics import Metrics
from leadscore.serving.api.openapi import build_openapi
from leadscore.serving.api.routes import router
from leadscore.serving.api.service import ModelHolder, ModelRefused, build_served
from leadscore.serving.api.watcher import CheckResult, ModelWatcher
from leadscore.serving.auth import KeyRing
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
`score`; the handoff queue, feedback and outcomes need `feedback`; `/metrics` and
`/v1/admin/reload` need `admin`). Bodies use the data contract's field
names; the documentation's "Scoring API" guide walks through a request.
"""


def _version() -> str:
    try:
        return version("leadscore")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


class RequestGuard:
    """Pure ASGI middleware: refuse bodies over the limit (413) and record every request's
    route template, status and latency."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: Metrics):
        self.app = app
        self.limit = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = {"status": 500}

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = int(message["status"])
            await send(message)

        seen = 0

        async def receive_within_limit() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, self._too_big)
            return message

        try:
            if self._declared_length(scope) > self.limit:
                response = JSONResponse({"detail": self._too_big}, status_code=413)
                await response(scope, receive, send_and_note)
                return
            await self.app(scope, receive_within_limit, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            self.metrics.observe(template, scope.get("method", ""), state["status"], elapsed)

    @property
    def _too_big(self) -> str:
        return f"request body over {self.limit:,} bytes"

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0


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
    holder.install(served)
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
    watcher: ModelWatcher = app.state.watcher
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watcher.run, settings.reload_interval_seconds)
            yield
            tasks.cancel_scope.cancel()
    finally:
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
    app.include_router(router)
    app.include_router(handoff_router)
    # imported here: the pages import this package (schemas, the loop), so a module-level import
    # would make a cycle for whoever imports the pages first
    from leadscore.serving.app.routes import mount_pages

    mount_pages(app)  # the reps' pages under /app
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.max_body_bytes,
        metrics=app.state.metrics,
    )
    app.add_exception_handler(BodyError, _body_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, app.state.holder.current, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
