"""All queries of the tenants domain.

Tenant-owned repositories take a :class:`TenantId` and start every statement filtered by it: a row of
another tenant reads as "not found". The two unscoped classes at the end serve authentication (finding a key
by its public prefix, before any tenant is known) and key rotation (a deployment-wide maintenance task).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.tenancy import TenantId
from service.db.models.api_key import ApiKey
from service.db.models.audit import AuditEvent
from service.db.models.credential import UpstreamCredential
from service.db.models.mirror import FleetAccount
from service.db.models.tenant import Tenant, TenantStatus


class TenantRepository:
    """Tenants themselves (the one table that is not tenant-owned)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, tenant_id: TenantId) -> Tenant | None:
        """The tenant with this id."""
        return await self._session.get(Tenant, tenant_id)

    async def get_by_slug(self, slug: str) -> Tenant | None:
        """The tenant with this slug."""
        result = await self._session.execute(select(Tenant).where(Tenant.slug == slug))
        return result.scalar_one_or_none()

    async def list(self) -> Sequence[Tenant]:
        """Every tenant, by slug."""
        return (await self._session.execute(select(Tenant).order_by(Tenant.slug))).scalars().all()

    def add(self, tenant: Tenant) -> None:
        """Stage a new tenant."""
        self._session.add(tenant)

    async def any_credential_outside(self, slug: str) -> bool:
        """Whether a tenant other than ``slug`` has an upstream credential (deployment-wide)."""
        statement = (select(UpstreamCredential.id).join(Tenant, Tenant.id == UpstreamCredential.tenant_id)
                     .where(Tenant.slug != slug).limit(1))
        return (await self._session.execute(statement)).first() is not None


    async def any_credential_using(self, base_url: str) -> bool:
        """Whether any tenant has a credential whose base URL is ``base_url`` (deployment-wide)."""
        statement = select(UpstreamCredential.id).where(UpstreamCredential.base_url == base_url).limit(1)
        return (await self._session.execute(statement)).first() is not None

    async def credentials_by_tenant(self) -> dict[str, Sequence[UpstreamCredential]]:
        """Every tenant's slug with its credentials (deployment-wide), by slug, oldest credential first."""
        statement = (select(Tenant.slug, UpstreamCredential)
                     .outerjoin(UpstreamCredential, UpstreamCredential.tenant_id == Tenant.id)
                     .order_by(Tenant.slug, UpstreamCredential.created_at))
        rows = (await self._session.execute(statement)).all()
        return {slug: [credential for tenant, credential in rows if tenant == slug and credential is not None]
                for slug, _ in rows}


_Row = TypeVar("_Row", UpstreamCredential, ApiKey, AuditEvent)


class _TenantScoped(Generic[_Row]):
    model: type[_Row]

    def __init__(self, session: AsyncSession, tenant_id: TenantId) -> None:
        self._session = session
        self.tenant_id = tenant_id

    def _select(self) -> Select[_Row]:
        return select(self.model).where(self.model.tenant_id == self.tenant_id)

    def _own(self, row: _Row) -> None:
        if row.tenant_id is None:
            row.tenant_id = self.tenant_id
        elif row.tenant_id != self.tenant_id:
            raise ValueError("refusing to add a row of another tenant")


class CredentialRepository(_TenantScoped[UpstreamCredential]):
    """A tenant's upstream credentials."""

    model = UpstreamCredential

    async def list(self) -> Sequence[UpstreamCredential]:
        """The tenant's credentials, oldest first."""
        statement = self._select().order_by(UpstreamCredential.created_at, UpstreamCredential.id)
        return (await self._session.execute(statement)).scalars().all()

    async def get(self, credential_id: uuid.UUID, *, for_update: bool = False) -> UpstreamCredential | None:
        """One of the tenant's credentials (``None`` for an unknown or foreign id); ``for_update`` locks its row
        until the transaction ends (a concurrent delete waits, or has already removed it)."""
        statement = self._select().where(UpstreamCredential.id == credential_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self._session.execute(statement)).scalar_one_or_none()

    def add(self, credential: UpstreamCredential) -> None:
        """Stage a new credential of this tenant."""
        self._own(credential)
        self._session.add(credential)

    async def delete(self, credential: UpstreamCredential) -> None:
        """Delete one of the tenant's credentials."""
        self._own(credential)
        await self._session.delete(credential)


class ApiKeyRepository(_TenantScoped[ApiKey]):
    """A tenant's API keys."""

    model = ApiKey

    async def list(self, *, include_revoked: bool = True) -> Sequence[ApiKey]:
        """The tenant's keys, oldest first."""
        statement = self._select().order_by(ApiKey.created_at, ApiKey.id)
        if not include_revoked:
            statement = statement.where(ApiKey.revoked_at.is_(None))
        return (await self._session.execute(statement)).scalars().all()

    async def get(self, key_id: uuid.UUID) -> ApiKey | None:
        """One of the tenant's keys (``None`` for an unknown or foreign id)."""
        return (await self._session.execute(self._select().where(ApiKey.id == key_id))).scalar_one_or_none()

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        """One of the tenant's keys by its public prefix."""
        return (await self._session.execute(self._select().where(ApiKey.prefix == prefix))).scalar_one_or_none()

    async def restriction_exists(self, account_upstream_id: int) -> bool:
        """Whether the tenant's mirror holds the account a key would be restricted to."""
        found = (await self._session.execute(select(FleetAccount.id).where(
            FleetAccount.tenant_id == self.tenant_id, FleetAccount.upstream_id == account_upstream_id))).first()
        return found is not None

    def add(self, key: ApiKey) -> None:
        """Stage a new key of this tenant."""
        self._own(key)
        self._session.add(key)


class AuditRepository(_TenantScoped[AuditEvent]):
    """A tenant's audit log."""

    model = AuditEvent

    async def list(self, *, limit: int = 100, action: str | None = None) -> Sequence[AuditEvent]:
        """The tenant's newest events first."""
        statement = self._select().order_by(AuditEvent.occurred_at.desc(), AuditEvent.id).limit(limit)
        if action is not None:
            statement = statement.where(AuditEvent.action == action)
        return (await self._session.execute(statement)).scalars().all()

    def add(self, event: AuditEvent) -> None:
        """Stage an event of this tenant."""
        self._own(event)
        self._session.add(event)


class ApiKeyLookup:
    """Unscoped: finds a presented key by its public prefix. Only authentication uses it; the tenant it
    yields comes from the row whose secret matched."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_prefix(self, prefix: str) -> tuple[ApiKey, TenantStatus] | None:
        """The key with this prefix, whatever its tenant, and its tenant's status (one statement)."""
        statement = (select(ApiKey, Tenant.status).join(Tenant, Tenant.id == ApiKey.tenant_id)
                     .where(ApiKey.prefix == prefix))
        row = (await self._session.execute(statement)).one_or_none()
        return (row[0], row[1]) if row is not None else None

    async def touch(self, key_id: uuid.UUID, at: datetime) -> None:
        """Record a use of the key."""
        await self._session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))


class CredentialRotationRepository:
    """Unscoped: every credential not sealed with the active key (deployment-wide key rotation)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def not_sealed_with(self, key_id: str) -> Sequence[UpstreamCredential]:
        """Credentials to re-seal, locked for update."""
        statement = (select(UpstreamCredential).where(UpstreamCredential.key_id != key_id)
                     .order_by(UpstreamCredential.id).with_for_update())
        return (await self._session.execute(statement)).scalars().all()
