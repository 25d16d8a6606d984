"""REST: campaigns (``/api/v1/campaigns``): create with a plan (or only plan: ``?dry_run=true``), read, list,
their targets by state, and every lifecycle action. Operators create, start, pause, resume, cancel and roll back;
admins approve (with a key other than the creator's); any role reads."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.common import Cursor, Limit, PageView, named_handler
from service.api.dependencies import DbSession
from service.api.openapi import problems
from service.authn import PrincipalDep
from service.campaigns.schemas import CampaignSpec, CampaignView, CreatedView, TargetView
from service.campaigns.service import CampaignService, LifecycleAction, prepare
from service.campaigns.upstream import requests_per_minute
from service.campaigns.views import campaign_view, target_view
from service.core.limits import page_size
from service.core.principal import Principal
from service.db.models.campaign import Campaign, CampaignState, TargetState
from service.jobs.enqueue import unit_of_work
from service.runtime import Resources
from service.upstream import NoCredentialError, Upstream

IdPath = Annotated[uuid.UUID, Parameter(description="The campaign's id.")]
States = Annotated[list[TargetState] | None,
                   QueryParameter(name="state", description="Only targets in these states (repeat it).")]
StateFilter = Annotated[CampaignState | None,
                        QueryParameter(name="state", description="Only campaigns in this state.")]
ERRORS = problems(400, 401, 403, 404, 409, 422, 429)
DRY_RUN = ResponseSpec(CreatedView, description="The dry run (``dry_run=true``): the plan only, nothing created "
                                                "(``campaign`` is null).")


def upstream_of(request: Request[Any, Any, Any]) -> Upstream:
    """The one upstream entry point."""
    resources: Resources = request.app.state.resources
    return resources.upstream


async def view_of(session: AsyncSession, principal: Principal, campaign: Campaign, upstream: Upstream
                  ) -> CampaignView:
    """A campaign's view with its progress and ETA (no ETA without a working credential)."""
    try:
        capacity: int | None = await requests_per_minute(upstream, principal.tenant_id)
    except NoCredentialError:
        capacity = None
    return campaign_view(campaign, await CampaignService(session, principal).progress(campaign, capacity))


def _lifecycle_action(action: LifecycleAction, doc: str) -> HTTPRouteHandler:
    """The handler of ``POST /{campaign_id}/<action>``: run ``action`` on the campaign and answer its view.

    The path segment and the handler's name (hence its OpenAPI summary and operation id) are the method's name.
    """
    name = action.__name__

    async def handler(self: CampaignController, request: Request[Any, Any, Any], principal: PrincipalDep,
                      db_session: DbSession, campaign_id: IdPath) -> CampaignView:
        campaign = await action(CampaignService(db_session, principal), campaign_id)
        return await view_of(db_session, principal, campaign, upstream_of(request))

    return post(f"/{{campaign_id:uuid}}/{name}", status_code=HTTP_200_OK, responses=ERRORS)(
        named_handler(handler, name, doc))


class CampaignController(Controller):
    """Campaigns: bulk setting writes, reads and restarts, planned, staged, verified and reversible."""

    path = "/api/v1/campaigns"
    tags = ["campaigns"]
    security = [{"apiKey": []}]

    @post("/", status_code=HTTP_201_CREATED, responses={**ERRORS, HTTP_200_OK: DRY_RUN})
    async def create(self, request: Request[Any, Any, Any], principal: PrincipalDep, data: JSONBody[CampaignSpec],
                     dry_run: Annotated[bool, QueryParameter(description="Only plan: create nothing.")] = False
                     ) -> Response[CreatedView]:
        """Create a campaign and plan it (its targets are frozen now: 201), or only show the plan (``dry_run``: 200,
        nothing is created).

        The plan lists exclusions with reasons, wave sizes, the upstream request cost and the ETA. Learning the
        setting catalogue of new model/firmware groups reads one inverter of each from GivEnergy first.
        """
        resources: Resources = request.app.state.resources
        upstream = resources.upstream
        preparation = await prepare(resources.session_factory, upstream, principal, data)
        if dry_run:
            async with resources.session_factory() as session:
                plan = await CampaignService(session, principal).preview(data, preparation)
            return Response(CreatedView(campaign=None, plan=plan.view), status_code=HTTP_200_OK)
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            campaign, plan = await CampaignService(session, principal).create(data, preparation)
            view = await view_of(session, principal, campaign, upstream)
        return Response(CreatedView(campaign=view, plan=plan.view), status_code=HTTP_201_CREATED)

    @get("/", responses=ERRORS)
    async def list_campaigns(self, request: Request[Any, Any, Any], principal: PrincipalDep, db_session: DbSession,
                             in_state: StateFilter = None, limit: Limit = 50) -> list[CampaignView]:
        """The newest campaigns (a subtree key sees only those made by keys restricted to the same account)."""
        upstream = upstream_of(request)
        rows = await CampaignService(db_session, principal).list(state=in_state, limit=limit)
        return [await view_of(db_session, principal, row, upstream) for row in rows]

    @get("/{campaign_id:uuid}", responses=ERRORS)
    async def get_campaign(self, request: Request[Any, Any, Any], principal: PrincipalDep, db_session: DbSession,
                           campaign_id: IdPath) -> CampaignView:
        """A campaign with its progress per state and ETA."""
        campaign = await CampaignService(db_session, principal).get(campaign_id)
        return await view_of(db_session, principal, campaign, upstream_of(request))

    @get("/{campaign_id:uuid}/targets", responses=ERRORS)
    async def targets(self, principal: PrincipalDep, db_session: DbSession, campaign_id: IdPath,
                      states: States = None, limit: Limit = 50, cursor: Cursor = None) -> PageView[TargetView]:
        """The campaign's inverters by serial, optionally only in some states (repeat ``state``)."""
        page = await CampaignService(db_session, principal).targets(campaign_id, states=states,
                                                                    first=page_size(limit), after=cursor)
        return PageView[TargetView].of(page, target_view)

    approve = _lifecycle_action(
        CampaignService.approve,
        "Approve a campaign above the tenant's threshold (admin, with a key other than the creator's).")
    start = _lifecycle_action(CampaignService.start, "Start a planned (or approved) campaign.")
    pause = _lifecycle_action(CampaignService.pause, "Pause before the next chunk.")
    resume = _lifecycle_action(CampaignService.resume, "Resume a paused campaign.")
    cancel = _lifecycle_action(CampaignService.cancel,
                               "Stop writing; what was applied stays (and is still read back).")
    rollback = _lifecycle_action(
        CampaignService.rollback,
        "Put back every inverter's own previous value where the campaign's value is still stored.")
