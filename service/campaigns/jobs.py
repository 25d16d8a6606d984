"""The campaigns' jobs, on the ``control`` queue.

- ``campaign.tick``: one step of a campaign (see :mod:`service.campaigns.engine`); it enqueues the next tick of
  its chain itself, after its own commit. Short: one upstream request at most.
- ``campaign.sweep``: cron, every minute: resumes campaigns whose tick chain died (a worker killed between commit
  and enqueue, or mid-request) by starting a new chain; a tick of the old chain stops at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns.engine import CampaignEngine
from service.campaigns.lifecycle import ENGINE_STATES
from service.changefeed import publisher
from service.core.clock import utcnow
from service.db.models.campaign import Campaign, CampaignChunk, CampaignState, ChunkState
from service.db.uow import DeferredJob, defer_job
from service.jobs.context import JobContext
from service.jobs.enqueue import enqueue, unit_of_work
from service.jobs.typed import NoPayload, Payload, Queue, job

TICK_JOB = "campaign.tick"
SWEEP_JOB = "campaign.sweep"


class TickPayload(Payload):
    """One tick of a campaign's chain."""

    campaign_id: uuid.UUID
    seq: int


def tick_call(campaign_id: uuid.UUID, seq: int, *, at: datetime | None = None) -> DeferredJob:
    """The checked call of tick ``seq`` of a campaign (unique per campaign and tick number)."""
    return campaign_tick.call(TickPayload(campaign_id=campaign_id, seq=seq), key=f"{campaign_id}:{seq}",
                              not_before=at)


def schedule_tick(session: AsyncSession, campaign: Campaign, *, at: datetime | None = None) -> None:
    """Start a new tick chain for ``campaign`` once the caller commits (a tick of an older chain stops)."""
    campaign.tick_seq += 1
    defer_job(session, tick_call(campaign.id, campaign.tick_seq, at=at))


@job(TICK_JOB, queue=Queue.CONTROL, payload=TickPayload, max_tries=3, timeout=timedelta(minutes=10),
     keep_result=timedelta(0))
async def campaign_tick(ctx: JobContext, payload: TickPayload) -> str:
    """Run one tick of a campaign and enqueue the next one of its chain.

    Returns:
        What the tick did.
    """
    resources = ctx["resources"]
    engine = CampaignEngine(resources.session_factory, resources.upstream,
                            publish=publisher(resources.redis),
                            lease_seconds=resources.settings.campaigns.lease_seconds)
    outcome = await engine.tick(payload.campaign_id, payload.seq)
    if outcome.next_at is not None and outcome.seq is not None:
        when = outcome.next_at if outcome.next_at > utcnow() else None
        await enqueue(resources.redis, tick_call(payload.campaign_id, outcome.seq, at=when))
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


@job(SWEEP_JOB, queue=Queue.CONTROL, payload=NoPayload, cron=30, max_tries=1)
async def sweep(ctx: JobContext, payload: NoPayload) -> list[str]:
    """Resume campaigns whose tick chain died (cron)."""
    resources = ctx["resources"]
    stale_after = timedelta(seconds=resources.settings.campaigns.stale_after_seconds)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        return [str(campaign_id) for campaign_id in await resume_stale(session, utcnow(), stale_after)]
