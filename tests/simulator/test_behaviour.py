"""Behaviour over simulated time: faults open and clear, LOST and back, firmware updates, drift, data points."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.simulator import Simulator, SimulatorConfig
from service.simulator.catalogue import Kind
from service.simulator.fleet import Device
from tests.simulator.conftest import ClientFactory, client_factory


def first_hybrid(sim: Simulator) -> Device:
    return next(d for d in sim.truth.visible_devices("company") if d.model.kind is Kind.HYBRID)


async def device_json(sim: Simulator, device: Device) -> dict[str, object]:
    async with client_factory(sim)("company") as api:
        body = (await api.get(f"/communication-device/{device.dongle_serial}")).json()
    inverter: dict[str, object] = body["data"]["inverter"]
    return inverter


async def test_injected_fault_opens_then_clears_on_the_clock(sim: Simulator, client: ClientFactory) -> None:
    device = first_hybrid(sim)
    opened_at = sim.clock.now()
    sim.inject_fault([device.serial], "Battery Over Temperature", timedelta(minutes=45))
    async with client("company") as api:
        during = (await api.get(f"/inverter/{device.serial}/events")).json()["data"]
        status_during = (await device_json(sim, device))["status"]
        sim.clock.advance(timedelta(minutes=44))
        still = (await api.get(f"/inverter/{device.serial}/events", params={"cleared": 0})).json()["data"]
        sim.clock.advance(timedelta(minutes=2))
        after = (await api.get(f"/inverter/{device.serial}/events")).json()["data"]
        cleared = (await api.get(f"/inverter/{device.serial}/events", params={"cleared": 1})).json()["data"]
    assert during == [{"event": "Battery Over Temperature", "start_time": _z(opened_at), "end_time": None}]
    assert status_during == "ERROR"
    assert len(still) == 1
    assert after == [{"event": "Battery Over Temperature", "start_time": _z(opened_at),
                      "end_time": _z(opened_at + timedelta(minutes=45))}]  # fmt: skip
    assert cleared == after
    assert (await device_json(sim, device))["status"] == "NORMAL"


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_spontaneous_faults_have_start_and_end_on_the_sim_clock() -> None:
    sim = Simulator(SimulatorConfig.quiet(fleet_size=50, fault_rate_per_day=1.0))
    start = sim.clock.now()
    assert sim.truth.events() == []
    sim.clock.advance(timedelta(days=2))
    events = sim.truth.events()
    assert len(events) > 20
    assert all(start <= e.start_time <= start + timedelta(days=2) for e in events)
    closed = [e for e in events if e.end_time is not None]
    assert closed
    assert all(e.start_time < e.end_time <= start + timedelta(days=2) for e in closed if e.end_time)
    open_serials = {e.serial for e in events if e.end_time is None}
    for serial in open_serials:
        assert sim.truth.device(serial).status in ("ERROR", "WARNING", "LOST", "UPDATING")


async def test_lost_and_back(sim: Simulator) -> None:
    device = first_hybrid(sim)
    went = sim.clock.now()
    sim.make_lost([device.serial], timedelta(hours=3))
    sim.clock.advance(timedelta(hours=1))
    lost = await device_json(sim, device)
    sim.clock.advance(timedelta(hours=2, minutes=1))
    back = await device_json(sim, device)
    assert lost["status"] == "LOST"
    assert lost["last_online"] == _z(went)
    assert lost["last_updated"] == _z(went)
    assert back["status"] == "NORMAL"
    assert str(back["last_updated"]) >= _z(sim.clock.now() - timedelta(minutes=10))  # fresh again


async def test_firmware_update_goes_through_updating(sim: Simulator) -> None:
    device = first_hybrid(sim)
    before = await device_json(sim, device)
    sim.update_firmware(device.serial, timedelta(minutes=20))
    updating = await device_json(sim, device)
    sim.clock.advance(timedelta(minutes=21))
    after = await device_json(sim, device)
    assert updating["status"] == "UPDATING"
    assert updating["firmware_version"] == before["firmware_version"]
    assert after["status"] == before["status"]
    old, new = before["firmware_version"], after["firmware_version"]
    assert isinstance(old, dict)
    assert isinstance(new, dict)
    assert new["ARM"] > old["ARM"]
    assert new["DSP"] > old["DSP"]


async def test_settings_drift_behind_your_back(sim: Simulator, client: ClientFactory) -> None:
    device = first_hybrid(sim)
    async with client("company") as api:
        url = f"/inverter/{device.serial}/settings/71/read"
        before = (await api.post(url, json={})).json()["data"]["value"]
        sim.drift_setting(device.serial, 71, 77)
        after = (await api.post(url, json={})).json()["data"]["value"]
    assert int(before) != 77
    assert int(after) == 77
    (drift,) = sim.truth.drifts()
    assert (drift.serial, drift.setting_id, drift.new_value) == (device.serial, 71, 77)


async def test_spontaneous_drift_is_visible_through_the_api() -> None:
    sim = Simulator(SimulatorConfig.quiet(fleet_size=30, setting_drift_rate_per_day=2.0))
    sim.clock.advance(timedelta(days=1))
    drifts = sim.truth.drifts()
    assert drifts
    last = drifts[-1]
    token = "distributor"
    async with client_factory(sim)(token) as api:
        answer = await api.post(f"/inverter/{last.serial}/settings/{last.setting_id}/read", json={})
    shown = answer.json()["data"]["value"]
    assert str(shown).lower() in {str(sim.truth.setting(last.serial, last.setting_id)).lower(),
                                  f"{sim.truth.setting(last.serial, last.setting_id)}:00"}  # fmt: skip


async def test_data_points_every_five_minutes_of_the_local_day(sim: Simulator, client: ClientFactory) -> None:
    device = first_hybrid(sim)
    zone = ZoneInfo(sim.truth.sites()[device.site_id - 1].tz_timezone)
    now = sim.clock.now()
    local_day = now.astimezone(zone).date()
    midnight = datetime(local_day.year, local_day.month, local_day.day, tzinfo=zone)
    expected = -(-int((now - midnight).total_seconds()) // 300)
    async with client("company") as api:
        url = f"/inverter/{device.serial}/data-points/{local_day.isoformat()}"
        first = (await api.get(url, params={"pageSize": 500})).json()
        sim.clock.advance(timedelta(hours=1))
        later = (await api.get(url, params={"pageSize": 500})).json()
        bad = await api.get(f"/inverter/{device.serial}/data-points/yesterday")
    times = [datetime.fromisoformat(p["time"].replace("Z", "+00:00")) for p in first["data"]]
    assert first["meta"]["total"] == expected == len(times)
    assert times[0] == midnight.astimezone(UTC)
    assert all(b - a == timedelta(minutes=5) for a, b in itertools.pairwise(times))
    assert later["meta"]["total"] == expected + 12
    assert later["data"][: len(times)] == first["data"]
    assert bad.status_code == 422
    totals = [p["total"]["solar"] for p in later["data"]]
    assert totals == sorted(totals)  # lifetime counters never go down


async def test_gateway_and_ems_answer_null_leaves(sim: Simulator, client: ClientFactory) -> None:
    customer = sim.truth.account_of_token("customer")
    gateway = sim.add_dongle(customer.id, "Gateway")
    async with client("company") as api:
        latest = (await api.get(f"/inverter/{gateway.serial}/system-data/latest")).json()["data"]
        meters = [(await api.get(f"/inverter/{gateway.serial}/meter-data/latest")).json()["data"]]
        sim.clock.advance(timedelta(minutes=5))
        meters.append((await api.get(f"/inverter/{gateway.serial}/meter-data/latest")).json()["data"])
    assert latest["solar"]["power"] is None
    assert latest["battery"]["percent"] is None
    assert any(m["today"] is None or m["total"] is None for m in meters)


def test_clock_is_frozen_at_speed_zero_and_accelerable() -> None:
    frozen = Simulator(SimulatorConfig.quiet())
    start = frozen.clock.now()
    assert frozen.clock.now() == start
    assert frozen.clock.advance(timedelta(minutes=5)) == start + timedelta(minutes=5)
    fast = Simulator(dataclasses.replace(SimulatorConfig.quiet(), clock_speed=3600.0))
    assert fast.clock.now() >= fast.config.start_time  # type: ignore[operator]


def test_clock_moves_are_reported_to_whoever_records_them() -> None:
    clock = Simulator(SimulatorConfig.quiet()).clock
    speeds_seen: list[float] = []
    clock.on_move(lambda: speeds_seen.append(clock.speed))
    clock.advance(timedelta(hours=2))
    clock.set_speed(60.0)
    clock.on_move(None)
    clock.advance(timedelta(hours=1))
    assert speeds_seen == [0.0, 60.0]


async def test_energy_flows_follow_the_solar_day(sim: Simulator, client: ClientFactory) -> None:
    device = first_hybrid(sim)
    day = "2026-05-20"
    async with client("company") as api:
        url = f"/inverter/{device.serial}/energy-flows"
        halves = await api.post(url, json={"start_time": day, "end_time": day, "grouping": 0, "types": [0, 2, 3]})
        whole = await api.post(url, json={"start_time": day, "end_time": day, "grouping": 4, "types": [0, 2, 3]})
        refused = await api.post(url, json={"start_time": day, "end_time": day, "grouping": 9})
    rows = halves.json()["data"]
    assert len(rows) == 48
    assert rows[0]["start_time"] == f"{day} 00:00"
    assert rows[-1]["end_time"] == "2026-05-21 00:00"
    night = next(row for row in rows if row["start_time"] == f"{day} 02:00")
    noon = next(row for row in rows if row["start_time"] == f"{day} 12:00")
    assert night["data"]["0"] == 0
    assert noon["data"]["0"] > 0
    assert set(noon["data"]) == {"0", "2", "3"}
    summed = sum(row["data"]["0"] for row in rows)
    assert abs(summed - whole.json()["data"][0]["data"]["0"]) < 0.5
    assert refused.status_code == 422
    assert "grouping" in refused.json()["errors"]


def test_inverters_held_by_another_actor_drift_within_hours() -> None:
    sim = Simulator(SimulatorConfig.quiet(fleet_size=60, another_actor_fraction=0.2, actor_drift_rate_per_day=6.0))
    held = {d.serial for d in sim.truth.devices() if d.another_actor}
    sim.clock.advance(timedelta(hours=12))
    drifts = sim.truth.drifts()
    assert held
    assert len(drifts) > len(held)  # about three changes per held inverter in twelve hours
    assert {drift.serial for drift in drifts} <= held
    for drift in drifts:
        assert drift.new_value == sim.truth.setting(drift.serial, drift.setting_id) or any(
            later.serial == drift.serial and later.setting_id == drift.setting_id and later.time > drift.time
            for later in drifts
        )


class _FakeTime:
    """Stands in for the ``time`` module inside the clock: real seconds moved by hand."""

    def __init__(self) -> None:
        self.seconds = 500.0

    def monotonic(self) -> float:
        return self.seconds


async def test_accelerated_clock_runs_behaviour_as_real_time_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.simulator.clock as clock_module

    fake = _FakeTime()
    monkeypatch.setattr(clock_module, "time", fake)
    sim = Simulator(SimulatorConfig.quiet(clock_speed=60.0))
    start = sim.clock.now()
    device = first_hybrid(sim)
    sim.inject_fault([device.serial], "Grid Under Voltage", timedelta(minutes=5))
    fake.seconds += 4  # four real seconds = four simulated minutes
    assert sim.clock.now() == start + timedelta(minutes=4)
    assert (await device_json(sim, device))["status"] == "WARNING"
    fake.seconds += 2
    assert (await device_json(sim, device))["status"] == "NORMAL"
    (event,) = sim.truth.events(device.serial)
    assert event.end_time == start + timedelta(minutes=5)
