"""Campaign rows made directly (for tests that need a campaign in a given state without planning one)."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert

from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.db.models.campaign import (
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignTarget,
    FirmwareWatch,
    FirmwareWatchMember,
    TargetState,
)
from service.db.models.mirror import FleetAccount, Inverter
from service.runtime import Resources


async def fresh_campaign(resources: Resources, tenant_id: TenantId, state: CampaignState, *,
                         restricted_account_id: int | None = None) -> uuid.UUID:
    """A one-inverter write campaign in ``state``, made by the CLI (so any API key may approve it); when it has
    finished, its inverter is applied with a known previous value (so it can be rolled back)."""
    finished = state in (CampaignState.COMPLETED, CampaignState.ABORTED, CampaignState.CANCELLED)
    async with resources.session_factory() as session, session.begin():
        campaign = Campaign(
            tenant_id=tenant_id, name="matrix", kind=CampaignKind.WRITE, setting_id=71, value="10", state=state,
            restricted_account_id=restricted_account_id, excluded_serials=[], canary_size=10, growth_factor=4.0,
            max_wave_size=1000, wave_pause_seconds=0, abort_failure_rate=0.2, max_attempts=3,
            retry_after_seconds=900, verify=True, skip_if_set=True, created_by="cli", target_count=1,
            wave_count=1, current_wave=1 if finished else 0, tick_seq=0, requests_used=0, rewrites=0,
            planned_at=utcnow())
        session.add(campaign)
        await session.flush()
        session.add(CampaignTarget(
            campaign_id=campaign.id, tenant_id=tenant_id, serial=f"SA{uuid.uuid4().hex[:8].upper()}", wave=1,
            state=TargetState.APPLIED if finished else TargetState.PENDING, previous_value="5" if finished else None,
            value_read="10" if finished else None, attempts=1 if finished else 0, writes=1 if finished else 0))
        return campaign.id


async def fresh_subtree_inverter(resources: Resources, tenant_id: TenantId, account: int,
                                 model: str = "GIV-HY5.0") -> str:
    """A new mirrored inverter (ARM 449, NORMAL) of ``account`` (mirrored too, if it was not yet)."""
    now = utcnow()
    serial = f"FW{uuid.uuid4().hex[:8].upper()}"
    seen = {"tenant_id": tenant_id, "first_seen_at": now, "last_seen_at": now, "changed_at": now}
    async with resources.session_factory() as session, session.begin():
        await session.execute(insert(FleetAccount).values(upstream_id=account, username=f"account{account}", depth=0,
                                                          **seen).on_conflict_do_nothing())
        session.add(Inverter(serial=serial, account_upstream_id=account, model=model, firmware_arm="449",
                             status="NORMAL", flags=[], **seen))
    return serial


async def fresh_firmware_watch(resources: Resources, tenant_id: TenantId, *, restricted_account_id: int
                               ) -> uuid.UUID:
    """A firmware watch made within ``restricted_account_id``'s subtree of one new inverter, behind its target
    and already a straggler (straggler_days 0)."""
    serial = await fresh_subtree_inverter(resources, tenant_id, restricted_account_id)
    async with resources.session_factory() as session, session.begin():
        watch = FirmwareWatch(tenant_id=tenant_id, name="matrix", model="GIV-HY5.0", target_firmware_arm=500,
                              straggler_days=0, restricted_account_id=restricted_account_id, started_at=utcnow(),
                              member_count=1, created_by="cli")
        session.add(watch)
        await session.flush()
        session.add(FirmwareWatchMember(watch_id=watch.id, tenant_id=tenant_id, serial=serial,
                                        firmware_arm_at_start="449"))
        return watch.id
