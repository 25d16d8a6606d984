"""Conformance: every endpoint of the v1 and legacy documentation answers with the documented shape.

Endpoints, paths, badges and example shapes are read from the documentation (``docspec``); the simulator
only supplies real identifiers to put in the documented paths.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from service.simulator import Simulator, SimulatorConfig
from service.simulator.catalogue import Kind
from tests.simulator.conftest import UPSTREAM, client_factory
from tests.simulator.docspec import Endpoint, pagination_example, parse_legacy, parse_v1, shape_errors

V1_DOC = UPSTREAM / "givenergy-cloud-api-v1.txt"
LEGACY_DOC = UPSTREAM / "givenergy-legacy-api.txt"
ENDPOINTS = parse_v1(V1_DOC)
# Setting values come back in mixed types (REAL-WORLD-BEHAVIOUR.md), so the example's number is not binding.
LOOSE = frozenset({"$.data.value"})


class World:
    """A simulator with one of everything the documentation talks about, and the ids to fill paths with."""

    def __init__(self) -> None:
        self.sim = Simulator(SimulatorConfig.quiet(fleet_size=30, seed=4))
        truth = self.sim.truth
        self.customer = truth.account_of_token("customer")
        self.engineer = truth.account_of_token("engineer")
        own = truth.visible_devices("customer")
        self.inverter = next(d for d in own if d.model.kind is Kind.HYBRID) if any(
            d.model.kind is Kind.HYBRID for d in own
        ) else self.sim.add_dongle(self.customer.id, "GIV-HY5.0")
        self.other = self.sim.add_dongle(self.customer.id, "GIV-AC3.0")
        self.ems = self.sim.add_dongle(self.customer.id, "Plant EMS")
        self.sim.inject_fault([self.inverter.serial], "PV Over Voltage", timedelta(minutes=20))
        self.sim.clock.advance(timedelta(hours=1))
        self.sim.inject_fault([self.inverter.serial], "Grid Over Frequency", timedelta(hours=2))
        self.charger = next(c for c in truth.ev_chargers() if c.owner_id == self.customer.id)
        self.smart = next(s for s in truth.smart_devices() if s.owner_id == self.customer.id)
        self.smart.points.append((self.sim.now() - timedelta(minutes=5), 300))
        self.site_id = self.inverter.site_id
        self.sim.fleet.sites[self.site_id].status = "opted_in"
        self.today = self.sim.now().date().isoformat()

    def path(self, endpoint: Endpoint) -> str:
        """The documented path with the documentation's placeholder values replaced by real ones."""
        path = endpoint.path
        replacements = {
            "/account/1234": f"/account/{self.customer.id}",
            "/account-children/1234": f"/account-children/{self.engineer.id}",
            "/account/qkunze/devices": f"/account/{self.customer.username}/devices",
            "/account/search/qkunze": f"/account/search/{self.customer.username}",
            "/communication-device/consequatur": f"/communication-device/{self.inverter.dongle_serial}",
            "/ems/consequatur": f"/ems/{self.ems.serial}",
            "/presets/consequatur": "/presets/0",
            "/data-points/consequatur": f"/data-points/{self.today}",
            "CE1234G567": self.inverter.serial,
            "/site/17": f"/site/{self.site_id}",
        }
        for old, new in replacements.items():
            path = path.replace(old, new)
        uuid = self.smart.uuid if path.startswith("/smart-device") else self.charger.uuid
        path = path.replace("66529e01-d113-3473-8d6f-9e11e09332ea", uuid)
        if endpoint.method == "GET" and path.endswith("/commands/setup-version"):
            # "The below response example is for the change-mode command"
            path = path.replace("setup-version", "change-mode")
        return path

    def request(self, endpoint: Endpoint) -> tuple[dict[str, Any], Any]:
        """Query parameters and JSON body for an endpoint (valid values in the documented names)."""
        day = self.today
        start, end = (self.sim.now() - timedelta(hours=1)).isoformat(), self.sim.now().isoformat()
        serials = [self.inverter.serial, self.other.serial]
        bodies: dict[str, Any] = {
            "Get Energy Flow Data": {"start_time": day, "end_time": day, "grouping": 0, "types": [0, 1, 2, 5]},
            "Modify Preset": {"enabled": True},
            "Read Setting": {"context": "conformance"},
            "Modify Setting": {"value": True, "context": "conformance"},
            "Modify Setting (Multiple)": {"inverter_serials": serials, "setting_id": 17, "value": "1"},
            "Read Setting (Multiple)": {"inverter_serials": serials, "setting_id": 17},
            "Send Notification": {"platforms": ["persist"], "title": "Something amazing has happened!",
                                  "body": "Here is some information about the amazing thing that has happened",
                                  "icon": "mdi-account-outline"},  # fmt: skip
            "Update Site Status": {"status": "vacant"},
            "Create Smart Device": {"serial_number": "SD-1", "alias": "Kettle", "product_name": "Plug",
                                    "manufacturer": "Acme", "other_data": []},  # fmt: skip
            "Create Smart Device Data Point": {"time": end[:19].replace("T", " "), "power": 17},
            "Send Command": {"setup_version": 1},
        }
        params: dict[str, Any] = {}
        if endpoint.key == "Get Data Points [api:ev-charger:data]":
            params = {"start_time": start, "end_time": end}
        return params, bodies.get(endpoint.title)

    def token(self, endpoint: Endpoint) -> str:
        """A token whose account type satisfies the badge."""
        return "customer" if endpoint.only and endpoint.account_type == "customer" else "company"

    def loose(self, endpoint: Endpoint) -> frozenset[str]:
        """Paths whose type the documentation leaves open."""
        if endpoint.path.startswith("/multi-control"):
            # "The response value may be either the value sent to the device, a different value ... or one of
            # the below error codes" (Remote Control Codes): any scalar.
            return frozenset(f"$.{serial}.response" for serial in (self.inverter.serial, self.other.serial))
        return LOOSE

    def expected(self, endpoint: Endpoint) -> Any:
        """The documented example, with the example serials of multi-control replaced by the ones sent."""
        example = endpoint.example
        if endpoint.path.startswith("/multi-control"):
            template = example["SERIAL_1"]
            return {self.inverter.serial: template, self.other.serial: template}
        return example


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
        for kind, text in (("0", world.today), ("1", f"{now.year}-{now.month:02d}"), ("2", str(now.year)), ("3", "")):
            form = {"serialNum": world.inverter.serial, "type": kind, "dateText": text}
            energies.append((await client.post("/inverter/getInverterEnergy", data=form)).json())
        bad = (await client.post("/inverter/getInverterEnergy", data={"serialNum": world.inverter.serial,
                                                                      "type": "0", "dateText": "yesterday"})).json()  # fmt: skip
    site_ids = {plant["plantId"] for plant in plants["rows"]}
    assert world.site_id in site_ids
    assert all(entry["success"] for entry in energies)
    assert float(energies[3]["energy"]) >= float(energies[0]["energy"])  # total includes today
    assert bad["success"] is False
