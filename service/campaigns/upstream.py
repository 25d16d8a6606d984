"""The one place campaigns get an upstream client: the tenant's API token, in the campaign lane.

Campaign requests go through the credential's shared limiter in :attr:`Lane.CAMPAIGN`, the lowest lane, so
monitoring and interactive reads are never starved by a bulk run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.core.errors import ConflictError
from service.core.tenancy import TenantId
from service.db.models.credential import UpstreamCredential
from service.givenergy import GivEnergyClient, Lane, RateLimiter
from service.runtime import Resources
from service.settings import Settings
from service.tenants.choice import pick_api_token
from service.tenants.crypto import KeyRing, load_key_ring
from service.tenants.repository import CredentialRepository
from service.tenants.service import open_token
from service.tenants.upstream import ClientFactory, credential_budget, default_client_factory

CAMPAIGN_LANE = Lane.CAMPAIGN


class NoCredentialError(ConflictError):
    """The tenant has no usable GivEnergy API token."""

    def __init__(self) -> None:
        super().__init__("the tenant has no working GivEnergy API token: add one before running campaigns")


class CampaignClients:
    """Upstream clients of a tenant for campaigns (one per use; the credential is looked up each time)."""

    def __init__(self, settings: Settings, session_factory: async_sessionmaker[AsyncSession], key_ring: KeyRing,
                 factory: ClientFactory, limiter: RateLimiter) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._key_ring = key_ring
        self._factory = factory
        self._limiter = limiter

    @classmethod
    def of(cls, resources: Resources, **client_options: Any) -> CampaignClients:
        """Clients through the deployment's shared limiter (``client_options``: e.g. a test ``transport``)."""
        settings = resources.settings
        return cls(settings, resources.session_factory, load_key_ring(settings),
                   default_client_factory(settings, resources.redis, **client_options),
                   RateLimiter(resources.redis, namespace=settings.redis.namespace))

    async def _credential(self, tenant_id: TenantId) -> UpstreamCredential:
        async with self._session_factory() as session:
            credential = pick_api_token(await CredentialRepository(session, tenant_id).list())
        if credential is None:
            raise NoCredentialError()
        return credential

    @asynccontextmanager
    async def client(self, tenant_id: TenantId) -> AsyncIterator[GivEnergyClient]:
        """The tenant's client in the campaign lane (no database connection is held while it is used)."""
        credential = await self._credential(tenant_id)
        base = self._factory(credential, open_token(self._key_ring, credential))
        async with base:
            yield base.with_lane(CAMPAIGN_LANE)

    async def requests_per_minute(self, tenant_id: TenantId) -> int:
        """What the campaign lane can expect to send per minute at the credential's tier, now."""
        credential = await self._credential(tenant_id)
        budget = credential_budget(self._limiter, credential, self._settings)
        return max(1, await budget.capacity(CAMPAIGN_LANE, horizon_seconds=60))
