"""Control semantics: remote-control codes in HTTP 200, clamping, locks, writes accepted but not applied."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from service.simulator import Simulator, SimulatorConfig
from service.simulator.catalogue import Kind
from service.simulator.fleet import Device
from tests.simulator.conftest import ClientFactory, client_factory


def hybrid(sim: Simulator, token: str = "company", where: Callable[[Device], bool] = lambda d: True) -> Device:  # noqa: S107
    """A visible single-phase hybrid (it has every setting the tests use)."""
    return next(d for d in sim.truth.visible_devices(token) if d.model.kind is Kind.HYBRID and where(d))


async def write(sim: Simulator, serial: str, setting: int, value: object) -> dict[str, object]:
    async with client_factory(sim)("company") as api:
        response = await api.post(f"/inverter/{serial}/settings/{setting}/write", json={"value": value, "context": "t"})
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()["data"]
    return answer


async def read(sim: Simulator, serial: str, setting: int) -> object:
    async with client_factory(sim)("company") as api:
        response = await api.post(f"/inverter/{serial}/settings/{setting}/read", json={"context": "t"})
    assert response.status_code == 200
    return response.json()["data"]["value"]


async def test_successful_write_is_applied_and_logged(sim: Simulator) -> None:
    device = hybrid(sim)
    before = sim.truth.setting(device.serial, 71)
    target = 30 if before != 30 else 40
    answer = await write(sim, device.serial, 71, target)
    assert answer["success"] is True
    assert int(str(answer["value"])) == target
    assert sim.truth.setting(device.serial, 71) == target
    (call,) = sim.truth.control_log()
    assert (call.token, call.action, call.serial, call.setting_id, call.value, call.outcome, call.applied) == (
        "company", "write", device.serial, 71, target, None, True,
    )  # fmt: skip
    assert call.context == "t"
    assert call.time == sim.clock.now()


@pytest.mark.parametrize("code", [-1, -2, -3, -4, -5, -6, -7])
async def test_every_remote_control_code_comes_inside_http_200(code: int) -> None:
    sim = Simulator(SimulatorConfig.quiet(control_error_probabilities={code: 1.0}))
    device = hybrid(sim)
    answer = await write(sim, device.serial, 24, True)
    assert answer["value"] == code
    assert answer["success"] is False
    assert isinstance(answer["message"], str)
    assert answer["message"]
    async with client_factory(sim)("company") as api:
        multi = await api.post("/multi-control/read", json={"inverter_serials": [device.serial], "setting_id": 24})
    assert multi.json() == {device.serial: {"response": code}}


async def test_codes_from_inverter_state(sim: Simulator) -> None:
    devices = [d for d in sim.truth.visible_devices("company") if d.model.kind is Kind.HYBRID][:3]
    timeout, offline, locked = (d.serial for d in devices)
    sim.set_timeout([timeout])
    sim.set_offline([offline])
    sim.set_locked([locked])
    foreign = sim.truth.visible_serials("other_company")[0]
    async with client_factory(sim)("company") as api:
        multi = await api.post(
            "/multi-control/write",
            json={"inverter_serials": [timeout, offline, locked, foreign, "XX0000X000"], "setting_id": 24, "value": 1},
        )
    assert multi.status_code == 200
    assert multi.json() == {
        timeout: {"response": -1}, offline: {"response": -2}, locked: {"response": -7},
        foreign: {"response": -3}, "XX0000X000": {"response": -3},
    }  # fmt: skip
    locked_answer = await write(sim, locked, 24, False)
    assert locked_answer == {"value": -7, "success": False, "message": "Inverter Locked"}


async def test_lost_inverter_answers_offline(sim: Simulator) -> None:
    device = hybrid(sim)
    sim.set_status(device.serial, "LOST")
    answer = await write(sim, device.serial, 24, False)
    assert answer["value"] == -2
    sim.set_status(device.serial, "NORMAL")
    assert (await write(sim, device.serial, 24, False))["success"] is True


async def test_validation_code_for_values_a_model_rejects(sim: Simulator) -> None:
    device = hybrid(sim)
    three_phase = sim.add_dongle(sim.truth.account_of_token("customer").id, "GIV-3HY-10")
    async with client_factory(sim)("company") as api:
        out_of_range = await api.post(
            "/multi-control/write", json={"inverter_serials": [device.serial], "setting_id": 71, "value": 500}
        )
        missing_setting = await api.post(
            "/multi-control/write", json={"inverter_serials": [three_phase.serial], "setting_id": 64, "value": "01:00"}
        )
    assert out_of_range.json() == {device.serial: {"response": -4}}
    assert missing_setting.json() == {three_phase.serial: {"response": -4}}


async def test_clamping_to_the_devices_own_range() -> None:
    sim = Simulator(SimulatorConfig.quiet(fleet_size=80, seed=2))
    device = hybrid(sim, where=lambda d: d.max_charge_rate < d.model.battery_max_w)
    requested = device.model.battery_max_w  # allowed by the rule, beyond what this battery takes
    answer = await write(sim, device.serial, 72, requested)
    assert answer["success"] is True
    assert int(str(answer["value"])) == device.max_charge_rate
    assert sim.truth.setting(device.serial, 72) == device.max_charge_rate
    assert int(str(await read(sim, device.serial, 72))) == device.max_charge_rate
    assert sim.truth.control_log()[0].stored == device.max_charge_rate


@pytest.mark.parametrize("arrange", ["another_actor", "not_controllable"])
async def test_writes_accepted_but_not_applied(sim: Simulator, arrange: str) -> None:
    device = hybrid(sim)
    if arrange == "another_actor":
        sim.set_another_actor([device.serial])
    else:
        device.flags = tuple(flag for flag in device.flags if flag != "is-controllable")
    before = sim.truth.setting(device.serial, 71)
    target = 55 if before != 55 else 65
    answer = await write(sim, device.serial, 71, target)
    assert answer["success"] is True
    assert int(str(answer["value"])) == target
    assert sim.truth.setting(device.serial, 71) == before
    assert int(str(await read(sim, device.serial, 71))) == before
    assert sim.truth.control_log()[0].applied is False


async def test_maybe_applied_codes_sometimes_apply() -> None:
    sim = Simulator(SimulatorConfig.quiet(control_error_probabilities={-1: 1.0}))
    devices = [d for d in sim.truth.visible_devices("company") if d.model.kind is Kind.HYBRID]
    for device in devices:
        await write(sim, device.serial, 24, False)
    applied = [call.applied for call in sim.truth.control_log()]
    assert all(call.outcome == -1 for call in sim.truth.control_log())
    assert True in applied
    assert False in applied
    assert all(sim.truth.setting(c.serial, 24) is False for c in sim.truth.control_log() if c.applied)


async def test_mixed_value_types_read_back() -> None:
    sim = Simulator(SimulatorConfig.quiet(fleet_size=80, seed=3))
    as_string = hybrid(sim, where=lambda d: d.numeric_strings)
    as_int = hybrid(sim, where=lambda d: not d.numeric_strings)
    with_seconds = hybrid(sim, where=lambda d: d.time_seconds)
    await write(sim, as_string.serial, 71, 20)
    await write(sim, as_int.serial, 71, "20")
    await write(sim, with_seconds.serial, 64, "01:30")
    assert await read(sim, as_string.serial, 71) == "20"
    assert await read(sim, as_int.serial, 71) == 20
    assert await read(sim, with_seconds.serial, 64) == "01:30:00"
    assert await read(sim, as_int.serial, 24) in (True, False)


@pytest.mark.parametrize(
    ("setting", "value"), [(71, 101), (71, "lots"), (24, "true"), (64, "25:00"), (83, 5), (71, None)]
)
async def test_single_write_validation_is_422(sim: Simulator, setting: int, value: object) -> None:
    device = hybrid(sim)
    async with client_factory(sim)("company") as api:
        response = await api.post(f"/inverter/{device.serial}/settings/{setting}/write", json={"value": value})
    assert response.status_code == 422
    assert response.json()["message"] == "The given data was invalid."
    assert list(response.json()["errors"]) == ["value"]
    assert sim.truth.control_log() == []


async def test_multi_control_accepts_1000_serials_and_refuses_more(client: ClientFactory, sim: Simulator) -> None:
    visible = sim.truth.visible_serials("company")
    serials = visible + [f"QQ{n:04d}A000" for n in range(1000 - len(visible))]
    async with client("company") as api:
        accepted = await api.post("/multi-control/read", json={"inverter_serials": serials, "setting_id": 24})
        refused = await api.post(
            "/multi-control/read", json={"inverter_serials": [*serials, "QQ9999A999"], "setting_id": 24}
        )
        missing = await api.post("/multi-control/write", json={"inverter_serials": visible, "setting_id": 24})
    assert accepted.status_code == 200
    assert len(accepted.json()) == 1000
    assert refused.status_code == 422
    assert "inverter_serials" in refused.json()["errors"]
    assert missing.status_code == 422
    assert "value" in missing.json()["errors"]


async def test_settings_catalogue_ids_and_rules(client: ClientFactory, sim: Simulator) -> None:
    device = hybrid(sim, where=lambda d: d.model.ten_slot)
    async with client("company") as api:
        catalogue = (await api.get(f"/inverter/{device.serial}/settings")).json()["data"]
    by_id = {entry["id"]: entry for entry in catalogue}
    assert by_id[17]["validation_rules"] == ["boolean"]
    assert by_id[64]["validation_rules"] == ["date_format:H:i"]
    assert by_id[96]["validation_rules"] == ["in:0,1,2,3"]
    assert "writeonly" in by_id[83]["validation_rules"]
    assert by_id[71]["validation_rules"][0] in ("between:4,100", "between:5,100")
    assert by_id[71]["validation"].startswith("Value must be between")
    assert {126, 127, 128, 152, 153, 154, 155, 156} <= set(by_id)


async def test_presets_write_their_settings(client: ClientFactory, sim: Simulator) -> None:
    device = hybrid(sim)
    async with client("company") as api:
        presets = (await api.get(f"/inverter/{device.serial}/presets")).json()["data"]
        applied = await api.post(
            f"/inverter/{device.serial}/presets/1", json={"enabled": True, "start_time": "02:00", "end_time": "05:00"}
        )
        invalid = await api.post(f"/inverter/{device.serial}/presets/1", json={"enabled": "yes"})
    assert {preset["id"] for preset in presets} >= {0, 1}
    assert applied.json()["data"]["success"] is True
    assert sim.truth.setting(device.serial, 66) is True
    assert (sim.truth.setting(device.serial, 64), sim.truth.setting(device.serial, 65)) == ("02:00", "05:00")
    assert invalid.status_code == 422
    assert set(invalid.json()["errors"]) == {"enabled", "start_time", "end_time"}


async def test_locked_preset_reports_the_code(sim: Simulator, client: ClientFactory) -> None:
    device = hybrid(sim)
    sim.set_locked([device.serial])
    async with client("company") as api:
        answer = (await api.post(f"/inverter/{device.serial}/presets/0", json={"enabled": False})).json()["data"]
    assert answer["success"] is False
    assert answer["value"] == -7


async def test_locked_inverter_still_answers_reads(sim: Simulator) -> None:
    device = hybrid(sim)
    sim.set_locked([device.serial])
    assert (await write(sim, device.serial, 71, 50))["value"] == -7
    assert int(str(await read(sim, device.serial, 71))) == sim.truth.setting(device.serial, 71) != 50


async def test_device_calls_wait_the_configured_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.simulator.core as core

    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(core, "sleep", record)
    sim = Simulator(SimulatorConfig.quiet(latency_seconds=7.5))
    device = hybrid(sim)
    async with client_factory(sim)("company") as api:
        await api.get("/communication-device")
        await api.get(f"/inverter/{device.serial}/system-data/latest")
        assert waits == []  # reads of stored data do not touch the device
        await api.post(f"/inverter/{device.serial}/settings/24/read", json={})
        await api.post(f"/inverter/{device.serial}/settings/24/write", json={"value": True})
        await api.post("/multi-control/read", json={"inverter_serials": [device.serial], "setting_id": 24})
        await api.get(f"/inverter/{device.serial}/request-data")
    assert waits == [7.5] * 4
