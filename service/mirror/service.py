"""The mirror's services: asking for a sync, scheduling them.

Services take a session and never commit; asking for a sync defers the job until the caller's transaction
commits (:func:`service.db.uow.defer_job`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from service.core.errors import ConflictError
from service.core.principal import Principal
from service.core.tenancy import TenantId, tenant_id_from
from service.db.models.mirror import SyncKind, SyncRun, SyncSchedule
from service.db.uow import defer_job
from service.mirror.repository import (
    MirrorRepository,
    SyncRunRepository,
    due_schedules,
    schedule_unscheduled_tenants,
)
from service.policy import Action, authorize
from service.settings import Settings
from service.tenants.repository import CredentialRepository
from service.tenants.service import AuditService

SYNC_JOB = "mirror.sync"
SCHEDULE_JOB = "mirror.schedule"



def sync_job_id(tenant_id: TenantId, kind: SyncKind) -> str:
    """The arq job id of a tenant's sync: while one is queued or running, asking again joins it."""
    return f"{SYNC_JOB}:{tenant_id}:{kind.value}"


def request_sync(
    session: AsyncSession, tenant_id: TenantId, kind: SyncKind = SyncKind.FULL, *, spread: int | None = None
) -> str:
    """Ask for a sync of the tenant once the caller's transaction commits; returns the job id.

    Args:
        session: The caller's session (the job is enqueued after its commit).
        tenant_id: The tenant.
        kind: Full sync or refresh.
        spread: Check site statuses in slices spread over this many runs (scheduled syncs); ``None``: a full
            sync checks them all.
    """
    job_id = sync_job_id(tenant_id, kind)
    defer_job(session, SYNC_JOB, str(tenant_id), kind.value, spread, _job_id=job_id)
    return job_id


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
            PermissionDeniedError: The principal is below the operator role, or its key is restricted to a
                subtree (a sync is tenant-wide).
            ConflictError: The tenant has no GivEnergy credential to sync with.

        Returns:
            The job id (the same for every request joining one sync).
        """
        authorize(principal, Action.SYNC_REQUEST)
        if not await CredentialRepository(self.session, self.tenant_id).list():
            raise ConflictError("the tenant has no GivEnergy credential: add one before syncing")
        job_id = request_sync(self.session, self.tenant_id, kind)
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


async def enqueue_due(session: AsyncSession, now: datetime, settings: Settings) -> list[str]:
    """Ask for every due sync (a due full sync stands in for a due refresh) and move the schedules on.

    A tenant with an API token and no schedule gets the default one first (``settings.sync`` intervals).

    Returns:
        The job ids asked for.
    """
    await schedule_unscheduled_tenants(
        session,
        full_interval_seconds=settings.sync.full_interval_seconds,
        refresh_interval_seconds=settings.sync.refresh_interval_seconds,
    )
    await session.flush()
    asked: list[str] = []
    for schedule in await due_schedules(session, now):
        tenant = tenant_id_from(schedule.tenant_id)
        # Every run checks a slice of the site statuses, so that all are checked once per full interval.
        spread = max(1, schedule.full_interval_seconds // max(1, schedule.refresh_interval_seconds))
        full_due = schedule.next_full_at is None or schedule.next_full_at <= now
        if full_due:
            asked.append(request_sync(session, tenant, SyncKind.FULL, spread=spread))
            schedule.next_full_at = now + timedelta(seconds=schedule.full_interval_seconds)
        else:
            asked.append(request_sync(session, tenant, SyncKind.REFRESH, spread=spread))
        schedule.next_refresh_at = now + timedelta(seconds=schedule.refresh_interval_seconds)
    return asked
