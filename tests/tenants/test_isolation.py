"""Two tenants with identical upstream account ids, restrictions and labels: every list and lookup through every
tenants repository returns only the caller's rows; a foreign id reads as not found."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.errors import NotFoundError
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tenancy import TenantId
from service.tenants.repository import ApiKeyRepository, AuditRepository, CredentialRepository
from service.tenants.service import ApiKeyService, AuditService, CredentialService
from tests.tenants.factories import fixed_key_ring, make_tenant, mirrored_account

upstream_ids = st.integers(min_value=1, max_value=10**12).map(str)


async def populate(session: AsyncSession, tenant: TenantId, account_ids: list[str]) -> dict[str, set[uuid.UUID]]:
    principal = Principal.cli(tenant)
    credentials, keys = CredentialService(session, principal, fixed_key_ring()), ApiKeyService(session, principal)
    made: dict[str, set[uuid.UUID]] = {"credentials": set(), "keys": set()}
    for account_id in account_ids:
        credential = await credentials.add("same-token-everywhere", label="shared label")
        credential.upstream_account_id = account_id
        made["credentials"].add(credential.id)
        await mirrored_account(session, tenant, int(account_id))
        created = await keys.create(name="shared", role=Role.VIEWER, restricted_account_id=account_id)
        made["keys"].add(created.key.id)
    await session.flush()
    return made


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(account_ids=st.lists(upstream_ids, min_size=1, max_size=4))
async def test_repositories_return_only_the_callers_rows(db_session: AsyncSession, account_ids: list[str]) -> None:
    async with db_session.begin_nested() as example:  # each example leaves nothing behind
        a, b = await make_tenant(db_session), await make_tenant(db_session)
        mine, theirs = await populate(db_session, a, account_ids), await populate(db_session, b, account_ids)

        for tenant, own, other in ((a, mine, theirs), (b, theirs, mine)):
            credentials = CredentialRepository(db_session, tenant)
            keys = ApiKeyRepository(db_session, tenant)
            audit = AuditRepository(db_session, tenant)
            assert {row.id for row in await credentials.list()} == own["credentials"]
            assert {row.id for row in await keys.list()} == own["keys"]
            assert {row.tenant_id for row in await audit.list(limit=1000)} == {tenant}
            for foreign in other["credentials"]:
                assert await credentials.get(foreign) is None
            for foreign in other["keys"]:
                assert await keys.get(foreign) is None
                foreign_key = await ApiKeyRepository(db_session, b if tenant == a else a).get(foreign)
                assert foreign_key is not None
                assert await keys.get_by_prefix(foreign_key.prefix) is None
        await example.rollback()


async def test_services_treat_foreign_ids_as_not_found(db_session: AsyncSession) -> None:
    a, b = await make_tenant(db_session), await make_tenant(db_session)
    theirs = await populate(db_session, b, ["42"])
    credentials = CredentialService(db_session, Principal.cli(a), fixed_key_ring())
    keys = ApiKeyService(db_session, Principal.cli(a))
    for credential_id in theirs["credentials"]:
        with pytest.raises(NotFoundError):
            await credentials.get(credential_id)
        with pytest.raises(NotFoundError):
            await credentials.remove(credential_id)
    for key_id in theirs["keys"]:
        with pytest.raises(NotFoundError):
            await keys.revoke(key_id)
    assert await AuditService(db_session).list(Principal.cli(a), action="apikey.create") == []


async def test_repository_refuses_to_stage_another_tenants_row(db_session: AsyncSession) -> None:
    a, b = await make_tenant(db_session), await make_tenant(db_session)
    theirs = await populate(db_session, b, ["7"])
    row = await CredentialRepository(db_session, b).get(next(iter(theirs["credentials"])))
    assert row is not None
    with pytest.raises(ValueError, match="another tenant"):
        CredentialRepository(db_session, a).add(row)
