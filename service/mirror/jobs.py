"""The mirror's arq jobs.

- ``mirror.sync(tenant_id, kind)``: one sync of a tenant (``kind`` ``full`` or ``refresh``). Idempotent and
  resumable: a retry after a killed worker adopts the unfinished run (see :mod:`service.mirror.runner`).
  Enqueue it with :func:`service.mirror.service.request_sync` (job id per tenant and kind, so asking while
  one is queued or running joins it).
- ``mirror.schedule()``: cron, every minute: asks for the syncs the tenants' schedules say are due.
"""

from __future__ import annotations

from typing import TypedDict

from service.core.clock import utcnow
from service.core.tenancy import tenant_id_from
from service.db.models.mirror import SyncKind
from service.jobs.context import JobContext
from service.jobs.enqueue import unit_of_work
from service.mirror.runner import SyncRunner, options_from
from service.mirror.service import enqueue_due


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


async def sync_tenant(
    ctx: JobContext, tenant_id: str, kind: str = SyncKind.FULL.value, spread: int | None = None
) -> SyncResult:
    """Sync one tenant's mirror from its GivEnergy credential.

    Args:
        ctx: The job context (``resources``).
        tenant_id: The tenant's id.
        kind: ``full`` (hierarchy, sites, dongles, site status) or ``refresh`` (the dongle list).
        spread: Check site statuses in slices over this many runs (scheduled syncs); ``None``: all at once in
            a full sync.

    Returns:
        The run's outcome (a failed sync is recorded on its run and returned, not raised).
    """
    resources = ctx["resources"]
    runner = SyncRunner(
        resources.engine,
        resources.session_factory,
        resources.upstream.sync_target,
        options_from(resources.settings, spread=spread),
    )
    outcome = await runner.run(tenant_id_from(tenant_id), SyncKind(kind), job_id=ctx.get("job_id"))
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


async def schedule_syncs(ctx: JobContext) -> list[str]:
    """Ask for every sync that is due (cron job)."""
    resources = ctx["resources"]
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        return await enqueue_due(session, utcnow(), resources.settings)
