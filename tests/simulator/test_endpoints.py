"""Behaviour of the remaining endpoints: accounts, sites and their status, EV chargers, smart devices."""

from __future__ import annotations

from service.simulator import Simulator, SimulatorConfig
from service.simulator.fleet import AccountType
from service.simulator.ratelimit import RateLimiter
from tests.simulator.conftest import ClientFactory, client_factory


async def test_account_lookups(sim: Simulator, client: ClientFactory) -> None:
    customer = sim.truth.account_of_token("customer")
    async with client("engineer") as api:
        by_id = (await api.get(f"/account/{customer.id}")).json()["data"]
        by_name = (await api.get(f"/account/search/{customer.username}")).json()["data"]
        devices = (await api.get(f"/account/{customer.username}/devices")).json()["data"]
        by_id_devices = (await api.get(f"/account/{customer.id}/devices")).json()["data"]
        unknown = await api.get("/account/search/nobody.at.all")
    assert by_id == by_name
    assert by_id["name"] == customer.username
    assert by_id["standard_timezone"] == customer.standard_timezone
    expected = [d.dongle_serial for d in sim.truth.devices() if d.owner_id == customer.id]
    assert [d["serial_number"] for d in devices] == expected
    assert by_id_devices == devices
    assert unknown.status_code == 404


async def test_site_status_round_trip(sim: Simulator, client: ClientFactory) -> None:
    site = next(s for s in sim.truth.sites() if s.account_id == sim.truth.account_of_token("customer").id)
    async with client("company") as api:
        url = f"/site/{site.id}/status"
        initial = (await api.get(url)).json()
        updated = (await api.post(url, json={"status": "opted_out"})).json()
        after_update = (await api.get(url)).json()
        deleted = (await api.post(url, json={"status": None})).json()
        after_delete = (await api.get(url)).json()
        refused = await api.post(url, json={"status": "sold"})
    assert initial == {"status": None}
    assert updated == deleted == {"success": True}
    assert after_update == {"status": "opted_out"}
    assert after_delete == {"status": None}
    assert refused.status_code == 422
    assert sim.truth.sites()[site.id - 1].status is None


async def test_ev_charger_commands(sim: Simulator, client: ClientFactory) -> None:
    charger = next(c for c in sim.truth.ev_chargers() if c.owner_id == sim.truth.account_of_token("customer").id)
    async with client("customer") as api:
        base = f"/ev-charger/{charger.uuid}"
        supported = (await api.get(f"{base}/commands")).json()["data"]
        sent = (await api.post(f"{base}/commands/change-mode", json={"mode": "Boost"})).json()["data"]
        mode = (await api.get(f"{base}/commands/change-mode")).json()["data"]
        limit = await api.post(f"{base}/commands/adjust-charge-power-limit", json={"limit": 40})
        start = (await api.post(f"{base}/commands/start-charge", json={})).json()["data"]
        listed = (await api.get(f"{base}")).json()["data"]
        unknown = await api.get(f"{base}/commands/make-coffee")
        sessions = (await api.get(f"{base}/charging-sessions")).json()
    assert {"start-charge", "stop-charge", "change-mode"} <= set(supported)
    assert sent == {"code": 0, "success": True, "message": "Accepted"}
    assert mode["active"] == "Boost"
    assert limit.status_code == 422
    assert start["success"] is True
    assert listed["status"] == "Charging"
    assert unknown.status_code == 404
    assert sessions["meta"]["total"] == len(sessions["data"]) > 0
    assert sessions["data"][0]["stopped_at"] is None  # the running session comes first


async def test_an_offline_charger_ignores_commands(sim: Simulator, client: ClientFactory) -> None:
    charger = next(c for c in sim.truth.ev_chargers() if c.owner_id == sim.truth.account_of_token("customer").id)
    charger.online = False
    try:
        before = (charger.mode, charger.status)
        async with client("customer") as api:
            base = f"/ev-charger/{charger.uuid}"
            mode = await api.post(
                f"{base}/commands/change-mode", json={"mode": "Eco" if before[0] != "Eco" else "Boost"}
            )
            start = (await api.post(f"{base}/commands/start-charge", json={})).json()["data"]
            invalid = await api.post(f"{base}/commands/change-mode", json={"mode": "Warp"})
        assert mode.json()["data"] == {"code": -2, "success": False, "message": "Charger Offline"}
        assert start["success"] is False
        assert (charger.mode, charger.status) == before  # nothing reached the charger
        assert invalid.status_code == 422  # the body is still validated first
    finally:
        charger.online = True


async def test_ev_meter_data_pages_per_minute(sim: Simulator, client: ClientFactory) -> None:
    charger = sim.truth.ev_chargers()[0]
    now = sim.clock.now()
    async with client("distributor") as api:
        page = (await api.get(f"/ev-charger/{charger.uuid}/meter-data", params={
            "start_time": "2026-06-01T11:00:00Z", "end_time": "2026-06-01T13:00:00Z",
            "meter_ids[]": ["0", "1"], "measurands[]": ["13", "21"], "pageSize": 10,
        })).json()  # fmt: skip
        missing = await api.get(f"/ev-charger/{charger.uuid}/meter-data")
    minutes = int((now.replace(hour=12, minute=0) - now.replace(hour=11, minute=0)).total_seconds() // 60)
    assert page["meta"]["total"] == minutes * 2  # clipped at "now" (12:00), two meters
    assert [row["meter_id"] for row in page["data"][:4]] == [0, 1, 0, 1]
    assert [m["measurand"] for m in page["data"][0]["measurements"]] == [13, 21]
    assert missing.status_code == 422
    assert set(missing.json()["errors"]) == {"start_time", "end_time"}


async def test_smart_devices_create_and_data(sim: Simulator, client: ClientFactory) -> None:
    async with client("customer") as api:
        before = (await api.get("/smart-device")).json()["meta"]["total"]
        body = {"serial_number": "X1", "alias": "Kettle", "product_name": "Plug", "manufacturer": "Acme"}
        created = (await api.post("/smart-device", json=body)).json()
        uuid = created["data"][0]["uuid"]
        fetched = (await api.get(f"/smart-device/{uuid}")).json()["data"]
        await api.post(f"/smart-device/{uuid}/data", json={"time": "2026-06-01 10:00:00", "power": 120})
        await api.post(f"/smart-device/{uuid}/data", json={"time": "2026-06-01 11:00:00", "power": 80})
        points = (await api.get(f"/smart-device/{uuid}/data")).json()["data"]
        after = (await api.get("/smart-device")).json()["meta"]["total"]
        bad = await api.post(f"/smart-device/{uuid}/data", json={"time": "soon"})
    assert after == before + 1
    assert fetched == created["data"]
    assert points == [{"time": "2026-06-01T11:00:00Z", "power": 80}, {"time": "2026-06-01T10:00:00Z", "power": 120}]
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"time", "power"}
    async with client("other_company") as api:
        assert (await api.get(f"/smart-device/{uuid}")).status_code == 404


async def test_commercial_token_with_its_own_limit() -> None:
    sim = Simulator(SimulatorConfig.quiet(rate_limit_per_window=2))
    sim.limiter = RateLimiter(monotonic=lambda: 50.0)
    company = sim.truth.account_of_token("company").id
    token = sim.create_token(company, name="commercial", rate_limit=5)
    async with client_factory(sim)(token) as api:
        statuses = [(await api.get("/account")).status_code for _ in range(6)]
        header = (await api.get("/account")).headers["X-RateLimit-Limit"]
    assert statuses == [200] * 5 + [429]
    assert header == "5"


def test_moving_to_a_customer_without_devices_gives_them_a_site(sim: Simulator) -> None:
    fresh = next(
        a for a in sim.truth.accounts()
        if a.type is AccountType.CUSTOMER and not any(d.owner_id == a.id for d in sim.truth.devices())
    )  # fmt: skip
    device = sim.truth.visible_devices("company")[0]
    sim.move_dongle(device.serial, fresh.id)
    site = sim.truth.sites()[-1]
    assert device.site_id == site.id
    assert site.account_id == fresh.id


def test_default_fleet_is_realistically_awkward() -> None:
    sim = Simulator(SimulatorConfig(fleet_size=2000, seed=9, start_time=SimulatorConfig.quiet().start_time,
                                    clock_speed=0))  # fmt: skip
    summary = sim.truth.summary()
    devices = sim.truth.devices()
    assert {"NORMAL", "WAITING", "LOST"} <= set(summary["statuses"])
    assert set(summary["statuses"]) & {"OFF_GRID", "ON_GRID"}
    assert any(d.locked for d in devices)
    assert any(d.another_actor for d in devices)
    assert any(not d.controllable for d in devices)
    assert sim.truth.events()  # a week of history was played
    assert len(summary["models"]) >= 12
