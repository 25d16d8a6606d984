"""Operators ask for syncs over REST: queued after commit, joined when one is pending, audited, refused clearly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from service.core.principal import Principal
from service.core.roles import Role
from service.db.models.audit import AuditEvent
from service.gql.mirror.types import SyncRun
from service.runtime import Resources
from service.tenants.crypto import load_key_ring
from service.tenants.service import CredentialService
from tests.conftest import http_client
from tests.tenants.factories import TenantWithKey, committed_key, committed_tenant

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app) as client:  # type: ignore[arg-type]
        yield client


async def _with_credential(resources: Resources, tenant: TenantWithKey) -> None:
    async with resources.session_factory() as session, session.begin():
        service = CredentialService(session, Principal.cli(tenant.tenant_id), load_key_ring(resources.settings))
        await service.add("a-givenergy-token", label="main")


async def queued_for(resources: Resources, tenant_id: uuid.UUID) -> list[str]:
    """The ids of the tenant's jobs on the bulk queue (other tests' tenants may have jobs queued too)."""
    queued = await resources.redis.zrange(resources.redis.queue("bulk"), 0, -1)
    return [job.decode() for job in queued if str(tenant_id) in job.decode()]


async def test_operator_request_is_queued_once_and_audited(client: httpx.AsyncClient, resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.OPERATOR)
    await _with_credential(resources, tenant)

    first = await client.post("/api/v1/sync-runs", json={"kind": "full"}, headers=tenant.headers)
    second = await client.post("/api/v1/sync-runs", json={"kind": "full"}, headers=tenant.headers)

    assert first.status_code == 202
    assert second.json()["job_id"] == first.json()["job_id"], "a pending sync is joined"
    bulk = resources.redis.queue("bulk")
    assert await queued_for(resources, tenant.tenant_id) == [
        f"{resources.settings.redis.namespace}:{first.json()['job_id']}"]
    async with resources.session_factory() as session:
        actions = (await session.execute(
            select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.tenant_id))).scalars().all()
    assert actions.count("mirror.sync.request") == 2
    await resources.redis.delete(bulk, f"arq:job:{resources.settings.redis.namespace}:{first.json()['job_id']}")


async def test_refusals_are_clear(client: httpx.AsyncClient, resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.OPERATOR)
    no_credential = await client.post("/api/v1/sync-runs", json={}, headers=tenant.headers)
    assert no_credential.status_code == 409
    assert "no GivEnergy credential" in no_credential.json()["detail"]

    await _with_credential(resources, tenant)
    viewer = await committed_key(resources, tenant.tenant_id, Role.VIEWER)
    assert (await client.post("/api/v1/sync-runs", json={}, headers={"Authorization": f"Bearer {viewer}"})
            ).status_code == 403
    restricted = await committed_key(resources, tenant.tenant_id, Role.OPERATOR, restricted_account_id="42")
    response = await client.post("/api/v1/sync-runs", json={}, headers={"Authorization": f"Bearer {restricted}"})
    assert response.status_code == 403
    assert "subtree" in response.json()["detail"]
    bad_kind = await client.post("/api/v1/sync-runs", json={"kind": "everything"}, headers=tenant.headers)
    assert bad_kind.status_code == 400
    assert await queued_for(resources, tenant.tenant_id) == []


async def test_an_empty_body_asks_for_a_refresh_and_location_names_the_run(client: httpx.AsyncClient,
                                                                           resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.OPERATOR)
    await _with_credential(resources, tenant)
    queued = await client.post("/api/v1/sync-runs", content=b"", headers=tenant.headers)
    assert queued.status_code == 202, queued.text
    assert queued.json()["kind"] == "refresh"
    run_id = queued.json()["run_id"]
    assert run_id is not None, "the run is recorded with the request, before any worker takes it"
    assert queued.headers["location"] == f"/api/v1/sync-runs/{run_id}"

    joined = await client.post("/api/v1/sync-runs", json={}, headers=tenant.headers)
    assert joined.json()["run_id"] == run_id
    followed = await client.get(joined.headers["location"], headers=tenant.headers)
    assert followed.status_code == 200
    assert followed.json()["state"] == "running"
    assert set(followed.json()) == {to_snake(name) for name in GRAPHQL_SYNC_RUN_FIELDS}, "as in GraphQL"
    unknown = await client.get(f"/api/v1/sync-runs/{uuid.uuid4()}", headers=tenant.headers)
    assert unknown.status_code == 404


async def test_a_request_joining_a_pending_full_sync_is_told_a_full_sync_will_run(
        client: httpx.AsyncClient, resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.OPERATOR)
    await _with_credential(resources, tenant)
    full = await client.post("/api/v1/sync-runs", json={"kind": "full"}, headers=tenant.headers)
    assert (full.status_code, full.json()["kind"]) == (202, "full"), full.text

    refresh = await client.post("/api/v1/sync-runs", headers=tenant.headers)  # no body: a refresh asked for
    assert refresh.status_code == 202, refresh.text
    assert (refresh.json()["job_id"], refresh.json()["kind"], refresh.json()["run_id"]) == (
        full.json()["job_id"], "full", full.json()["run_id"])
    graphql = await client.post("/graphql", headers=tenant.headers, json={
        "query": "mutation { requestSync(kind: REFRESH) { jobId kind errors { message } } }"})
    assert graphql.json()["data"]["requestSync"] == {"jobId": full.json()["job_id"], "kind": "FULL", "errors": []}
    assert await queued_for(resources, tenant.tenant_id) == [
        f"{resources.settings.redis.namespace}:{full.json()['job_id']}"], "one sync runs"
    await resources.redis.delete(resources.redis.queue("bulk"),
                                 f"arq:job:{resources.settings.redis.namespace}:{full.json()['job_id']}")


async def test_unknown_fields_in_a_sync_request_are_refused(client: httpx.AsyncClient, resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.OPERATOR)
    await _with_credential(resources, tenant)
    refused = await client.post("/api/v1/sync-runs", json={"kind": "full", "force": True}, headers=tenant.headers)
    assert refused.status_code == 400
    assert "force" in refused.text


GRAPHQL_SYNC_RUN_FIELDS = [field.name for field in SyncRun.__strawberry_definition__.fields]


def to_snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
