"""Conformance: every endpoint of the v1 and legacy documentation answers with the documented shape.

Endpoints, paths, badges and example shapes are read from the documentation (``docspec``); the simulator
only supplies real identifiers to put in the documented paths.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.simulator.conftest import UPSTREAM, client_factory
from tests.simulator.docspec import Endpoint, pagination_example, parse_legacy, parse_v1, shape_errors
from tests.simulator.world import World

V1_DOC = UPSTREAM / "givenergy-cloud-api-v1.txt"
LEGACY_DOC = UPSTREAM / "givenergy-legacy-api.txt"
ENDPOINTS = parse_v1(V1_DOC)


@pytest.fixture(scope="module")
def world() -> World:
    """One world for the module (the walk only reads, apart from documented writes)."""
    return World()


def test_the_documentation_was_parsed() -> None:
    """Guard against a parser that silently finds nothing: the docs list 39 endpoints."""
    assert len(ENDPOINTS) == 39
    assert {e.method for e in ENDPOINTS} == {"GET", "POST"}
    assert sum(e.paginated for e in ENDPOINTS) >= 10


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.key for e in ENDPOINTS])
async def test_endpoint_answers_with_the_documented_shape(world: World, endpoint: Endpoint) -> None:
    params, body = world.request(endpoint)
    async with client_factory(world.sim)(world.token(endpoint)) as client:
        response = await client.request(endpoint.method, world.path(endpoint), params=params, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert shape_errors(world.expected(endpoint), answer, loose=world.loose(endpoint)) == []
    assert "X-RateLimit-Limit" in response.headers
    assert "X-RateLimit-Remaining" in response.headers
    if isinstance(endpoint.example, dict) and "data" in endpoint.example:
        assert answer["data"] not in ([], None), "the walk must exercise a non-empty answer"
    if endpoint.paginated:
        _check_pagination(answer, response.request.url)


def _check_pagination(answer: dict[str, Any], url: httpx.URL) -> None:
    documented = pagination_example(V1_DOC)
    assert set(answer["links"]) == set(documented["links"])
    assert all(value is None or isinstance(value, str) for value in answer["links"].values())
    assert set(answer["meta"]) == set(documented["meta"])
    assert shape_errors(documented["meta"], answer["meta"]) == []
    meta = answer["meta"]
    assert meta["path"] == str(url.copy_with(query=None))
    assert meta["current_page"] == 1
    assert meta["per_page"] == 15  # documented default page size
    assert meta["from"] == 1
    assert meta["to"] == len(answer["data"])
    assert answer["links"]["first"].endswith("page=1")
    assert answer["links"]["prev"] is None


LEGACY = parse_legacy(LEGACY_DOC)


@pytest.mark.parametrize("name", sorted(LEGACY))
async def test_legacy_endpoint_answers_with_the_documented_shape(world: World, name: str) -> None:
    customer = world.customer
    transport = httpx.ASGITransport(app=world.sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/GivManage/api") as client:
        login = await client.post("/login", params={"account": customer.username, "password": customer.password})
        assert login.json()["success"] is True
        form = {"serialNum": world.inverter.serial}
        if name == "inverter/getInverterEnergy":
            form |= {"type": "0", "dateText": world.today}
        response = await client.post(f"/{name}", data=form)
    assert response.status_code == 200
    assert shape_errors(LEGACY[name], response.json()) == []
    assert response.json()["success"] is True


async def test_legacy_calls_need_a_session(world: World) -> None:
    transport = httpx.ASGITransport(app=world.sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/GivManage/api") as client:
        refused = await client.post("/inverter/getInverterInfo", data={"serialNum": world.inverter.serial})
        wrong = await client.post("/login", params={"account": world.customer.username, "password": "nope"})
        plants_without_session = await client.post("/plant/getPlantList")
    assert refused.json()["success"] is False
    assert wrong.json()["success"] is False
    assert plants_without_session.json()["success"] is False


async def test_legacy_plant_list_and_energy_types(world: World) -> None:
    customer = world.customer
    transport = httpx.ASGITransport(app=world.sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/GivManage/api") as client:
        await client.post("/login", params={"account": customer.username, "password": customer.password})
        plants = (await client.post("/plant/getPlantList")).json()
        energies = []
        now = world.sim.now()
        dates = (("0", world.today), ("1", f"{now.year}-{now.month:02d}"), ("2", str(now.year)), ("3", ""))
        for kind, text in dates:
            form = {"serialNum": world.inverter.serial, "type": kind, "dateText": text}
            energies.append((await client.post("/inverter/getInverterEnergy", data=form)).json())
        form = {"serialNum": world.inverter.serial, "type": "0", "dateText": "yesterday"}
        bad = (await client.post("/inverter/getInverterEnergy", data=form)).json()
    site_ids = {plant["plantId"] for plant in plants["rows"]}
    assert world.site_id in site_ids
    assert all(entry["success"] for entry in energies)
    assert float(energies[3]["energy"]) >= float(energies[0]["energy"])  # total includes today
    assert bad["success"] is False
