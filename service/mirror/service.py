"""The mirror's services: asking for a sync, scheduling them, and resolving the credential a tenant syncs with.

Services take a session and never commit; asking for a sync writes its run and defers the job until the
caller's transaction commits (:func:`service.mirror.jobs.request_sync`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.errors import ConflictError, NotFoundError
from service.core.tenancy import TenantId
from service.db.models.mirror import SyncKind, SyncRun, SyncSchedule
from service.givenergy import RateLimiter
from service.mirror.jobs import request_sync
from service.mirror.repository import MirrorRepository, SyncRunRepository
from service.mirror.upstream import UpstreamTarget
from service.settings import Settings
from service.tenants.choice import pick_api_token
from service.tenants.crypto import load_key_ring
from service.tenants.principal import Principal
from service.tenants.repository import CredentialRepository
from service.tenants.service import AuditService, open_token
from service.tenants.upstream import credential_budget


@dataclass(frozen=True)
class MirrorStatus:
    """How a tenant's mirror stands: rows per entity, the latest runs, the schedule."""

    counts: dict[str, int]
    runs: Sequence[SyncRun]
    schedule: SyncSchedule | None


class MirrorService:
    """The mirror of one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: TenantId) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.runs = SyncRunRepository(session, tenant_id)
        self.rows = MirrorRepository(session, tenant_id)

    async def status(self, *, runs: int = 10) -> MirrorStatus:
        """Counts, latest runs and schedule."""
        return MirrorStatus(await self.rows.counts(), await self.runs.latest(limit=runs), await self.runs.schedule())

    async def ask_for_sync(self, principal: Principal, kind: SyncKind) -> str:
        """Ask for a sync on behalf of ``principal`` once the caller commits (audited).

        A sync of the same kind already queued or running is joined, not repeated.

        Raises:
            PermissionDeniedError: The principal's key is restricted to a subtree (a sync is tenant-wide).
            ConflictError: The tenant has no GivEnergy credential to sync with.

        Returns:
            The job id (the same for every request joining one sync).
        """
        principal.require_whole_tenant()
        if not await CredentialRepository(self.session, self.tenant_id).list():
            raise ConflictError("the tenant has no GivEnergy credential: add one before syncing")
        job_id = await request_sync(self.session, self.tenant_id, kind)
        await AuditService(self.session).record(principal, "mirror.sync.request", target_type="tenant",
                                                target_id=str(self.tenant_id), details={"kind": kind.value})
        return job_id

    async def set_schedule(
        self,
        *,
        full_interval: timedelta,
        refresh_interval: timedelta,
        enabled: bool = True,
    ) -> SyncSchedule:
        """Create or change the tenant's sync schedule."""
        schedule = await self.runs.ensure_schedule(
            full_interval_seconds=int(full_interval.total_seconds()),
            refresh_interval_seconds=int(refresh_interval.total_seconds()),
        )
        schedule.full_interval_seconds = int(full_interval.total_seconds())
        schedule.refresh_interval_seconds = int(refresh_interval.total_seconds())
        schedule.enabled = enabled
        return schedule


def credential_resolver(
    settings: Settings, redis: Redis, *, transport: httpx.AsyncBaseTransport | None = None
) -> CredentialResolver:
    """A resolver reading the tenant's stored API-token credential, through the shared rate limiter."""
    return CredentialResolver(settings, RateLimiter(redis, namespace=settings.redis.namespace), transport)


class CredentialResolver:
    """Finds the credential a tenant syncs with: its first API token not known to be refused upstream."""

    def __init__(self, settings: Settings, limiter: RateLimiter, transport: httpx.AsyncBaseTransport | None) -> None:
        self.settings = settings
        self.limiter = limiter
        self.transport = transport

    async def __call__(self, session: AsyncSession, tenant_id: TenantId) -> UpstreamTarget:
        """The upstream target of the tenant.

        Raises:
            NotFoundError: The tenant has no usable API-token credential.
        """
        credentials = await CredentialRepository(session, tenant_id).list()
        credential = pick_api_token(credentials)
        if credential is None:
            raise NotFoundError("the tenant has no usable GivEnergy API token")
        token = open_token(load_key_ring(self.settings), credential)
        return UpstreamTarget(
            token=token,
            base_url=credential.base_url or self.settings.givenergy.base_url,
            credential_id=credential.id,
            limiter=credential_budget(self.limiter, credential, self.settings),
            transport=self.transport,
            timeout=self.settings.givenergy.timeout_seconds,
        )
