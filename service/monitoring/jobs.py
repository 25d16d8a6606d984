"""The monitor's arq jobs.

- ``monitoring.cycle(tenant_id)``: one monitoring cycle of a tenant (see :mod:`service.monitoring.sweep`).
  Idempotent and resumable: a retry after a killed worker sweeps again and reads what is still marked, and
  nothing it writes twice is duplicated. Its job id is per tenant, so asking while one is queued joins it.
- ``monitoring.schedule()``: cron, every minute: asks for the cycles that are due.
"""

from __future__ import annotations

import contextlib
from typing import TypedDict

from service.core.clock import utcnow
from service.core.tenancy import TenantId, tenant_id_from
from service.db.uow import DeferredJob
from service.givenergy import GivEnergyClient, Lane
from service.jobs.context import JobContext
from service.jobs.enqueue import enqueue_deferred, unit_of_work
from service.monitoring.repository import due_tenants
from service.monitoring.sweep import ClientSource, Monitor
from service.runtime import Resources

CYCLE_JOB = "monitoring.cycle"
SCHEDULE_JOB = "monitoring.schedule"


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


def cycle_job_id(tenant_id: TenantId) -> str:
    """The arq job id of a tenant's cycle (asking while one is queued or running joins it)."""
    return f"{CYCLE_JOB}:{tenant_id}"


def monitoring_clients(resources: Resources) -> ClientSource:
    """The tenant's client in the monitoring lane, from the one upstream entry point."""

    def clients(tenant_id: TenantId) -> contextlib.AbstractAsyncContextManager[GivEnergyClient]:
        return resources.upstream.client(tenant_id, Lane.MONITORING)

    return clients


def build_monitor(resources: Resources, clients: ClientSource | None = None) -> Monitor:
    """A monitor using the process's resources."""

    async def enqueue(jobs: list[DeferredJob]) -> None:
        await enqueue_deferred(resources.redis, jobs)

    return Monitor(resources.session_factory, clients or monitoring_clients(resources), enqueue)


async def run_cycle(ctx: JobContext, tenant_id: str) -> CycleResult:
    """Run one monitoring cycle of a tenant.

    Args:
        ctx: The job context (``resources``).
        tenant_id: The tenant's id.
    """
    report = await build_monitor(ctx["resources"]).cycle(tenant_id_from(tenant_id))
    return CycleResult(inverters=report.inverters, requests=report.page_requests + report.event_requests,
                       targeted=report.targeted, round_robin=report.round_robin, raised=report.raised,
                       cleared=report.cleared, storm=report.storm,
                       bound_minutes=report.plan.bound_minutes if report.plan is not None else None)  # fmt: skip


async def schedule_cycles(ctx: JobContext) -> list[str]:
    """Ask for every due monitoring cycle (cron job)."""
    resources = ctx["resources"]
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        tenants = await due_tenants(session, utcnow())
    asked = []
    for tenant in tenants:
        job_id = cycle_job_id(tenant_id_from(tenant))
        await resources.redis.enqueue_job(CYCLE_JOB, str(tenant), _job_id=job_id)
        asked.append(job_id)
    return asked
