"""Deterministic readings: power snapshots every 5 minutes and energy counters in closed form.

Every value is a pure function of the device seed and the time, so any page of data points can be produced
without storing history and two simulators with the same seed agree on every reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from service.simulator.catalogue import Kind
from service.simulator.fleet import Device

INTERVAL = timedelta(minutes=5)
_MASK = (1 << 64) - 1


def noise(seed: int, slot: int, salt: int) -> float:
    """A uniform number in [0, 1) from (seed, slot, salt) (splitmix64)."""
    z = (seed * 0x9E3779B97F4A7C15 + slot * 0xBF58476D1CE4E5B9 + salt * 0x94D049BB133111EB) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z ^= z >> 31
    return z / 2**64


def floor_interval(moment: datetime) -> datetime:
    """The 5-minute boundary at or before ``moment``."""
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % 300, tz=UTC)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Instantaneous power flows of one inverter (W, signed as the API signs them)."""

    solar: int
    arrays: tuple[tuple[float, float, int], ...]
    grid_power: int
    grid_voltage: float
    grid_current: float
    frequency: float
    battery_percent: int
    battery_power: int
    battery_temperature: float
    consumption: int
    inverter_temperature: float
    inverter_power: int
    output_voltage: float
    output_frequency: float
    eps_power: int


@dataclass(frozen=True, slots=True)
class Energy:
    """Energy counters in kWh."""

    solar: float
    grid_import: float
    grid_export: float
    battery_charge: float
    battery_discharge: float
    consumption: float
    ac_charge: float


def _day_index(moment: datetime, zone: str) -> int:
    """The local date as an ordinal: weather (cloud cover) is drawn per local day."""
    return moment.astimezone(ZoneInfo(zone)).date().toordinal()


def _local_hour(moment: datetime, zone: str) -> float:
    local = moment.astimezone(ZoneInfo(zone))
    return local.hour + local.minute / 60 + local.second / 3600


def _peak_solar(device: Device) -> float:
    if device.model.kind is Kind.EMS:
        return 0.0
    return device.model.power_w * (0.55 + 0.35 * noise(device.seed, 0, 1)) if device.model.power_w else 0.0


def _cloud(device: Device, day: int) -> float:
    return 0.25 + 0.75 * noise(device.seed, day, 2)


def snapshot(device: Device, moment: datetime, zone: str) -> Snapshot:
    """The power flows of a device at a moment (site timezone ``zone`` drives the solar day)."""
    slot = int(moment.timestamp()) // 300
    hour = _local_hour(moment, zone)
    day = _day_index(moment, zone)
    sun = max(0.0, math.sin(math.pi * (hour - 6) / 12))
    solar = int(_peak_solar(device) * sun * _cloud(device, day) * (0.85 + 0.15 * noise(device.seed, slot, 3)))
    evening = 1.0 + (1.2 if 17 <= hour < 21 else 0.0)
    consumption = int((250 + 500 * noise(device.seed, slot, 4)) * evening)
    has_battery = device.model.has_battery
    percent = int(50 + 45 * math.sin(math.pi * (hour - 9) / 12)) if has_battery else 0
    percent = max(4, min(100, percent))
    battery_power = 0
    if has_battery:
        surplus = solar - consumption
        battery_power = -min(surplus, device.max_charge_rate) if surplus > 0 else min(-surplus, 2500)
        if percent >= 100 and battery_power < 0:
            battery_power = 0
    grid = solar + battery_power - consumption  # positive exports
    array_one = int(solar * 0.6)
    arrays = (
        (round(180 + 200 * sun, 1), round(array_one / max(1.0, 180 + 200 * sun), 1), array_one),
        (round(170 + 180 * sun, 1), round((solar - array_one) / max(1.0, 170 + 180 * sun), 1), solar - array_one),
    )
    voltage = round(236 + 8 * noise(device.seed, slot, 5), 1)
    frequency = round(49.9 + 0.2 * noise(device.seed, slot, 6), 2)
    return Snapshot(
        solar=solar,
        arrays=arrays,
        grid_power=grid,
        grid_voltage=voltage,
        grid_current=round(abs(grid) / voltage, 1),
        frequency=frequency,
        battery_percent=percent,
        battery_power=battery_power,
        battery_temperature=round(18 + 10 * noise(device.seed, day, 7), 1),
        consumption=consumption,
        inverter_temperature=round(25 + 20 * sun + 5 * noise(device.seed, slot, 8), 1),
        inverter_power=solar + battery_power,
        output_voltage=voltage,
        output_frequency=frequency,
        eps_power=0,
    )


def _solar_kwh_until(device: Device, hour: float, day: int) -> float:
    # Closed form of the integral of the sine-shaped solar curve from 06:00 to ``hour``.
    clipped = min(max(hour, 6.0), 18.0)
    hours = (12 / math.pi) * (1 - math.cos(math.pi * (clipped - 6) / 12))
    return _peak_solar(device) * _cloud(device, day) * 0.925 * hours / 1000


def _day_energy(device: Device, hour: float, day: int) -> Energy:
    solar = _solar_kwh_until(device, hour, day)
    consumption = (0.5 + 0.25) * hour + (1.2 * 0.5 * max(0.0, min(hour, 21.0) - 17.0))
    battery = device.model.has_battery
    charge = min(solar * 0.4, 10.0) if battery else 0.0
    discharge = charge * 0.9
    ac_charge = (1.5 * min(hour, 4.5) / 4.5 if hour > 0.5 else 0.0) if battery else 0.0
    export = max(0.0, solar - charge - consumption * 0.3)
    grid_import = max(0.0, consumption - (solar - export - charge) - discharge) + ac_charge
    return Energy(
        solar=round(solar, 1),
        grid_import=round(grid_import, 1),
        grid_export=round(export, 1),
        battery_charge=round(charge + ac_charge, 1),
        battery_discharge=round(discharge, 1),
        consumption=round(consumption, 1),
        ac_charge=round(ac_charge, 1),
    )


def today(device: Device, moment: datetime, zone: str) -> Energy:
    """Energy since local midnight."""
    local = moment.astimezone(ZoneInfo(zone))
    day = _day_index(moment, zone)
    return _day_energy(device, local.hour + local.minute / 60, day)


def total(device: Device, moment: datetime, zone: str) -> Energy:
    """Energy since commissioning (a typical full day per elapsed day, plus today)."""
    days = max(0, (moment - device.commission_date).days)
    full = _day_energy(device, 24.0, 0)
    now = today(device, moment, zone)

    def add(full_value: float, today_value: float) -> float:
        return round(full_value * days + today_value, 1)

    return Energy(
        solar=add(full.solar, now.solar),
        grid_import=add(full.grid_import, now.grid_import),
        grid_export=add(full.grid_export, now.grid_export),
        battery_charge=add(full.battery_charge, now.battery_charge),
        battery_discharge=add(full.battery_discharge, now.battery_discharge),
        consumption=add(full.consumption, now.consumption),
        ac_charge=add(full.ac_charge, now.ac_charge),
    )


def energy_between(device: Device, start: datetime, end: datetime, zone: str = "UTC") -> dict[int, float]:
    """Energy-flow types (0-6, kWh) between two moments.

    Solar follows the day's curve within one local day (nothing at night); other flows, and spans longer than
    a day, use the day's averages scaled by duration.
    """
    hours = max(0.0, (end - start).total_seconds() / 3600)
    day = _day_index(start, zone)
    full = _day_energy(device, 24.0, day)
    scale = hours / 24
    solar = full.solar * scale
    local_start, local_end = start.astimezone(ZoneInfo(zone)), end.astimezone(ZoneInfo(zone))
    if hours <= 24 and local_start.date() == (local_end - timedelta(microseconds=1)).date():
        begin = local_start.hour + local_start.minute / 60
        finish = begin + hours
        solar = _solar_kwh_until(device, finish, day) - _solar_kwh_until(device, begin, day)
    battery = device.model.has_battery
    flows = {
        0: solar * 0.45,
        1: solar * 0.35 if battery else 0.0,
        2: solar * (0.2 if battery else 0.55),
        3: full.consumption * scale * 0.5,
        4: full.ac_charge * scale,
        5: full.battery_discharge * scale * 0.9 if battery else 0.0,
        6: full.battery_discharge * scale * 0.1 if battery else 0.0,
    }
    return {key: round(value, 2) for key, value in flows.items()}
