# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Campaign types, built from the REST views (:mod:`service.campaigns.schemas`) so both APIs show the same."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from service.campaigns.schemas import CampaignView, TargetView
from service.campaigns.service import CampaignService
from service.campaigns.views import target_view
from service.core.errors import InvalidInputError
from service.core.limits import page_size
from service.db.models.campaign import Campaign as CampaignRow
from service.db.models.campaign import CampaignTarget as CampaignTargetRow
from service.db.models.campaign import TargetState
from service.gql.context import Info
from service.gql.types.connection import Connection


@strawberry.type(description="How many targets are in one state.")
class CampaignStateCount:
    state: str
    count: int


@strawberry.type(description="One inverter of a campaign and what happened to it.")
class CampaignTarget:
    serial: str
    model: str | None
    firmware_arm: str | None
    state: str = strawberry.field(description="applied, applied_modified, not_applied, failed, skipped, excluded, "
                                              "recorded, rolled_back, rollback_failed, changed_since, or in progress.")
    reason: str | None = strawberry.field(description="Why it was excluded, skipped or failed.")
    wave: int | None
    previous_value: str | None = strawberry.field(description="Read before writing: what rollback restores.")
    written_value: str | None = strawberry.field(description="What the device answered to the write.")
    value_read: str | None = strawberry.field(description="The value last read from the device.")
    code: int | None = strawberry.field(description="The last remote-control code (-1..-7), if any.")
    attempts: int
    writes: int

    @classmethod
    def of(cls, view: TargetView) -> CampaignTarget:
        return cls(**view.model_dump())


def _target_state(text: str) -> TargetState:
    try:
        return TargetState(text)
    except ValueError:
        raise InvalidInputError(f"unknown target state {text!r}", field="states") from None


@strawberry.type(description="A bulk setting write, read or restart over a frozen set of inverters.")
class Campaign:
    id: strawberry.ID = strawberry.field(description="The campaign's id (a UUID).")
    name: str
    kind: str = strawberry.field(description="write, read or restart.")
    setting_id: int
    value: str | None
    state: str = strawberry.field(description="draft, planned, approved, running, paused, completed, aborted, "
                                              "cancelled, rolling_back or rolled_back.")
    state_reason: str | None
    target_count: int
    wave_count: int
    current_wave: int
    requests_used: int
    rewrites: int = strawberry.field(description="Inverters written again after a lost answer showed them unchanged.")
    created_by: str
    approved_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: list[CampaignStateCount] = strawberry.field(description="Targets per state (excluded included).")
    next_step_at: datetime | None = strawberry.field(description=(
        "While running, between waves: when the next wave may start (after the wave pause, the retry delay of "
        "offline inverters, or at the window's next opening); null otherwise."))
    eta_seconds: float | None = strawberry.field(description=(
        "Expected remaining time at the lane's capacity, the wait until nextStepAt included."))

    @classmethod
    def of(cls, view: CampaignView) -> Campaign:
        fields = view.model_dump(exclude={"id", "counts"})
        return cls(id=strawberry.ID(str(view.id)), **fields,
                   counts=[CampaignStateCount(state=state, count=n) for state, n in view.counts.items()])

    @strawberry.field(description="The campaign's inverters by serial, optionally only in some states.")
    async def targets(self, info: Info, states: list[str] | None = None, first: int | None = None,
                      after: str | None = None) -> Connection[CampaignTarget]:
        wanted = [_target_state(state) for state in states] if states else None
        async with info.context.session_factory() as session:
            page = await CampaignService(session, info.context.principal).targets(
                uuid.UUID(str(self.id)), states=wanted, first=page_size(first, parameter="first"), after=after)
        return Connection[CampaignTarget].of(page, lambda row: CampaignTarget.of(target_view(row)), after=after)


@strawberry.type(description="What one campaign did to one inverter.")
class CampaignHistoryEntry:
    campaign_id: strawberry.ID = strawberry.field(description="The campaign (query `campaign(id:)` for more).")
    campaign_name: str
    kind: str
    setting_id: int
    value: str | None
    campaign_state: str
    created_at: datetime
    target: CampaignTarget

    @classmethod
    def of(cls, campaign: CampaignRow, target: CampaignTargetRow) -> CampaignHistoryEntry:
        return cls(campaign_id=strawberry.ID(str(campaign.id)), campaign_name=campaign.name,
                   kind=campaign.kind.value, setting_id=campaign.setting_id, value=campaign.value,
                   campaign_state=campaign.state.value, created_at=campaign.created_at,
                   target=CampaignTarget.of(target_view(target)))
