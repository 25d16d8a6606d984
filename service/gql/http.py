"""Mounting the schema in Litestar: the ``/graphql`` controller (with GraphiQL) and its per-request context.

The context getter authenticates the request (as the API-key middleware does for REST), builds fresh dataloaders
for the principal, and a live service whose reader opens the tenant's upstream client (interactive lane) only when
a live field asks for it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import structlog
from cross_web import HTTPException as GraphQLTransportError
from graphql import GraphQLSyntaxError
from litestar import Controller, Request, Response
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, WebSocketException
from litestar.status_codes import WS_1008_POLICY_VIOLATION
from strawberry.http import GraphQLHTTPResponse
from strawberry.litestar import make_graphql_controller
from strawberry.types import ExecutionResult

from service.authn import authenticate_connection
from service.core import limits
from service.core.errors import InvalidParameterError
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId
from service.gql import compiled
from service.gql.context import Context, build_context
from service.gql.schema import schema
from service.mirror.live import CloseLater, LiveService, live_reader
from service.observability import REQUEST_ID_HEADER, request_id_of
from service.runtime import Resources

GRAPHQL_PATH = "/graphql"


def after_response(context: Context) -> CloseLater:
    """Run cleanups as background tasks of the request's response (strawberry copies them onto the answer)."""

    def schedule(cleanup: Callable[[], Awaitable[None]]) -> None:
        response = context.response
        if response is None:  # not an HTTP request: nothing to attach to (the client is garbage-collected)
            return
        task = BackgroundTask(cleanup)
        existing = response.background
        if existing is None:
            response.background = BackgroundTasks([task])
        elif isinstance(existing, BackgroundTasks):
            response.background = BackgroundTasks([*existing.tasks, task])
        else:
            response.background = BackgroundTasks([existing, task])

    return schedule


# A GET without a query executes nothing (strawberry renders GraphiQL or answers 400), so it needs no key: a
# browser can open GraphiQL, then send its key in the headers pane. This access sees nothing, were it ever used.
_NOBODY = Principal(tenant_id=TenantId(uuid.UUID(int=0)), role=Role.VIEWER, actor="nobody", restricted_account_id="-1")


async def graphql_context(request: ASGIConnection[Any, Any, Any, Any],
                          resources: NamedDependency[Resources]) -> Context:
    """The context of one GraphQL request (a Litestar dependency); authenticates every request that can run an
    operation (401/429 problem+json as for REST). A WebSocket (the controller's subscription endpoint) is refused
    before anything is looked up: subscriptions are not offered."""
    if not isinstance(request, Request):
        raise WebSocketException(detail="GraphQL subscriptions are not offered", code=WS_1008_POLICY_VIOLATION)
    if request.method == "GET" and "query" not in request.query_params:
        return build_context(_NOBODY, resources.session_factory, request_id=request_id_of(request.scope))
    user = request.scope.get("user")
    principal = user if isinstance(user, Principal) else await authenticate_connection(request)
    # As the API-key middleware does for REST (each request runs in a task of its own, so this does not leak).
    structlog.contextvars.bind_contextvars(tenant_id=str(principal.tenant_id), actor=principal.actor)
    context = build_context(principal, resources.session_factory, request_id=request_id_of(request.scope),
                            resources=resources)
    context.live = LiveService(principal, live_reader(resources, principal, close_later=after_response(context)))
    return context


# Transport failures (the request never became an operation), as GraphQL clients expect them: a JSON body with
# ``errors[].extensions.code`` and the request id. Authentication failures stay problem+json, as everywhere.
_TRANSPORT_CODES = {400: "BAD_REQUEST", 405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT",
                    413: "REQUEST_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE"}


def transport_error(request: Request[Any, Any, Any], status: int, message: str) -> Response[dict[str, Any]]:
    """A failure before any operation ran, in the GraphQL response format."""
    request_id = request_id_of(request.scope)
    body = {"data": None, "errors": [{"message": message, "extensions": {
        "code": _TRANSPORT_CODES.get(status, "BAD_REQUEST"), "request_id": request_id}}]}
    return Response(body, status_code=status, media_type="application/json", headers={REQUEST_ID_HEADER: request_id})


def _litestar_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    return transport_error(request, exc.status_code, exc.detail)


class CompiledFirst:
    """The controller's compiled path: a query POSTed as JSON that :func:`service.gql.compiled.answer` can answer
    never reaches strawberry; everything else (refusals included) goes on to the resolver path. Both write the
    same compact JSON."""

    def encode_json(self, data: object) -> bytes:
        return compiled.result_body_of(data)

    async def run(self, request: Request[Any, Any, Any], context: Any = None, root_value: Any = None) -> Any:
        body = await self._compiled_body(request, context)
        if body is None:
            return await super().run(request, context=context, root_value=root_value)  # type: ignore[misc]
        answer = Response(body, media_type="application/json")
        scratch = context.response  # what resolvers of a mixed operation scheduled (a live client's closing)
        if scratch is not None:
            answer.headers.update(scratch.headers)
            answer.background = scratch.background
        return answer

    async def _compiled_body(self, request: Request[Any, Any, Any], context: Any) -> bytes | None:
        if request.method != "POST" or not isinstance(context, Context) or \
                not request.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            data = self.decode_json(await request.body())  # type: ignore[attr-defined]
        except (ValueError, GraphQLTransportError):
            return None
        return await compiled.answer(context, data.get("query"), data.get("variables"), data.get("operationName"))


def graphql_controller() -> type[Controller]:
    """The ``/graphql`` controller: POST and GET queries, GraphiQL for browsers.

    The API-key middleware skips it (``exclude_from_auth``) because :func:`graphql_context` authenticates
    itself, so that GraphiQL's page loads without a key. Bodies are capped at
    :data:`~service.core.limits.MAX_GRAPHQL_BODY_BYTES`; a body that is not a JSON object of valid UTF-8 text, or
    whose variables hold text PostgreSQL cannot store, is refused before anything runs.
    """
    base = make_graphql_controller(schema, path=GRAPHQL_PATH, graphql_ide="graphiql",
                                   context_getter=graphql_context, allow_queries_via_get=True,
                                   subscription_protocols=())  # no subscriptions: refuse WebSocket upgrades

    class GraphQLController(CompiledFirst, base):  # type: ignore[valid-type,misc]
        opt: ClassVar[dict[str, Any]] = {"exclude_from_auth": True}
        request_max_body_size = limits.MAX_GRAPHQL_BODY_BYTES
        # By status: authentication failures (401, 429) keep the app's problem+json handler.
        exception_handlers: ClassVar[dict[Any, Any]] = dict.fromkeys(_TRANSPORT_CODES, _litestar_error)

        def decode_json(self, data: str | bytes) -> object:
            text = data.decode("utf-8") if isinstance(data, bytes) else data  # UnicodeDecodeError is a ValueError
            decoded = json.loads(text)
            if not isinstance(decoded, dict):
                raise GraphQLTransportError(400, "the body must be a JSON object such as {\"query\": \"{ viewer "
                                                 "{ role } }\", \"variables\": {}}")
            try:
                limits.walk_text(decoded, parameter="body")
            except InvalidParameterError as exc:
                raise GraphQLTransportError(400, str(exc)) from None
            return decoded

        def parse_json(self, data: str | bytes) -> Any:
            try:
                return self.decode_json(data)
            except ValueError:  # JSONDecodeError, UnicodeDecodeError
                raise GraphQLTransportError(400, "the body is not valid JSON (UTF-8)") from None

        async def execute_request(self, request: Request[Any, Any, Any], context: Any,
                                  root_value: Any) -> Response[Any]:
            try:
                answer: Response[Any] = await self.run(request, context=context, root_value=root_value)
            except GraphQLTransportError as exc:
                return transport_error(request, exc.status_code, exc.reason)
            return answer

        async def process_result(self, request: Request[Any, Any, Any],
                                 result: ExecutionResult) -> GraphQLHTTPResponse:
            processed: GraphQLHTTPResponse = await super().process_result(request, result)
            request_id = request_id_of(request.scope)
            # Parse errors never reach the schema's error policy: give them its code and request id here.
            for original, error in zip(result.errors or [], processed.get("errors") or [], strict=False):
                if isinstance(error, dict):
                    extensions = error.setdefault("extensions", {})
                    extensions.setdefault("code", "GRAPHQL_PARSE_FAILED" if isinstance(original, GraphQLSyntaxError)
                                          else "GRAPHQL_VALIDATION_FAILED")
                    extensions.setdefault("request_id", request_id)
            return processed

    return GraphQLController
