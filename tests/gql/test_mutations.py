"""GraphQL mutations: one unit of work each (audited, jobs after commit), typed payload errors, rollback on any
error, unexpected errors masked with the request id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import func, select

from service.core.roles import Role
from service.db.models.api_key import ApiKey
from service.db.models.audit import AuditEvent
from service.jobs.typed import Queue
from service.runtime import Resources
from service.simulator import Simulator
from service.tenants.service import AuditService
from tests.conftest import http_client
from tests.tenants.factories import (
    TenantWithKey,
    clear_auth_failures,
    committed_key,
    committed_tenant,
    quiet_simulator,
    simulator_route,
)

pytestmark = pytest.mark.usefixtures("clean_db")

CREATE_KEY = 'mutation { createApiKey(input: {name: "ci", role: VIEWER}) { secret apiKey { id role } ' \
             "errors { code field message } } }"


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return quiet_simulator()


@pytest.fixture
async def client(app: Litestar, resources: Resources, sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as opened:
        with resources.upstream.routed(simulator_route(sim)):
            yield opened
    await clear_auth_failures(resources)


async def mutate(client: httpx.AsyncClient, key: str, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables},
                                 headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def audit_actions(resources: Resources, tenant: TenantWithKey) -> list[str]:
    async with resources.session_factory() as session:
        rows = await session.execute(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.tenant_id)
                                   .order_by(AuditEvent.occurred_at))
        return list(rows.scalars())


async def with_credential(client: httpx.AsyncClient, tenant: TenantWithKey, token: str) -> str:
    added = await client.post("/api/v1/credentials", json={"token": token, "check": False}, headers=tenant.headers)
    assert added.status_code == 201, added.text
    credential_id: str = added.json()["id"]
    return credential_id


async def test_request_sync_enqueues_after_commit_and_is_audited(client: httpx.AsyncClient, resources: Resources,
                                                                 sim: Simulator) -> None:
    tenant = await committed_tenant(resources, Role.OPERATOR)
    admin = await committed_key(resources, tenant.tenant_id, Role.ADMIN)
    await with_credential(client, TenantWithKey(tenant.tenant_id, tenant.slug, admin, tenant.key_id),
                          sim.tokens["company"])
    body = await mutate(client, tenant.key, "mutation { requestSync(kind: FULL) { jobId kind errors { code } } }")
    payload = body["data"]["requestSync"]
    assert payload["errors"] == []
    assert payload["kind"] == "FULL"
    assert payload["jobId"].endswith(f"{tenant.tenant_id}:full")
    arq_id = f"{resources.redis.namespace}:{payload['jobId']}"
    assert await resources.redis.zscore(resources.redis.queue(Queue.BULK), arq_id) is not None
    assert "mirror.sync.request" in await audit_actions(resources, tenant)
    await resources.redis.zrem(resources.redis.queue(Queue.BULK), arq_id)
    await resources.redis.delete(f"arq:job:{arq_id}")


async def test_an_expected_failure_is_a_payload_error_and_writes_nothing(client: httpx.AsyncClient,
                                                                         resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.OPERATOR)  # no credential: a sync cannot be asked for
    before = await audit_actions(resources, tenant)
    body = await mutate(client, tenant.key, "mutation { requestSync { jobId errors { code field message } } }")
    assert "errors" not in body
    assert body["data"]["requestSync"]["jobId"] is None
    [error] = body["data"]["requestSync"]["errors"]
    assert error["code"] == "CONFLICT"
    assert "credential" in error["message"]
    assert await audit_actions(resources, tenant) == before
    assert await resources.redis.zcard(resources.redis.queue(Queue.BULK)) == 0


async def test_an_unexpected_failure_rolls_back_the_key_and_its_audit_row_and_is_masked(
        client: httpx.AsyncClient, resources: Resources, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = await committed_tenant(resources, Role.ADMIN)
    before = await audit_actions(resources, tenant)
    record = AuditService.record

    async def record_then_fail(self: AuditService, *args: Any, **kwargs: Any) -> Any:
        await record(self, *args, **kwargs)  # the audit row and the key are both staged and flushed...
        raise RuntimeError("disk on fire")  # ...when something unexpected happens

    monkeypatch.setattr(AuditService, "record", record_then_fail)
    response = await client.post("/graphql", json={"query": CREATE_KEY}, headers=tenant.headers)
    body = response.json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["request_id"] == response.headers["x-request-id"]
    assert "disk on fire" not in response.text
    async with resources.session_factory() as session:
        keys = await session.scalar(select(func.count()).select_from(ApiKey)
                                    .where(ApiKey.tenant_id == tenant.tenant_id))
    assert keys == 1  # only the key the test was created with
    assert await audit_actions(resources, tenant) == before


async def test_create_then_revoke_an_api_key(client: httpx.AsyncClient, resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.ADMIN)
    created = (await mutate(client, tenant.key, CREATE_KEY))["data"]["createApiKey"]
    assert created["errors"] == []
    assert created["apiKey"]["role"] == "VIEWER"
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {created['secret']}"})
    assert me.status_code == 200
    assert me.json()["role"] == "viewer"

    revoked = (await mutate(client, tenant.key, "mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } "
                                                "errors { code } } }", id=created["apiKey"]["id"]))["data"]
    assert revoked["revokeApiKey"]["errors"] == []
    assert revoked["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    again = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {created['secret']}"})
    assert again.status_code == 401
    assert (await audit_actions(resources, tenant))[-2:] == ["apikey.create", "apikey.revoke"]


async def test_bad_input_names_its_field(client: httpx.AsyncClient, resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.ADMIN)
    body = await mutate(client, tenant.key, "mutation { revokeApiKey(id: \"nope\") { errors { code field } } }")
    assert body["data"]["revokeApiKey"]["errors"] == [{"code": "BAD_USER_INPUT", "field": "id"}]
    for name in (" ", "k" * 101):
        refused = await mutate(client, tenant.key, "mutation($name: String!) { createApiKey(input: {name: $name, "
                                                   "role: ADMIN}) { apiKey { id } errors { code field message } } }",
                               name=name)
        assert refused["data"]["createApiKey"] == {"apiKey": None, "errors": [
            {"code": "BAD_USER_INPUT", "field": "name", "message": "name is 1 to 100 characters"}]}, name
    for expiry, message in (("2001-01-01T00:00:00Z", "the expiry is in the past"),
                            ("2001-01-01T00:00:00", "the expiry must carry a timezone"),
                            ("9999-12-31T23:59:59-14:00", "expires_at is out of range: 9999-12-31T23:59:59-14:00")):
        refused = await mutate(client, tenant.key, "mutation($expiry: DateTime!) { createApiKey(input: {name: "
                                                   '"late", role: VIEWER, expiresAt: $expiry}) { apiKey { id } '
                                                   "errors { code field message } } }", expiry=expiry)
        assert refused["data"]["createApiKey"] == {"apiKey": None, "errors": [
            {"code": "BAD_USER_INPUT", "field": "expiresAt", "message": message}]}, expiry


async def test_check_credential_records_what_the_cloud_says(client: httpx.AsyncClient, resources: Resources,
                                                            sim: Simulator) -> None:
    tenant = await committed_tenant(resources, Role.ADMIN)
    credential_id = await with_credential(client, tenant, sim.tokens["company"])
    body = await mutate(client, tenant.key, "mutation($id: ID!) { checkCredential(id: $id) { credential { health "
                                            "accountType scopes } errors { code } } }", id=credential_id)
    payload = body["data"]["checkCredential"]
    assert payload["errors"] == []
    assert payload["credential"]["health"] == "OK"
    assert payload["credential"]["accountType"] == "company"
    assert "credential.check" in await audit_actions(resources, tenant)


async def test_the_example_mutations_run(client: httpx.AsyncClient, resources: Resources, sim: Simulator) -> None:
    # graphql/operations/request_sync.graphql, as a portal would send it (tests/gql/test_operations.py lists it).
    from tests.gql.test_operations import MUTATIONS, OPERATIONS

    assert "request_sync" in MUTATIONS
    tenant = await committed_tenant(resources, Role.ADMIN)
    await with_credential(client, tenant, sim.tokens["company"])
    body = await mutate(client, tenant.key, (OPERATIONS / "request_sync.graphql").read_text())
    assert body["data"]["requestSync"]["errors"] == []
    job_id = body["data"]["requestSync"]["jobId"]
    assert job_id.endswith(f"{tenant.tenant_id}:refresh")
    arq_id = f"{resources.redis.namespace}:{job_id}"
    await resources.redis.zrem(resources.redis.queue(Queue.BULK), arq_id)
    await resources.redis.delete(f"arq:job:{arq_id}")
