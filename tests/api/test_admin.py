"""The /api/v1 access administration: each role enforced on each endpoint, audit of every write, and tokens
that never leave the server (responses, logs)."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import structlog
from litestar import Litestar

from service.core.principal import Principal
from service.core.roles import Role
from service.observability import configure_logging
from service.runtime import Resources
from service.settings import LogSettings
from service.simulator import Simulator
from service.tenants.service import CredentialService
from tests.tenants.factories import (
    TenantWithKey,
    clear_auth_failures,
    committed_key,
    committed_tenant,
    mirrored_account,
    quiet_simulator,
    simulator_route,
)

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return quiet_simulator()


@pytest.fixture
def app_with_sim(app: Litestar, resources: Resources, sim: Simulator) -> Iterator[Litestar]:
    """The app, its credential checks reaching the simulator in-process."""
    with resources.upstream.routed(simulator_route(sim)):
        yield app


@pytest.fixture
async def client(app_with_sim: Litestar, resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    from tests.conftest import http_client

    async with http_client(app_with_sim) as opened:
        yield opened
    await clear_auth_failures(resources)


async def seeded_credential(resources: Resources, tenant: TenantWithKey) -> uuid.UUID:
    from service.tenants.crypto import load_key_ring

    async with resources.session_factory() as session, session.begin():
        service = CredentialService(session, Principal.cli(tenant.tenant_id), load_key_ring(resources.settings))
        return (await service.add("seeded-token", label="seeded")).id


ADMIN_ONLY = "admin"
ANY_ROLE = "viewer"


def endpoints(credential_id: uuid.UUID, key_id: uuid.UUID) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(needed role, method, path, JSON body) of every access endpoint."""
    return [
        (ANY_ROLE, "GET", "/api/v1/me", None),
        (ANY_ROLE, "GET", "/api/v1/tenant", None),
        (ANY_ROLE, "GET", "/api/v1/credentials", None),
        (ANY_ROLE, "GET", f"/api/v1/credentials/{credential_id}", None),
        (ADMIN_ONLY, "POST", "/api/v1/credentials", {"token": "tok", "check": False}),
        (ADMIN_ONLY, "POST", f"/api/v1/credentials/{credential_id}/check", None),
        (ADMIN_ONLY, "DELETE", f"/api/v1/credentials/{credential_id}", None),
        (ADMIN_ONLY, "GET", "/api/v1/api-keys", None),
        (ADMIN_ONLY, "POST", "/api/v1/api-keys", {"name": "x", "role": "viewer"}),
        (ADMIN_ONLY, "POST", f"/api/v1/api-keys/{key_id}/revoke", None),
        (ADMIN_ONLY, "GET", "/api/v1/audit-events", None),
    ]


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_is_enforced_on_each_endpoint(client: httpx.AsyncClient, resources: Resources,
                                                      role: Role) -> None:
    owner = await committed_tenant(resources, Role.ADMIN)
    caller = {"Authorization": f"Bearer {await committed_key(resources, owner.tenant_id, role)}"}
    credential_id = await seeded_credential(resources, owner)
    spare_key = await committed_tenant(resources, Role.VIEWER)  # a key of another tenant: revoking it is a 404
    for needed, method, path, body in endpoints(credential_id, spare_key.key_id):
        response = await client.request(method, path, json=body, headers=caller)
        if needed == ADMIN_ONLY and role is not Role.ADMIN:
            assert response.status_code == 403, (method, path)
            problem = response.json()
            assert response.headers["content-type"].startswith("application/problem+json")
            assert problem["detail"] == f"this action needs the admin role; the key in use has the {role} role"
        elif path.endswith("/revoke"):
            assert response.status_code == 404, (method, path)  # foreign key id: not found, not revoked
        else:
            assert response.status_code < 300, (method, path, response.text)
        no_key = await client.request(method, path, json=body)
        assert no_key.status_code == 401, (method, path)


async def test_a_subtree_key_cannot_act_on_the_whole_tenant(client: httpx.AsyncClient, resources: Resources
                                                              ) -> None:
    """Even with the admin role, a key restricted to an account subtree cannot manage keys or credentials
    (it could mint itself an unrestricted key) nor read the tenant's credentials or audit log."""
    owner = await committed_tenant(resources, Role.ADMIN)
    restricted = await committed_key(resources, owner.tenant_id, Role.ADMIN, restricted_account_id="42")
    caller = {"Authorization": f"Bearer {restricted}"}
    credential_id = await seeded_credential(resources, owner)
    for _, method, path, body in endpoints(credential_id, owner.key_id):
        response = await client.request(method, path, json=body, headers=caller)
        if path in {"/api/v1/me", "/api/v1/tenant"}:
            assert response.status_code == 200, (method, path)
        else:
            assert response.status_code == 403, (method, path, response.text)
            assert "subtree" in response.json()["detail"]
    keys = await client.get("/api/v1/api-keys", headers=owner.headers)
    assert len(keys.json()) == 2, "no key was created"


async def test_admin_manages_keys_and_every_write_is_audited(client: httpx.AsyncClient, resources: Resources
                                                             ) -> None:
    admin = await committed_tenant(resources)
    async with resources.session_factory() as session, session.begin():
        await mirrored_account(session, admin.tenant_id, 4711)
    created = await client.post("/api/v1/api-keys", headers={**admin.headers, "X-Request-ID": "req-123"},
                                json={"name": "grafana", "role": "viewer", "restricted_account_id": "4711"})
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith(f"gvf_{body['key']['prefix']}_")
    assert body["key"]["restricted_account_id"] == "4711"

    listed = (await client.get("/api/v1/api-keys", headers=admin.headers)).json()
    assert {key["prefix"] for key in listed} == {body["key"]["prefix"], admin.key.split("_")[1]}
    assert body["secret"] not in str(listed)  # shown once only

    restricted = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['secret']}"})
    assert restricted.json()["restricted_account_id"] == "4711"

    await client.post(f"/api/v1/api-keys/{body['key']['id']}/revoke", headers=admin.headers)
    events = (await client.get("/api/v1/audit-events", headers=admin.headers)).json()
    assert {"apikey.create", "apikey.revoke", "tenant.create"} <= {event["action"] for event in events}
    [create] = [event for event in events if event["action"] == "apikey.create"
                and event["target_id"] == body["key"]["id"]]
    assert create["actor_key_id"] == str(admin.key_id)
    assert create["actor"] == f"apikey:{admin.key.split('_')[1]}"
    assert create["target_id"] == body["key"]["id"]
    assert create["client_address"] == "127.0.0.1"
    assert create["request_id"] == "req-123"
    assert create["details"]["role"] == "viewer"


async def test_failed_write_leaves_no_row_and_no_audit_event(client: httpx.AsyncClient, resources: Resources) -> None:
    admin = await committed_tenant(resources)
    response = await client.post("/api/v1/api-keys", headers=admin.headers,
                                 json={"name": "late", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"})
    assert response.status_code == 422
    assert "past" in response.json()["detail"]
    assert [(error["key"], error["message"]) for error in response.json()["errors"]] == [
        ("expires_at", "the expiry is in the past")]
    keys = (await client.get("/api/v1/api-keys", headers=admin.headers)).json()
    assert [key["name"] for key in keys] == ["admin key"]
    events = (await client.get("/api/v1/audit-events", headers=admin.headers)).json()
    assert "apikey.create" not in {event["action"] for event in events if event["details"].get("name") == "late"}


async def test_credential_add_checks_against_upstream_and_never_returns_the_token(
    client: httpx.AsyncClient, resources: Resources, sim: Simulator
) -> None:
    admin = await committed_tenant(resources)
    token = sim.tokens["company"]
    response = await client.post("/api/v1/credentials", headers=admin.headers, json={"token": token, "label": "main"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["health"] == "ok"
    assert body["account_type"] == "company"
    assert "api:inverter:control" in body["scopes"]
    assert token not in response.text
    listed = await client.get("/api/v1/credentials", headers=admin.headers)
    assert token not in listed.text
    assert "token" not in listed.json()[0]

    bad = await client.post("/api/v1/credentials", headers=admin.headers, json={"token": "expired-token"})
    assert bad.json()["health"] == "unauthorised"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line (stdlib and structlog, DEBUG and up, JSON) written while the test runs."""
    root = logging.getLogger()
    saved_handlers, saved_level, saved_structlog = root.handlers[:], root.level, structlog.get_config()
    configure_logging(LogSettings(level="DEBUG", json_output=True))
    buffer = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(buffer)
    for name in ("httpx", "httpcore", "sqlalchemy.engine"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name in ("httpx", "httpcore", "sqlalchemy.engine"):
            logging.getLogger(name).setLevel(logging.NOTSET)
        structlog.configure(**saved_structlog)


async def test_token_never_appears_in_logs_of_a_full_request_cycle(
    client: httpx.AsyncClient, resources: Resources, sim: Simulator, captured_logs: io.StringIO
) -> None:
    admin = await committed_tenant(resources)
    token = sim.tokens["customer"]
    added = await client.post("/api/v1/credentials", headers=admin.headers, json={"token": token})
    assert added.json()["health"] == "ok"
    credential_id = added.json()["id"]
    await client.post(f"/api/v1/credentials/{credential_id}/check", headers=admin.headers)
    await client.get("/api/v1/credentials", headers=admin.headers)
    invalid = await client.post("/api/v1/credentials", headers=admin.headers,
                                json={"token": token, "requests_per_minute": "lots"})
    assert invalid.status_code == 400
    assert token not in invalid.text
    await client.post("/api/v1/credentials", headers=admin.headers, json={"token": token + "-revoked"})

    logs = captured_logs.getvalue()
    assert "credential.checked" in logs  # the capture did see the request cycle
    assert token not in logs
    assert admin.key not in logs  # nor the givfleet API key


async def test_unstorable_input_is_refused_not_a_server_error(client: httpx.AsyncClient, resources: Resources
                                                              ) -> None:
    admin = await committed_tenant(resources)
    non_ascii = await client.post("/api/v1/credentials", headers=admin.headers, json={"token": "tök€n"})
    assert non_ascii.status_code == 422
    assert "ASCII" in non_ascii.json()["detail"]
    for body in ({"name": "bad\u0000name", "role": "viewer"},
                 {"name": "ok", "role": "viewer", "restricted_account_id": "47\u000011"}):
        refused = await client.post("/api/v1/api-keys", headers=admin.headers, json=body)
        assert refused.status_code == 400, body
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/v1/audit-events", headers=admin.headers,
                             params={"action": "x\u0000"})).status_code == 400
    assert [key["name"] for key in (await client.get("/api/v1/api-keys", headers=admin.headers)).json()
            if key["name"] != "admin key"] == []


async def test_security_inputs_refuse_unknown_fields_and_unknown_accounts(client: httpx.AsyncClient,
                                                                          resources: Resources) -> None:
    admin = await committed_tenant(resources)
    misspelt = await client.post("/api/v1/api-keys", headers=admin.headers,
                                 json={"name": "portal", "role": "viewer", "account_id": 999999})
    assert misspelt.status_code == 400, misspelt.text
    assert [error["key"] for error in misspelt.json()["errors"]] == ["account_id"]
    unknown = await client.post("/api/v1/api-keys", headers=admin.headers,
                                json={"name": "portal", "role": "viewer", "restricted_account_id": "999999"})
    assert unknown.status_code == 422
    assert "no account 999999" in unknown.json()["detail"]
    not_an_id = await client.post("/api/v1/api-keys", headers=admin.headers,
                                  json={"name": "portal", "role": "viewer", "restricted_account_id": "abc"})
    assert not_an_id.status_code == 400
    assert not_an_id.json()["errors"][0]["key"] == "restricted_account_id"
    empty = await client.post("/api/v1/api-keys", headers=admin.headers,
                              json={"name": "portal", "role": "viewer", "restricted_account_id": ""})
    assert empty.status_code == 400, "an empty restriction is an error, never a whole-tenant key"
    credential = await client.post("/api/v1/credentials", headers=admin.headers,
                                   json={"token": "t", "check": False, "tier": 1000})
    assert credential.status_code == 400
    assert [error["key"] for error in credential.json()["errors"]] == ["tier"]
    keys = (await client.get("/api/v1/api-keys", headers=admin.headers)).json()
    assert [key["name"] for key in keys] == ["admin key"], "nothing was created"
