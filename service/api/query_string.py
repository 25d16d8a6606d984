"""Query strings are checked before any handler sees them: UTF-8 text, and only parameters the operation takes.

Litestar decodes query parameters with replacement characters, so ``?q=%ED%A0%80`` would reach a search as
``"\ufffd\ufffd\ufffd"`` and quietly match nothing (a 200 the caller cannot tell from "no results"). A handler or
a parameter type cannot tell that apart from a client that really sent U+FFFD; only the raw query string can.

Litestar also ignores a parameter no handler argument (or dependency) takes, so a misspelt filter
(``?stauts=LOST``) answers the whole fleet as if it had matched. Every operation of the OpenAPI document refuses
one, naming it and the parameters the operation takes, except a handler marked :data:`OPEN_QUERY_STRING`. And it
keeps the last value of a parameter given twice that takes one (``?inverter=A&inverter=B`` answers B's alerts
only): every such operation refuses that too; a parameter that takes a list (``?state=open&state=cleared``) takes
repeats.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import parse_qsl, unquote_to_bytes

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Receive, Scope, Send

OPEN_QUERY_STRING = "open_query_string"
"""The ``opt`` key of a handler that reads its query string itself (GraphQL over GET: ``query``, ``variables``,
``operationName``): no parameter is unknown to it."""


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


@lru_cache(maxsize=1024)
def _accepted(app: Litestar, handler: HTTPRouteHandler) -> Mapping[str, bool] | None:
    """The query parameters ``handler`` takes, sorted, by the names the caller sends (its arguments' and its
    dependencies', as Litestar reads them), each with whether it takes a list; None when any is welcome (not an
    operation of the OpenAPI document, or marked :data:`OPEN_QUERY_STRING`)."""
    if not handler.resolve_include_in_schema() or handler.opt.get(OPEN_QUERY_STRING):
        return None
    model = next(model for route in app.routes if isinstance(route, HTTPRoute)
                 for routed, model in route.route_handler_map.values() if routed is handler)
    takes_list: dict[str, bool] = {}
    for parameter in sorted(model.expected_query_params, key=lambda parameter: parameter.field_alias):
        takes_list[parameter.field_alias] = takes_list.get(parameter.field_alias, False) or parameter.is_sequence
    return takes_list


def check_query_names(scope: Scope) -> None:
    """Refuse the first query parameter the routed operation does not take, or takes one value of and is given
    twice.

    Raises:
        ValidationException: A 400 naming the parameter; for an unknown one, its ``allowed`` the parameters the
            operation takes.
    """
    handler = scope.get("route_handler")
    raw = scope.get("query_string", b"")
    if not isinstance(handler, HTTPRouteHandler) or not raw:
        return
    accepted = _accepted(Litestar.from_scope(scope), handler)
    if accepted is None:
        return
    given: set[str] = set()
    for name, _ in parse_qsl(raw.decode("utf-8"), keep_blank_values=True):
        if name not in accepted:
            takes = f"it takes {', '.join(accepted)}" if accepted else "it takes none"
            message = f"unknown query parameter {name[:40]!r}: {takes}"
            raise ValidationException(detail=message, extra=[
                {"key": name[:40], "message": message, "source": "query", "allowed": list(accepted)}])
        if name in given and not accepted[name]:
            message = f"{name} is given twice; it takes one value"
            raise ValidationException(detail=message, extra=[{"key": name, "message": message, "source": "query"}])
        given.add(name)


class QueryStringMiddleware:
    """Answer 400 to an HTTP request whose query string is not UTF-8 text, names a parameter its operation does
    not take, or repeats one that takes one value (an HTTP error, so every error handler renders it in its own
    format)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            check_query_string(scope.get("query_string", b""))
            check_query_names(scope)
        await self.app(scope, receive, send)


__all__ = ["OPEN_QUERY_STRING", "QueryStringMiddleware", "check_query_names", "check_query_string"]
