"""Mounting the schema in Litestar: the ``/graphql`` controller (with GraphiQL) and its per-request context.

The context getter authenticates the request (as the API-key middleware does for REST), builds fresh dataloaders
for the principal, and a live service whose reader opens the tenant's upstream client (interactive lane) only when
a live field asks for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import structlog
from litestar import Controller, Request
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketException
from litestar.status_codes import WS_1008_POLICY_VIOLATION
from strawberry.litestar import make_graphql_controller

from service.authn import authenticate_connection
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId
from service.gql.context import Context, build_context
from service.gql.schema import schema
from service.mirror.live import CloseLater, LiveService, live_reader
from service.observability import request_id_of
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


def graphql_controller() -> type[Controller]:
    """The ``/graphql`` controller: POST and GET queries, GraphiQL for browsers.

    The API-key middleware skips it (``exclude_from_auth``) because :func:`graphql_context` authenticates
    itself, so that GraphiQL's page loads without a key.
    """
    base = make_graphql_controller(schema, path=GRAPHQL_PATH, graphql_ide="graphiql",
                                   context_getter=graphql_context, allow_queries_via_get=True,
                                   subscription_protocols=())  # no subscriptions: refuse WebSocket upgrades

    class GraphQLController(base):  # type: ignore[valid-type,misc]
        opt: ClassVar[dict[str, Any]] = {"exclude_from_auth": True}

    return GraphQLController
