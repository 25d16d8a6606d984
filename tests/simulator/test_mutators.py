"""Mutators the mirror tests rely on, in Python and through the ``/_simulator`` side door."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from service.simulator import Simulator
from service.simulator.fleet import AccountType
from tests.simulator.conftest import ClientFactory


async def listed(client: ClientFactory, token: str) -> list[str]:
    async with client(token) as api:
        body = (await api.get("/communication-device", params={"pageSize": 1000})).json()
    return [item["inverter"]["serial"] for item in body["data"]]


def side(sim: Simulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim/_simulator")


async def test_add_remove_and_move_dongles(sim: Simulator, client: ClientFactory) -> None:
    customer = sim.truth.account_of_token("customer")
    before = await listed(client, "company")
    added = sim.add_dongle(customer.id, "GIV-AC3.6")
    with_new = await listed(client, "company")
    assert with_new == [*before, added.serial]
    assert added.serial in await listed(client, "customer")

    sim.remove_dongle(added.dongle_serial)
    assert await listed(client, "company") == before
    async with client("company") as api:
        assert (await api.get(f"/communication-device/{added.dongle_serial}")).status_code == 404

    moving = sim.truth.visible_devices("company")[0]
    target = next(
        a for a in sim.truth.accounts()
        if a.type is AccountType.CUSTOMER and a.role == "OWNER"
        and sim.truth.account(a.parent_id or 0).parent_id == sim.truth.account_of_token("other_company").id
    )  # fmt: skip
    sim.move_dongle(moving.serial, target.id)
    assert moving.serial not in await listed(client, "company")
    assert moving.serial in await listed(client, "other_company")
    assert sim.truth.device(moving.serial).owner_id == target.id


async def test_status_flip_is_listed(sim: Simulator, client: ClientFactory) -> None:
    device = sim.truth.visible_devices("company")[0]
    sim.set_status(device.serial, "OFF_GRID")
    async with client("company") as api:
        body = (await api.get(f"/communication-device/{device.dongle_serial}")).json()
    assert body["data"]["inverter"]["status"] == "OFF_GRID"


async def test_firmware_set_directly(sim: Simulator) -> None:
    device = sim.truth.visible_devices("company")[0]
    sim.update_firmware(device.serial, arm=999, dsp=998)
    assert sim.truth.communication_device_json(device.serial)["inverter"]["firmware_version"] == {
        "ARM": 999, "DSP": 998,
    }  # fmt: skip


async def test_side_door_mirrors_the_python_api(sim: Simulator, client: ClientFactory) -> None:
    device = next(d for d in sim.truth.visible_devices("company") if d.model.has_battery)
    device_count = len(sim.truth.devices())
    async with side(sim) as door:
        tokens = (await door.get("/tokens")).json()["data"]
        fleet = (await door.get("/fleet")).json()
        fault = await door.post("/faults", json={"serials": [device.serial], "event": "Isolation fault",
                                                 "duration_seconds": 600})  # fmt: skip
        state = await door.post("/inverters/state", json={"serials": [device.serial], "locked": True})
        async with client("company") as api:
            locked_write = (await api.post(f"/inverter/{device.serial}/settings/24/write", json={"value": 0})).json()
        log = (await door.get("/control-log")).json()
        advanced = (await door.post("/clock/advance", json={"seconds": 601})).json()
        events = (await door.get("/events", params={"serial": device.serial})).json()["data"]
        truth = (await door.get(f"/inverters/{device.serial}")).json()
        counters = (await door.get("/counters")).json()
        moved = await door.post("/dongles", json={"account_id": sim.truth.account_of_token("customer").id})
        unknown = await door.get("/inverters/NOPE")
    assert {t["name"] for t in tokens} >= {"company", "customer", "engineer", "distributor", "company_unapproved",
                                          "no_subscription"}  # fmt: skip
    assert len(fleet["devices"]) == device_count
    assert len(sim.truth.devices()) == device_count + 1  # the dongle added at the end
    assert {a["type"] for a in fleet["accounts"]} == {"distributor", "company", "engineer", "customer"}
    assert fault.status_code == 201
    assert state.json()["data"][0]["locked"] is True
    assert locked_write["data"]["value"] == -7
    assert log["total"] == 1
    assert log["data"][0]["outcome"] == -7
    assert log["data"][0]["serial"] == device.serial
    assert advanced["now"] > fault.json()["data"][0]["start_time"]
    assert events[-1]["event"] == "Isolation fault"
    assert events[-1]["end_time"] is not None
    assert truth["locked"] is True
    assert set(truth["settings"]) == {str(entry.id) for entry in device.catalogue}
    assert counters["company"]["requests"] == 1
    assert moved.status_code == 201
    assert unknown.status_code == 404


async def test_side_door_validates(sim: Simulator) -> None:
    async with side(sim) as door:
        answers: list[Any] = [
            await door.post("/clock/advance", json={"seconds": -5}),
            await door.post("/clock/speed", json={"speed": "fast"}),
            await door.post("/faults", json={"serials": "CE1"}),
            await door.post("/inverters/state", json={"serials": ["NOPE"], "locked": True}),
        ]
    assert [a.status_code for a in answers] == [422, 422, 422, 404]


async def test_side_door_refuses_to_run_years_of_behaviour_at_once(sim: Simulator) -> None:
    before = sim.clock.now()
    async with side(sim) as door:
        answers = [await door.post("/clock/advance", json={"seconds": seconds}) for seconds in (1e9, 1e15)]
        a_year = await door.post("/clock/advance", json={"seconds": 365 * 86400})
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"] == {
            "seconds": ["A number of seconds from 0 to 31536000 (365 days) is required."]}
    assert a_year.status_code == 200
    assert sim.clock.now() == before + timedelta(days=365), "only the year moved the clock"


async def test_side_door_clock_speed(sim: Simulator) -> None:
    async with side(sim) as door:
        frozen = (await door.get("/clock")).json()
        changed = (await door.post("/clock/speed", json={"speed": 60})).json()
    assert frozen["speed"] == 0
    assert changed["speed"] == 60
    assert sim.clock.speed == 60
    assert changed["now"] >= frozen["now"]


async def test_side_door_refuses_a_clock_too_fast_to_serve(sim: Simulator) -> None:
    async with side(sim) as door:
        answers = [await door.post("/clock/speed", json={"speed": speed}) for speed in (1e300, 1e6, 10_001, -1)]
        still_served = await door.get("/clock")
        fastest = await door.post("/clock/speed", json={"speed": 10_000})
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"] == {
            "speed": ["A speed from 0 to 10000 (simulated seconds per real second) is required."]}
    assert still_served.json()["speed"] == 0, "the clock keeps its speed"
    assert fastest.json()["speed"] == 10_000


async def test_custom_token(sim: Simulator, client: ClientFactory) -> None:
    engineer = sim.truth.account_of_token("engineer")
    async with side(sim) as door:
        created = (await door.post("/tokens", json={"account_id": engineer.id, "name": "limited",
                                                    "scopes": ["api:account:read"]})).json()  # fmt: skip
    async with client(created["token"]) as api:
        me = await api.get("/account")
        devices = await api.get("/communication-device")
    assert me.json()["data"]["id"] == engineer.id
    assert devices.status_code == 403
    assert sim.tokens["limited"] == created["token"]


async def test_requests_that_may_change_the_world_are_reported(sim: Simulator, client: ClientFactory) -> None:
    serial = sim.truth.visible_devices("company")[0].serial
    reported: list[str] = []
    sim.on_change(lambda: reported.append("changed"))
    async with client("company") as api, side(sim) as door:
        await api.get(f"/inverter/{serial}/settings")
        await door.get("/clock")
        await api.post("/inverter/NOSUCHSERIAL/settings/71/write", json={"value": 10, "context": "t"})
        await door.post("/clock/advance", json={"seconds": 60})  # a clock move reports itself (on_move)
        assert reported == [], "reads, refused requests and clock moves are not reported as changes"
        await api.post(f"/inverter/{serial}/settings/71/write", json={"value": 10, "context": "t"})
        await door.post("/faults", json={"serials": [serial], "event": "Isolation fault", "duration_seconds": 60})
        assert reported == ["changed", "changed"]
        sim.on_change(None)
        await door.post("/faults/clear", json={"serials": [serial]})
    assert reported == ["changed", "changed"], "no longer reported once the callback is removed"
