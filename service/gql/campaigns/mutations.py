# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Campaign mutations (the :mod:`service.gql.mutation` convention): ``createCampaign`` (with its plan, or only the
plan with ``dryRun``) and ``approveCampaign``, ``startCampaign``, ``pauseCampaign``, ``resumeCampaign``,
``cancelCampaign``, ``rollbackCampaign``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from service.campaigns import planner
from service.campaigns.schemas import CampaignSpec, PlanView
from service.campaigns.service import CampaignService, LifecycleAction, prepare
from service.db.models.campaign import Campaign as CampaignRow
from service.db.uow import UnitOfWork
from service.gql.campaigns.inputs import CampaignInput
from service.gql.campaigns.queries import campaign_of
from service.gql.campaigns.types import Campaign
from service.gql.context import Info
from service.gql.mutation import MutationPayload, fields_on, parse_id, resources_of, unit_of_work_of, validated


@strawberry.type(description="The created campaign (null for a dry run) and its plan.")
class CreateCampaignPayload(MutationPayload):
    campaign: Campaign | None = None
    plan: JSON | None = strawberry.field(default=None, description="The plan: counts, exclusions with reasons, "
                                                                   "waves, request cost, ETA, warnings (the REST "
                                                                   "plan's shape).")

    @classmethod
    def planned(cls, campaign: Campaign | None, plan: PlanView) -> CreateCampaignPayload:
        """The payload of a campaign made (none for a dry run) with its ``plan``."""
        return cls(campaign=campaign, plan=cast(JSON, plan.model_dump(mode="json")))


@strawberry.type(description="The campaign after the action.")
class CampaignPayload(MutationPayload):
    campaign: Campaign | None = None


async def created(info: Info, create: Callable[[UnitOfWork], Awaitable[tuple[CampaignRow, planner.Plan]]]
                  ) -> CreateCampaignPayload:
    """The payload of the campaign ``create`` makes (and plans) in the mutation's unit of work, with its plan; the
    preparation that reads GivEnergy comes before it, outside any transaction."""
    async with unit_of_work_of(info) as session:
        row, plan = await create(session)
        return CreateCampaignPayload.planned(await campaign_of(info, session, row), plan.view)


def _action(action: LifecycleAction, description: str) -> Any:
    """The mutation that runs the lifecycle ``action`` (a :class:`CampaignService` method) on the campaign ``id``."""

    async def act(self: Any, info: Info, id: strawberry.ID) -> CampaignPayload:
        async def work(session: UnitOfWork) -> CampaignPayload:
            row = await action(CampaignService(session, info.context.principal), parse_id(id))
            return CampaignPayload(campaign=await campaign_of(info, session, row))

        return await CampaignPayload.of_work(info, work)

    return strawberry.mutation(resolver=act, description=description)


@strawberry.type
class CampaignMutation:
    @strawberry.mutation(description="Create a campaign and plan it: its targets are frozen now (operator). dryRun: "
                                     "only the plan, nothing created. Invalid input: one BAD_USER_INPUT error per "
                                     "field at fault (field = its path, e.g. input.waves.canarySize).")
    async def create_campaign(self, info: Info, input: CampaignInput, dry_run: bool = False) -> CreateCampaignPayload:
        async def work() -> CreateCampaignPayload:
            resources = resources_of(info)
            parsed = validated(CampaignSpec, input)
            principal = info.context.principal
            with fields_on(input):  # the domain's checks of the input too (a deadline passed meanwhile, ...)
                preparation = await prepare(resources.session_factory, resources.upstream, principal, parsed)
                if dry_run:
                    async with resources.session_factory() as session:
                        preview = await CampaignService(session, principal).preview(parsed, preparation)
                        return CreateCampaignPayload.planned(None, preview.view)
                return await created(info, lambda session: CampaignService(session, principal).create(
                    parsed, preparation))

        return await CreateCampaignPayload.of_attempt(work())

    approve_campaign = _action(CampaignService.approve, "Approve a campaign above the tenant's threshold (admin, "
                                                        "another key).")
    start_campaign = _action(CampaignService.start, "Start a planned (or approved) campaign (operator).")
    pause_campaign = _action(CampaignService.pause, "Pause a running campaign before its next request (operator).")
    resume_campaign = _action(CampaignService.resume, "Resume a paused campaign (operator).")
    cancel_campaign = _action(CampaignService.cancel, "Stop writing; what was applied stays and is still read back "
                                                      "(operator).")
    rollback_campaign = _action(CampaignService.rollback, "Put back each inverter's previous value where the "
                                                          "campaign's value is still stored; others are reported "
                                                          "changed_since (operator).")


__all__ = ["CampaignMutation", "CreateCampaignPayload", "created"]
