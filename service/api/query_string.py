"""Query strings that are not UTF-8 text are refused before any handler sees them.

Litestar decodes query parameters with replacement characters, so ``?q=%ED%A0%80`` would reach a search as
``"\ufffd\ufffd\ufffd"`` and quietly match nothing (a 200 the caller cannot tell from "no results"). A handler or
a parameter type cannot tell that apart from a client that really sent U+FFFD; only the raw query string can.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from litestar.enums import ScopeType
from litestar.exceptions import ValidationException
from litestar.types import ASGIApp, Receive, Scope, Send


def _is_utf8(part: bytes) -> bool:
    try:
        unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_query_string(raw: bytes) -> None:
    """Refuse the first query parameter whose name or value is not UTF-8 once percent-decoded.

    Raises:
        ValidationException: A 400 naming the parameter (by its name as far as it is readable).
    """
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        if not (_is_utf8(name) and _is_utf8(value)):
            key = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", errors="replace")[:40]
            message = f"{key} is not valid UTF-8 text"
            raise ValidationException(detail=message, extra=[{"key": key, "message": message, "source": "query"}])


class Utf8QueryMiddleware:
    """Answer 400 to an HTTP request whose query string is not UTF-8 text (an HTTP error, so every error handler
    renders it in its own format)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            check_query_string(scope.get("query_string", b""))
        await self.app(scope, receive, send)


__all__ = ["Utf8QueryMiddleware", "check_query_string"]
