"""uvicorn's HTTP protocol with a deadline for a request's headers.

uvicorn bounds the idle time between two requests of a keep-alive connection
(`timeout_keep_alive`) but nothing before the first request or while headers trickle in: a
client that opens connections and sends a byte now and then ("slowloris") holds them for ever,
up to the connection limit. :class:`HeaderDeadlineProtocol` starts a timer when a connection
opens and again after each response; the connection is closed unless the next request's headers
are complete within ``LEADSCORE_HEADER_TIMEOUT_SECONDS`` (default 10). The body has its own
deadline in the application (``LEADSCORE_BODY_TIMEOUT_SECONDS``, 408).

`leadscore serve` passes this class to uvicorn by its import path (each worker process
imports it); it builds on the httptools parser of ``uvicorn[standard]``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)
HEADER_TIMEOUT_ENV = "LEADSCORE_HEADER_TIMEOUT_SECONDS"
DEFAULT_HEADER_TIMEOUT_S = 10.0
PROTOCOL = "leadscore.serving.api.server:HeaderDeadlineProtocol"


@cache
def header_timeout() -> float:
    """Seconds a client has to send a request's headers (`LEADSCORE_HEADER_TIMEOUT_SECONDS`);
    read once per process. `leadscore serve` has already refused a value that is not a positive
    number, so a bad one here falls back to the default."""
    try:
        value = float(os.environ.get(HEADER_TIMEOUT_ENV, "") or DEFAULT_HEADER_TIMEOUT_S)
    except ValueError:
        return DEFAULT_HEADER_TIMEOUT_S
    return value if value > 0 else DEFAULT_HEADER_TIMEOUT_S


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """httptools' protocol, closing connections whose request headers do not arrive in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(header_timeout(), self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.info("closed a connection whose request headers took over %g s", header_timeout())
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the clock for the first request's headers."""
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        """The headers are in: the body's own deadline takes over."""
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """Start the clock for the next request's headers (keep-alive)."""
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """No timer outlives its connection."""
        self._disarm()
        super().connection_lost(exc)
