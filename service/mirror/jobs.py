"""The mirror's jobs, and how they are asked for.

- ``mirror.sync`` (queue ``bulk``, :class:`SyncPayload`): one sync of a tenant. Idempotent and resumable: a
  retry (transient upstream failure), a restarted worker or the sweeper resumes the run from its checkpoint
  (see :mod:`service.mirror.runner`). Ask for it with :func:`request_sync`: asking while an unfinished run
  covers the request joins it (nothing is enqueued); the job key is per tenant and kind, and a revived run's job
  has a key of its own (run and attempt), so that a stalled attempt ending cannot clear the live one's arq keys.
- ``mirror.schedule`` (cron, every minute, ``bulk``): asks for the syncs the tenants' schedules say are due.
- ``mirror.sweep`` (cron, every minute, ``bulk``): revives runs whose lease lapsed (a worker killed mid-run, or
  a job lost between the commit that asked for it and its enqueue).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import NamedTuple, TypedDict

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.clock import utcnow
from service.core.tenancy import TenantId, tenant_id_from
from service.db.models.mirror import SyncCheckpoint, SyncKind, SyncRun
from service.db.uow import defer_job
from service.jobs.context import JobContext
from service.jobs.enqueue import unit_of_work
from service.jobs.typed import NoPayload, Payload, Queue, job
from service.mirror.repository import SyncRunRepository, due_schedules, schedule_unscheduled_tenants, stale_runs
from service.mirror.runner import SyncRunner, TransientSyncError, covers, options_from
from service.settings import Settings

SYNC_JOB = "mirror.sync"


class SyncPayload(Payload):
    """What ``mirror.sync`` works on."""

    tenant_id: uuid.UUID
    kind: SyncKind = SyncKind.FULL
    spread: int | None = Field(default=None, ge=1, description="Check site statuses in slices over this many runs.")
    run_id: uuid.UUID | None = Field(default=None, description="The run asked for (None: the CLI or a new one).")


class SyncResult(TypedDict):
    """What ``mirror.sync`` returns."""

    run_id: str
    kind: str
    state: str
    joined: bool
    planned_requests: int | None
    requests_used: int
    rate_limited: int
    rows_inserted: int
    rows_updated: int
    rows_removed: int
    history_rows: int
    error: str | None


# An explicit full sync of a large fleet runs for hours at 300 requests/minute; a retry resumes it. No result is
# kept, so the job key is free for the next request the moment a sync ends (the run row is the record).
@job(SYNC_JOB, queue=Queue.BULK, payload=SyncPayload, max_tries=5, timeout=timedelta(hours=6),
     retry_delay=timedelta(seconds=30), retry_on=(TransientSyncError,), keep_result=timedelta(0))  # fmt: skip
async def sync_tenant(ctx: JobContext, payload: SyncPayload) -> SyncResult:
    """Sync one tenant's mirror from its GivEnergy credential.

    Returns:
        The run's outcome (a failed sync is recorded on its run and returned, not raised).

    Raises:
        TransientSyncError: A transient upstream failure before the last try: the job is retried and resumes.
    """
    resources = ctx["resources"]
    runner = SyncRunner(
        resources.engine,
        resources.session_factory,
        resources.upstream.sync_target,
        options_from(resources.settings, spread=payload.spread),
    )
    outcome = await runner.run(
        tenant_id_from(payload.tenant_id),
        payload.kind,
        job_id=ctx.get("job_id"),
        run_id=payload.run_id,
        final_attempt=ctx.get("job_try", 1) >= sync_tenant.max_tries,
        requeued_when_cancelled=True,
    )
    return SyncResult(
        run_id=str(outcome.run_id),
        kind=outcome.kind.value,
        state=outcome.state.value,
        joined=outcome.joined,
        planned_requests=outcome.plan.requests if outcome.plan is not None else None,
        requests_used=outcome.requests_used,
        rate_limited=outcome.rate_limited,
        rows_inserted=outcome.counts.inserted,
        rows_updated=outcome.counts.updated,
        rows_removed=outcome.counts.removed,
        history_rows=outcome.counts.history,
        error=outcome.error,
    )


def sync_job_id(tenant_id: TenantId, kind: SyncKind) -> str:
    """The id a request for a tenant's sync answers with (the same while one is queued or running); arq's job id
    is this id under the deployment's namespace."""
    return f"{SYNC_JOB}:{_sync_key(tenant_id, kind)}"


def _sync_key(tenant_id: TenantId | uuid.UUID, kind: SyncKind) -> str:
    return f"{tenant_id}:{kind.value}"


class SyncRequest(NamedTuple):
    """What a request for a sync will get: the job that runs it, and the kind of sync that job does (a request
    joining a pending full sync gets a full sync, whatever it asked for)."""

    job_id: str
    kind: SyncKind


async def request_sync(
    session: AsyncSession,
    tenant_id: TenantId,
    kind: SyncKind = SyncKind.FULL,
    *,
    spread: int | None = None,
    lease: timedelta = timedelta(seconds=90),
) -> SyncRequest:
    """Ask for a sync of the tenant once the caller's transaction commits; returns the job that will do it.

    The run row is written in the caller's transaction with a lease nobody holds yet, lapsing after ``lease``:
    if the job is lost between the commit and its enqueue, or its worker dies, the sweeper revives the run.
    An unfinished run that covers the request (see :func:`~service.mirror.runner.covers`) is joined: nothing is
    enqueued and its job id is returned (a refresh not yet started becomes the full sync asked for now; a stale
    run is revived). Only a full sync asked while a refresh is under way is enqueued, to follow it (a stale
    refresh is adopted by it and becomes the full sync).

    Args:
        session: The caller's session (the job is enqueued after its commit).
        tenant_id: The tenant.
        kind: Full sync or refresh.
        spread: Check site statuses in slices spread over this many runs (scheduled syncs); ``None``: a full
            sync checks them all.
        lease: How long the run may wait for a worker before the sweeper enqueues it again.
    """
    runs = SyncRunRepository(session, tenant_id)
    now = utcnow()
    run = await runs.running(for_update=True)
    if run is not None and run.attempts == 0 and kind is SyncKind.FULL:
        run.kind = SyncKind.FULL  # a refresh not yet started becomes the full sync asked for now
    if run is not None and covers(run.kind, kind):  # its job does what is asked: the caller joins it
        if run.lease_expires_at is not None and run.lease_expires_at <= now:
            _revive(session, run)  # stranded by a dead worker, a lost job or an interrupted CLI: make it run now
        return SyncRequest(sync_job_id(tenant_id, run.kind), run.kind)
    if run is None:
        run = await runs.new_run(kind, now=now, job_id=None, lease_owner=None, lease_expires_at=now + lease,
                                 checkpoint=SyncCheckpoint(spread=spread))  # fmt: skip
    payload = SyncPayload(tenant_id=tenant_id, kind=kind, spread=spread, run_id=run.id if run is not None else None)
    defer_job(session, sync_tenant.call(payload, key=_sync_key(tenant_id, kind)))
    return SyncRequest(sync_job_id(tenant_id, kind), kind)


def _revive(session: AsyncSession, run: SyncRun) -> None:
    """Enqueue the stale ``run`` again once the caller commits, under a job id of its own (the run and its
    attempt number), so that an attempt still alive past its lease (a zombie, whose job has the old id) ends
    without touching the revived job's arq keys; the old id's in-progress mark is dropped (a dead worker's)."""
    tenant = tenant_id_from(run.tenant_id)
    payload = SyncPayload(tenant_id=tenant, kind=run.kind, spread=run.progress.spread, run_id=run.id)
    key = f"{_sync_key(tenant, run.kind)}:{run.id}:{run.attempts + 1}"
    defer_job(session, sync_tenant.call(payload, key=key, replaces=_sync_key(tenant, run.kind)))


@job("mirror.schedule", queue=Queue.BULK, payload=NoPayload, cron=0, max_tries=1)
async def schedule_syncs(ctx: JobContext, payload: NoPayload) -> list[str]:
    """Ask for every sync that is due (cron job)."""
    resources = ctx["resources"]
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        return await enqueue_due(session, utcnow(), resources.settings)


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
    lease = timedelta(seconds=settings.worker.stall_seconds)
    asked: list[str] = []
    for schedule in await due_schedules(session, now):
        tenant = tenant_id_from(schedule.tenant_id)
        # Every run checks a slice of the site statuses, so that all are checked once per full interval.
        spread = max(1, schedule.full_interval_seconds // max(1, schedule.refresh_interval_seconds))
        full_due = schedule.next_full_at is None or schedule.next_full_at <= now
        kind = SyncKind.FULL if full_due else SyncKind.REFRESH
        asked.append((await request_sync(session, tenant, kind, spread=spread, lease=lease)).job_id)
        if full_due:
            schedule.next_full_at = now + timedelta(seconds=schedule.full_interval_seconds)
        schedule.next_refresh_at = now + timedelta(seconds=schedule.refresh_interval_seconds)
    return asked


@job("mirror.sweep", queue=Queue.BULK, payload=NoPayload, cron=30, max_tries=1)
async def sweep_syncs(ctx: JobContext, payload: NoPayload) -> list[str]:
    """Revive the sync runs whose lease lapsed (cron job)."""
    resources = ctx["resources"]
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        return await sweep_stale(session, utcnow())


async def sweep_stale(session: AsyncSession, now: datetime) -> list[str]:
    """Enqueue again every running sync whose lease lapsed before ``now``, once the caller commits.

    The lease is released in the same transaction, so the revived job takes the run at once; it runs under a
    job id of its own, and arq's in-progress mark of the old id, left by a dead worker, is dropped.

    Returns:
        The job ids asked for.
    """
    asked: list[str] = []
    for run in await stale_runs(session, now):
        _revive(session, run)
        asked.append(sync_job_id(tenant_id_from(run.tenant_id), run.kind))
    return asked
