"""The campaigns' arq jobs.

- ``campaign.tick(campaign_id, seq)``: one step of a campaign (see :mod:`service.campaigns.engine`); it enqueues
  the next tick of its chain after its own commit. Short: one upstream request at most.
- ``campaign.sweep()``: cron, every minute: resumes campaigns whose tick chain died (a worker killed between
  commit and enqueue, or mid-request), by starting a new chain; the old one stops at its next tick.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns.engine import CampaignEngine
from service.campaigns.lifecycle import ENGINE_STATES
from service.campaigns.service import TICK_JOB, schedule_tick
from service.core.clock import utcnow
from service.db.models.campaign import Campaign, CampaignChunk, CampaignState, ChunkState
from service.jobs.context import JobContext
from service.jobs.enqueue import unit_of_work

SWEEP_JOB = "campaign.sweep"


async def campaign_tick(ctx: JobContext, campaign_id: str, seq: int) -> str:
    """Run one tick of a campaign and enqueue the next one of its chain.

    Args:
        ctx: The job context (``resources``).
        campaign_id: The campaign.
        seq: The chain's tick number (a tick of a superseded chain does nothing).

    Returns:
        What the tick did.
    """
    resources = ctx["resources"]
    engine = CampaignEngine(resources.session_factory, resources.upstream,
                            lease_seconds=resources.settings.campaigns.lease_seconds)
    outcome = await engine.tick(uuid.UUID(campaign_id), seq)
    if outcome.next_at is not None and outcome.seq is not None:
        when = outcome.next_at if outcome.next_at > utcnow() else None
        await resources.redis.enqueue_job(TICK_JOB, campaign_id, outcome.seq,
                                          _job_id=f"{TICK_JOB}:{campaign_id}:{outcome.seq}", _defer_until=when)
    return outcome.did


async def resume_stale(session: AsyncSession, now: datetime, stale_after: timedelta) -> list[uuid.UUID]:
    """Start a new tick chain for every acting campaign whose heartbeat is older than ``stale_after`` and that is
    not waiting for a later time (the caller commits, then the ticks are enqueued)."""
    cutoff = now - stale_after
    unsent = exists().where(CampaignChunk.campaign_id == Campaign.id,
                            CampaignChunk.state.in_([ChunkState.PENDING, ChunkState.SENDING]))
    stale = (await session.execute(
        select(Campaign).where(
            Campaign.state.in_(ENGINE_STATES),
            # cancelled and aborted campaigns only need ticks while they still have reads to make
            or_(Campaign.state.in_([CampaignState.RUNNING, CampaignState.ROLLING_BACK]), unsent),
            or_(Campaign.heartbeat_at.is_(None), Campaign.heartbeat_at < cutoff),
            or_(Campaign.next_step_at.is_(None), Campaign.next_step_at < cutoff),
        ).with_for_update(skip_locked=True))).scalars().all()
    for campaign in stale:
        campaign.heartbeat_at = now
        schedule_tick(session, campaign)
    return [campaign.id for campaign in stale]


async def sweep(ctx: JobContext) -> list[str]:
    """Resume campaigns whose tick chain died (cron)."""
    resources = ctx["resources"]
    stale_after = timedelta(seconds=resources.settings.campaigns.stale_after_seconds)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        return [str(campaign_id) for campaign_id in await resume_stale(session, utcnow(), stale_after)]
