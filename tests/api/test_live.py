"""REST live reads against the simulator in-process: data, the short cache, roles, the subtree restriction, and
upstream refusals as problem+json with a clear status (never a 500)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from litestar import Litestar

from service.givenergy import RetryPolicy
from service.runtime import Resources
from service.simulator import Simulator
from service.upstream import Route
from tests.conftest import http_client
from tests.gql.conftest import KeyedFleet
from tests.live_support import add_credential, lone_tenant, upstream_requests

LiveFleet = tuple[KeyedFleet, list[str]]


async def get(client: httpx.AsyncClient, fleet: KeyedFleet, path: str, key: str = "viewer",
              **params: Any) -> httpx.Response:
    return await client.get(f"/api/v1{path}", params=params, headers=fleet.headers(key))


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["request_id"]
    return body


async def test_system_and_meter_data_come_from_the_cloud_and_are_cached(
        live_client: httpx.AsyncClient, live_fleet: LiveFleet, simulator: Simulator) -> None:
    fleet, serials = live_fleet
    before = upstream_requests(simulator)
    first = await get(live_client, fleet, f"/inverters/{serials[0]}/live/system-data")
    assert first.status_code == 200, first.text
    assert first.json()["time"] is not None
    assert "solar" in first.json()
    assert upstream_requests(simulator) == before + 1
    again = await get(live_client, fleet, f"/inverters/{serials[0]}/live/system-data", key="operator")
    assert again.json() == first.json()
    assert upstream_requests(simulator) == before + 1  # the second read was served from the cache
    meter = await get(live_client, fleet, f"/inverters/{serials[0]}/live/meter-data")
    assert meter.status_code == 200
    assert isinstance(meter.json(), dict)


async def test_history_reads(live_client: httpx.AsyncClient, live_fleet: LiveFleet, simulator: Simulator) -> None:
    fleet, serials = live_fleet
    today = simulator.clock.now().date()
    base = f"/inverters/{serials[0]}/live"
    events = await get(live_client, fleet, f"{base}/events", limit=5)
    assert events.status_code == 200, events.text
    assert isinstance(events.json(), list)
    points = await get(live_client, fleet, f"{base}/data-points/{today.isoformat()}", limit=5)
    assert points.status_code == 200, points.text
    assert 0 < len(points.json()) <= 5
    flows = await get(live_client, fleet, f"{base}/energy-flows", start=(today - timedelta(days=2)).isoformat(),
                      end=today.isoformat(), grouping=1)
    assert flows.status_code == 200, flows.text
    assert isinstance(flows.json(), list)
    bad = await get(live_client, fleet, f"{base}/energy-flows", start=today.isoformat(), end=today.isoformat(),
                    grouping=9)
    assert_problem(bad, 400)


async def test_settings_and_presets_need_operator(live_client: httpx.AsyncClient, live_fleet: LiveFleet) -> None:
    fleet, serials = live_fleet
    for part in ("settings", "presets"):
        denied = await get(live_client, fleet, f"/inverters/{serials[0]}/live/{part}")
        assert "operator" in assert_problem(denied, 403)["detail"]
        allowed = await get(live_client, fleet, f"/inverters/{serials[0]}/live/{part}", key="operator")
        assert allowed.status_code == 200, allowed.text
    settings = await get(live_client, fleet, f"/inverters/{serials[0]}/live/settings", key="operator")
    assert len(settings.json()) > 0


async def test_subtree_key_reads_only_inside_its_subtree(live_client: httpx.AsyncClient, live_fleet: LiveFleet,
                                                         simulator: Simulator) -> None:
    fleet, serials = live_fleet
    inside = await get(live_client, fleet, f"/inverters/{serials[0]}/live/system-data", key="sub_viewer")
    assert inside.status_code == 200, inside.text
    before = upstream_requests(simulator)
    outside = await get(live_client, fleet, f"/inverters/{serials[1]}/live/meter-data", key="sub_viewer")
    assert_problem(outside, 404)
    assert upstream_requests(simulator) == before  # refused before any upstream call
    chargers = await get(live_client, fleet, "/live/ev-chargers", key="sub_viewer")
    assert "subtree" in assert_problem(chargers, 403)["detail"]
    # A whole-tenant key passes the subtree rule; GivEnergy lists EV chargers to customer accounts only.
    whole = assert_problem(await get(live_client, fleet, "/live/ev-chargers"), 424)
    assert (whole["code"], whole["upstream_status"]) == ("UPSTREAM_FORBIDDEN", 403)


async def test_unknown_and_foreign_serials_are_not_found(live_client: httpx.AsyncClient, live_fleet: LiveFleet,
                                                         resources: Resources, simulator: Simulator) -> None:
    fleet, _ = live_fleet
    assert_problem(await get(live_client, fleet, "/inverters/NOSUCH0001/live/system-data"), 404)
    async with lone_tenant(resources, simulator, index=2) as (other, foreign):  # not in live_fleet's mirror
        assert_problem(await get(live_client, fleet, f"/inverters/{foreign}/live/system-data"), 404)
        assert (await get(live_client, other, f"/inverters/{foreign}/live/system-data")).status_code == 424


async def test_upstream_refusal_is_a_clear_problem(live_client: httpx.AsyncClient, resources: Resources,
                                                   simulator: Simulator) -> None:
    async with lone_tenant(resources, simulator) as (fleet, serial):
        none = assert_problem(await get(live_client, fleet, f"/inverters/{serial}/live/system-data"), 424)
        assert none["code"] == "UPSTREAM_NOT_CONFIGURED"
        await add_credential(resources, fleet, "not-a-real-token")
        response = await get(live_client, fleet, f"/inverters/{serial}/live/system-data")
        refused = assert_problem(response, 424)
        assert refused["code"] == "UPSTREAM_UNAUTHORISED"
        assert refused["upstream_status"] == 401
        assert "credential" in refused["detail"]
        assert "not-a-real-token" not in response.text


async def test_exhausted_upstream_budget_is_a_retryable_problem(app: Litestar, resources: Resources,
                                                                simulator: Simulator) -> None:
    def budget_exhausted(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "7"}, json={"message": "Too Many Attempts."})

    route = Route(transport=httpx.MockTransport(budget_exhausted), retry=RetryPolicy(max_attempts=1))
    # A tenant of its own: the 429 pauses its token's rate-limit bucket, which no other test should feel.
    async with lone_tenant(resources, simulator, "any-token") as (fleet, serial), http_client(app) as client:
        with resources.upstream.routed(route):
            response = await get(client, fleet, f"/inverters/{serial}/live/system-data")
    problem = assert_problem(response, 503)
    assert (problem["code"], problem["upstream_status"]) == ("UPSTREAM_RATE_LIMITED", 429)
    assert response.headers["Retry-After"] == "7"


async def test_live_data_keeps_upstreams_field_names(live_client: httpx.AsyncClient, live_fleet: LiveFleet,
                                                     simulator: Simulator) -> None:
    fleet, serials = live_fleet
    today = simulator.clock.now().date()
    meter = await get(live_client, fleet, f"/inverters/{serials[0]}/live/meter-data")
    points = await get(live_client, fleet, f"/inverters/{serials[0]}/live/data-points/{today.isoformat()}", limit=3)
    assert points.json(), "the simulator has today's points"
    for response in (meter, points):
        assert response.status_code == 200, response.text
        assert '"import":' in response.text
        assert "import_" not in response.text
    graphql = await live_client.post("/graphql", headers=fleet.headers("viewer"), json={
        "query": "query($s: String!) { inverter(serial: $s) { live { meterData } } }", "variables": {"s": serials[0]}})
    assert '"import":' in graphql.text
    assert "import_" not in graphql.text


async def test_times_without_a_utc_equivalent_are_400(live_client: httpx.AsyncClient, live_fleet: LiveFleet) -> None:
    fleet, serials = live_fleet
    extreme = "9999-12-31T23:59:59-14:00"
    response = await get(live_client, fleet, f"/inverters/{serials[0]}/live/events", start=extreme, end=extreme)
    assert_problem(response, 400)
    assert response.json()["errors"][0]["key"] == "start"


async def test_ranges_that_end_before_they_start_are_400_without_asking_givenergy(
        live_client: httpx.AsyncClient, live_fleet: LiveFleet, simulator: Simulator) -> None:
    fleet, serials = live_fleet
    base = f"/inverters/{serials[0]}/live"
    before = upstream_requests(simulator)
    flows = await get(live_client, fleet, f"{base}/energy-flows", start="2026-12-01", end="2026-11-01")
    events = await get(live_client, fleet, f"{base}/events", start="2026-12-01T00:00:00Z",
                       end="2026-11-30T23:59:59Z")
    for response in (flows, events):
        problem = assert_problem(response, 400)
        assert response.json()["errors"][0]["key"] == "end"
        assert "before start" in problem["detail"]
    assert upstream_requests(simulator) == before
    one_day = await get(live_client, fleet, f"{base}/energy-flows", start="2026-11-01", end="2026-11-01")
    assert one_day.status_code == 200, one_day.text
