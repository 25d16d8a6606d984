"""Per-request dependencies shared by every REST controller.

``db_session``: a :data:`~service.db.uow.UnitOfWork`: one write transaction per request, committed when the
handler succeeds, rolled back when it raises; jobs deferred with :func:`service.db.uow.defer_job` are enqueued
only after the commit. Only handlers that write and call nothing upstream take it.

``read_session``: a :data:`~service.db.uow.ReadSession` for handlers that only read (no transaction).

``live``: the caller's :class:`~service.mirror.live.LiveService`, its upstream client closed after the handler.
Live handlers take no session: they resolve what they need on a short read session and release it before
GivEnergy is asked.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from service.core.principal import Principal
from service.db.uow import ReadSession, UnitOfWork, read_session
from service.jobs.enqueue import unit_of_work
from service.mirror.live import LiveService, live_reader
from service.runtime import Resources
from service.tenants.crypto import KeyRing, load_key_ring

DbSession = NamedDependency[UnitOfWork]
"""Annotate a handler parameter named ``db_session`` with this to receive the request's unit of work."""

ReadDb = NamedDependency[ReadSession]
"""Annotate a handler parameter named ``read_session`` with this to receive a read-only session."""


async def provide_db_session(state: State) -> AsyncGenerator[UnitOfWork, None]:
    """A unit of work whose transaction commits after the handler returns (then deferred jobs are enqueued) and
    rolls back if it raises."""
    resources: Resources = state.resources
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        yield UnitOfWork(session)


async def provide_read_session(state: State) -> AsyncGenerator[ReadSession, None]:
    """A read session (no transaction), released when the handler is done."""
    resources: Resources = state.resources
    async with read_session(resources.session_factory) as session:
        yield session


def provide_key_ring(state: State) -> KeyRing:
    """The deployment's encryption key ring."""
    resources: Resources = state.resources
    return load_key_ring(resources.settings)


async def provide_live(request: Request[Any, Any, Any],
                       principal: NamedDependency[Principal]) -> AsyncGenerator[LiveService, None]:
    """The ``live`` dependency: the caller's live reads; the upstream client is closed when the handler is done."""
    reader = live_reader(request.app.state.resources, principal)
    try:
        yield LiveService(principal, reader)
    finally:
        await reader.aclose()
