"""Per-request dependencies shared by every REST controller (and the GraphQL adapter).

``db_session``: one transaction per request: committed when the handler succeeds, rolled back when it raises;
jobs deferred with :func:`service.db.uow.defer_job` are enqueued only after the commit.

``live``: the caller's :class:`~service.mirror.live.LiveService`, its upstream client closed after the handler.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from service.jobs.enqueue import unit_of_work
from service.mirror.live import CloseLater, LiveReader, LiveService, tenant_client_opener
from service.runtime import Resources
from service.tenants.crypto import KeyRing, load_key_ring
from service.tenants.principal import Principal
from service.tenants.upstream import ClientFactory, PortalFactory, default_client_factory, default_portal_factory

DbSession = NamedDependency[AsyncSession]
"""Annotate a handler parameter named ``db_session`` with this to receive the request's session."""

async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """A session whose transaction commits after the handler returns (then deferred jobs are enqueued) and
    rolls back if it raises."""
    resources: Resources = state.resources
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        yield session


def provide_key_ring(state: State) -> KeyRing:
    """The deployment's encryption key ring."""
    resources: Resources = state.resources
    return load_key_ring(resources.settings)


def provide_client_factory(state: State) -> ClientFactory:
    """How to build an upstream client for a credential (rate-limited). ``state.givenergy_client_options``
    (e.g. ``{"transport": httpx.ASGITransport(app=simulator.app)}``) lets tests and the demo reach the
    simulator in-process."""
    resources: Resources = state.resources
    options: dict[str, Any] = dict(state.get("givenergy_client_options") or {})
    return default_client_factory(resources.settings, resources.redis, **options)


def provide_portal_factory(state: State) -> PortalFactory:
    """How to build a legacy portal client for a portal-login credential (``state.givenergy_portal_options``
    plays the part of ``givenergy_client_options``)."""
    resources: Resources = state.resources
    options: dict[str, Any] = dict(state.get("givenergy_portal_options") or {})
    return default_portal_factory(resources.settings, resources.redis, **options)


@dataclass(frozen=True)
class UpstreamFactories:
    """Client factories of both upstream APIs (the ``upstream`` dependency)."""

    api: ClientFactory
    portal: PortalFactory


def provide_upstream(state: State) -> UpstreamFactories:
    """The ``upstream`` dependency: v1 API and legacy portal client factories."""
    return UpstreamFactories(provide_client_factory(state), provide_portal_factory(state))


def live_reader(request: Request[Any, Any, Any], principal: Principal, *,
                close_later: CloseLater | None = None) -> LiveReader:
    """The live reader of the principal's tenant for one request (REST and GraphQL): its credential is looked up
    and its client opened only when a read misses the cache."""
    resources: Resources = request.app.state.resources
    opener = tenant_client_opener(resources.session_factory, principal, load_key_ring(resources.settings),
                                  provide_client_factory(request.app.state))
    return LiveReader(principal.tenant_id, opener, close_later=close_later, redis=resources.redis,
                      namespace=resources.settings.redis.namespace)


async def provide_live(request: Request[Any, Any, Any],
                       principal: NamedDependency[Principal]) -> AsyncGenerator[LiveService, None]:
    """The ``live`` dependency: the caller's live reads; the upstream client is closed when the handler is done."""
    reader = live_reader(request, principal)
    try:
        yield LiveService(principal, reader)
    finally:
        await reader.aclose()
