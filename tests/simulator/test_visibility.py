"""Each token sees only its own subtree of the fleet; pagination walks it completely."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from service.simulator import Simulator, SimulatorConfig
from service.simulator.fleet import AccountType
from tests.simulator.conftest import ClientFactory, client_factory


async def _walk(api: httpx.AsyncClient, path: str, page_size: int) -> list[dict[str, Any]]:
    """Follow ``links.next`` from page 1 to the end."""
    items: list[dict[str, Any]] = []
    url: str | None = f"{path}?pageSize={page_size}"
    while url is not None:
        body = (await api.get(url)).json()
        items += body["data"]
        url = body["links"]["next"]
    return items


@pytest.fixture(scope="module")
def fleet_sim() -> Simulator:
    """A fleet big enough for several engineers, sub-contractors and viewers."""
    return Simulator(SimulatorConfig.quiet(fleet_size=300, seed=5))


@pytest.mark.parametrize(
    "token", ["distributor", "company", "other_company", "engineer", "sub_contractor", "customer", "viewer"]
)
async def test_each_token_lists_exactly_its_subtree(fleet_sim: Simulator, token: str) -> None:
    async with client_factory(fleet_sim)(token) as api:
        listed = await _walk(api, "/communication-device", page_size=40)
    serials = [item["inverter"]["serial"] for item in listed]
    truth = fleet_sim.truth
    account = truth.account_of_token(token)
    # Computed from parent links alone: devices whose owner is the account, below it, or the owner it views.

    def under(account_id: int | None) -> bool:
        while account_id is not None:
            if account_id == account.id:
                return True
            account_id = truth.account(account_id).parent_id
        return False

    expected = [d.serial for d in truth.devices() if under(d.owner_id) or d.owner_id == account.views]
    assert serials == expected
    assert len(set(serials)) == len(serials)
    assert serials


def test_companies_split_the_distributor_fleet(fleet_sim: Simulator) -> None:
    truth = fleet_sim.truth
    main = set(truth.visible_serials("company"))
    other = set(truth.visible_serials("other_company"))
    everything = set(truth.visible_serials("distributor"))
    assert main
    assert other
    assert not main & other
    assert main | other == everything == {d.serial for d in truth.devices()}


async def test_other_companies_devices_are_not_found(fleet_sim: Simulator) -> None:
    truth = fleet_sim.truth
    foreign = truth.visible_devices("other_company")[0]
    foreign_customer = truth.account(foreign.owner_id)
    async with client_factory(fleet_sim)("company") as api:
        by_dongle = await api.get(f"/communication-device/{foreign.dongle_serial}")
        latest = await api.get(f"/inverter/{foreign.serial}/system-data/latest")
        write = await api.post(f"/inverter/{foreign.serial}/settings/24/write", json={"value": False})
        account = await api.get(f"/account/{foreign_customer.id}")
        search = await api.get(f"/account/search/{foreign_customer.username}")
        site = await api.get(f"/site/{foreign.site_id}")
        multi = await api.post("/multi-control/read", json={"inverter_serials": [foreign.serial], "setting_id": 24})
    assert [r.status_code for r in (by_dongle, latest, write, account, search, site)] == [404] * 6
    assert multi.json() == {foreign.serial: {"response": -3}}
    assert fleet_sim.truth.control_log() == []


async def test_account_children_are_the_subtree(fleet_sim: Simulator) -> None:
    truth = fleet_sim.truth
    company = truth.account_of_token("company")
    engineer = truth.account_of_token("engineer")
    async with client_factory(fleet_sim)("company") as api:
        mine = await _walk(api, "/account-children", page_size=100)
        of_engineer = await _walk(api, f"/account-children/{engineer.id}", page_size=100)
    assert {a["id"] for a in mine} == {a.id for a in truth.children(company.id)}
    assert {a["id"] for a in of_engineer} == {a.id for a in truth.children(engineer.id)}
    roles = {a["role"] for a in mine}
    assert {"OWNER", "VIEWER", "ENGINEER", "SUB_CONTRACTOR"} <= roles
    assert all(truth.account(a["id"]).type in (AccountType.ENGINEER, AccountType.CUSTOMER) for a in mine)


async def test_customer_sees_own_sites_and_extras(fleet_sim: Simulator) -> None:
    truth = fleet_sim.truth
    customer = truth.account_of_token("customer")
    async with client_factory(fleet_sim)("customer") as api:
        sites = (await api.get("/site")).json()["data"]
        chargers = (await api.get("/ev-charger")).json()["data"]
        smart = (await api.get("/smart-device")).json()["data"]
        me = (await api.get("/account")).json()["data"]
    assert me["id"] == customer.id
    assert me["role"] == "OWNER"
    assert {s["id"] for s in sites} == {s.id for s in truth.sites() if s.account_id == customer.id}
    assert {c["uuid"] for c in chargers} == {c.uuid for c in truth.ev_chargers() if c.owner_id == customer.id}
    assert {d["uuid"] for d in smart} == {d.uuid for d in truth.smart_devices() if d.owner_id == customer.id}
    assert all(site["account"] == customer.username for site in sites)


async def test_pagination_meta_links_and_cap(client: ClientFactory, sim: Simulator) -> None:
    total = len(sim.truth.visible_serials("company"))
    async with client("company") as api:
        second = (await api.get("/communication-device", params={"page": 2, "pageSize": 4})).json()
        beyond = (await api.get("/communication-device", params={"page": 99, "pageSize": 4})).json()
        bad_page = await api.get("/communication-device", params={"page": 0})
        bad_size = await api.get("/communication-device", params={"pageSize": "lots"})
    last_page = -(-total // 4)
    assert second["meta"] == {
        "current_page": 2, "from": 5, "last_page": last_page, "path": "http://sim/v1/communication-device",
        "per_page": 4, "to": 8, "total": total,
    }  # fmt: skip
    assert second["links"]["prev"] == "http://sim/v1/communication-device?pageSize=4&page=1"
    assert second["links"]["next"] == "http://sim/v1/communication-device?pageSize=4&page=3"
    assert second["links"]["last"].endswith(f"page={last_page}")
    assert beyond["data"] == []
    assert beyond["meta"]["from"] is None
    assert beyond["links"]["next"] is None
    for refused in (bad_page, bad_size):
        assert refused.status_code == 422
        assert refused.json()["message"] == "The given data was invalid."
    assert set(bad_page.json()["errors"]) == {"page"}
    assert set(bad_size.json()["errors"]) == {"pageSize"}


async def test_configurable_page_size_cap_shows_in_meta() -> None:
    sim = Simulator(SimulatorConfig.quiet(fleet_size=30, max_page_size=7))
    total = len(sim.truth.visible_serials("company"))
    async with client_factory(sim)("company") as api:
        body = (await api.get("/communication-device", params={"pageSize": 1000})).json()
        walked = await _walk(api, "/communication-device", page_size=1000)
    assert body["meta"]["per_page"] == 7
    assert len(body["data"]) == 7
    assert body["meta"]["last_page"] == -(-total // 7)
    assert len(walked) == total
