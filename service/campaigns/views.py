"""Campaign rows as the views REST, GraphQL and the CLI show."""

from __future__ import annotations

from service.campaigns.schemas import CampaignView, TargetView
from service.campaigns.service import Progress
from service.db.models.campaign import Campaign, CampaignTarget


def campaign_view(campaign: Campaign, progress: Progress) -> CampaignView:
    """A campaign with its progress."""
    return CampaignView(
        id=campaign.id, name=campaign.name, kind=campaign.kind.value, setting_id=campaign.setting_id,
        value=campaign.value, state=campaign.state.value, state_reason=campaign.state_reason,
        target_count=campaign.target_count, wave_count=campaign.wave_count, current_wave=campaign.current_wave,
        requests_used=campaign.requests_used, rewrites=campaign.rewrites, created_by=campaign.created_by,
        approved_by=campaign.approved_by, created_at=campaign.created_at, started_at=campaign.started_at,
        finished_at=campaign.finished_at, counts={state.value: n for state, n in sorted(progress.counts.items())},
        next_step_at=progress.next_step_at, eta_seconds=progress.eta_seconds)


def target_view(target: CampaignTarget) -> TargetView:
    """One target."""
    return TargetView(
        serial=target.serial, model=target.model, firmware_arm=target.firmware_arm, state=target.state.value,
        reason=target.reason, wave=target.wave, previous_value=target.previous_value,
        written_value=target.written_value, value_read=target.value_read, code=target.code,
        attempts=target.attempts, writes=target.writes)
