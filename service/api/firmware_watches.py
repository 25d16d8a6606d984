"""REST: firmware watches (``/api/v1/firmware-watches``): create, list, get, each member's progress (cursor pages
filtered by state, or only the stragglers), and a restart campaign for the stragglers. Operators create watches
and restart stragglers; any role reads."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED

from service.api.common import Cursor, Limit, PageView
from service.api.dependencies import DbSession, ReadDb
from service.api.openapi import problems
from service.authn import PrincipalDep
from service.campaigns.firmware import (
    FirmwareWatchService,
    MemberView,
    WatchSpec,
    WatchView,
    member_view,
    prepare_restart,
)
from service.campaigns.schemas import CreatedView
from service.campaigns.service import CampaignService
from service.campaigns.views import campaign_view
from service.core.limits import page_size
from service.jobs.enqueue import unit_of_work
from service.runtime import Resources

IdPath = Annotated[uuid.UUID, Parameter(description="The firmware watch's id.")]
States = Annotated[list[str] | None, QueryParameter(
    name="state", description="Only members in these states: at_target, updating, behind, removed (repeat it).")]
StragglersOnly = Annotated[bool, QueryParameter(
    description="Only the stragglers (behind once the watch's straggler_days have passed).")]
ERRORS = problems(400, 401, 403, 404, 409, 422, 429)


class FirmwareWatchController(Controller):
    """Firmware watches: a cohort followed towards a target firmware, and its stragglers."""

    path = "/api/v1/firmware-watches"
    tags = ["firmware watches"]
    security = [{"apiKey": []}]

    @post("/", status_code=HTTP_201_CREATED, responses=ERRORS)
    async def create(self, principal: PrincipalDep, db_session: DbSession, data: JSONBody[WatchSpec]) -> WatchView:
        """Start watching a cohort (model, ARM firmware range, optionally an account subtree): its members are
        frozen now; their progress towards the target is read from the mirror."""
        service = FirmwareWatchService(db_session, principal)
        return await service.view(await service.create(data))

    @get("/", responses=ERRORS)
    async def list_watches(self, principal: PrincipalDep, read_session: ReadDb, limit: Limit = 50
                           ) -> list[WatchView]:
        """The newest watches (a subtree key sees only watches made by keys restricted to the same account)."""
        service = FirmwareWatchService(read_session, principal)
        return await service.views(await service.list(limit=limit))

    @get("/{watch_id:uuid}", responses=ERRORS)
    async def get_watch(self, principal: PrincipalDep, read_session: ReadDb, watch_id: IdPath) -> WatchView:
        """A watch with its members per state and its stragglers."""
        service = FirmwareWatchService(read_session, principal)
        return await service.view(await service.get(watch_id))

    @get("/{watch_id:uuid}/progress", responses=ERRORS)
    async def progress(self, principal: PrincipalDep, read_session: ReadDb, watch_id: IdPath,
                       states: States = None, stragglers: StragglersOnly = False, limit: Limit = 50,
                       cursor: Cursor = None) -> PageView[MemberView]:
        """Each member by serial: its firmware, status, state and since when, and whether it is a straggler."""
        page = await FirmwareWatchService(read_session, principal).members(
            watch_id, states=states, stragglers_only=stragglers, first=page_size(limit), after=cursor)
        return PageView[MemberView].of(page, member_view)

    @post("/{watch_id:uuid}/restart-stragglers", status_code=HTTP_201_CREATED, responses=ERRORS)
    async def restart_stragglers(self, request: Request[Any, Any, Any], principal: PrincipalDep,
                                 watch_id: IdPath) -> CreatedView:
        """Create a ``restart`` campaign targeted at exactly the stragglers, planned and not started (start it
        with ``POST /api/v1/campaigns/{id}/start``); the campaign rules apply (approval threshold, conflicts)."""
        resources: Resources = request.app.state.resources
        preparation = await prepare_restart(resources.session_factory, resources.upstream, principal, watch_id)
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            campaign, plan = await FirmwareWatchService(session, principal).restart_stragglers(watch_id, preparation)
            progress = await CampaignService(session, principal).progress(campaign)
        return CreatedView(campaign=campaign_view(campaign, progress), plan=plan.view)
