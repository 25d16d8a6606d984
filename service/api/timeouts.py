"""Slow clients: how long the server waits for them.

A request body that stalls (a chunked upload that stops, a ``Content-Length`` larger than what is sent) would
otherwise hold a connection and its handler for as long as the client likes. :class:`BodyTimeoutMiddleware` gives
the whole body ``api.body_timeout_seconds`` from its first read (a client trickling one byte at a time gets no
more) and answers 408 after that; :func:`server_options` are the
uvicorn settings every entry point serves the API with (idle keep-alive connections closed after
``api.keep_alive_seconds``, a bounded graceful shutdown, and WebSocket messages no larger than a GraphQL request
body, :data:`~service.core.limits.MAX_GRAPHQL_BODY_BYTES`: uvicorn refuses a larger one (close code 1009) before
anything reads it, authenticated or not).
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from service.core.limits import MAX_GRAPHQL_BODY_BYTES
from service.settings import Settings

REQUEST_TIMEOUT = 408


class BodyTimeoutMiddleware:
    """Fail a request whose body does not arrive in time with a 408 (an HTTP error, so every error handler
    renders it in its own format)."""

    def __init__(self, app: ASGIApp, timeout_seconds: float) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return

        body_done = False
        deadline: float | None = None

        async def receive_in_time() -> ReceiveMessage:
            nonlocal body_done, deadline
            if body_done:  # later receives wait for a disconnect, which may rightly take long
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.timeout_seconds
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(status_code=REQUEST_TIMEOUT, detail=(
                    f"the request body did not arrive within {self.timeout_seconds:g} s")) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, receive_in_time, send)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn keyword arguments for the API (``givfleet up``, ``givfleet api``, bench servers)."""
    return {"timeout_keep_alive": settings.api.keep_alive_seconds, "timeout_graceful_shutdown": 10,
            "h11_max_incomplete_event_size": 64 * 1024, "ws_max_size": MAX_GRAPHQL_BODY_BYTES}
