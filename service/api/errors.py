"""Problem-style JSON errors (RFC 9457 shape) for every failure, never a traceback."""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Any, get_args
from uuid import UUID

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.params import ParameterKwarg
from litestar.status_codes import HTTP_400_BAD_REQUEST, HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types.internal_types import PathParameterDefinition
from litestar.utils.scope.state import ScopeState

from service.core import limits
from service.core.errors import GivfleetError, InvalidParameterError, UpstreamError, kind_of
from service.observability import REQUEST_ID_HEADER, request_id_of
from service.runtime import OUTAGE_RETRY_AFTER_SECONDS, unavailable_dependency

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem(request: Request[Any, Any, Any], status: int, title: str, detail: str | None = None,
            **extra: Any) -> Response[dict[str, Any]]:
    """A problem+json response carrying the request id."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    request_id = request_id_of(request.scope)
    body["request_id"] = request_id
    body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers={REQUEST_ID_HEADER: request_id})


MISSING_BODY = "a JSON body is required"


def _http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, NotFoundException) and (malformed := _malformed_path_parameter(request)) is not None:
        return problem(request, HTTP_400_BAD_REQUEST, _title(HTTP_400_BAD_REQUEST), malformed["message"],
                       errors=[malformed])
    extra: dict[str, Any] = {}
    detail = exc.detail
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        if _body_missing(request, exc.extra):
            detail = MISSING_BODY
            extra["errors"] = [{"message": MISSING_BODY, "source": "body"}]
        else:
            extra["errors"] = errors = [_with_choices(request, _with_range(request, _in_callers_words(request, error)))
                                        for error in exc.extra]
            if len(errors) == 1 and errors[0] is not exc.extra[0] and errors[0]["message"] != exc.extra[0]["message"]:
                detail = errors[0]["message"]  # reworded in the caller's terms: the one thing to fix
    elif isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
    headers = exc.headers or {}
    response = problem(request, exc.status_code, _title(exc.status_code), detail, **extra)
    response.headers.update(headers)
    return response


_PATH_PARAMETER_FORMS: dict[type, str] = {UUID: "a UUID", int: "a whole number", date: "a date (YYYY-MM-DD)"}
"""What a typed path parameter must be, in the caller's words."""


def _malformed_path_parameter(request: Request[Any, Any, Any]) -> dict[str, Any] | None:
    """The error naming a typed path parameter the request's path gives a value it cannot be (``/campaigns/123``
    for ``/campaigns/{campaign_id:uuid}``), or None when no route has the path's shape.

    Litestar finds a route by the shape of the path, parses its typed parameters after, and answers a value that
    does not parse with the 404 of a path no route has; this finds the route and the parameter it could not parse.
    """
    if "route_handler" in request.scope:  # routed: a 404 of the handler's own
        return None
    segments = [segment for segment in request.scope["path"].split("/") if segment]
    for route in request.app.routes:
        components = route.path_components
        if len(components) != len(segments) or any(
                isinstance(component, str) and component != segment
                for component, segment in zip(components, segments, strict=True)):
            continue
        for component, segment in zip(components, segments, strict=True):
            if isinstance(component, PathParameterDefinition) and component.parser is not None:
                try:
                    component.parser(segment)
                except ValueError:
                    form = _PATH_PARAMETER_FORMS.get(component.type, f"a {component.type.__name__}")
                    return {"key": component.name, "source": "path",
                            "message": f"{component.name} must be {form}, got {segment[:40]!r}"}
    return None


def _body_missing(request: Request[Any, Any, Any], errors: list[Any]) -> bool:
    """Whether Litestar refused an empty body of a handler that needs one (it reports that as ``key: "data"``,
    ``message: "'data'"``: the handler argument it could not fill)."""
    body_errors = any(isinstance(error, dict) and error.get("source") == "body" for error in errors)
    return body_errors and ScopeState.from_scope(request.scope).body == b""


def _in_callers_words(request: Request[Any, Any, Any], error: Any) -> Any:
    """Litestar names a parameter it refuses by its handler argument (``alert_state``); name it as the caller
    sent it (``state``), the name the OpenAPI document gives it. Not on a handler with a body: Litestar names a
    refused body field by its key with the same ``source``, and a body field may share an argument's name."""
    handler = request.scope.get("route_handler")
    if not isinstance(error, dict) or handler is None or "key" not in error \
            or "data" in handler.parsed_fn_signature.parameters or error["key"] in request.query_params:
        return error  # (a key the caller sent is already in its words)
    argument = handler.parsed_fn_signature.parameters.get(error["key"])
    if argument is not None and isinstance(argument.kwarg_definition, ParameterKwarg) \
            and argument.kwarg_definition.name:
        return {**error, "key": argument.kwarg_definition.name}
    return error


def _with_choices(request: Request[Any, Any, Any], error: Any) -> Any:
    """A query parameter of an enum type Litestar refused (``Invalid enum value 'bogus'``), told as
    :func:`~service.core.limits.choice` tells one: the parameter named, the valid values listed in ``allowed``."""
    handler = request.scope.get("route_handler")
    if not isinstance(error, dict) or handler is None or error.get("source") != "query" \
            or not str(error.get("message")).startswith("Invalid enum value"):
        return error
    key = str(error.get("key"))
    options = next((_enum_in(argument.annotation) for name, argument in handler.parsed_fn_signature.parameters.items()
                    if key in (name, getattr(argument.kwarg_definition, "name", None))), None)
    if options is None:
        return error
    allowed = [str(member.value) for member in options]
    sent = next((value for value in request.query_params.getall(key) if value not in allowed), "")
    refusal = limits.not_one_of(sent, allowed, parameter=key)
    return {**error, "message": str(refusal), "allowed": refusal.allowed}


def _with_range(request: Request[Any, Any, Any], error: Any) -> Any:
    """An integer path or query parameter Litestar refused as outside its bounds (``Expected `int` >= 1``), told
    as :func:`~service.core.limits.int_in` tells one (``upstream_id must be an integer from 1 to ..., got 0``)."""
    handler = request.scope.get("route_handler")
    if not isinstance(error, dict) or handler is None or error.get("source") not in ("path", "query") \
            or not str(error.get("message")).startswith("Expected `int` "):
        return error
    key = str(error.get("key"))
    kwarg = next((argument.kwarg_definition for name, argument in handler.parsed_fn_signature.parameters.items()
                  if isinstance(argument.kwarg_definition, ParameterKwarg)
                  and key in (name, argument.kwarg_definition.name)), None)
    sent = request.path_params.get(key) if error["source"] == "path" else request.query_params.get(key)
    if kwarg is None or not isinstance(kwarg.ge, int) or not isinstance(kwarg.le, int) or sent is None:
        return error
    return {**error, "message": str(limits.out_of_range(str(sent)[:40], kwarg.ge, kwarg.le, parameter=key))}


def _enum_in(annotation: Any) -> type[Enum] | None:
    """The enum an annotation (``AlertState``, ``list[AlertState] | None``) holds values of, if any."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation
    return next((found for argument in get_args(annotation) if (found := _enum_in(argument)) is not None), None)


def _domain_error(request: Request[Any, Any, Any], exc: GivfleetError) -> Response[dict[str, Any]]:
    """The problem of a domain error; one that names its field also lists it in ``errors``, as Litestar lists a
    body field it refuses (``key``: the body's JSON key or the query parameter; ``allowed``: the valid values, when
    they are few)."""
    status = kind_of(exc).http_status
    if exc.field is None:
        return problem(request, status, _title(status), str(exc))
    error: dict[str, Any] = {"key": exc.field, "message": str(exc)}
    if isinstance(exc, InvalidParameterError) and exc.allowed is not None:
        error["allowed"] = exc.allowed
    return problem(request, status, _title(status), str(exc), errors=[error])


def _upstream_error(request: Request[Any, Any, Any], exc: UpstreamError) -> Response[dict[str, Any]]:
    status = kind_of(exc).http_status
    response = problem(request, status, _title(status), str(exc), code=exc.code, upstream_status=exc.status)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return response


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    dependency = unavailable_dependency(exc)
    if dependency is not None:  # an outage, not a bug: one line, no traceback, and a hint to come back
        log.warning("request.dependency_unavailable", path=request.url.path, dependency=dependency,
                    error_type=type(exc).__name__)
        response = problem(request, 503, _title(503), f"the {dependency} is unreachable; retry shortly",
                           code="DEPENDENCY_UNAVAILABLE")
        response.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)
        return response
    log.exception("request.unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    return problem(request, HTTP_500_INTERNAL_SERVER_ERROR, "Internal Server Error",
                   "An unexpected error occurred; quote the request id when reporting it.")


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    HTTPException: _http_exception,
    UpstreamError: _upstream_error,
    GivfleetError: _domain_error,
    Exception: _unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "problem"]
