# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Who is asking: the caller's tenant, role and restriction."""

from __future__ import annotations

import strawberry

from service.gql.context import Info


@strawberry.type(description="The caller, as authenticated by its API key.")
class Viewer:
    tenant_id: strawberry.ID = strawberry.field(description="The caller's tenant.")
    role: str = strawberry.field(description="viewer, operator or admin.")
    restricted_account_id: str | None = strawberry.field(
        description="Upstream id of the account whose subtree the key is restricted to (null: whole tenant)."
    )


@strawberry.type
class ViewerQuery:
    @strawberry.field(description="The caller: tenant, role and subtree restriction.")
    def viewer(self, info: Info) -> Viewer:
        access = info.context.principal
        return Viewer(tenant_id=strawberry.ID(str(access.tenant_id)), role=access.role.value,
                      restricted_account_id=access.restricted_account_id)
