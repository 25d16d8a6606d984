"""How failures reach GraphQL clients: domain errors keep their (safe) message and gain a ``code``;
anything unexpected is masked to "Unexpected error" with the request id, and logged in full."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from service.core.errors import GivfleetError, InvalidParameterError, kind_of
from service.runtime import unavailable_dependency

log = structlog.get_logger(__name__)

class ErrorPolicy(SchemaExtension):
    """Give every error a ``code`` and the request id; mask those that are not deliberate.

    Deliberate errors: validation/limit errors (no original error) and :class:`GivfleetError`s. Everything
    else (a bug, a database outage) becomes "Unexpected error." so no internals leak.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
            request_id = _request_id(self.execution_context.context)
            result.errors = [presented(error, request_id) for error in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """The same for each result of a subscription (streamed results never reach :meth:`on_operation`'s)."""
        if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
            request_id = _request_id(self.execution_context.context)
            result.errors = [presented(error, request_id) for error in result.errors]
        yield


def presented(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """``error`` as clients see it: with a ``code`` and the request id, masked unless deliberate."""
    original = error.original_error
    extensions: dict[str, Any] = dict(error.extensions or {})
    if request_id:
        extensions["request_id"] = request_id
    if original is None or isinstance(original, GraphQLError):
        extensions.setdefault("code", _deliberate_code(error))
        message = error.message
    elif isinstance(original, GivfleetError):
        extensions["code"] = kind_of(original).code
        if isinstance(original, InvalidParameterError) and original.allowed is not None:
            extensions["allowed"] = original.allowed
        message = str(original)
    elif (dependency := unavailable_dependency(original)) is not None:
        log.warning("graphql.dependency_unavailable", path=error.path, dependency=dependency,
                    error_type=type(original).__name__)
        extensions["code"] = "SERVICE_UNAVAILABLE"
        message = f"The {dependency} is unreachable; retry shortly."
    else:
        log.error("graphql.unexpected_error", path=error.path, error_type=type(original).__name__,
                  exc_info=original)
        extensions["code"] = "INTERNAL_SERVER_ERROR"
        message = "Unexpected error; quote the request id when reporting it."
    return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path, original_error=None, extensions=extensions)


def _deliberate_code(error: GraphQLError) -> str:
    if isinstance(error, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED"
    return "GRAPHQL_VALIDATION_FAILED" if error.path is None else "BAD_REQUEST"


def _request_id(context: object) -> str | None:
    value = getattr(context, "request_id", None)
    return value if isinstance(value, str) else None
