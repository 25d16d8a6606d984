"""Live fields read through the client (interactive lane) against the simulator in-process: data, cache,
roles, subtree restriction, and upstream refusals as clear GraphQL errors."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from service.givenergy import GivEnergyClient
from service.runtime import Resources
from service.simulator import Simulator
from tests.gql.conftest import KeyedFleet
from tests.live_support import add_credential, lone_tenant, upstream_requests


async def gql(client: httpx.AsyncClient, fleet: KeyedFleet, key: str, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=fleet.headers(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


LIVE = """query($s: String!) { inverter(serial: $s) { serial live { systemData meterData } } }"""


async def test_live_system_and_meter_data_come_from_the_cloud_and_are_cached(
        live_client: httpx.AsyncClient, live_fleet: tuple[KeyedFleet, list[str]], simulator: Simulator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fleet, serials = live_fleet
    closed: list[GivEnergyClient] = []
    original_aclose = GivEnergyClient.aclose

    async def counting_aclose(self: GivEnergyClient) -> None:
        closed.append(self)
        await original_aclose(self)

    monkeypatch.setattr(GivEnergyClient, "aclose", counting_aclose)
    before = upstream_requests(simulator)
    body = await gql(live_client, fleet, "viewer", LIVE, s=serials[0])
    assert len(closed) == 1  # both fields shared one upstream client, closed after the response
    assert "errors" not in body, body
    live = body["data"]["inverter"]["live"]
    assert live["systemData"]["time"] is not None
    assert "solar" in live["systemData"]
    assert isinstance(live["meterData"], dict)
    after_first = upstream_requests(simulator)
    assert after_first - before == 2
    again = await gql(live_client, fleet, "viewer", LIVE, s=serials[0])
    assert again["data"] == body["data"]
    assert upstream_requests(simulator) == after_first  # served from the short cache


async def test_live_history_reads(live_client: httpx.AsyncClient, live_fleet: tuple[KeyedFleet, list[str]],
                                  simulator: Simulator) -> None:
    fleet, serials = live_fleet
    today = simulator.clock.now().date()
    body = await gql(live_client, fleet, "viewer", """query($s: String!, $day: Date!, $from: Date!) {
        inverter(serial: $s) { live {
          events(limit: 5) dataPoints(day: $day, limit: 5) energyFlows(start: $from, end: $day, grouping: 1) } } }""",
                     s=serials[0], day=today.isoformat(), **{"from": (today - timedelta(days=2)).isoformat()})
    assert "errors" not in body, body
    live = body["data"]["inverter"]["live"]
    assert isinstance(live["events"], list)
    assert isinstance(live["dataPoints"], list)
    assert len(live["dataPoints"]) <= 5
    assert isinstance(live["energyFlows"], list)


async def test_a_range_that_ends_before_it_starts_is_bad_user_input(
        live_client: httpx.AsyncClient, live_fleet: tuple[KeyedFleet, list[str]], simulator: Simulator) -> None:
    fleet, serials = live_fleet
    before = upstream_requests(simulator)
    body = await gql(live_client, fleet, "viewer", """query($s: String!) { inverter(serial: $s) { live {
        energyFlows(start: "2026-12-01", end: "2026-11-01") } } }""", s=serials[0])
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "before start" in body["errors"][0]["message"]
    assert upstream_requests(simulator) == before


async def test_settings_catalogue_needs_operator(live_client: httpx.AsyncClient,
                                                 live_fleet: tuple[KeyedFleet, list[str]]) -> None:
    fleet, serials = live_fleet
    query = "query($s: String!) { inverter(serial: $s) { live { settings } } }"
    denied = await gql(live_client, fleet, "viewer", query, s=serials[0])
    assert codes(denied) == ["FORBIDDEN"]
    allowed = await gql(live_client, fleet, "operator", query, s=serials[0])
    assert "errors" not in allowed, allowed
    assert len(allowed["data"]["inverter"]["live"]["settings"]) > 0


async def test_subtree_key_gets_live_data_only_inside_its_subtree(
        live_client: httpx.AsyncClient, live_fleet: tuple[KeyedFleet, list[str]], simulator: Simulator) -> None:
    fleet, serials = live_fleet
    inside = await gql(live_client, fleet, "sub_viewer", LIVE, s=serials[0])
    assert "errors" not in inside, inside
    before = upstream_requests(simulator)
    outside = await gql(live_client, fleet, "sub_viewer", LIVE, s=serials[1])
    assert codes(outside) == ["NOT_FOUND"]
    assert upstream_requests(simulator) == before  # refused before any upstream call
    ems = await gql(live_client, fleet, "sub_viewer", "{ evChargers }")
    assert codes(ems) == ["FORBIDDEN"]


async def test_upstream_refusal_is_a_clear_error(live_client: httpx.AsyncClient, resources: Resources,
                                                 simulator: Simulator) -> None:
    async with lone_tenant(resources, simulator) as (fleet, serial):
        none = await gql(live_client, fleet, "viewer", LIVE, s=serial)
        assert codes(none) == ["UPSTREAM_NOT_CONFIGURED", "UPSTREAM_NOT_CONFIGURED"]
        assert none["data"]["inverter"]["serial"] == serial  # the mirror part still answers
        await add_credential(resources, fleet, "not-a-real-token")
        refused = await gql(live_client, fleet, "viewer", LIVE, s=serial)
        assert set(codes(refused)) == {"UPSTREAM_UNAUTHORISED"}
        assert "credential" in refused["errors"][0]["message"]
        assert "not-a-real-token" not in str(refused)


async def test_a_request_opens_one_upstream_client_and_closes_it() -> None:
    from service.mirror.live import LiveReader

    class FakeClient:
        closed = False

        async def get_system_data(self, serial: str) -> dict[str, str]:
            return {"serial": serial}

        async def aclose(self) -> None:
            self.closed = True

    opened: list[FakeClient] = []
    cleanups: list[Any] = []

    async def open_client() -> Any:
        opened.append(FakeClient())
        return opened[-1]

    reader = LiveReader(uuid.uuid4(), open_client, close_later=cleanups.append)  # type: ignore[arg-type]
    first, second = await asyncio.gather(
        reader.read("a", ("X1",), lambda c: c.get_system_data("X1")),
        reader.read("b", ("X2",), lambda c: c.get_system_data("X2")))
    assert (first, second) == ({"serial": "X1"}, {"serial": "X2"})
    assert len(opened) == 1
    assert len(cleanups) == 1
    assert not opened[0].closed
    await cleanups[0]()
    assert opened[0].closed
