# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Campaign mutations (the :mod:`service.gql.mutation` convention): ``createCampaign`` (with its plan, or only the
plan with ``dryRun``) and ``approveCampaign``, ``startCampaign``, ``pauseCampaign``, ``resumeCampaign``,
``cancelCampaign``, ``rollbackCampaign``."""

from __future__ import annotations

from typing import cast

import strawberry
from strawberry.scalars import JSON

from service.campaigns.schemas import CampaignSpec, PlanView
from service.campaigns.service import CampaignService, prepare
from service.gql.campaigns.inputs import CampaignInput
from service.gql.campaigns.queries import campaign_of
from service.gql.campaigns.types import Campaign
from service.gql.context import Info
from service.gql.mutation import MutationError, attempt, parse_id, resources_of, unit_of_work_of, validated


@strawberry.type(description="The created campaign (null for a dry run) and its plan.")
class CreateCampaignPayload:
    campaign: Campaign | None
    plan: JSON | None = strawberry.field(description="The plan: counts, exclusions with reasons, waves, request "
                                                     "cost, ETA, warnings (the REST plan's shape).")
    errors: list[MutationError]

    @classmethod
    def of(cls, done: tuple[Campaign | None, PlanView] | None, errors: list[MutationError]) -> CreateCampaignPayload:
        """The payload of an attempt that made ``done`` (campaign, plan) or failed with ``errors``."""
        if done is None:
            return cls(campaign=None, plan=None, errors=errors)
        return cls(campaign=done[0], plan=cast(JSON, done[1].model_dump(mode="json")), errors=[])


@strawberry.type(description="The campaign after the action.")
class CampaignPayload:
    campaign: Campaign | None
    errors: list[MutationError]


async def _act(info: Info, id: strawberry.ID, action: str) -> CampaignPayload:
    async def work() -> Campaign:
        campaign_id = parse_id(id)
        async with unit_of_work_of(info) as session:
            row = await getattr(CampaignService(session, info.context.principal), action)(campaign_id)
            return await campaign_of(info, session, row)

    campaign, errors = await attempt(work())
    return CampaignPayload(campaign=campaign, errors=errors)


@strawberry.type
class CampaignMutation:
    @strawberry.mutation(description="Create a campaign and plan it: its targets are frozen now (operator). dryRun: "
                                     "only the plan, nothing created. Invalid input: one BAD_USER_INPUT error per "
                                     "field at fault (field = its path, e.g. input.waves.canarySize).")
    async def create_campaign(self, info: Info, input: CampaignInput, dry_run: bool = False) -> CreateCampaignPayload:
        async def work() -> tuple[Campaign | None, PlanView]:
            resources = resources_of(info)
            parsed = validated(CampaignSpec, input)
            principal = info.context.principal
            preparation = await prepare(resources.session_factory, resources.upstream, principal, parsed)
            if dry_run:
                async with resources.session_factory() as session:
                    return None, (await CampaignService(session, principal).preview(parsed, preparation)).view
            async with unit_of_work_of(info) as session:
                row, plan = await CampaignService(session, principal).create(parsed, preparation)
                return await campaign_of(info, session, row), plan.view

        done, errors = await attempt(work())
        return CreateCampaignPayload.of(done, errors)

    @strawberry.mutation(description="Approve a campaign above the tenant's threshold (admin, another key).")
    async def approve_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _act(info, id, "approve")

    @strawberry.mutation(description="Start a planned (or approved) campaign (operator).")
    async def start_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _act(info, id, "start")

    @strawberry.mutation(description="Pause a running campaign before its next request (operator).")
    async def pause_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _act(info, id, "pause")

    @strawberry.mutation(description="Resume a paused campaign (operator).")
    async def resume_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _act(info, id, "resume")

    @strawberry.mutation(description="Stop writing; what was applied stays and is still read back (operator).")
    async def cancel_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _act(info, id, "cancel")

    @strawberry.mutation(description="Put back each inverter's previous value where the campaign's value is "
                                     "still stored; others are reported changed_since (operator).")
    async def rollback_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload:
        return await _act(info, id, "rollback")


__all__ = ["CampaignMutation"]
