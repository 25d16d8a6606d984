# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""Access administration mutations: ``createApiKey``, ``revokeApiKey`` (admin, whole-tenant) and
``checkCredential`` (admin). The GraphQL types are built from the REST views (:mod:`service.tenants.schemas`), so a
field added to a view reaches both APIs."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.experimental.pydantic import type as pydantic_type

from service.core.errors import InvalidInputError
from service.core.roles import Role
from service.db.models.credential import CredentialHealth, CredentialKind
from service.db.uow import UnitOfWork
from service.gql.context import Info
from service.gql.mutation import MutationError, attempt, in_unit_of_work, parse_id, resources_of
from service.tenants.checks import check_credential
from service.tenants.schemas import ApiKeyView, CredentialView
from service.tenants.service import ApiKeyService, CreatedKey

strawberry.enum(Role, description="What a key may do: viewer reads; operator also acts; admin also manages access.")
strawberry.enum(CredentialKind, description="An API token or a legacy portal login.")
strawberry.enum(CredentialHealth, description="What the latest check (or sync) found.")


@pydantic_type(model=ApiKeyView, all_fields=True, description="A givfleet API key, without its secret.")
class ApiKey:
    pass


@pydantic_type(model=CredentialView, all_fields=True, description="A GivEnergy credential, without its secret.")
class Credential:
    pass


@strawberry.input(description="A new API key.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="A name for people (1-100 characters).")
    role: Role
    expires_at: datetime | None = strawberry.field(default=None, description="When it stops working (null: never).")
    restricted_account_id: str | None = strawberry.field(
        default=None, description="Restrict the key to this upstream account's subtree.")


@strawberry.type(description="The new key and its secret (shown this once).")
class CreateApiKeyPayload:
    api_key: ApiKey | None
    secret: str | None = strawberry.field(description="Send as `Authorization: Bearer <secret>`; store it now.")
    errors: list[MutationError]


@strawberry.type(description="The revoked key.")
class RevokeApiKeyPayload:
    api_key: ApiKey | None
    errors: list[MutationError]


@strawberry.type(description="The credential as the check left it.")
class CheckCredentialPayload:
    credential: Credential | None
    errors: list[MutationError]


@strawberry.type
class TenantsMutation:
    @strawberry.mutation(description="Create an API key (admin, whole-tenant key); audited.")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        async def work(session: UnitOfWork) -> CreatedKey:
            if not 1 <= len(input.name.strip()) <= 100:
                raise InvalidInputError("a name is 1 to 100 characters", field="name")
            return await ApiKeyService(session, info.context.principal).create(
                name=input.name, role=input.role, expires_at=input.expires_at,
                restricted_account_id=input.restricted_account_id)

        created, errors = await in_unit_of_work(info, work)
        if created is None:
            return CreateApiKeyPayload(api_key=None, secret=None, errors=errors)
        view = ApiKeyView.model_validate(created.key)
        return CreateApiKeyPayload(api_key=ApiKey.from_pydantic(view), secret=created.text, errors=[])

    @strawberry.mutation(description="Revoke an API key (admin, whole-tenant key); it stops working at once.")
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> RevokeApiKeyPayload:
        async def work(session: UnitOfWork) -> ApiKeyView:
            return ApiKeyView.model_validate(await ApiKeyService(session, info.context.principal).revoke(parse_id(id)))

        view, errors = await in_unit_of_work(info, work)
        return RevokeApiKeyPayload(api_key=ApiKey.from_pydantic(view) if view else None, errors=errors)

    @strawberry.mutation(description="Check a credential upstream now (admin): health, account, type, scopes.")
    async def check_credential(self, info: Info, id: strawberry.ID) -> CheckCredentialPayload:
        async def work() -> CredentialView:
            outcome = await check_credential(resources_of(info), info.context.principal, parse_id(id))
            return CredentialView.model_validate(outcome.credential)

        view, errors = await attempt(work())
        return CheckCredentialPayload(credential=Credential.from_pydantic(view) if view else None, errors=errors)


__all__ = ["TenantsMutation"]
