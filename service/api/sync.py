"""REST: the tenant's sync runs, and asking for a new one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from litestar import Controller, get, post
from litestar.di import Provide
from litestar.params import JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from pydantic import BaseModel, Field

from service.api.common import Cursor, Limit, PageView, scope_of
from service.api.dependencies import DbSession, ReadDb
from service.api.openapi import problems
from service.authn import PrincipalDep, provide_principal
from service.core.pagination import page_size
from service.db.models.mirror import SyncKind
from service.mirror import queries as reads
from service.mirror.service import MirrorService
from service.policy import Action, authorize


class SyncRunView(BaseModel):
    """One sync run."""

    id: uuid.UUID
    kind: str
    state: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    requests_used: int
    rows_inserted: int
    rows_updated: int
    rows_removed: int
    error: str | None


class SyncRequestInput(BaseModel):
    """What to sync."""

    kind: Literal["full", "refresh"] = Field(
        default="refresh",
        description="`refresh`: the dongle list (every inverter's status); `full`: hierarchy, sites, site status too.",
    )


class SyncRequestView(BaseModel):
    """The accepted request: poll ``GET /api/v1/sync-runs`` for its run."""

    job_id: str = Field(description="The same for every request joining one queued or running sync.")
    kind: str


class SyncController(Controller):
    """Sync runs: read them, or ask for one (operator role)."""

    path = "/api/v1"
    tags = ["fleet"]
    dependencies = {"principal": Provide(provide_principal, sync_to_thread=False)}

    @get("/sync-runs", responses=problems(400, 401, 403, 422, 429))
    async def sync_runs(self, principal: PrincipalDep, read_session: ReadDb, limit: Limit = 50,
                        cursor: Cursor = None) -> PageView[SyncRunView]:
        """The tenant's sync runs, newest first (operator role; empty for subtree keys)."""
        authorize(principal, Action.SYNC_RUNS_READ)
        page = await reads.FleetReader(read_session, scope_of(principal)).sync_runs(page_size(limit), cursor)
        items = [SyncRunView(id=r.id, kind=r.kind.value, state=r.state.value, attempts=r.attempts,
                             started_at=r.started_at, finished_at=r.finished_at, requests_used=r.requests_used,
                             rows_inserted=r.rows_inserted, rows_updated=r.rows_updated, rows_removed=r.rows_removed,
                             error=r.error) for r in page.items]
        return PageView[SyncRunView](items=items, next_cursor=page.end_cursor if page.has_next_page else None,
                                     total_count=page.total_count)

    @post("/sync-runs", status_code=HTTP_202_ACCEPTED,
          responses=problems(400, 401, 403, 409, 429))
    async def request_sync(self, data: JSONBody[SyncRequestInput], principal: PrincipalDep,
                           db_session: DbSession) -> SyncRequestView:
        """Ask for a sync now; it runs on a worker within the tenant's request budget, one per tenant at a time."""
        kind = SyncKind(data.kind)
        job_id = await MirrorService(db_session, principal.tenant_id).ask_for_sync(principal, kind)
        return SyncRequestView(job_id=job_id, kind=kind.value)
