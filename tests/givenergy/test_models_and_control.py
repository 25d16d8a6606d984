"""Payload models tolerate the real service; control outcomes are classified by code."""

from __future__ import annotations

import pytest

from service.givenergy import (
    CommunicationDevice,
    ControlOutcome,
    MeterData,
    SmartDevice,
    SystemData,
    classify_inverter_code,
)
from service.givenergy._control import ev_command_result, inverter_result, multi_result


def test_models_keep_unknown_fields_and_survive_missing_and_null_leaves() -> None:
    device = CommunicationDevice.model_validate(
        {
            "serial_number": "WF1",
            "site_id": 12,
            "inverter": {
                "serial": "CE1",
                "status": "OFF_GRID",
                "last_updated": "not a date",
                "flags": ["is-controllable"],
                "info": {"model": "GIV-HY5.0", "max_discharge_rate": "3600", "new_field": 1},
                "connections": {
                    "batteries": [{"module_number": 1, "capacity": {"full": 90, "design": 100}}],
                    "meters": None,
                    "datalog": {"serial_number": "WF1", "site_id": 12},
                },
            },
            "brand_new": {"x": 1},
        }
    )
    assert device.model_extra == {"brand_new": {"x": 1}}
    inverter = device.inverter
    assert inverter is not None
    assert inverter.status == "OFF_GRID"
    assert inverter.last_updated is None
    assert inverter.flags == ["is-controllable"]
    assert inverter.info is not None
    assert inverter.info.max_discharge_rate == 3600.0
    assert inverter.connections is not None
    assert inverter.connections.meters == []
    assert inverter.connections.batteries[0].state_of_health == pytest.approx(0.9)


def test_null_readings_stay_null_instead_of_zero() -> None:
    data = SystemData.model_validate({"time": None, "solar": None, "battery": {"percent": None, "power": "12"}})
    assert data.battery is not None
    assert data.battery.percent is None
    assert data.battery.power == 12.0
    meter = MeterData.model_validate({"today": None, "total": {"grid": {"import": 1.5, "export": None}}})
    assert meter.today is None
    assert meter.total is not None
    assert meter.total.grid is not None
    assert meter.total.grid.import_ == 1.5
    assert meter.total.grid.export is None


def test_smart_device_local_key_is_not_in_repr() -> None:
    device = SmartDevice.model_validate({"uuid": "u", "other_data": {"local_key": "K3Y-VALUE"}})
    assert "K3Y-VALUE" not in repr(device)
    assert device.other_data["local_key"] == "K3Y-VALUE"


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (-1, ControlOutcome.POTENTIALLY_APPLIED),
        (-2, ControlOutcome.RETRY_LATER),
        (-3, ControlOutcome.FINAL),
        (-4, ControlOutcome.FINAL),
        (-5, ControlOutcome.POTENTIALLY_APPLIED),
        (-6, ControlOutcome.POTENTIALLY_APPLIED),
        (-7, ControlOutcome.FINAL),
        (-42, ControlOutcome.POTENTIALLY_APPLIED),
    ],
)
def test_remote_control_codes_are_classified(code: int, outcome: ControlOutcome) -> None:
    assert classify_inverter_code(code) is outcome
    result = inverter_result({"value": code, "success": False, "message": "x"}, requested=5, is_write=True)
    assert result.code == code
    assert result.outcome is outcome
    assert not result.success


def test_unknown_code_is_named_unknown() -> None:
    result = inverter_result({"value": -42, "success": False}, requested=5, is_write=True)
    assert result.code_name == "UNKNOWN"


def test_write_tells_applied_from_applied_but_modified() -> None:
    same = inverter_result({"value": "20", "success": True}, requested=20, is_write=True)
    clamped = inverter_result({"value": 100, "success": True}, requested=120, is_write=True)
    time_same = inverter_result({"value": "07:30:00", "success": True}, requested="07:30", is_write=True)
    assert same.outcome is ControlOutcome.SUCCESS
    assert not same.modified
    assert clamped.outcome is ControlOutcome.SUCCESS
    assert clamped.modified
    assert not time_same.modified


def test_read_value_and_read_failure() -> None:
    ok = inverter_result({"value": "20"}, is_write=False)
    offline = inverter_result({"value": -2}, is_write=False)
    assert ok.success
    assert ok.value == "20"
    assert offline.code == -2
    assert offline.outcome is ControlOutcome.RETRY_LATER


def test_multi_control_entries() -> None:
    assert multi_result({"response": 20}, requested=20).outcome is ControlOutcome.SUCCESS
    assert multi_result({"response": -7}, requested=20).outcome is ControlOutcome.FINAL
    assert multi_result({"response": -9}, requested=20).outcome is ControlOutcome.POTENTIALLY_APPLIED
    assert multi_result({"response": -9}).success  # a read of a negative value is a value
    assert multi_result({"response": -2}).outcome is ControlOutcome.RETRY_LATER


def test_ev_command_codes() -> None:
    assert ev_command_result({"code": 0, "success": True, "message": "Accepted"}).outcome is ControlOutcome.SUCCESS
    offline = ev_command_result({"code": -2, "success": False})
    assert offline.outcome is ControlOutcome.RETRY_LATER
    assert offline.code_name == "CHARGER_OFFLINE"
    assert ev_command_result({"code": -3, "success": False}).outcome is ControlOutcome.FINAL
    assert ev_command_result({"code": -5, "success": False}).outcome is ControlOutcome.POTENTIALLY_APPLIED
