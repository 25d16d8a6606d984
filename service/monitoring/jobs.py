"""The monitor's arq jobs.

- ``monitoring.cycle`` (queue ``monitor``, :class:`CyclePayload`): one monitoring cycle of a tenant (see
  :mod:`service.monitoring.sweep`). Idempotent and resumable: a retry after a killed worker sweeps again and
  reads what is still marked, and nothing it writes twice is duplicated. Keyed per tenant: asking while one is
  queued or running joins it. An expected upstream failure (cloud unreachable, 5xx, 429, credential refused)
  ends it normally with one warning and its next attempt one sweep interval later (no arq failure, no retry).
- ``monitoring.schedule`` (cron, every minute, ``monitor``): asks for the cycles due by the time it runs or
  within half a minute after, so each cycle starts at the tick nearest its due time: a tick a few seconds early
  or late neither skips a cycle to the next minute nor runs one twice (due times keep to the tenant's sweep
  interval, see :func:`service.monitoring.rules.next_sweep_due`).
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import TypedDict

from service.changefeed import publisher
from service.core.clock import utcnow
from service.core.tenancy import TenantId, tenant_id_from
from service.db.uow import DeferredJob
from service.givenergy import GivEnergyClient, Lane
from service.jobs.context import JobContext
from service.jobs.enqueue import enqueue_deferred
from service.jobs.typed import NoPayload, Payload, Queue, job
from service.monitoring.repository import due_tenants
from service.monitoring.rules import SCHEDULER_TICK
from service.monitoring.sweep import ClientSource, Monitor
from service.runtime import Resources

CYCLE_JOB = "monitoring.cycle"


class CyclePayload(Payload):
    """What ``monitoring.cycle`` works on."""

    tenant_id: uuid.UUID


class CycleResult(TypedDict):
    """What ``monitoring.cycle`` returns."""

    inverters: int
    requests: int
    targeted: int
    round_robin: int
    raised: int
    cleared: int
    storm: str
    bound_minutes: float | None
    failure: str | None


def monitoring_clients(resources: Resources) -> ClientSource:
    """The tenant's client in the monitoring lane, from the one upstream entry point."""

    def clients(tenant_id: TenantId) -> contextlib.AbstractAsyncContextManager[GivEnergyClient]:
        return resources.upstream.client(tenant_id, Lane.MONITORING)

    return clients


def build_monitor(resources: Resources, clients: ClientSource | None = None) -> Monitor:
    """A monitor using the process's resources."""

    async def enqueue(jobs: list[DeferredJob]) -> None:
        await enqueue_deferred(resources.redis, jobs)

    return Monitor(resources.session_factory, clients or monitoring_clients(resources), enqueue,
                   publish=publisher(resources.redis))


# A cycle is short (one sweep interval's budget); a killed one is simply run again (nothing it wrote repeats). No
# result is kept, so the tenant's key is free for the next cycle the moment one ends.
@job(CYCLE_JOB, queue=Queue.MONITOR, payload=CyclePayload, max_tries=3, timeout=timedelta(minutes=15),
     keep_result=timedelta(0))  # fmt: skip
async def run_cycle(ctx: JobContext, payload: CyclePayload) -> CycleResult:
    """Run one monitoring cycle of a tenant."""
    report = await build_monitor(ctx["resources"]).cycle(tenant_id_from(payload.tenant_id))
    return CycleResult(inverters=report.inverters, requests=report.page_requests + report.event_requests,
                       targeted=report.targeted, round_robin=report.round_robin, raised=report.raised,
                       cleared=report.cleared, storm=report.storm,
                       bound_minutes=report.plan.bound_minutes if report.plan is not None else None,
                       failure=report.failure)  # fmt: skip


def cycle_call(tenant_id: TenantId | uuid.UUID) -> DeferredJob:
    """The checked call of a tenant's cycle (keyed per tenant: asking while one is queued or running joins it)."""
    return run_cycle.call(CyclePayload(tenant_id=uuid.UUID(str(tenant_id))), key=str(tenant_id))


@job("monitoring.schedule", queue=Queue.MONITOR, payload=NoPayload, cron=15, max_tries=1)
async def schedule_cycles(ctx: JobContext, payload: NoPayload) -> int:
    """Ask for every monitoring cycle due by now or within half a tick, this tick being the nearest to its due
    time (cron job); returns how many were asked for."""
    resources = ctx["resources"]
    async with resources.session_factory() as session:
        tenants = await due_tenants(session, utcnow() + SCHEDULER_TICK / 2)
    await enqueue_deferred(resources.redis, [cycle_call(tenant) for tenant in tenants])
    return len(tenants)
