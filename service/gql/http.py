"""Mounting the schema in Litestar: the ``/graphql`` controller (with GraphiQL and subscriptions) and its context.

The context getter authenticates the request (as the API-key middleware does for REST), builds fresh dataloaders
for the principal, and a live service whose reader opens the tenant's upstream client (interactive lane) only when
a live field asks for it.

Subscriptions speak graphql-transport-ws on the same path. A browser cannot set headers on a WebSocket, so the
key travels in the ``connection_init`` payload (``{"Authorization": "Bearer <key>"}``; the upgrade request's own
``Authorization`` header is the fallback) and is checked exactly as an HTTP request's key: a connection without a
valid key is closed with 4403 before any subscription runs, one that sends no ``connection_init`` in time with 4408,
a subscription before the acknowledgement with 4401.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import timedelta
from typing import Any, ClassVar

import structlog
from cross_web import HTTPException as GraphQLTransportError
from graphql import GraphQLSyntaxError
from litestar import Controller, MediaType, Request, Response, post
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_200_OK
from litestar.types import Dependencies
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.exceptions import NonJsonMessageReceived
from strawberry.litestar import make_graphql_controller
from strawberry.litestar.controller import GraphQLResource, LitestarWebSocketAdapter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from service.authn import authenticate_connection
from service.changefeed import ChangeHub
from service.core import limits
from service.core.errors import InvalidParameterError
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId
from service.docs_pages import PAGE_SECURITY_HEADERS, graphiql_page
from service.gql import compiled
from service.gql.context import Context, build_context
from service.gql.schema import schema
from service.mirror.live import CloseLater, LiveService, live_reader
from service.observability import REQUEST_ID_HEADER, request_id_of
from service.runtime import Resources
from service.settings import ApiSettings

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


def _empty_response() -> Response[Any]:
    """The response strawberry's controller fills in (status, headers, background tasks)."""
    return Response({}, background=BackgroundTasks([]))


# A GET without a query executes nothing (strawberry renders GraphiQL or answers 400), so it needs no key: a
# browser can open GraphiQL, then send its key in the headers pane. This access sees nothing, were it ever used.
_NOBODY = Principal(tenant_id=TenantId(uuid.UUID(int=0)), role=Role.VIEWER, actor="nobody", restricted_account_id="-1")


async def graphql_context(request: ASGIConnection[Any, Any, Any, Any],
                          resources: NamedDependency[Resources]) -> Context:
    """The context of one GraphQL request (a Litestar dependency); authenticates every request that can run an
    operation (401/429 problem+json as for REST). A WebSocket's context serves nobody until its
    ``connection_init`` authenticates (see :meth:`Context.authenticate_websocket`)."""
    if not isinstance(request, Request):
        changes: ChangeHub = request.app.state.changes
        return build_context(_NOBODY, resources.session_factory, request_id=request_id_of(request.scope),
                             resources=resources, changes=changes)
    if request.method == "GET" and "query" not in request.query_params:
        return build_context(_NOBODY, resources.session_factory, request_id=request_id_of(request.scope))
    return await operation_context(request, resources)


async def operation_context(request: Request[Any, Any, Any], resources: Resources) -> Context:
    """The context of an HTTP request that runs an operation, for its authenticated caller (401/429 problem+json
    as for REST)."""
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

    def encode_json(self, data: object) -> str:
        return compiled.result_body_of(data).decode()  # text: WebSocket messages are text frames

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
        if not isinstance(request, Request) or request.method != "POST" or not isinstance(context, Context) or \
                not request.headers.get("content-type", "").startswith("application/json"):  # WebSockets too
            return None
        try:
            data = self.decode_json(await request.body())  # type: ignore[attr-defined]
        except (ValueError, GraphQLTransportError):
            return None
        return await compiled.answer(context, data.get("query"), data.get("variables"), data.get("operationName"))


class ContextInHandler:
    """Mixed into the controller: the POST handler builds its context itself, as strawberry's dependencies build it.
    strawberry's handler takes its context, root value and response as dependencies, which Litestar resolves in
    tasks of their own on every request: several times the CPU of a compiled answer's own work."""

    temporal_response: Response[Any]

    @post(status_code=HTTP_200_OK)
    async def handle_http_post(self, request: Request[Any, Any, Any]) -> Response[GraphQLResource | str]:
        context = await operation_context(request, request.app.state.resources)
        context.request = request
        context.response = request.state.graphql_response = _empty_response()
        answer: Response[GraphQLResource | str] = await self.execute_request(  # type: ignore[attr-defined]
            request, context=context, root_value=None)
        return answer

    async def get_sub_response(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """This request's response (its headers, status and background tasks go onto the answer). strawberry keeps
        it on the controller, which every request shares: a POST that awaits before it falls back to the resolvers
        would take another request's (a GET sets and reads it with no await between)."""
        mine: Response[Any] | None = request.state.get("graphql_response")
        return self.temporal_response if mine is None else mine


class WebSocketMessages(LitestarWebSocketAdapter):
    """A WebSocket's messages, checked as HTTP bodies are (:meth:`decode_json`), and their fields' types checked
    (:func:`malformed`): a message that fails closes the connection with 4400, as invalid JSON does, never an
    internal error."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        try:
            async for message in super().iter_json(ignore_parsing_errors=ignore_parsing_errors):
                problem = malformed(message)
                if problem is not None:
                    await self.close(4400, problem)
                    return
                yield message
        except GraphQLTransportError:
            raise NonJsonMessageReceived from None


_OPTIONAL_FIELDS: dict[str, type] = {"variables": dict, "operationName": str, "extensions": dict}


def malformed(message: object) -> str | None:
    """What is wrong with the types of a graphql-transport-ws message's fields (``None``: nothing; unknown types
    and missing fields are the protocol handler's to refuse)."""
    if not isinstance(message, dict) or message.get("type") not in ("subscribe", "complete"):
        return None
    if not isinstance(message.get("id", ""), str):
        return "the message id must be a string"
    if message["type"] == "complete":
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return "a subscribe message needs a payload with the query as a string"
    for name, kind in _OPTIONAL_FIELDS.items():
        if payload.get(name) is not None and not isinstance(payload[name], kind):
            return f"the payload's {name} must be {'an object' if kind is dict else 'a string'}"
    return None


class BundledGraphiQL:
    """Mixed into the controller: GraphiQL from the bundled assets (strawberry's own page loads them from a CDN)."""

    async def render_graphql_ide(self, request: Request[Any, Any, Any]) -> Response[str]:
        return Response(graphiql_page(), media_type=MediaType.HTML, headers=PAGE_SECURITY_HEADERS)


def graphql_controller(api: ApiSettings, handler_opt: dict[str, Any] | None = None) -> type[Controller]:
    """The ``/graphql`` controller: POST and GET queries, GraphiQL for browsers (from bundled assets), subscriptions
    over a WebSocket (graphql-transport-ws) with the connection limits of ``api``; ``handler_opt`` adds to its handlers'
    options (what the app's middleware needs to know of it).

    The API-key middleware skips it (``exclude_from_auth``) because :func:`graphql_context` authenticates
    itself, so that GraphiQL's page loads without a key. Bodies are capped at
    :data:`~service.core.limits.MAX_GRAPHQL_BODY_BYTES`; a body that is not a JSON object of valid UTF-8 text, or
    whose variables hold text PostgreSQL cannot store, is refused before anything runs.
    """
    # Any origin may open a WebSocket: it carries no ambient credentials (no cookies), only the key a page sends.
    base = make_graphql_controller(
        schema, path=GRAPHQL_PATH, graphql_ide="graphiql", context_getter=graphql_context, allow_queries_via_get=True,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,), allowed_origins=("*",),
        connection_init_wait_timeout=timedelta(seconds=api.subscription_init_timeout_seconds),
        max_subscriptions_per_connection=api.subscriptions_per_connection)

    class GraphQLController(ContextInHandler, CompiledFirst, BundledGraphiQL, base):  # type: ignore[valid-type,misc]
        opt: ClassVar[dict[str, Any]] = {"exclude_from_auth": True, **(handler_opt or {})}
        # strawberry provides the response (an empty Response) in a worker thread: a thread hop per request for
        # building one object. Built on the event loop instead.
        dependencies: ClassVar[Dependencies] = {**base.dependencies,
                                                "response": Provide(_empty_response, sync_to_thread=False)}
        websocket_adapter_class = WebSocketMessages
        request_max_body_size = limits.MAX_GRAPHQL_BODY_BYTES
        # By status: authentication failures (401, 429) keep the app's problem+json handler.
        exception_handlers: ClassVar[dict[Any, Any]] = dict.fromkeys(_TRANSPORT_CODES, _litestar_error)

        async def on_ws_connect(self, context: Context) -> None:
            await context.authenticate_websocket()

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
