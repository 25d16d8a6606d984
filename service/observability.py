"""Structured logs (structlog) and the request id that ties a request's log lines together."""

from __future__ import annotations

import logging
import sys
import uuid
from typing import TYPE_CHECKING, Any, cast

import structlog

from service.settings import LogSettings

if TYPE_CHECKING:  # the CLI configures logging too, and must not pay for importing Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"

# Keys whose values must never reach a log line, whatever the caller passes.
SECRET_KEYS = frozenset({"token", "api_key", "authorization", "password", "secret", "key"})


def _redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in event_dict.keys() & SECRET_KEYS:
        event_dict[key] = "***"
    return event_dict


def configure_logging(settings: LogSettings) -> None:
    """Route stdlib and structlog output through one renderer: JSON lines unless stderr is a TTY."""
    json_output = settings.json_output if settings.json_output is not None else not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for noisy in ("uvicorn.access", "httpx", "httpcore", "pgserver", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class RequestIdMiddleware:
    """Give each HTTP request an id (the client's ``X-Request-ID`` if sane), bind it to the logs, echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if cast(str, scope["type"]) != "http":  # ASGI sends the plain string
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if header not in headers:
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


def request_id_of(scope: Scope) -> str:
    """The request's id: the one already assigned, else the client's ``X-Request-ID`` if sane, else a new one.

    Error handlers call it too, because Litestar answers unmatched routes without running route middleware.
    """
    state = scope.setdefault("state", {})
    request_id: str = state.get("request_id") or _incoming_request_id(scope) or uuid.uuid4().hex
    state["request_id"] = request_id
    return request_id


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            if 0 < len(candidate) <= 128 and candidate.replace("-", "").isalnum():
                return candidate
    return None
