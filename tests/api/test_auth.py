"""Every REST request outside health/metrics/docs needs a valid API key; roles are enforced by guards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import update

from service import subscription
from service.app import create_app
from service.authn import client_address
from service.core.roles import Role
from service.jobs import enqueue
from service.runtime import Resources
from service.settings import SecuritySettings, Settings
from service.tenants import service as tenant_service
from tests.conftest import http_client, running
from tests.gql.conftest import count_statements
from tests.support import SwallowingProxy
from tests.tenants.factories import clear_auth_failures, committed_key, committed_tenant

pytestmark = pytest.mark.usefixtures("clean_db")


@pytest.fixture(autouse=True)
async def forget_failures(resources: Resources) -> AsyncIterator[None]:
    yield
    await clear_auth_failures(resources)


async def test_public_paths_need_no_key(api_client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/schema/openapi.json"):
        assert (await api_client.get(path)).status_code == 200, path


async def test_missing_key_is_401_problem(api_client: httpx.AsyncClient) -> None:
    response = await api_client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401
    assert "Authorization: Bearer" in body["detail"]


@pytest.mark.parametrize("header", [
    "Bearer gvf_abcdefghij_not-the-secret",
    "Bearer something-else-entirely",
    "Basic dXNlcjpwYXNz",
    "Bearer ",
])
async def test_unknown_or_malformed_key_is_401(api_client: httpx.AsyncClient, header: str) -> None:
    response = await api_client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"


async def test_valid_key_resolves_its_principal(api_client: httpx.AsyncClient, resources: Resources) -> None:
    tenant = await committed_tenant(resources, Role.OPERATOR)
    response = await api_client.get("/api/v1/me", headers=tenant.headers)
    assert response.status_code == 200
    assert response.json() == {"tenant_id": str(tenant.tenant_id), "role": "operator", "key_id": str(tenant.key_id),
                               "restricted_account_id": None}


async def test_right_prefix_wrong_secret_is_401(api_client: httpx.AsyncClient, resources: Resources) -> None:
    tenant = await committed_tenant(resources)
    forged = tenant.key[:-4] + ("aaaa" if not tenant.key.endswith("aaaa") else "bbbb")
    response = await api_client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_expired_key_is_refused(api_client: httpx.AsyncClient, resources: Resources,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = await committed_tenant(resources)
    expiry = datetime.now(UTC) + timedelta(hours=1)
    key = await committed_key(resources, tenant.tenant_id, Role.ADMIN, expires_at=expiry)
    headers = {"Authorization": f"Bearer {key}"}
    assert (await api_client.get("/api/v1/me", headers=headers)).status_code == 200  # now known to the cache
    monkeypatch.setattr(tenant_service, "utcnow", lambda: expiry + timedelta(seconds=1))  # time passes
    response = await api_client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_revoked_key_is_refused_at_once(api_client: httpx.AsyncClient, resources: Resources) -> None:
    admin = await committed_tenant(resources)
    created = await api_client.post("/api/v1/api-keys", json={"name": "ci", "role": "viewer"}, headers=admin.headers)
    assert created.status_code == 201
    victim = {"Authorization": f"Bearer {created.json()['secret']}"}
    assert (await api_client.get("/api/v1/me", headers=victim)).status_code == 200

    revoked = await api_client.post(f"/api/v1/api-keys/{created.json()['key']['id']}/revoke", headers=admin.headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = await api_client.get("/api/v1/me", headers=victim)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


async def test_suspended_tenant_keys_stop_working(api_client: httpx.AsyncClient, resources: Resources) -> None:
    from service.db.models.tenant import Tenant, TenantStatus

    tenant = await committed_tenant(resources)
    async with resources.session_factory() as session, session.begin():
        await session.execute(update(Tenant).where(Tenant.id == tenant.tenant_id).values(status=TenantStatus.SUSPENDED))
    response = await api_client.get("/api/v1/me", headers=tenant.headers)
    assert response.status_code == 401
    assert "suspended" in response.json()["detail"]


async def test_use_records_last_used_time(api_client: httpx.AsyncClient, resources: Resources) -> None:
    tenant = await committed_tenant(resources)
    before = datetime.now(UTC)
    assert (await api_client.get("/api/v1/me", headers=tenant.headers)).status_code == 200
    keys = (await api_client.get("/api/v1/api-keys", headers=tenant.headers)).json()
    assert datetime.fromisoformat(keys[0]["last_used_at"]) >= before - timedelta(seconds=1)


async def test_repeated_guesses_are_answered_429_but_valid_keys_still_work(app: Litestar,
                                                                           resources: Resources) -> None:
    strict = replace(resources, settings=resources.settings.model_copy(update={
        "security": SecuritySettings(auth_failure_limit=3, auth_failure_window_seconds=120)}))
    app.state.resources = strict  # what the lifespan installs; the test's resources are already open
    tenant = await committed_tenant(resources)
    async with running(app):
        portal = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 4000)),
                                   base_url="http://givfleet.test")
        bystander = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("198.51.100.7", 4000)),
                                      base_url="http://givfleet.test")
        async with portal, bystander:
            app.state.resources = strict
            guess = {"Authorization": "Bearer gvf_aaaaaaaaaa_guess"}
            for _ in range(3):
                assert (await portal.get("/api/v1/me", headers=guess)).status_code == 401
            blocked = await portal.get("/api/v1/me", headers=guess)
            assert blocked.status_code == 429
            assert 1 <= int(blocked.headers["retry-after"]) <= 120
            assert blocked.headers["content-type"].startswith("application/problem+json")
            assert "too many failed" in blocked.json()["detail"]
            # The address is throttled, but a request carrying a valid, active key is served from it.
            assert (await portal.get("/api/v1/me", headers=tenant.headers)).status_code == 200
            assert (await bystander.get("/api/v1/me", headers=guess)).status_code == 401


async def test_keys_of_a_suspended_tenant_are_refused_but_not_counted_as_guesses(app: Litestar,
                                                                                resources: Resources) -> None:
    from service.db.models.tenant import Tenant, TenantStatus

    strict = replace(resources, settings=resources.settings.model_copy(update={
        "security": SecuritySettings(auth_failure_limit=3, auth_failure_window_seconds=120)}))
    suspended = await committed_tenant(resources)
    async with resources.session_factory() as session, session.begin():
        await session.execute(update(Tenant).where(Tenant.id == suspended.tenant_id)
                              .values(status=TenantStatus.SUSPENDED))
    async with running(app):
        portal = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("203.0.113.10", 4000)),
                                   base_url="http://givfleet.test")
        async with portal:
            app.state.resources = strict
            for _ in range(5):  # a portal still polling for a suspended customer
                refused = await portal.get("/api/v1/me", headers=suspended.headers)
                assert refused.status_code == 401
                assert "suspended" in refused.json()["detail"]
            guess = await portal.get("/api/v1/me", headers={"Authorization": "Bearer gvf_aaaaaaaaaa_guess"})
            assert guess.status_code == 401, "the suspended tenant's refusals were not counted as guesses"


async def test_a_revocation_whose_notice_cannot_be_published_still_succeeds(
        api_client: httpx.AsyncClient, resources: Resources, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis refuses the revocation notice after the revocation committed: the admin is told it worked (it did),
    and the key is refused."""
    async def unreachable(*_: object) -> int:
        raise RedisConnectionError("injected: Redis unreachable at publish")

    admin = await committed_tenant(resources)
    created = await api_client.post("/api/v1/api-keys", json={"name": "ci", "role": "viewer"}, headers=admin.headers)
    victim = {"Authorization": f"Bearer {created.json()['secret']}"}
    assert (await api_client.get("/api/v1/me", headers=victim)).status_code == 200  # now cached
    monkeypatch.setattr(resources.redis, "publish", unreachable)
    revoked = await api_client.post(f"/api/v1/api-keys/{created.json()['key']['id']}/revoke", headers=admin.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert (await api_client.get("/api/v1/me", headers=victim)).status_code == 401


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_appended(test_settings: Settings) -> None:
    def address(forwarded: str | None, *, trusted: bool) -> str:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
        scope: Any = {"type": "http", "method": "GET", "path": "/", "headers": headers, "client": ("10.0.0.9", 1)}
        settings = test_settings.model_copy(update={"security": SecuritySettings(trust_forwarded_for=trusted)})
        return client_address(Request(scope), settings)

    assert address("6.6.6.6, 203.0.113.7", trusted=True) == "203.0.113.7", "a client-written entry is ignored"
    assert address("203.0.113.7", trusted=True) == "203.0.113.7"
    assert address(None, trusted=True) == "10.0.0.9"
    assert address("6.6.6.6", trusted=False) == "10.0.0.9"


async def test_a_key_revoked_through_one_process_is_refused_by_another_at_once(
        test_settings: Settings, resources: Resources, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two API processes (apps with caches of their own) sharing Redis: a key the second one has cached stops
    working there as soon as the first one revokes it, long before the cache's lifetime is over."""
    # Both apps live in this process: only Redis may carry the notice, as between two processes.
    monkeypatch.setattr(enqueue, "deliver_locally", lambda _channel, _message: None)
    admin = await committed_tenant(resources)
    key = await committed_key(resources, admin.tenant_id, Role.VIEWER)
    victim = {"Authorization": f"Bearer {key}"}
    one, other = (create_app(test_settings, resources) for _ in range(2))
    async with http_client(one) as first, http_client(other) as second:
        deadline = time.monotonic() + 5
        while not other.state.api_keys.subscribed and time.monotonic() < deadline:  # noqa: ASYNC110 - a flag
            await asyncio.sleep(0.01)
        assert (await second.get("/api/v1/me", headers=victim)).status_code == 200
        with count_statements(resources.engine) as statements:
            assert (await second.get("/api/v1/me", headers=victim)).status_code == 200
        assert not [sql for sql in statements.sql if "api_keys" in sql]  # answered from the cache

        listed = await first.get("/api/v1/api-keys", headers=admin.headers)
        [victim_id] = [k["id"] for k in listed.json() if k["role"] == "viewer"]
        assert (await first.post(f"/api/v1/api-keys/{victim_id}/revoke", headers=admin.headers)).status_code == 200
        refused, deadline = None, time.monotonic() + 1
        while time.monotonic() < deadline:
            refused = await second.get("/api/v1/me", headers=victim)
            if refused.status_code == 401:
                break
            await asyncio.sleep(0.01)
        assert refused is not None
        assert refused.status_code == 401, "the other process still serves the revoked key"
        assert "revoked" in refused.json()["detail"]


async def test_a_silently_dead_subscription_stops_the_cache_serving_revoked_keys(
        test_settings: Settings, resources: Resources, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other process's notices travel over a connection that goes silent (no reset, packets swallowed): it
    must stop answering from its cache rather than serve a key revoked meanwhile for the cache's lifetime."""
    monkeypatch.setattr(enqueue, "deliver_locally", lambda _channel, _message: None)  # only Redis carries notices
    redis_at = resources.redis.connection_pool.connection_kwargs
    async with SwallowingProxy(redis_at) as proxy:
        monkeypatch.setattr(subscription, "ConnectionPool", proxy.pools)
        settings = test_settings.model_copy(update={"security": test_settings.security.model_copy(
            update={"api_key_cache_seconds": 300})})
        admin = await committed_tenant(resources)
        victim = {"Authorization": f"Bearer {await committed_key(resources, admin.tenant_id, Role.VIEWER)}"}
        one, other = (create_app(settings, resources) for _ in range(2))
        async with http_client(one) as first, http_client(other) as second:
            deadline = time.monotonic() + 5
            while not other.state.api_keys.subscribed and time.monotonic() < deadline:  # noqa: ASYNC110 - a flag
                await asyncio.sleep(0.01)
            assert (await second.get("/api/v1/me", headers=victim)).status_code == 200  # now cached

            proxy.swallowing = True
            listed = await first.get("/api/v1/api-keys", headers=admin.headers)
            [victim_id] = [k["id"] for k in listed.json() if k["role"] == "viewer"]
            assert (await first.post(f"/api/v1/api-keys/{victim_id}/revoke", headers=admin.headers)
                    ).status_code == 200
            refused, deadline = None, time.monotonic() + 5
            while time.monotonic() < deadline:
                refused = await second.get("/api/v1/me", headers=victim)
                if refused.status_code == 401:
                    break
                await asyncio.sleep(0.05)
            assert refused is not None
            assert refused.status_code == 401, "a silent subscription kept serving a revoked key from the cache"

            proxy.swallowing = False  # the network heals: the cache subscribes again and serves again
            deadline = time.monotonic() + 5
            while not other.state.api_keys.listening and time.monotonic() < deadline:  # noqa: ASYNC110 - a flag
                await asyncio.sleep(0.05)
            assert other.state.api_keys.listening
