"""REST: the tenant's sync runs, one run, and asking for a new one."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from pydantic import BaseModel, ConfigDict, Field

from service.api.common import Cursor, Limit, PageView, scope_of
from service.api.dependencies import DbSession, ReadDb
from service.api.openapi import problems
from service.authn import PrincipalDep
from service.core import limits
from service.core.errors import ConflictError, NotFoundError
from service.db.models.mirror import SyncKind, SyncRun
from service.mirror import queries as reads
from service.mirror.read_model import SyncRunRead
from service.mirror.service import MirrorService
from service.policy import Action, authorize

SYNC_RUNS_PATH = "/api/v1/sync-runs"


class _RunId(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID


class SyncRunView(SyncRunRead, _RunId):
    """One sync run (the same fields as GraphQL's ``SyncRun``)."""

    kind: str = Field(description="full or refresh.")
    state: str = Field(description="running, succeeded or failed.")


class SyncRequestInput(BaseModel):
    """What to sync (an empty body asks for a refresh)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["full", "refresh"] = Field(
        default="refresh",
        description="`refresh`: the dongle list (every inverter's status); `full`: hierarchy, sites, site status too.",
    )


class SyncRequestView(BaseModel):
    """The accepted request. ``run_id`` is the tenant's unfinished run when there is one (the sync this request
    joins, or the run the worker will resume); otherwise the run starts when a worker takes the job: follow
    ``GET /api/v1/sync-runs``."""

    job_id: str = Field(description="The same for every request joining one queued or running sync.")
    kind: str = Field(description="The sync that will run: full when the request joins a pending full sync, "
                                  "whatever it asked for.")
    run_id: uuid.UUID = Field(description="The run this request asked for or joined (also in `Location`).")


class SyncController(Controller):
    """Sync runs: read them, or ask for one (operator role)."""

    path = "/api/v1"
    tags = ["fleet"]

    @get("/sync-runs", responses=problems(400, 401, 403, 429))
    async def sync_runs(self, principal: PrincipalDep, read_session: ReadDb,
                        limit: Limit = limits.DEFAULT_PAGE_SIZE, cursor: Cursor = None) -> PageView[SyncRunView]:
        """The tenant's sync runs, newest first (operator role; empty for subtree keys)."""
        authorize(principal, Action.SYNC_RUNS_READ)
        page = await reads.FleetReader(read_session, scope_of(principal)).sync_runs(limit, cursor)
        return PageView[SyncRunView].of(page, _view)

    @get("/sync-runs/{run_id:uuid}", responses=problems(400, 401, 403, 404, 429))
    async def sync_run(self, run_id: FromPath[uuid.UUID], principal: PrincipalDep,
                       read_session: ReadDb) -> SyncRunView:
        """One sync run (operator role; subtree keys see none)."""
        authorize(principal, Action.SYNC_RUNS_READ)
        run = await reads.FleetReader(read_session, scope_of(principal)).get(SyncRun, run_id)
        if run is None:
            raise NotFoundError(f"no sync run {run_id}")
        return _view(run)

    @post("/sync-runs", status_code=HTTP_202_ACCEPTED,
          responses=problems(400, 401, 403, 409, 429))
    async def request_sync(self, principal: PrincipalDep, db_session: DbSession,
                           data: JSONBody[SyncRequestInput | None] = None) -> Response[SyncRequestView]:
        """Ask for a sync now; it runs on a worker within the tenant's request budget, one per tenant at a time.
        An empty body asks for a refresh. ``Location`` names the run to follow."""
        kind = SyncKind((data or SyncRequestInput()).kind)
        asked = await MirrorService(db_session, principal.tenant_id).ask_for_sync(principal, kind)
        run = await reads.FleetReader(db_session, scope_of(principal)).unfinished_sync_run()
        if run is None:  # asking records the run in this transaction; none here means it already finished
            raise ConflictError("the sync finished before it could be shown; see GET /api/v1/sync-runs")
        view = SyncRequestView(job_id=asked.job_id, kind=asked.kind.value, run_id=run.id)
        return Response(view, status_code=HTTP_202_ACCEPTED, headers={"Location": f"{SYNC_RUNS_PATH}/{run.id}"})


def _view(run: Any) -> SyncRunView:
    """A run row as the API shows it (enums by value)."""
    fields = {name: getattr(run, name) for name in SyncRunView.model_fields}
    return SyncRunView.model_validate({**fields, "kind": run.kind.value, "state": run.state.value})
