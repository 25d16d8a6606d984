"""No upstream call inside a database transaction: while GivEnergy is slow to answer, requests waiting on it hold
no pooled connection, so ordinary reads are still served from a pool of two; a credential check racing a delete
answers 404, not 500."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import event

from service.app import create_app
from service.core.roles import Role
from service.runtime import Resources
from service.settings import Settings
from service.simulator import Simulator
from service.upstream import Route
from tests.conftest import http_client
from tests.gql.conftest import KeyedFleet
from tests.live_support import lone_tenant
from tests.tenants.factories import clear_auth_failures, make_key

ARRIVAL_TIMEOUT = 60  # a safety net against a hang (the old code starved the pool): never reached when it passes


class SlowUpstream(httpx.AsyncBaseTransport):
    """Holds every request until :meth:`release` (a slow cloud, under the test's control), noting how many pooled
    connections (anyone's) were checked out at the moment each request went upstream."""

    def __init__(self, inner: httpx.AsyncBaseTransport, checked_out: Callable[[], int]) -> None:
        self._inner = inner
        self._checked_out = checked_out
        self._released = asyncio.Event()
        self._arrivals = asyncio.Condition()
        self.held_connections: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self._arrivals:
            self.held_connections.append(self._checked_out())
            self._arrivals.notify_all()
        await self._released.wait()
        return await self._inner.handle_async_request(request)

    async def arrived(self, count: int) -> None:
        """Return once ``count`` requests are waiting upstream."""
        async with self._arrivals:
            await asyncio.wait_for(self._arrivals.wait_for(lambda: len(self.held_connections) >= count),
                                   ARRIVAL_TIMEOUT)

    def release(self) -> None:
        self._released.set()


@dataclasses.dataclass
class SmallPool:
    resources: Resources
    checkouts: int = 0
    checkins: int = 0

    def checked_out(self) -> int:
        return self.checkouts - self.checkins


@pytest.fixture
async def small_pool(test_settings: Settings) -> AsyncIterator[SmallPool]:
    """Resources whose database pool holds two connections and no overflow, its checkouts counted."""
    settings = test_settings.model_copy(update={"db": test_settings.db.model_copy(
        update={"pool_size": 2, "max_overflow": 0})})
    pool = SmallPool(Resources.open(settings))

    def checkout(*_: object) -> None:
        pool.checkouts += 1

    def checkin(*_: object) -> None:
        pool.checkins += 1

    event.listen(pool.resources.engine.sync_engine.pool, "checkout", checkout)
    event.listen(pool.resources.engine.sync_engine.pool, "checkin", checkin)
    try:
        yield pool
    finally:
        await clear_auth_failures(pool.resources)
        await pool.resources.aclose()


@dataclasses.dataclass
class Scene:
    client: httpx.AsyncClient
    fleet: KeyedFleet
    serial: str
    slow: SlowUpstream


@pytest.fixture
async def scene(small_pool: SmallPool, resources: Resources, simulator: Simulator) -> AsyncIterator[Scene]:
    """The app on the small pool, a tenant with the simulator's token and one mirrored inverter, and a slow cloud."""
    slow = SlowUpstream(httpx.ASGITransport(app=simulator.app), small_pool.checked_out)
    app = create_app(small_pool.resources.settings, small_pool.resources)
    async with (lone_tenant(resources, simulator, simulator.tokens["company"]) as (fleet, serial),
                http_client(app) as client):
        small_pool.resources.upstream.route = Route(transport=slow)
        yield Scene(client, fleet, serial, slow)


async def test_slow_live_reads_hold_no_connection_and_other_reads_are_served(scene: Scene,
                                                                             small_pool: SmallPool) -> None:
    client, fleet, serial, slow = scene.client, scene.fleet, scene.serial, scene.slow
    live = [asyncio.create_task(client.get(f"/api/v1/inverters/{serial}/live/system-data",
                                           headers=fleet.headers("viewer"))) for _ in range(10)]
    await slow.arrived(10)

    # Ten reads wait on GivEnergy (all ten got that far with a pool of two) and none holds a connection, so
    # the pool serves everything else.
    assert small_pool.checked_out() == 0
    for path in ("/api/v1/me", "/api/v1/inverters", "/api/v1/tenant", f"/api/v1/inverters/{serial}"):
        response = await client.get(path, headers=fleet.headers("viewer"))
        assert response.status_code == 200, (path, response.text)

    slow.release()
    answers = await asyncio.gather(*live)
    assert [answer.status_code for answer in answers] == [200] * 10
    assert small_pool.checkouts > 0  # the counting is live: requests did use the pool


async def test_a_credential_check_holds_no_connection_and_racing_a_delete_is_a_404(scene: Scene,
                                                                                     resources: Resources) -> None:
    client, fleet, slow = scene.client, scene.fleet, scene.slow
    async with resources.session_factory() as session, session.begin():
        key, _ = await make_key(session, fleet.mirror.tenant_id, Role.ADMIN)
    admin = {"Authorization": f"Bearer {key}"}
    [credential] = (await client.get("/api/v1/credentials", headers=admin)).json()
    check = asyncio.create_task(client.post(f"/api/v1/credentials/{credential['id']}/check", headers=admin))
    await slow.arrived(1)
    assert slow.held_connections == [0]

    # The check is waiting on GivEnergy and holds nothing: the credential can be deleted meanwhile.
    deleted = await client.delete(f"/api/v1/credentials/{credential['id']}", headers=admin)
    assert deleted.status_code == 204, deleted.text

    slow.release()
    answer = await check
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert set(slow.held_connections) == {0}  # every probe request went out with no connection checked out


async def test_a_graphql_operation_holds_no_connection_while_its_live_fields_wait(scene: Scene,
                                                                                  small_pool: SmallPool) -> None:
    """One operation mixing mirror fields (read from the database) and a live field (from GivEnergy): while
    GivEnergy is slow to answer, the operation holds no pooled connection."""
    client, fleet, serial, slow = scene.client, scene.fleet, scene.serial, scene.slow
    query = ("query($s: String!) { viewer { role } inverters(first: 5) { totalCount }"
             " inverter(serial: $s) { serial live { systemData } } }")
    answer = asyncio.create_task(client.post("/graphql", json={"query": query, "variables": {"s": serial}},
                                             headers=fleet.headers("viewer")))
    await slow.arrived(1)
    assert small_pool.checked_out() == 0, "the operation holds a connection while GivEnergy answers"

    slow.release()
    body = (await answer).json()
    assert "errors" not in body, body
    assert body["data"]["inverter"]["serial"] == serial
    assert body["data"]["inverter"]["live"]["systemData"] is not None
    assert small_pool.checked_out() == 0
