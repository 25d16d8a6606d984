# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Access administration mutations: ``createApiKey``, ``revokeApiKey`` (admin, whole-tenant) and
``checkCredential`` (admin). The GraphQL types are built from the REST views (:mod:`service.tenants.schemas`), so a
field added to a view reaches both APIs."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.experimental.pydantic import type as pydantic_type

from service.core.roles import Role
from service.db.models.api_key import ApiKey as ApiKeyRow
from service.db.models.credential import CredentialHealth, CredentialKind
from service.db.uow import UnitOfWork
from service.gql.context import Info
from service.gql.mutation import MutationPayload, parse_id, resources_of
from service.tenants.checks import check_credential
from service.tenants.schemas import ApiKeyView, CredentialView
from service.tenants.service import ApiKeyService

strawberry.enum(Role, description="What a key may do: viewer reads; operator also acts; admin also manages access.")
strawberry.enum(CredentialKind, description="An API token or a legacy portal login.")
strawberry.enum(CredentialHealth, description="What the latest check (or sync) found.")


@pydantic_type(model=ApiKeyView, all_fields=True, description="A givfleet API key, without its secret.")
class ApiKey:
    pass


@pydantic_type(model=CredentialView, all_fields=True, description="A GivEnergy credential, without its secret.")
class Credential:
    pass


def _api_key(row: ApiKeyRow) -> ApiKey:
    """The GraphQL view of an API key row."""
    return ApiKey.from_pydantic(ApiKeyView.model_validate(row))


@strawberry.input(description="A new API key.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="A name for people (1-100 characters).")
    role: Role
    expires_at: datetime | None = strawberry.field(default=None, description="When it stops working (null: never).")
    restricted_account_id: str | None = strawberry.field(
        default=None, description="Restrict the key to this upstream account's subtree.")


@strawberry.type(description="The new key and its secret (shown this once).")
class CreateApiKeyPayload(MutationPayload):
    api_key: ApiKey | None = None
    secret: str | None = strawberry.field(default=None,
                                          description="Send as `Authorization: Bearer <secret>`; store it now.")


@strawberry.type(description="The revoked key.")
class RevokeApiKeyPayload(MutationPayload):
    api_key: ApiKey | None = None


@strawberry.type(description="The credential as the check left it.")
class CheckCredentialPayload(MutationPayload):
    credential: Credential | None = None


@strawberry.type
class TenantsMutation:
    @strawberry.mutation(description="Create an API key (admin, whole-tenant key); audited.")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        async def work(session: UnitOfWork) -> CreateApiKeyPayload:
            created = await ApiKeyService(session, info.context.principal).create(
                name=input.name, role=input.role, expires_at=input.expires_at,
                restricted_account_id=input.restricted_account_id)
            return CreateApiKeyPayload(api_key=_api_key(created.key), secret=created.text)

        return await CreateApiKeyPayload.of_work(info, work)

    @strawberry.mutation(description="Revoke an API key (admin, whole-tenant key); it stops working at once.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> RevokeApiKeyPayload:
        async def work(session: UnitOfWork) -> RevokeApiKeyPayload:
            revoked = await ApiKeyService(session, info.context.principal).revoke(parse_id(id))
            return RevokeApiKeyPayload(api_key=_api_key(revoked))

        return await RevokeApiKeyPayload.of_work(info, work)

    @strawberry.mutation(description="Check a credential upstream now (admin): health, account, type, scopes.")
    async def check_credential(self, info: Info, id: strawberry.ID) -> CheckCredentialPayload:
        async def work() -> CheckCredentialPayload:
            outcome = await check_credential(resources_of(info), info.context.principal, parse_id(id))
            view = CredentialView.model_validate(outcome.credential)
            return CheckCredentialPayload(credential=Credential.from_pydantic(view))

        return await CheckCredentialPayload.of_attempt(work())


__all__ = ["TenantsMutation"]
