"""The typed context every resolver receives: who asks (the :class:`~service.core.principal.Principal`), the
session factory, this request's read session and dataloaders, and the live service for pass-through fields.
Built once per HTTP request, and once per WebSocket connection (which authenticates with its ``connection_init``
message, then runs subscriptions only, fed by the process's change hub)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import SchemaExtension
from strawberry.litestar import BaseContext
from strawberry.types import Info as StrawberryInfo

from service.authn import authenticate_authorization
from service.core.clock import utcnow
from service.core.principal import Principal
from service.db.uow import read_only_sessions
from service.mirror.queries import FleetReader, ReadScope

if TYPE_CHECKING:
    from service.changefeed import ChangeHub
    from service.gql.loaders import Loaders
    from service.mirror.live import LiveService
    from service.runtime import Resources


class RequestReads:
    """One read session (so one pooled connection) for a whole operation, instead of one per root field and per
    loader batch. An ``AsyncSession`` serves one task at a time, so concurrent resolvers and batches take turns:
    each holds it for one statement's worth of work. Closed (the connection returned) whenever no other task is
    waiting for it, so no connection is held while the operation waits on anything else (GivEnergy, for live
    fields and mutations), and at the latest when the operation ends (:class:`service.gql.context.ReleaseReads`)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None
        self._turn = asyncio.Lock()
        self._waiting = 0

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """The operation's session, for this task alone until the block ends."""
        self._waiting += 1
        try:
            await self._turn.acquire()
        finally:
            self._waiting -= 1
        try:
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
            if not self._waiting:
                self._session = None
                await session.close()
        finally:
            self._turn.release()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection for statements that need no ORM session (the compiled path), for this task alone until the
        block ends: the open session's if there is one, else one straight from the engine, back in the pool when
        the block ends (opening and closing a session costs more CPU than a compiled answer's statement)."""
        bind = self._session_factory.kw.get("bind")
        async with self._turn:
            if self._session is None and isinstance(bind, AsyncEngine):
                async with bind.connect() as connection:
                    yield connection
                return
        async with self.session() as session:
            yield await session.connection()

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
    _loaders: Loaders | None = None
    live: LiveService | None = None
    resources: Resources | None = None
    changes: ChangeHub | None = None
    """The process's change hub (WebSocket connections: what subscriptions listen to)."""
    connection_params: dict[str, Any] | None = None
    """The payload of a WebSocket connection's ``connection_init`` message (set by strawberry)."""
    key_checked_at: float | None = None
    """When a WebSocket connection's key was last found valid (``time.monotonic()``)."""

    async def authenticate_websocket(self) -> None:
        """Authenticate a WebSocket connection by the key of its ``connection_init`` payload
        (``{"Authorization": "Bearer <key>"}``; the upgrade request's own header is the fallback), exactly as an
        HTTP request's key; the connection then serves that key's principal.

        Raises:
            ConnectionRejectionError: No valid key (strawberry closes the connection with 4403).
        """
        socket = self.websocket
        if socket is None:
            raise ConnectionRejectionError
        params = self.connection_params or {}
        authorization = params.get("Authorization", params.get("authorization"))
        if authorization is None:
            authorization = socket.headers.get("authorization")
        if not isinstance(authorization, str):
            raise ConnectionRejectionError
        try:
            principal = await authenticate_authorization(socket, authorization)
        except (NotAuthorizedException, TooManyRequestsException):
            raise ConnectionRejectionError from None
        self.act_as(principal)
        self.key_checked_at = time.monotonic()

    async def key_still_valid(self, recheck_seconds: float) -> bool:
        """Whether a WebSocket connection's key is still valid (looked up again once ``recheck_seconds`` have
        passed since the last check): a key revoked or expired since ``connection_init`` stops receiving."""
        if self.key_checked_at is not None and time.monotonic() - self.key_checked_at < recheck_seconds:
            return True
        try:
            await self.authenticate_websocket()
        except ConnectionRejectionError:
            return False
        return True

    def act_as(self, principal: Principal) -> None:
        """Serve ``principal`` from now on (a WebSocket connection once its ``connection_init`` authenticated)."""
        self.principal = principal
        self.scope = ReadScope.of(principal.tenant_id, principal.restricted_account_id)
        self.reads = RequestReads(self.session_factory)
        self._loaders = None  # bound to the old principal's scope (and a cache that would live for hours)

    @property
    def loaders(self) -> Loaders:
        """This operation's dataloaders, built on first use: an operation the compiled path answers, a WebSocket
        connection's subscriptions and the key-less GraphiQL page never need them."""
        from service.gql.loaders import Loaders

        if self._loaders is None:
            self._loaders = Loaders(self.reads, self.scope, self.now)
        return self._loaders

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[FleetReader]:
        """A scoped reader on the operation's session (for this task until the block ends)."""
        async with self.reads.session() as session:
            yield FleetReader(session, self.scope, now=self.now)


def build_context(principal: Principal, session_factory: async_sessionmaker[AsyncSession], *, request_id: str,
                  live: LiveService | None = None, now: datetime | None = None,
                  resources: Resources | None = None, changes: ChangeHub | None = None) -> Context:
    """A fresh context (its dataloaders built when a resolver first asks) for one operation."""
    scope = ReadScope.of(principal.tenant_id, principal.restricted_account_id)
    moment = now or utcnow()
    factory = read_only_sessions(session_factory)
    reads = RequestReads(factory)
    return Context(request_id=request_id, principal=principal, scope=scope, now=moment, session_factory=factory,
                   reads=reads, live=live, resources=resources,
                   changes=changes)


class ReleaseReads(SchemaExtension):
    """Return the operation's read connection to the pool as soon as the operation is done."""

    async def on_operation(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            context = self.execution_context.context
            if isinstance(context, Context):
                await context.reads.close()


Info = StrawberryInfo[Context, None]
