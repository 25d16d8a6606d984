"""The typed context every resolver receives: who asks (the :class:`~service.core.principal.Principal`), the
session factory, this request's read session and dataloaders, and the live service for pass-through fields.
Built once per HTTP request."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.extensions import SchemaExtension
from strawberry.litestar import BaseContext
from strawberry.types import Info as StrawberryInfo

from service.core.clock import utcnow
from service.core.principal import Principal
from service.db.uow import read_only_sessions
from service.mirror.queries import FleetReader, ReadScope

if TYPE_CHECKING:
    from service.gql.loaders import Loaders
    from service.mirror.live import LiveService
    from service.runtime import Resources


class RequestReads:
    """One read session (so one pooled connection) for a whole operation, instead of one per root field and per
    loader batch. An ``AsyncSession`` serves one task at a time, so concurrent resolvers and batches take turns:
    each holds it for one statement's worth of work. Closed (the connection returned) when the operation ends
    (:class:`service.gql.context.ReleaseReads`)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None
        self._turn = asyncio.Lock()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """The operation's session, for this task alone until the block ends."""
        async with self._turn:
            if self._session is None:
                self._session = self._session_factory()
            session = self._session
            try:
                yield session
            except BaseException:
                # A failed or cancelled statement (graphql-core cancels the siblings of a failed field) can leave
                # the connection unusable: the next read of the operation starts on a fresh one.
                self._session = None
                with contextlib.suppress(Exception):
                    await session.close()
                raise

    async def close(self) -> None:
        """Give the connection back (a later read opens a new session)."""
        async with self._turn:
            session, self._session = self._session, None
            if session is not None:
                await session.close()


class Context(BaseContext, kw_only=True):
    """Per-request GraphQL context."""

    request_id: str
    principal: Principal
    scope: ReadScope
    now: datetime
    session_factory: async_sessionmaker[AsyncSession]
    reads: RequestReads
    loaders: Loaders
    live: LiveService | None = None
    resources: Resources | None = None

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[FleetReader]:
        """A scoped reader on the operation's session (for this task until the block ends)."""
        async with self.reads.session() as session:
            yield FleetReader(session, self.scope, now=self.now)


def build_context(principal: Principal, session_factory: async_sessionmaker[AsyncSession], *, request_id: str,
                  live: LiveService | None = None, now: datetime | None = None,
                  resources: Resources | None = None) -> Context:
    """A fresh context (new dataloaders) for one operation."""
    from service.gql.loaders import Loaders

    scope = ReadScope.of(principal.tenant_id, principal.restricted_account_id)
    moment = now or utcnow()
    factory = read_only_sessions(session_factory)
    reads = RequestReads(factory)
    return Context(request_id=request_id, principal=principal, scope=scope, now=moment, session_factory=factory,
                   reads=reads, loaders=Loaders(reads, scope, moment), live=live, resources=resources)


class ReleaseReads(SchemaExtension):
    """Return the operation's read connection to the pool as soon as the operation is done."""

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context.context
        if isinstance(context, Context):
            await context.reads.close()


Info = StrawberryInfo[Context, None]
