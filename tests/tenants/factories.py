"""Test data for the tenants domain: tenants, keys and credentials made through the real services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.clock import utcnow
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId, tenant_id_from
from service.db.models.mirror import FleetAccount
from service.runtime import Resources
from service.simulator import Simulator, SimulatorConfig
from service.tenants.crypto import KeyRing
from service.tenants.service import ApiKeyService, TenantService
from service.upstream import Route

SIM_BASE_URL = "http://sim.test/v1"


@dataclass(frozen=True)
class TenantWithKey:
    """A tenant and the text of one of its API keys."""

    tenant_id: TenantId
    slug: str
    key: str
    key_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def unique_slug(stem: str = "t") -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


async def make_tenant(session: AsyncSession, slug: str | None = None) -> TenantId:
    tenant = await TenantService(session).create(slug or unique_slug())
    return tenant_id_from(tenant.id)


async def make_key(
    session: AsyncSession, tenant_id: TenantId, role: Role = Role.ADMIN, *,
    expires_at: datetime | None = None, restricted_account_id: str | None = None,
) -> tuple[str, uuid.UUID]:
    if restricted_account_id is not None:
        await mirrored_account(session, tenant_id, int(restricted_account_id))
    created = await ApiKeyService(session, Principal.cli(tenant_id)).create(
        name=f"{role.value} key", role=role, expires_at=expires_at, restricted_account_id=restricted_account_id
    )
    return created.text, created.key.id


async def mirrored_account(session: AsyncSession, tenant_id: TenantId, upstream_id: int) -> None:
    """Make sure the tenant's mirror holds account ``upstream_id`` (a key may only be restricted to one it has)."""
    now = utcnow()
    await session.execute(insert(FleetAccount).values(
        id=uuid.uuid4(), tenant_id=tenant_id, upstream_id=upstream_id, username=f"account-{upstream_id}",
        first_seen_at=now, last_seen_at=now, changed_at=now).on_conflict_do_nothing())


async def committed_tenant(resources: Resources, role: Role = Role.ADMIN, slug: str | None = None) -> TenantWithKey:
    """A committed tenant with one key of ``role`` (use with the ``clean_db`` fixture)."""
    async with resources.session_factory() as session, session.begin():
        slug = slug or unique_slug()
        tenant_id = await make_tenant(session, slug)
        key, key_id = await make_key(session, tenant_id, role)
    return TenantWithKey(tenant_id, slug, key, key_id)


async def committed_key(resources: Resources, tenant_id: TenantId, role: Role, **options: object) -> str:
    async with resources.session_factory() as session, session.begin():
        key, _ = await make_key(session, tenant_id, role, **options)  # type: ignore[arg-type]
    return key


def fixed_key_ring(*key_ids: str) -> KeyRing:
    """A key ring with fixed keys (the last one active)."""
    import hashlib

    ids = key_ids or ("k1",)
    return KeyRing({key_id: hashlib.sha256(key_id.encode()).digest() for key_id in ids}, ids[-1])


def simulator_route(sim: Simulator) -> Route:
    """Upstream requests to ``sim``, in-process (through the shared rate limiter like production clients)."""
    return Route(transport=httpx.ASGITransport(app=sim.app), base_url=SIM_BASE_URL,
                 legacy_base_url=SIM_BASE_URL.removesuffix("/v1") + "/GivManage/api")


def quiet_simulator(**options: Any) -> Simulator:
    """A small calm simulated cloud without rate limits."""
    return Simulator(SimulatorConfig.quiet(fleet_size=20, rate_limits_enabled=False, **options))


async def clear_auth_failures(resources: Resources) -> None:
    """Forget failed authentication attempts (tests share one client address)."""
    pattern = f"{resources.settings.redis.namespace}:auth-failures:*"
    keys = [key async for key in resources.redis.scan_iter(match=pattern)]
    if keys:
        await resources.redis.delete(*keys)
