"""The mirror's services: asking for a sync, scheduling them.

Services take a session and never commit; asking for a sync writes its run and defers the job until the
caller's transaction commits (:func:`service.mirror.jobs.request_sync`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from service.core.errors import ConflictError
from service.core.principal import Principal
from service.core.tenancy import TenantId
from service.db.models.mirror import SyncKind, SyncRun, SyncSchedule
from service.mirror.jobs import SyncRequest, request_sync
from service.mirror.repository import MirrorRepository, SyncRunRepository
from service.policy import Action, authorize
from service.tenants.repository import CredentialRepository
from service.tenants.service import AuditService


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

    async def ask_for_sync(self, principal: Principal, kind: SyncKind) -> SyncRequest:
        """Ask for a sync on behalf of ``principal`` once the caller commits (audited).

        A sync already queued or running that does what is asked is joined, not repeated (a refresh asked while
        a full sync is pending joins the full sync).

        Raises:
            PermissionDeniedError: The principal is below the operator role, or its key is restricted to a
                subtree (a sync is tenant-wide).
            ConflictError: The tenant has no GivEnergy credential to sync with.

        Returns:
            The job id (the same for every request joining one sync) and the kind of sync that job does.
        """
        authorize(principal, Action.SYNC_REQUEST)
        if not await CredentialRepository(self.session, self.tenant_id).list():
            raise ConflictError("the tenant has no GivEnergy credential: add one before syncing")
        asked = await request_sync(self.session, self.tenant_id, kind)
        await AuditService(self.session).record(principal, "mirror.sync.request", target_type="tenant",
                                                target_id=str(self.tenant_id), details={"kind": kind.value})
        return asked

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
