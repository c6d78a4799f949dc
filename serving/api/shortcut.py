"""The usual `POST /v1/score` answered without FastAPI's routing and dependency injection.

Routing a request through FastAPI (route matching, its exception and exit-stack middleware,
resolving the key, scoring and query dependencies, validating the returned model again) costs
about a millisecond of CPU per request on our machines, a third of what scoring a lead of 20
events costs. :class:`ScoreShortcut` answers the common case directly: a JSON body of at most
:data:`~leadscore.serving.api.routes.INLINE_BODY_BYTES` with a declared length, a key with the
``score`` scope, a model loaded, ``explain``/``next_steps`` given plainly or not at all, and a
lead that validates. It runs the route's own code (:func:`~leadscore.serving.api.routes.score_body`,
:meth:`~leadscore.serving.api.routes.Scored.count_and_record`) and serializes the response as
FastAPI does (the response model's pydantic serializer, by alias).

Anything else (no key, a bad query, no model, a body that breaks the contract, a large body) is
handed to the FastAPI app with the body replayed, so every error answer has one source: the
route and its exception handlers. The route stays the documented one (OpenAPI) and the fallback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI
from pydantic import TypeAdapter
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute

from leadscore.serving.api.routes import INLINE_BODY_BYTES, is_json, router, score_body
from leadscore.serving.api.schemas import ScoreResponse
from leadscore.serving.auth import HEADER

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PATH = "/v1/score"
SCOPE = "score"
_KEY_HEADER = HEADER.lower().encode()
_FLAGS = ("explain", "next_steps")
_DEFAULTS = {"explain": True, "next_steps": False}  # as the route declares them
_PLAIN = {"true": True, "false": False, "1": True, "0": False}  # others: FastAPI decides
_RESPONSE = TypeAdapter(ScoreResponse)


class ScoreShortcut:
    """Answers the usual `POST /v1/score` itself; see the module docstring.

    Called by the request guard with the guard's `receive` and `send`: returns None when it
    answered, else the `receive` the FastAPI app must use (the body it read, replayed).
    `enabled` off sends every request the long way (the tests compare both).
    """

    def __init__(self, app: FastAPI):
        self.app = app
        self.route = _route(router, PATH, "POST")
        self.enabled = True
        self.answered = 0  # requests answered here (a test checks the shortcut is taken)

    def wants(self, scope: Scope) -> bool:
        """Whether `scope` is a request this shortcut may try."""
        return self.enabled and scope.get("method") == "POST" and scope.get("path") == PATH

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        state = self.app.state
        served = state.holder.current  # read once: a swap mid-request cannot mix two models
        flags = _flags(scope.get("query_string", b""))
        headers = _headers(scope)
        length = _length(headers)
        if (
            served is None
            or flags is None
            or length is None
            or length > min(INLINE_BODY_BYTES, state.settings.max_body_bytes)
            or not is_json(headers.get(b"content-type"))
            or not self._admitted(headers.get(_KEY_HEADER))
        ):
            return receive
        scope["route"] = self.route  # the metrics label, as routing would set it
        body = await _read_body(receive)
        try:
            scored = score_body(served, body, state.settings, **flags)
        except Exception:  # the route answers it again, with its handlers
            return _replay(body, receive)
        scored.count_and_record(state)
        await _send_json(send, _RESPONSE.dump_json(scored.result, by_alias=True))
        self.answered += 1
        return None

    def _admitted(self, presented: str | None) -> bool:
        key = self.app.state.keys.lookup(presented) if presented else None
        return key is not None and SCOPE in key.scopes


def _route(routes: APIRouter, path: str, method: str) -> BaseRoute:
    for route in routes.routes:
        methods = getattr(route, "methods", None) or ()
        if getattr(route, "path", None) == path and method in methods:
            return route
    raise LookupError(f"no {method} {path} route to shortcut")


def _flags(query: bytes) -> dict[str, bool] | None:
    """The route's two flags from a plain query string; None for anything else (an unknown or
    repeated parameter, a spelling other than true/false/1/0): FastAPI decides those."""
    flags = dict(_DEFAULTS)
    seen: set[str] = set()
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, strict_parsing=False)
    except ValueError:
        return None
    for name, value in pairs:
        if name not in _FLAGS or name in seen or value not in _PLAIN:
            return None
        seen.add(name)
        flags[name] = _PLAIN[value]
    return flags


def _headers(scope: Scope) -> dict[bytes, str]:
    """The first value of each header (as Starlette's `Headers.get` reads it)."""
    found: dict[bytes, str] = {}
    for name, value in scope.get("headers", ()):
        if name not in found:
            found[name] = value.decode("latin-1")
    return found


def _length(headers: dict[bytes, str]) -> int | None:
    """The declared body length; None when there is none (chunked) or it is not a number."""
    given = headers.get(b"content-length")
    if given is None or b"transfer-encoding" in headers or not given.isdigit():
        return None
    return int(given)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` first, then whatever `receive` gives (a disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_json(send: Send, content: bytes) -> None:
    length = str(len(content)).encode()
    headers = [(b"content-length", length), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": content})
