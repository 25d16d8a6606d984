"""JSON shapes of the v1 API, field for field as the documentation's example responses show them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from service.simulator.behaviour import InverterEvent
from service.simulator.catalogue import Setting
from service.simulator.fleet import Account, Device, EvCharger, Site, SmartDevice, is_gateway_or_ems
from service.simulator.telemetry import Energy, Snapshot


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z suffix, as the API writes datetimes."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def account(record: Account) -> dict[str, Any]:
    """An account object (GET /account and friends)."""
    return {
        "id": record.id,
        "name": record.username,
        "first_name": record.first_name,
        "surname": record.surname,
        "role": record.role,
        "email": record.email,
        "address": record.address,
        "postcode": record.postcode,
        "country": record.country,
        "telephone_number": record.telephone_number,
        "timezone": record.timezone,
        "standard_timezone": record.standard_timezone,
    }


def _static_parts(device: Device) -> dict[str, Any]:
    """The parts of a device's JSON that never change once generated (cached on the record)."""
    cached = device.render_cache
    if cached is not None:
        return cached
    model = device.model
    has_battery = model.has_battery
    nominal_voltage = 307.2 if model.hv else 51.2
    batteries = device.batteries()
    capacity = sum(battery.capacity_design for battery in batteries) if not model.hv else 52 * device.battery_count
    cached = {
        "info": {
            # Devices without batteries keep the documented types (zeros), not nulls.
            "battery_type": "LITHIUM" if has_battery else "NONE",
            "battery": {
                "nominal_capacity": capacity if has_battery else 0,
                "nominal_voltage": nominal_voltage if has_battery else 0,
                "depth_of_discharge": (0.85 if model.hv else 1) if has_battery else 0,
            },
            "model": model.name,
            "max_charge_rate": device.max_charge_rate,
            "max_discharge_rate": device.max_discharge_rate,
        },
        "commission_date": iso(device.commission_date),
        "warranty": {"type": device.warranty_type, "expiry_date": iso(device.warranty_expiry)},
        "batteries": [
            {
                "module_number": battery.module_number,
                "serial": battery.serial,
                "firmware_version": battery.firmware_version,
                "capacity": {"full": battery.capacity_full, "design": battery.capacity_design},
                "cell_count": battery.cell_count,
                "has_usb": not model.hv,
                "nominal_voltage": battery.nominal_voltage,
            }
            for battery in batteries
        ],
        "meters": [
            {
                "address": meter.address,
                "serial_number": meter.serial_number,
                "manufacturer_code": meter.manufacturer_code,
                "type_code": meter.type_code,
                "hardware_version": meter.hardware_version,
                "software_version": meter.software_version,
                "baud_rate": meter.baud_rate,
            }
            for meter in device.meters()
        ],
    }
    device.render_cache = cached
    return cached


def communication_device(device: Device, last_updated: datetime, last_online: datetime) -> dict[str, Any]:
    """A communication device with its inverter (GET /communication-device and /account/{id}/devices)."""
    static = _static_parts(device)
    commissioned = static["commission_date"]
    datalog = {
        "serial_number": device.dongle_serial,
        "firmware_version": device.dongle_firmware,
        "type": device.dongle_type,
        "commission_date": commissioned,
        "site_id": device.site_id,
    }
    inverter = {
        "serial": device.serial,
        "status": device.status,
        "last_online": iso(last_online),
        "last_updated": iso(last_updated),
        "commission_date": commissioned,
        "info": static["info"],
        "warranty": static["warranty"],
        "firmware_version": {"ARM": device.arm, "DSP": device.dsp},
        "connections": {"batteries": static["batteries"], "meters": static["meters"], "datalog": datalog},
        "flags": list(device.flags),
    }
    return {
        "serial_number": device.dongle_serial,
        "firmware_version": device.dongle_firmware,
        "type": device.dongle_type,
        "commission_date": commissioned,
        "site_id": device.site_id,
        "inverter": inverter,
    }


def setting(entry: Setting) -> dict[str, Any]:
    """A setting of GET /inverter/{serial}/settings."""
    return {
        "id": entry.id,
        "name": entry.name,
        "validation": entry.validation,
        "validation_rules": list(entry.rules),
    }


def value(device: Device, entry: Setting, raw: bool | int | str) -> bool | int | str:
    """A setting value as this inverter's firmware reports it (numeric strings, HH:MM:SS, ...)."""
    if entry.is_boolean or isinstance(raw, bool):
        return bool(raw)
    if entry.is_time:
        text = str(raw)
        return f"{text}:00" if device.time_seconds and len(text) == 5 else text
    if device.numeric_strings:
        return str(raw)
    return raw


def _status_title(status: str) -> str:
    return status.replace("_", " ").title()


def system_data(device: Device, moment: datetime, reading: Snapshot, status: str) -> dict[str, Any]:
    """GET /inverter/{serial}/system-data/latest (null leaves for Gateway/EMS)."""
    nulls = is_gateway_or_ems(device)

    def maybe(number: float) -> float | None:
        return None if nulls else number

    return {
        "time": iso(moment),
        "status": _status_title(status),
        "solar": {
            "power": maybe(reading.solar),
            "arrays": [
                {"array": number, "voltage": maybe(volts), "current": maybe(amps), "power": maybe(watts)}
                for number, (volts, amps, watts) in enumerate(reading.arrays, start=1)
            ],
        },
        "grid": {
            "voltage": maybe(reading.grid_voltage),
            "current": maybe(reading.grid_current),
            "power": maybe(reading.grid_power),
            "frequency": maybe(reading.frequency),
        },
        "battery": {
            "percent": maybe(reading.battery_percent),
            "power": maybe(reading.battery_power),
            "temperature": maybe(reading.battery_temperature),
        },
        "inverter": {
            "temperature": maybe(reading.inverter_temperature),
            "power": maybe(reading.inverter_power),
            "output_voltage": maybe(reading.output_voltage),
            "output_frequency": maybe(reading.output_frequency),
            "eps_power": maybe(reading.eps_power),
        },
        "consumption": maybe(reading.consumption),
    }


def energy(values: Energy | None) -> dict[str, Any] | None:
    """The ``today``/``total`` energy object."""
    if values is None:
        return None
    return {
        "solar": values.solar,
        "grid": {"import": values.grid_import, "export": values.grid_export},
        "battery": {"charge": values.battery_charge, "discharge": values.battery_discharge},
        "consumption": values.consumption,
        "ac_charge": values.ac_charge,
    }


def data_point(
    moment: datetime, status: str, reading: Snapshot, today: Energy, total: Energy, metered: bool
) -> dict[str, Any]:
    """One entry of GET /inverter/{serial}/data-points/{date}."""
    return {
        "time": iso(moment),
        "status": status,
        "power": {
            "solar": {
                "power": reading.solar,
                "arrays": [
                    {"array": number, "voltage": volts, "current": amps, "power": watts}
                    for number, (volts, amps, watts) in enumerate(reading.arrays, start=1)
                ],
            },
            "grid": {
                "voltage": reading.grid_voltage,
                "current": reading.grid_current,
                "power": reading.grid_power,
                "frequency": reading.frequency,
            },
            "battery": {
                "percent": reading.battery_percent,
                "power": reading.battery_power,
                "temperature": reading.battery_temperature,
            },
            "consumption": {"power": reading.consumption},
            "inverter": {
                "temperature": reading.inverter_temperature,
                "power": reading.inverter_power,
                "output_voltage": reading.output_voltage,
                "output_frequency": reading.output_frequency,
                "eps_power": reading.eps_power,
            },
        },
        "today": energy(today),
        "total": energy(total),
        "is_metered": metered,
    }


def event(record: InverterEvent) -> dict[str, Any]:
    """An inverter event."""
    return {"event": record.event, "start_time": iso(record.start_time), "end_time": iso(record.end_time)}


def site(record: Site, owner: Account) -> dict[str, Any]:
    """A site."""
    return {
        "id": record.id,
        "name": record.name,
        "account": owner.username,
        "date_created": record.date_created,
        "country": record.country,
        "timezone": record.timezone,
        "tz_timezone": record.tz_timezone,
        "latitude": record.latitude,
        "longitude": record.longitude,
        "type": "THREE_PHASE" if record.three_phase else "SINGLE_PHASE",
        "products": [],
    }


def ev_charger(record: EvCharger) -> dict[str, Any]:
    """An EV charger."""
    return {
        "uuid": record.uuid,
        "serial_number": record.serial_number,
        "type": "GivEnergy",
        "alias": record.alias,
        "online": record.online,
        "went_offline_at": iso(record.went_offline_at),
        "status": record.status,
    }


def smart_device(record: SmartDevice) -> dict[str, Any]:
    """A smart device."""
    return {
        "uuid": record.uuid,
        "alias": record.alias,
        "other_data": {
            "graph_color": record.graph_color,
            "hardware_id": record.hardware_id,
            "local_key": record.local_key,
        },
    }
