"""Typed views of the GivEnergy Cloud payloads.

Every model tolerates what the real service sends: unknown fields are kept (``model_extra``), missing
fields default to ``None`` or an empty list, and a leaf that cannot be parsed (a null, an odd date, a
numeric string) becomes ``None`` or is coerced instead of failing the whole response. A null never
becomes 0: callers keep their last good value.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)

_T = TypeVar("_T")


def _lenient(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


def _to_str(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    return _lenient(value, handler)


Str = Annotated[str | None, WrapValidator(_to_str)]
Int = Annotated[int | None, WrapValidator(_lenient)]
Float = Annotated[float | None, WrapValidator(_lenient)]
Bool = Annotated[bool | None, WrapValidator(_lenient)]
DateTime = Annotated[datetime | None, WrapValidator(_lenient)]
"""A timestamp: timezone-aware when the service sends an offset/``Z``, naive local time otherwise."""
Date = Annotated[date | None, WrapValidator(_lenient)]


class Model(BaseModel):
    """Base of every payload model: keeps unknown fields, never fails on a missing one."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=False)


def _none_to_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, dict):
        # Laravel serialises sparse arrays as objects keyed by index.
        return list(value.values())
    return value


class _Listy(Model):
    @field_validator("*", mode="before")
    @classmethod
    def _lists_never_null(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields.get(info.field_name)
        if field is not None and getattr(field.annotation, "__origin__", None) is list:
            return _none_to_list(value)
        return value


# --- Account -----------------------------------------------------------------------------------------


class Account(_Listy):
    """An account (``GET /account``, ``/account/{id}``, ``/account/search/{username}``, children)."""

    id: Int = None
    name: Str = None
    first_name: Str = None
    surname: Str = None
    role: Str = None
    email: Str = None
    address: Str = None
    postcode: Str = None
    country: Str = None
    telephone_number: Str = None
    timezone: Str = None
    standard_timezone: Str = None
    """IANA zone (e.g. ``Europe/London``); inverter time settings are in this zone."""


# --- Communication devices -----------------------------------------------------------------------------


class BatteryInfo(_Listy):
    """Nominal battery data of an inverter."""

    nominal_capacity: Float = None
    nominal_voltage: Float = None
    depth_of_discharge: Float = None


class InverterInfo(_Listy):
    """Model and rating of an inverter."""

    battery_type: Str = None
    battery: BatteryInfo | None = None
    model: Str = None
    max_charge_rate: Float = None
    max_discharge_rate: Float = None


class Warranty(_Listy):
    """Warranty of an inverter."""

    type: Str = None
    expiry_date: DateTime = None


class BatteryCapacity(_Listy):
    """Capacity of a battery module in Ah."""

    full: Float = None
    design: Float = None


class BatteryModule(_Listy):
    """A battery module connected to an inverter."""

    module_number: Int = None
    serial: Str = None
    firmware_version: Str = None
    capacity: BatteryCapacity | None = None
    cell_count: Int = None
    has_usb: Bool = None
    nominal_voltage: Float = None

    @property
    def state_of_health(self) -> float | None:
        """``capacity.full / capacity.design`` (1.0 = as new), or ``None`` when either is unknown."""
        if self.capacity is None or not self.capacity.full or not self.capacity.design:
            return None
        return self.capacity.full / self.capacity.design


class MeterInfo(_Listy):
    """A meter connected to an inverter."""

    address: Int = None
    serial_number: Str = None
    manufacturer_code: Str = None
    type_code: Int = None
    hardware_version: Int = None
    software_version: Int = None
    baud_rate: Int = None


class DatalogInfo(_Listy):
    """The datalogger (not in the v1.26 docs, seen in real payloads)."""

    serial_number: Str = None
    firmware_version: Str = None
    type: Str = None
    commission_date: DateTime = None
    site_id: Int = None


class Connections(_Listy):
    """What is connected to an inverter."""

    batteries: list[BatteryModule] = Field(default_factory=list)
    meters: list[MeterInfo] = Field(default_factory=list)
    datalog: DatalogInfo | None = None


class Inverter(_Listy):
    """The inverter behind a communication device."""

    serial: Str = None
    status: Str = None
    """``NORMAL``, ``WAITING``, ``LOST``, ... and statuses newer than the docs (``OFF_GRID``): kept as data."""
    last_online: DateTime = None
    last_updated: DateTime = None
    commission_date: DateTime = None
    info: InverterInfo | None = None
    warranty: Warranty | None = None
    firmware_version: dict[str, Any] | None = None
    connections: Connections | None = None
    flags: list[str] = Field(default_factory=list)
    """Flags that apply (``is-controllable``, ...): one missing from the list does not apply. Whether an inverter
    is controllable is decided once, by the mirror (:func:`service.mirror.upstream.device_records`)."""


class CommunicationDevice(_Listy):
    """A dongle/datalogger and its inverter (``/communication-device``, ``/account/{id}/devices``)."""

    serial_number: Str = None
    type: Str = None
    commission_date: DateTime = None
    firmware_version: Any = None
    site_id: Int = None
    inverter: Inverter | None = None


# --- EMS ------------------------------------------------------------------------------------------------


class EmsInverter(_Listy):
    """An inverter reported by a Plant EMS."""

    active_power: Float = None
    number: Int = None
    serial_number: Str = None
    soc: Float = None
    status: Int = None
    temperature: Float = None


class EmsMeter(_Listy):
    """A meter reported by a Plant EMS."""

    active_power: Float = None
    number: Int = None
    status: Int = None
    type: Int = None


class EmsSystemData(_Listy):
    """Latest system data of a Plant EMS."""

    battery_power: Float = None
    battery_wh_remaining: Float = None
    calculated_load_power: Float = None
    car_power: Float = None
    error_code: Int = None
    grid_power: Float = None
    measured_load_power: Float = None
    status: Int = None
    time: DateTime = None
    total_generation: Float = None
    warning_code: Int = None
    inverters: list[EmsInverter] = Field(default_factory=list)
    meters: list[EmsMeter] = Field(default_factory=list)


# --- EV chargers ----------------------------------------------------------------------------------------


class EvCharger(_Listy):
    """An EV charger."""

    uuid: Str = None
    serial_number: Str = None
    type: Str = None
    alias: Str = None
    online: Bool = None
    went_offline_at: DateTime = None
    status: Str = None
    """An OCPP 1.6 status (``Available``, ``Charging``, ...)."""


class EvMeasurement(_Listy):
    """One measurand of an EV charger meter data point."""

    measurand: Int = None
    value: Float = None
    unit: Int = None


class EvMeterDataPoint(_Listy):
    """Readings of one EV charger meter at one time."""

    meter_id: Int = None
    timestamp: DateTime = None
    measurements: list[EvMeasurement] = Field(default_factory=list)


class EvChargingSession(_Listy):
    """One charging session (transaction) of an EV charger."""

    started_by: Str = None
    meter_start: Float = None
    started_at: DateTime = None
    stopped_by: Str = None
    meter_stop: Float = None
    stopped_at: DateTime = None
    stop_reason: Str = None


# --- Energy flows, presets, settings --------------------------------------------------------------------


class EnergyFlow(_Listy):
    """Energy per flow type (``"0"`` PV to home ... ``"6"`` battery to grid) in kWh over one period."""

    start_time: DateTime = None
    end_time: DateTime = None
    data: dict[str, Float] = Field(default_factory=dict)

    @field_validator("data", mode="before")
    @classmethod
    def _data_as_mapping(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, list):
            return {str(i): v for i, v in enumerate(value)}
        return value


class PresetParameter(_Listy):
    """A parameter of a setting preset (dynamically validated)."""

    description: Str = None
    validation: list[str] = Field(default_factory=list)


class Preset(_Listy):
    """A setting preset of an inverter."""

    id: Int = None
    name: Str = None
    description: Str = None
    parameters: dict[str, PresetParameter] = Field(default_factory=dict)


class SettingDefinition(_Listy):
    """A setting the inverter exposes (ids and ranges vary by model and firmware)."""

    id: Int = None
    name: Str = None
    validation: Str = None
    validation_rules: list[str] = Field(default_factory=list)


# --- Inverter data --------------------------------------------------------------------------------------


class SolarArray(_Listy):
    """One PV string."""

    array: Int = None
    voltage: Float = None
    current: Float = None
    power: Float = None


class SolarReadings(_Listy):
    """PV power."""

    power: Float = None
    arrays: list[SolarArray] = Field(default_factory=list)


class GridReadings(_Listy):
    """Grid voltage, current, power and frequency."""

    voltage: Float = None
    current: Float = None
    power: Float = None
    frequency: Float = None


class BatteryReadings(_Listy):
    """Battery state of charge, power and temperature."""

    percent: Float = None
    power: Float = None
    temperature: Float = None


class InverterReadings(_Listy):
    """Inverter temperature and output."""

    temperature: Float = None
    power: Float = None
    output_voltage: Float = None
    output_frequency: Float = None
    eps_power: Float = None


class SystemData(_Listy):
    """Latest system data of an inverter (leaves may be null on gateways and EMS devices)."""

    time: DateTime = None
    status: Str = None
    solar: SolarReadings | None = None
    grid: GridReadings | None = None
    battery: BatteryReadings | None = None
    inverter: InverterReadings | None = None
    consumption: Float = None


class GridEnergy(_Listy):
    """Grid import/export energy."""

    import_: Float = Field(default=None, alias="import")
    export: Float = None


class BatteryEnergy(_Listy):
    """Battery charge/discharge energy."""

    charge: Float = None
    discharge: Float = None


class EnergyTotals(_Listy):
    """Energy counters (kWh) for today or since installation."""

    solar: Float = None
    grid: GridEnergy | None = None
    battery: BatteryEnergy | None = None
    consumption: Float = None
    ac_charge: Float = None


class MeterData(_Listy):
    """Latest meter data of an inverter (``today``/``total`` may be null)."""

    time: DateTime = None
    today: EnergyTotals | None = None
    total: EnergyTotals | None = None
    is_metered: Bool = None


class ConsumptionReadings(_Listy):
    """Household consumption power."""

    power: Float = None


class DataPointPower(_Listy):
    """Power readings of a data point."""

    solar: SolarReadings | None = None
    grid: GridReadings | None = None
    battery: BatteryReadings | None = None
    consumption: ConsumptionReadings | None = None
    inverter: InverterReadings | None = None


class DataPoint(_Listy):
    """A data point of an inverter (about every 5 minutes)."""

    time: DateTime = None
    status: Str = None
    power: DataPointPower | None = None
    today: EnergyTotals | None = None
    total: EnergyTotals | None = None
    is_metered: Bool = None


class InverterEvent(_Listy):
    """A fault raised by an inverter and when it cleared (``end_time`` null while active)."""

    event: Str = None
    start_time: DateTime = None
    end_time: DateTime = None


# --- Sites, smart devices, simple results ---------------------------------------------------------------


class Site(_Listy):
    """A site."""

    id: Int = None
    site_id: Int = None
    name: Str = None
    account: Str = None
    date_created: Date = None
    country: Str = None
    timezone: Str = None
    tz_timezone: Str = None
    latitude: Float = None
    longitude: Float = None
    type: Str = None
    products: list[Any] = Field(default_factory=list)


class SiteStatus(_Listy):
    """Scheme status of a site: ``vacant``, ``opted_in``, ``opted_out`` or ``None`` (no scheme)."""

    status: Str = None


class SmartDevice(_Listy):
    """A smart device. ``other_data`` can hold a device's local key: it is kept out of ``repr``."""

    uuid: Str = None
    alias: Str = None
    other_data: dict[str, Any] = Field(default_factory=dict, repr=False)

    @field_validator("other_data", mode="before")
    @classmethod
    def _other_data_mapping(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}


class SmartDeviceDataPoint(_Listy):
    """A power reading of a smart device."""

    time: DateTime = None
    power: Float = None


class SuccessResult(_Listy):
    """``{"success": bool}`` answers (request data, notification send, site status update)."""

    success: Bool = None
    message: Str = None
