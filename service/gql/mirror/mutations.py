# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Mirror mutations: ``requestSync`` (operator, whole-tenant), the GraphQL twin of ``POST /api/v1/sync-runs``."""

from __future__ import annotations

import strawberry

from service.db.models.mirror import SyncKind
from service.db.uow import UnitOfWork
from service.gql.context import Info
from service.gql.mutation import MutationError, in_unit_of_work
from service.mirror.jobs import SyncRequest
from service.mirror.service import MirrorService

strawberry.enum(SyncKind, description="refresh: the dongle list; full: hierarchy, sites and site status too.")


@strawberry.type(description="The accepted sync request: follow it in `syncRuns`.")
class RequestSyncPayload:
    job_id: str | None = strawberry.field(description="The same for every request joining one queued or running sync.")
    kind: SyncKind = strawberry.field(description="The sync that will run: FULL when the request joins a pending "
                                                  "full sync, whatever it asked for.")
    errors: list[MutationError]


@strawberry.type
class MirrorMutation:
    @strawberry.mutation(description="Ask for a sync now (operator, whole-tenant key); joins one already pending; "
                                     "audited. CONFLICT while the tenant has no GivEnergy credential.")
    async def request_sync(self, info: Info, kind: SyncKind = SyncKind.REFRESH) -> RequestSyncPayload:
        async def work(session: UnitOfWork) -> SyncRequest:
            principal = info.context.principal
            return await MirrorService(session, principal.tenant_id).ask_for_sync(principal, kind)

        asked, errors = await in_unit_of_work(info, work)
        job_id, kind_to_run = asked or (None, kind)
        return RequestSyncPayload(job_id=job_id, kind=kind_to_run, errors=errors)


__all__ = ["MirrorMutation"]
