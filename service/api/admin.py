"""REST administration of a tenant's access: credentials, API keys, the audit log (``/api/v1``).

Reading the tenant and its credentials' health is open to every role; managing credentials and keys and
reading the audit log needs the admin role. Tokens are write-only; a key's text is returned once, at creation.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.dependencies import DbSession, ReadDb
from service.api.openapi import problems
from service.authn import PrincipalDep
from service.core.principal import Principal
from service.jobs.enqueue import unit_of_work
from service.runtime import Resources
from service.tenants.checks import check_credential
from service.tenants.crypto import KeyRing
from service.tenants.schemas import (
    ApiKeyInput,
    ApiKeyView,
    AuditEventView,
    CreatedApiKeyView,
    CredentialInput,
    CredentialView,
    PrincipalView,
    TenantView,
)
from service.tenants.service import ApiKeyService, AuditService, CredentialService, TenantService

# The problems each kind of endpoint can answer (every one: 401 and 429 from authentication; 400 when a path,
# query or body fails validation; 403 below the admin role; 404 for an unknown or foreign id; 422 for values
# the service refuses).
ANY_ROLE = problems(401, 429)
ANY_ROLE_BY_ID = problems(400, 401, 404, 429)
ADMIN_LIST = problems(400, 401, 403, 429)
ADMIN_BY_ID = problems(400, 401, 403, 404, 429)
ADMIN_CREATE = problems(400, 401, 403, 422, 429)
KeyRingDep = NamedDependency[KeyRing]
ResourcesDep = NamedDependency[Resources]


class AccessController(Controller):
    """The caller's tenant, credentials, API keys and audit log."""

    path = "/api/v1"
    tags = ["access"]

    @get("/me", sync_to_thread=False, responses=ANY_ROLE)
    def me(self, principal: PrincipalDep) -> PrincipalView:
        """Who the API key in use is (any role)."""
        return PrincipalView(
            tenant_id=principal.tenant_id,
            role=principal.role,
            key_id=principal.key_id,
            restricted_account_id=principal.restricted_account_id,
        )

    @get("/tenant", responses=problems(401, 404, 429))
    async def tenant(self, principal: PrincipalDep, read_session: ReadDb) -> TenantView:
        """The caller's tenant (any role)."""
        return TenantView.model_validate(await TenantService(read_session).get(principal.tenant_id))

    # --- credentials ----------------------------------------------------------------------------------

    @get("/credentials", responses=ANY_ROLE)
    async def list_credentials(self, principal: PrincipalDep, read_session: ReadDb, key_ring: KeyRingDep
                               ) -> list[CredentialView]:
        """The tenant's upstream credentials and their health (any role; never the token)."""
        service = CredentialService(read_session, principal, key_ring)
        return [CredentialView.model_validate(row) for row in await service.list()]

    @get("/credentials/{credential_id:uuid}", responses=ANY_ROLE_BY_ID)
    async def get_credential(self, credential_id: FromPath[uuid.UUID], principal: PrincipalDep,
                             read_session: ReadDb, key_ring: KeyRingDep) -> CredentialView:
        """One credential (any role)."""
        credential = await CredentialService(read_session, principal, key_ring).get(credential_id)
        return CredentialView.model_validate(credential)

    @post("/credentials", status_code=HTTP_201_CREATED, responses=ADMIN_CREATE)
    async def add_credential(self, data: JSONBody[CredentialInput], principal: PrincipalDep, key_ring: KeyRingDep,
                             resources: ResourcesDep) -> CredentialView:
        """Add a GivEnergy credential (admin); checked upstream unless ``check`` is false (the new row is
        committed first; the check runs with no transaction open and records its result in a new one)."""
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            credential = await _credentials(session, principal, key_ring, resources).add(
                data.token.get_secret_value(),
                label=data.label,
                kind=data.kind,
                portal_username=data.portal_username,
                requests_per_minute=data.requests_per_minute,
            )
        if data.check:
            credential = (await check_credential(resources, principal, credential.id)).credential
        return CredentialView.model_validate(credential)

    @post("/credentials/{credential_id:uuid}/check", status_code=HTTP_200_OK, responses=ADMIN_BY_ID)
    async def check_credential(self, credential_id: FromPath[uuid.UUID], principal: PrincipalDep,
                               resources: ResourcesDep) -> CredentialView:
        """Check a credential upstream now (admin): health, account, account type, scopes."""
        return CredentialView.model_validate((await check_credential(resources, principal, credential_id)).credential)

    @delete("/credentials/{credential_id:uuid}", status_code=HTTP_204_NO_CONTENT, responses=ADMIN_BY_ID)
    async def remove_credential(self, credential_id: FromPath[uuid.UUID], principal: PrincipalDep,
                                db_session: DbSession, key_ring: KeyRingDep, resources: ResourcesDep) -> None:
        """Delete a credential (admin)."""
        await _credentials(db_session, principal, key_ring, resources).remove(credential_id)

    # --- API keys -------------------------------------------------------------------------------------

    @get("/api-keys", responses=ADMIN_LIST)
    async def list_api_keys(self, principal: PrincipalDep, read_session: ReadDb) -> list[ApiKeyView]:
        """The tenant's API keys (admin; never their secrets)."""
        return [ApiKeyView.model_validate(key) for key in await ApiKeyService(read_session, principal).list()]

    @post("/api-keys", status_code=HTTP_201_CREATED, responses=ADMIN_CREATE)
    async def create_api_key(
        self, data: JSONBody[ApiKeyInput], principal: PrincipalDep, db_session: DbSession
    ) -> CreatedApiKeyView:
        """Create an API key (admin). The response is the only time its secret is shown."""
        created = await ApiKeyService(db_session, principal).create(
            name=data.name,
            role=data.role,
            expires_at=data.expires_at,
            restricted_account_id=data.restricted_account_id,
        )
        return CreatedApiKeyView(key=ApiKeyView.model_validate(created.key), secret=created.text)

    @post("/api-keys/{key_id:uuid}/revoke", status_code=HTTP_200_OK, responses=ADMIN_BY_ID)
    async def revoke_api_key(
        self, key_id: FromPath[uuid.UUID], principal: PrincipalDep, db_session: DbSession
    ) -> ApiKeyView:
        """Revoke an API key (admin); it stops working at once."""
        return ApiKeyView.model_validate(await ApiKeyService(db_session, principal).revoke(key_id))

    # --- audit ----------------------------------------------------------------------------------------

    @get("/audit-events", responses=ADMIN_LIST)
    async def audit_events(
        self,
        principal: PrincipalDep,
        read_session: ReadDb,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        action: Annotated[str | None, QueryParameter(max_length=100, pattern=r"^[a-z_.]*$",
                                                     description="Only this action, e.g. credential.add.")] = None,
    ) -> list[AuditEventView]:
        """The tenant's audit log, newest first (admin)."""
        events = await AuditService(read_session).list(principal, limit=limit, action=action)
        return [AuditEventView.model_validate(event) for event in events]


def _credentials(session: AsyncSession, principal: Principal, key_ring: KeyRing, resources: Resources
                 ) -> CredentialService:
    return CredentialService(session, principal, key_ring,
                             default_requests_per_minute=resources.settings.givenergy.default_requests_per_minute)
