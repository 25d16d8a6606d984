"""Steps shared by the service and the engine: staging chunks, stopping writes, and audited transitions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns import lifecycle
from service.campaigns.waves import MULTI_CONTROL_MAX, chunks
from service.core.changes import Change, Topic
from service.core.clock import utcnow
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId
from service.db.models.campaign import (
    Campaign,
    CampaignChunk,
    CampaignState,
    CampaignTarget,
    ChunkKind,
    ChunkState,
    TargetState,
)
from service.db.models.monitoring import Severity
from service.db.models.notifications import NotificationEventType
from service.db.uow import defer_change
from service.notifications.outbox import record_event
from service.tenants.service import AuditService

SYSTEM_ACTOR = "system"
PROGRESS = "campaign.progress"
"""The change announced when a campaign's state or its targets' states change."""
_NOTIFIED_ENDS = {CampaignState.COMPLETED: (NotificationEventType.CAMPAIGN_FINISHED, Severity.INFO, "finished"),
                  CampaignState.ABORTED: (NotificationEventType.CAMPAIGN_ABORTED, Severity.MAJOR, "aborted")}
NOT_YET_WRITTEN = frozenset({TargetState.PENDING, TargetState.READY, TargetState.RETRYING})


def system_principal(tenant_id: TenantId) -> Principal:
    """The actor of the engine's own transitions (completed, aborted, rolled back)."""
    return Principal(tenant_id=tenant_id, role=Role.ADMIN, actor=SYSTEM_ACTOR)


async def transition(session: AsyncSession, principal: Principal, campaign: Campaign, action: str, *,
                     reason: str | None = None, details: dict[str, Any] | None = None) -> None:
    """Move ``campaign`` by ``action`` (see :mod:`.lifecycle`) and audit it with its actor."""
    before = campaign.state
    campaign.state = lifecycle.move(action, before)
    if reason is not None:
        campaign.state_reason = reason
    await audit(session, principal, campaign, action, before, campaign.state,
                {"reason": reason, **(details or {})} if reason else details)
    ending = _NOTIFIED_ENDS.get(campaign.state)
    if ending is not None:
        kind, severity, verb = ending
        because = f": {reason}" if reason else ""
        await record_event(session, campaign.tenant_id, kind, f"campaign:{campaign.id}:{campaign.state.value}",
                           f"campaign {campaign.name} {verb}{because}", severity=severity, campaign_id=campaign.id)
    announce_progress(session, campaign)


def announce_progress(session: AsyncSession, campaign: Campaign) -> None:
    """Tell live subscribers of ``campaign`` that its progress changed, once ``session`` commits."""
    defer_change(session, Change(Topic.CAMPAIGN, campaign.tenant_id, campaign.id, PROGRESS))


async def audit(session: AsyncSession, principal: Principal, campaign: Campaign, action: str,
                before: CampaignState | None, after: CampaignState, details: dict[str, Any] | None) -> None:
    """The audit row of a campaign's transition."""
    facts = {"from": before.value if before else None, "to": after.value, **(details or {})}
    await AuditService(session).record(principal, f"campaign.{action}", target_type="campaign",
                                       target_id=campaign.id, details=facts)


async def add_chunks(session: AsyncSession, campaign: Campaign, kind: ChunkKind, serials: Sequence[str], *,
                     wave: int, value: str | None = None) -> int:
    """Stage chunks of <= 1,000 ``serials`` and point their targets at them; returns how many."""
    count = 0
    now = utcnow()
    sequence = (await session.execute(select(func.coalesce(func.max(CampaignChunk.sequence), 0))
                                      .where(CampaignChunk.campaign_id == campaign.id))).scalar_one()
    for part in chunks(list(serials), MULTI_CONTROL_MAX):
        count += 1
        chunk = CampaignChunk(campaign_id=campaign.id, tenant_id=campaign.tenant_id, wave=wave,
                              sequence=sequence + count, kind=kind, serials=part, value=value, created_at=now)
        session.add(chunk)
        await session.flush()
        await session.execute(update(CampaignTarget)
                              .where(CampaignTarget.campaign_id == campaign.id, CampaignTarget.serial.in_(part))
                              .values(chunk_id=chunk.id))
    return count


async def stop_writing(session: AsyncSession, campaign: Campaign, reason: str) -> None:
    """Cancel or abort: targets not written yet are skipped, and chunks that would write are dropped."""
    await session.execute(update(CampaignTarget)
                          .where(CampaignTarget.campaign_id == campaign.id,
                                 CampaignTarget.state.in_(NOT_YET_WRITTEN))
                          .values(state=TargetState.SKIPPED, reason=reason, updated_at=utcnow()))
    await session.execute(update(CampaignChunk)
                          .where(CampaignChunk.campaign_id == campaign.id,
                                 CampaignChunk.state == ChunkState.PENDING,
                                 CampaignChunk.kind.in_([ChunkKind.READ, ChunkKind.WRITE]))
                          .values(state=ChunkState.CANCELLED, done_at=utcnow()))
