"""The typed context every resolver receives: who asks (:class:`Access`), the session factory, this request's
dataloaders, and the live service for pass-through fields. Built once per HTTP request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from strawberry.litestar import BaseContext
from strawberry.types import Info as StrawberryInfo

from service.core.clock import utcnow
from service.core.errors import PermissionDeniedError
from service.core.tenancy import TenantId
from service.db.models.api_key import Role
from service.mirror.queries import FleetReader, ReadScope

if TYPE_CHECKING:
    from service.gql.loaders import Loaders
    from service.mirror.live import LiveService


@dataclass(frozen=True)
class Access:
    """The authenticated caller as the read side needs it.

    ``restricted_account_id`` is the upstream id of the GivEnergy account whose subtree a sub-contractor key
    may see (``None``: the whole tenant).
    """

    tenant_id: TenantId
    role: Role
    key_id: uuid.UUID | None = None
    restricted_account_id: str | None = None

    def require(self, role: Role) -> None:
        """Raise :class:`PermissionDeniedError` unless the caller has at least ``role``."""
        if self.role.rank < role.rank:
            raise PermissionDeniedError(f"this needs the {role.value} role; the key has {self.role.value}")


class Context(BaseContext, kw_only=True):
    """Per-request GraphQL context."""

    request_id: str
    access: Access
    scope: ReadScope
    now: datetime
    session_factory: async_sessionmaker[AsyncSession]
    loaders: Loaders
    live: LiveService | None = None

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[FleetReader]:
        """A scoped reader on a session of its own (root fields run concurrently)."""
        async with self.session_factory() as session:
            yield FleetReader(session, self.scope, now=self.now)


_READ_FACTORIES: WeakKeyDictionary[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]] = (
    WeakKeyDictionary())


def read_only_sessions(session_factory: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads in autocommit mode: no BEGIN/ROLLBACK round trips around each batch (every batch is
    one statement on a session of its own, so a transaction would add nothing)."""
    cached = _READ_FACTORIES.get(session_factory)
    if cached is None:
        bind = session_factory.kw.get("bind")
        if not isinstance(bind, AsyncEngine):
            return session_factory
        cached = async_sessionmaker(bind.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)
        _READ_FACTORIES[session_factory] = cached
    return cached


def build_context(access: Access, session_factory: async_sessionmaker[AsyncSession], *, request_id: str,
                  live: LiveService | None = None, now: datetime | None = None) -> Context:
    """A fresh context (new dataloaders) for one operation."""
    from service.gql.loaders import Loaders

    scope = ReadScope.of(access.tenant_id, access.restricted_account_id)
    moment = now or utcnow()
    reads = read_only_sessions(session_factory)
    return Context(request_id=request_id, access=access, scope=scope, now=moment, session_factory=reads,
                   loaders=Loaders(reads, scope, moment), live=live)


Info = StrawberryInfo[Context, None]
