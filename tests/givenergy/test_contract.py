"""Contract: every client method against the simulator (in-process), checking typed results against ground truth."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import structlog

from service.givenergy import (
    Account,
    CommunicationDevice,
    ControlOutcome,
    EmsSystemData,
    EnergyFlow,
    EvCharger,
    EvChargingSession,
    EvMeterDataPoint,
    ForbiddenError,
    GivEnergyClient,
    LegacyPortalClient,
    NotFoundError,
    PaymentRequiredError,
    Preset,
    RetryPolicy,
    SettingDefinition,
    Site,
    SmartDevice,
    SmartDeviceDataPoint,
    UnauthorisedError,
    UpstreamValidationError,
)
from service.simulator import Simulator, SimulatorConfig


@pytest.fixture(scope="module")
def sim() -> Simulator:
    """A calm simulated cloud with rate limits off (limits have tests of their own)."""
    simulator = Simulator(SimulatorConfig.quiet(fleet_size=20, rate_limits_enabled=False))
    customer = simulator.truth.account_of_token("customer")
    simulator.add_dongle(customer.id, "Plant EMS")
    return simulator


def client_for(sim: Simulator, token_name: str, **kwargs: object) -> GivEnergyClient:
    return GivEnergyClient(
        sim.tokens[token_name],
        base_url="http://sim.test/v1",
        transport=httpx.ASGITransport(app=sim.app),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def company(sim: Simulator) -> AsyncIterator[GivEnergyClient]:
    async with client_for(sim, "company", context="contract-test") as client:
        yield client


@pytest.fixture
async def customer(sim: Simulator) -> AsyncIterator[GivEnergyClient]:
    async with client_for(sim, "customer") as client:
        yield client


def controllable_serial(sim: Simulator, who: str = "company") -> str:
    return next(d.serial for d in sim.truth.visible_devices(sim.tokens[who]) if d.model.has_battery)


async def test_accounts(sim: Simulator, company: GivEnergyClient) -> None:
    me = await company.get_account()
    truth = sim.truth.account_of_token("company")
    assert isinstance(me, Account)
    assert me.id == truth.id
    assert me.standard_timezone
    children = [child async for child in company.iter_account_children(page_size=3)]
    assert sorted(c.id for c in children if c.id is not None) == sorted(a.id for a in sim.truth.children(truth.id))
    child = children[0]
    assert child.id is not None
    assert (await company.get_account_by_id(child.id)).name == child.name
    assert child.name is not None
    assert (await company.get_account_by_username(child.name)).id == child.id
    grandchildren = [a async for a in company.iter_account_children(child.id)]
    assert all(isinstance(a, Account) for a in grandchildren)
    owner = sim.truth.account_of_token("customer")
    devices = [d async for d in company.iter_account_devices(owner.id, page_size=1)]
    assert devices
    assert all(isinstance(d, CommunicationDevice) for d in devices)


async def test_communication_devices_walk_every_page(sim: Simulator, company: GivEnergyClient) -> None:
    devices = [d async for d in company.iter_communication_devices(page_size=4)]
    assert sorted(d.inverter.serial for d in devices if d.inverter) == sorted(
        sim.truth.visible_serials(sim.tokens["company"])
    )
    page = await company.get_page("/communication-device", page=2, page_size=4)
    assert page.total == len(devices)
    assert page.last_page == -(-len(devices) // 4)
    assert [CommunicationDevice.model_validate(i).serial_number for i in page.items] == [
        d.serial_number for d in devices[4:8]
    ]
    first = devices[0]
    assert first.serial_number is not None
    one = await company.get_communication_device(first.serial_number)
    assert one.inverter is not None
    assert first.inverter is not None
    assert one.inverter.serial == first.inverter.serial
    with pytest.raises(NotFoundError):
        await company.get_communication_device("NOSUCHDONGLE")


async def test_inverter_data(sim: Simulator, company: GivEnergyClient) -> None:
    serial = controllable_serial(sim)
    system = await company.get_system_data(serial)
    assert system.battery is not None
    assert system.battery.percent is not None
    meter = await company.get_meter_data(serial)
    assert meter.today is not None
    day = sim.now().date()
    points = [p async for p in company.iter_data_points(serial, day - timedelta(days=1), page_size=50)]
    assert len(points) >= 200  # every 5 minutes for a whole day, across several pages
    assert points[0].power is not None
    sim.inject_fault([serial], "Battery Over Temperature", timedelta(hours=1))
    events = [e async for e in company.iter_events(serial, page_size=2)]
    assert any(e.event == "Battery Over Temperature" for e in events)
    flows = await company.get_energy_flows(serial, day, day, grouping=0, types=[0, 1])
    assert flows
    assert isinstance(flows[0], EnergyFlow)
    assert set(flows[0].data) <= {"0", "1"}
    assert (await company.request_inverter_data(serial)).success is True


async def test_settings_and_presets(sim: Simulator, company: GivEnergyClient) -> None:
    serial = controllable_serial(sim)
    settings = await company.get_settings(serial)
    assert all(isinstance(s, SettingDefinition) for s in settings)
    reserve = next(s for s in settings if s.id == 71)
    assert reserve.validation_rules
    read = await company.read_setting(serial, 71)
    assert read.outcome is ControlOutcome.SUCCESS
    target = 37 if sim.truth.setting(serial, 71) != 37 else 38
    written = await company.write_setting(serial, 71, target)
    assert written.outcome is ControlOutcome.SUCCESS
    assert sim.truth.setting(serial, 71) == target
    assert sim.truth.control_log()[-1].context is not None
    assert "contract-test" in str(sim.truth.control_log()[-1].context)
    presets = await company.get_presets(serial)
    assert all(isinstance(p, Preset) for p in presets)
    eco = next(p for p in presets if p.name == "Eco")
    assert eco.id is not None
    applied = await company.modify_preset(serial, eco.id, {"enabled": True})
    assert applied.success


async def test_multi_control(sim: Simulator, company: GivEnergyClient) -> None:
    serials = [d.serial for d in sim.truth.visible_devices(sim.tokens["company"]) if d.model.has_battery][:3]
    written = await company.multi_write_setting(serials, 71, 25)
    assert set(written) == set(serials)
    assert all(r.outcome is ControlOutcome.SUCCESS for r in written.values())
    read = await company.multi_read_setting([*serials, "NOSUCHINV"], 71)
    assert all(read[s].success for s in serials)
    assert str(read[serials[0]].value) == "25"
    assert read["NOSUCHINV"].outcome is ControlOutcome.FINAL


async def test_control_failures_are_classified(sim: Simulator, company: GivEnergyClient) -> None:
    locked, offline, slow = [d.serial for d in sim.truth.visible_devices(sim.tokens["company"]) if d.model.has_battery][
        3:6
    ]
    sim.set_locked([locked], True)
    sim.set_offline([offline], True)
    sim.set_timeout([slow], True)
    try:
        assert (await company.write_setting(locked, 71, 30)).outcome is ControlOutcome.FINAL
        assert (await company.write_setting(offline, 71, 30)).outcome is ControlOutcome.RETRY_LATER
        timed_out = await company.write_setting(slow, 71, 30)
        assert timed_out.code == -1
        assert timed_out.outcome is ControlOutcome.POTENTIALLY_APPLIED
    finally:
        sim.set_locked([locked], False)
        sim.set_offline([offline], False)
        sim.set_timeout([slow], False)


async def test_validation_errors(sim: Simulator, company: GivEnergyClient) -> None:
    serial = controllable_serial(sim)
    with pytest.raises(UpstreamValidationError) as caught:
        await company.send_notification("", "")
    assert caught.value.errors
    with pytest.raises(UpstreamValidationError) as caught:
        await company.write_setting(serial, 71, 1000)
    assert "value" in caught.value.errors


async def test_sites(sim: Simulator, company: GivEnergyClient) -> None:
    sites = [s async for s in company.iter_sites(page_size=2)]
    assert sites
    assert all(isinstance(s, Site) for s in sites)
    site_id = sites[0].id
    assert site_id is not None
    assert (await company.get_site(site_id)).name == sites[0].name
    updated = await company.update_site_status(site_id, "vacant")
    assert updated.success is True
    assert (await company.get_site_status(site_id)).status == "vacant"
    await company.update_site_status(site_id, None)
    assert (await company.get_site_status(site_id)).status is None


async def test_notifications(sim: Simulator, company: GivEnergyClient) -> None:
    sent = await company.send_notification("Battery check", "All batteries healthy", platforms=["persist", "push"])
    assert sent.success is True
    assert sim.truth.notifications()[-1]["title"] == "Battery check"


async def test_ems(sim: Simulator, customer: GivEnergyClient) -> None:
    ems = next(d for d in sim.truth.devices() if d.model.name == "Plant EMS")
    data = await customer.get_ems_system_data(ems.serial)
    assert isinstance(data, EmsSystemData)
    assert data.status is not None
    assert len(data.inverters) == 4


async def test_ev_chargers(sim: Simulator, customer: GivEnergyClient) -> None:
    chargers = [c async for c in customer.iter_ev_chargers()]
    assert chargers
    assert all(isinstance(c, EvCharger) for c in chargers)
    uuid = chargers[0].uuid
    assert uuid is not None
    assert (await customer.get_ev_charger(uuid)).uuid == uuid
    now = sim.now()
    points = [
        p async for p in customer.iter_ev_charger_meter_data(uuid, now - timedelta(minutes=30), now, measurands=[13])
    ]
    assert points
    assert isinstance(points[0], EvMeterDataPoint)
    assert all(m.measurand == 13 for p in points for m in p.measurements)
    commands = await customer.get_ev_charger_commands(uuid)
    assert "change-mode" in commands
    mode = await customer.get_ev_charger_command_data(uuid, "change-mode")
    assert isinstance(mode, dict)
    result = await customer.send_ev_charger_command(uuid, "adjust-charge-power-limit", {"limit": 16})
    assert result.outcome in (ControlOutcome.SUCCESS, ControlOutcome.RETRY_LATER)
    sessions = [s async for s in customer.iter_ev_charging_sessions(uuid, page_size=5)]
    assert len(sessions) == 12
    assert isinstance(sessions[0], EvChargingSession)


async def test_smart_devices(sim: Simulator, customer: GivEnergyClient) -> None:
    devices = [d async for d in customer.iter_smart_devices()]
    assert devices
    assert all(isinstance(d, SmartDevice) for d in devices)
    created = await customer.create_smart_device(
        serial_number="PLUG-1", alias="Kettle", product_name="Plug", manufacturer="Acme"
    )
    assert created.uuid is not None
    assert (await customer.get_smart_device(created.uuid)).alias == "Kettle"
    points = await customer.create_smart_device_data_point(created.uuid, time=sim.now(), power=120)
    assert all(isinstance(p, SmartDeviceDataPoint) for p in points)
    stored = [p async for p in customer.iter_smart_device_data(created.uuid)]
    assert any(p.power == 120 for p in stored)


async def test_credential_states(sim: Simulator) -> None:
    async with client_for(sim, "no_subscription") as client:
        with pytest.raises((ForbiddenError, UnauthorisedError, PaymentRequiredError)):
            await client.get_account()
    bogus = GivEnergyClient("not-a-token", base_url="http://sim.test/v1", transport=httpx.ASGITransport(app=sim.app))
    async with bogus:
        with pytest.raises(UnauthorisedError):
            await bogus.get_account()
    async with client_for(sim, "company_readonly") as client:
        with pytest.raises(ForbiddenError):
            await client.write_setting(controllable_serial(sim), 71, 20)
    async with client_for(sim, "company_unapproved") as client:
        with pytest.raises(ForbiddenError):
            await client.request_inverter_data(controllable_serial(sim))


class _FirstLoginUnavailable(httpx.AsyncBaseTransport):
    """The in-process simulator, except that the first login answers 503 (so the login is retried and logged)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.failed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.failed and request.url.path.endswith("/login"):
            self.failed = True
            return httpx.Response(503, json={"message": "maintenance"})
        return await self._inner.handle_async_request(request)


async def test_legacy_portal(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    owner = sim.truth.account_of_token("customer")
    serial = next(d.serial for d in sim.truth.visible_devices(sim.tokens["customer"]) if d.model.has_battery)
    transport = _FirstLoginUnavailable(httpx.ASGITransport(app=sim.app))
    client = LegacyPortalClient(
        owner.username,
        owner.password,
        base_url="http://sim.test/GivManage/api",
        transport=transport,
        retry=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002),
    )
    wrong = LegacyPortalClient(
        owner.username, "wrong", base_url="http://sim.test/GivManage/api", transport=httpx.ASGITransport(app=sim.app)
    )
    # The client logs through structlog, which caplog does not see: capture its events themselves.
    with structlog.testing.capture_logs() as events:
        async with client:
            assert owner.password not in repr(client)
            info = await client.get_inverter_info(serial)
            assert info.serial_num == serial
            assert (await client.get_inverter_runtime(serial)).success is True
            energy = await client.get_inverter_energy(serial, 0, sim.now().date().isoformat())
            assert energy.energy is not None
            cells = await client.get_battery_cells(serial)
            assert cells.modules
            assert cells.modules[0].cell_voltages_mv
            plants = await client.get_plant_list()
            assert plants["success"] is True
            assert client.logins == 1
            sim.legacy_sessions.clear()  # the portal forgets every session
            assert (await client.get_inverter_info(serial)).serial_num == serial
            assert client.logins == 2
        async with wrong:
            with pytest.raises(UnauthorisedError):
                await wrong.get_inverter_info(serial)
    # The first login (its form carries the password) answered 503 and was retried: that retry was logged,
    # so the client's own log events are really inspected.
    assert transport.failed
    assert any(e["event"] == "givenergy.retry" and e["endpoint"] == "POST /login" for e in events)
    assert owner.password not in repr(events)
    assert owner.password not in caplog.text


class _LatentTransport(httpx.AsyncBaseTransport):
    """The in-process simulator with a little network latency, so that concurrent callers interleave."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return await self._inner.handle_async_request(request)


async def test_legacy_portal_concurrent_callers_log_in_once(sim: Simulator) -> None:
    owner = sim.truth.account_of_token("customer")
    serial = next(d.serial for d in sim.truth.visible_devices(sim.tokens["customer"]) if d.model.has_battery)
    client = LegacyPortalClient(
        owner.username,
        owner.password,
        base_url="http://sim.test/GivManage/api",
        transport=_LatentTransport(httpx.ASGITransport(app=sim.app)),
    )
    async with client:
        infos = await asyncio.gather(*(client.get_inverter_info(serial) for _ in range(5)))
        assert [info.serial_num for info in infos] == [serial] * 5
        assert client.logins == 1
        sim.legacy_sessions.clear()  # every session expires: the callers that notice it log in once between them
        infos = await asyncio.gather(*(client.get_inverter_info(serial) for _ in range(5)))
        assert [info.serial_num for info in infos] == [serial] * 5
        assert client.logins == 2
