"""The typed context every resolver receives: who asks (:class:`Access`), the session factory, this request's
dataloaders, and the live reader for pass-through fields. Built once per HTTP request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.litestar import BaseContext
from strawberry.types import Info as StrawberryInfo

from service.core.clock import utcnow
from service.core.errors import PermissionDeniedError
from service.core.tenancy import TenantId
from service.db.models.api_key import Role
from service.mirror.queries import FleetReader, ReadScope

if TYPE_CHECKING:
    from service.gql.loaders import Loaders
    from service.gql.mirror.live import LiveReader


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
    live: LiveReader | None = None

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[FleetReader]:
        """A scoped reader on a session of its own (root fields run concurrently)."""
        async with self.session_factory() as session:
            yield FleetReader(session, self.scope, now=self.now)


def build_context(access: Access, session_factory: async_sessionmaker[AsyncSession], *, request_id: str,
                  live: LiveReader | None = None, now: datetime | None = None) -> Context:
    """A fresh context (new dataloaders) for one operation."""
    from service.gql.loaders import Loaders

    scope = ReadScope.of(access.tenant_id, access.restricted_account_id)
    moment = now or utcnow()
    return Context(request_id=request_id, access=access, scope=scope, now=moment, session_factory=session_factory,
                   loaders=Loaders(session_factory, scope, moment), live=live)


Info = StrawberryInfo[Context, None]
