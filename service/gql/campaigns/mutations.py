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
from service.gql.mutation import (
    MutationError,
    attempt,
    in_unit_of_work,
    parse_id,
    resources_of,
    unit_of_work_of,
    validated,
)


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


async def created(info: Info, create: Callable[[UnitOfWork], Awaitable[tuple[CampaignRow, planner.Plan]]]
                  ) -> tuple[Campaign, PlanView]:
    """The campaign ``create`` makes (and plans) in the mutation's unit of work, with its plan; the preparation
    that reads GivEnergy comes before it, outside any transaction."""
    async with unit_of_work_of(info) as session:
        row, plan = await create(session)
        return await campaign_of(info, session, row), plan.view


def _action(action: LifecycleAction, description: str) -> Any:
    """The mutation that runs the lifecycle ``action`` (a :class:`CampaignService` method) on the campaign ``id``."""

    async def act(self: Any, info: Info, id: strawberry.ID) -> CampaignPayload:
        async def work(session: UnitOfWork) -> Campaign:
            row = await action(CampaignService(session, info.context.principal), parse_id(id))
            return await campaign_of(info, session, row)

        campaign, errors = await in_unit_of_work(info, work)
        return CampaignPayload(campaign=campaign, errors=errors)

    return strawberry.mutation(resolver=act, description=description)


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
            return await created(info, lambda session: CampaignService(session, principal).create(parsed, preparation))

        done, errors = await attempt(work())
        return CreateCampaignPayload.of(done, errors)

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
