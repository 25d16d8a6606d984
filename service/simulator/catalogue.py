"""Inverter models and their setting catalogues (ids, rules and validation texts as seen on the real service)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """Broad family of a device model."""

    HYBRID = "hybrid"
    AC = "ac"
    AIO = "aio"
    THREE_PHASE = "three_phase"
    GATEWAY = "gateway"
    EMS = "ems"


@dataclass(frozen=True, slots=True)
class Model:
    """A device model.

    Attributes:
        name: Model string reported in ``inverter.info.model``.
        kind: Family.
        power_w: Nominal AC power.
        battery_max_w: Largest battery charge/discharge power the model accepts (rule maximum of ids 72/73).
        serial_prefix: Two letters starting the inverter serial.
        hv: High-voltage battery stack (nominal voltage in the hundreds).
        ten_slot: Firmware with ten AC-charge/DC-discharge slots.
    """

    name: str
    kind: Kind
    power_w: int
    battery_max_w: int
    serial_prefix: str
    hv: bool = False
    ten_slot: bool = False

    @property
    def three_phase(self) -> bool:
        """Whether the model is three-phase."""
        return self.kind is Kind.THREE_PHASE

    @property
    def has_battery(self) -> bool:
        """Whether the model drives batteries of its own."""
        return self.kind not in (Kind.GATEWAY, Kind.EMS)


# Weights favour the common single-phase hybrids; the rarer kinds still appear in a fleet of a few dozen.
MODELS: tuple[tuple[Model, int], ...] = (
    (Model("GIV-HY3.6", Kind.HYBRID, 3600, 2600, "SA"), 14),
    (Model("GIV-HY5.0", Kind.HYBRID, 5000, 3600, "SD", ten_slot=True), 18),
    (Model("GIV-HY-8.0-G3-HV", Kind.HYBRID, 8000, 6000, "EA", hv=True, ten_slot=True), 6),
    (Model("GIV-HY-10.0-G3-HV", Kind.HYBRID, 10000, 6000, "EB", hv=True, ten_slot=True), 4),
    (Model("GIV-AC3.0", Kind.AC, 3000, 3000, "CE"), 12),
    (Model("GIV-AC3.6", Kind.AC, 3600, 3000, "CF"), 8),
    (Model("GIV-AIO-AC-13.5-12.0", Kind.AIO, 6000, 6000, "CH", ten_slot=True), 7),
    (Model("All-In-One", Kind.AIO, 6000, 6000, "CJ", ten_slot=True), 7),
    (Model("GIV-3HY-6", Kind.THREE_PHASE, 6000, 6000, "FA", hv=True, ten_slot=True), 3),
    (Model("GIV-3HY-10", Kind.THREE_PHASE, 10000, 6000, "FB", hv=True, ten_slot=True), 3),
    (Model("GIV-3HY-20", Kind.THREE_PHASE, 20000, 6000, "FC", hv=True, ten_slot=True), 2),
    (Model("Gateway", Kind.GATEWAY, 12000, 0, "GW"), 3),
    (Model("Plant EMS", Kind.EMS, 0, 0, "EM"), 1),
    (Model("EMS-R", Kind.EMS, 0, 0, "ER"), 1),
    (Model("EMS-C", Kind.EMS, 0, 0, "EC"), 1),
)
MODEL_LIST: tuple[Model, ...] = tuple(model for model, _ in MODELS)
MODEL_WEIGHTS: tuple[int, ...] = tuple(weight for _, weight in MODELS)
MODEL_BY_NAME: dict[str, Model] = {model.name: model for model in MODEL_LIST}


@dataclass(frozen=True, slots=True)
class Setting:
    """One entry of an inverter's setting catalogue.

    Attributes:
        id: Setting id (path parameter of read/write, ``setting_id`` of multi-control).
        name: Human name.
        rules: ``validation_rules`` as listed by GET /inverter/{serial}/settings.
        default: Value the device holds until someone writes (bool, int or "HH:MM").
    """

    id: int
    name: str
    rules: tuple[str, ...]
    default: bool | int | str

    @property
    def validation(self) -> str:
        """The human ``validation`` text."""
        return describe_rules(self.rules)

    @property
    def write_only(self) -> bool:
        """Whether reads of this setting are meaningless (the device reports nothing useful)."""
        return "writeonly" in self.rules

    @property
    def is_time(self) -> bool:
        """Whether the value is a time of day."""
        return any(rule.startswith("date_format") for rule in self.rules)

    @property
    def is_boolean(self) -> bool:
        """Whether the value is a boolean."""
        return "boolean" in self.rules


def describe_rules(rules: tuple[str, ...]) -> str:
    """Render the human validation text the real service shows for a list of rules."""
    parts: list[str] = []
    for rule in rules:
        name, _, args = rule.partition(":")
        if name == "boolean":
            parts.append("Value must be either true or false")
        elif name == "between":
            low, high = args.split(",")
            parts.append(f"Value must be between {low} and {high}")
        elif name == "date_format":
            parts.append("Value format should be HH:mm. Use correct time range for hour and minutes")
        elif name == "in":
            options = args.split(",")
            if len(options) == 1:
                parts.append(f"Value can only be {options[0]}")
            else:
                parts.append(f"Value must be one of: {', '.join(options)}")
    return ". ".join(parts)


_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class RuleError(ValueError):
    """A value broke one of a setting's validation rules (the message is the human validation text)."""


def coerce(setting: Setting, value: object) -> bool | int | str:
    """Validate a written value against a setting's rules and return its canonical form.

    Booleans accept true/false/1/0 (strings "true"/"false" are invalid, as documented); numbers accept
    numeric strings; times must be "HH:MM".

    Raises:
        RuleError: When the value breaks a rule.
    """
    if value is None:
        raise RuleError("The value field is required.")
    if setting.is_boolean:
        return _coerce_bool(setting, value)
    if setting.is_time:
        if isinstance(value, str) and _TIME.match(value):
            return value
        raise RuleError(setting.validation)
    number = _coerce_number(setting, value)
    for rule in setting.rules:
        name, _, args = rule.partition(":")
        if name == "between":
            low, high = (float(part) for part in args.split(","))
            if not low <= number <= high:
                raise RuleError(setting.validation)
        elif name == "in" and number not in {float(option) for option in args.split(",")}:
            raise RuleError(setting.validation)
    return int(number) if number == int(number) else round(number)


def _coerce_bool(setting: Setting, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value in ("0", "1"):
        return value == "1"
    raise RuleError(setting.validation)


def _coerce_number(setting: Setting, value: object) -> float:
    if isinstance(value, bool):
        raise RuleError(setting.validation)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise RuleError(setting.validation) from None
    raise RuleError(setting.validation)


def rule_bounds(setting: Setting) -> tuple[float, float] | None:
    """The ``between`` bounds of a setting, if it has them."""
    for rule in setting.rules:
        name, _, args = rule.partition(":")
        if name == "between":
            low, high = args.split(",")
            return float(low), float(high)
    return None


# ---- catalogue construction -------------------------------------------------------------------------------

_BOOL = ("boolean",)
_TIME_RULE = ("date_format:H:i",)
_PERCENT = ("between:0,100",)


def _common(model: Model, reserve_min: int) -> list[Setting]:
    power = f"between:0,{model.battery_max_w}"
    return [
        Setting(17, "Enable AC Charge Upper % Limit", _BOOL, False),
        Setting(24, "Enable Eco Mode", _BOOL, True),
        Setting(47, "Inverter Max Output Active Power Percent", _PERCENT, 100),
        Setting(56, "Enable DC Discharge", _BOOL, False),
        Setting(66, "AC Charge Enable", _BOOL, False),
        Setting(71, "Battery Reserve % Limit", (f"between:{reserve_min},100",), max(reserve_min, 4)),
        Setting(72, "Battery Charge Power", (power,), model.battery_max_w),
        Setting(73, "Battery Discharge Power", (power,), model.battery_max_w),
        Setting(75, "Battery Cutoff % Limit", ("between:4,100",), 4),
        Setting(77, "AC Charge Upper % Limit", _PERCENT, 100),
        Setting(83, "Restart Inverter", ("writeonly", "in:100"), 0),
        Setting(96, "Pause Battery", ("in:0,1,2,3",), 0),
        Setting(258, "Force Off Grid", _BOOL, False),
        Setting(504, "Real Time Control", _BOOL, False),
    ]


@dataclass(frozen=True, slots=True)
class _SlotKind:
    """A kind of timed slot: its name and the state-of-charge limit that ends it early."""

    name: str
    limit_name: str
    limit_default: int


_AC_CHARGE = _SlotKind("AC Charge", "Upper SOC % Limit", 100)
_DC_DISCHARGE = _SlotKind("DC Discharge", "Lower SOC % Limit", 4)


def _timed_slot(
    kind: _SlotKind, slot: int, start_id: int, limit_id: int, *, start: str = "00:00", end: str = "00:00"
) -> list[Setting]:
    """A slot's start and end times (ids ``start_id`` and the next) and its state-of-charge limit."""
    return [
        Setting(start_id, f"{kind.name} {slot} Start Time", _TIME_RULE, start),
        Setting(start_id + 1, f"{kind.name} {slot} End Time", _TIME_RULE, end),
        Setting(limit_id, f"{kind.name} {slot} {kind.limit_name}", _PERCENT, kind.limit_default),
    ]


def _slots_one_two(include_second: bool) -> list[Setting]:
    # Unlike slots 3-10, slots 1 and 2 have ids without a pattern.
    settings = _timed_slot(_AC_CHARGE, 1, 64, 101, start="00:30", end="04:30") + _timed_slot(_DC_DISCHARGE, 1, 53, 129)
    if include_second:
        settings += _timed_slot(_AC_CHARGE, 2, 102, 104) + _timed_slot(_DC_DISCHARGE, 2, 41, 130)
    return settings


def _slots_three_to_ten() -> list[Setting]:
    settings: list[Setting] = []
    for slot in range(3, 11):
        charge_id = 102 + 3 * (slot - 2)
        discharge_id = 131 + 3 * (slot - 3)
        settings += _timed_slot(_AC_CHARGE, slot, charge_id, charge_id + 2)
        settings += _timed_slot(_DC_DISCHARGE, slot, discharge_id, discharge_id + 2)
    settings += [
        Setting(155, "Pause Battery Start Time", _TIME_RULE, "00:00"),
        Setting(156, "Pause Battery End Time", _TIME_RULE, "00:00"),
    ]
    return settings


def build_catalogue(model: Model, reserve_min: int) -> tuple[Setting, ...]:
    """The setting catalogue of a model (``reserve_min`` is 4 or 5 depending on the battery)."""
    if model.kind is Kind.EMS:
        return ()
    if model.kind is Kind.GATEWAY:
        return (
            Setting(47, "Inverter Max Output Active Power Percent", _PERCENT, 100),
            Setting(83, "Restart Inverter", ("writeonly", "in:100"), 0),
            Setting(258, "Force Off Grid", _BOOL, False),
        )
    settings = _common(model, reserve_min)
    if model.three_phase:
        # Three-phase firmware moves some ids and has no slots 1-2.
        settings.append(Setting(272, "DC Discharge 1 Lower SOC % Limit", _PERCENT, 4))
        settings += _slots_three_to_ten()
    else:
        settings += _slots_one_two(include_second=model.ten_slot)
        if model.ten_slot:
            settings += _slots_three_to_ten()
    return tuple(sorted(settings, key=lambda setting: setting.id))


_CATALOGUES: dict[tuple[str, int], tuple[Setting, ...]] = {}
_CATALOGUE_INDEX: dict[tuple[str, int], dict[int, Setting]] = {}


def catalogue(model: Model, reserve_min: int) -> tuple[Setting, ...]:
    """Cached :func:`build_catalogue` (catalogues are shared by every inverter of a model)."""
    key = (model.name, reserve_min)
    if key not in _CATALOGUES:
        _CATALOGUES[key] = build_catalogue(model, reserve_min)
        _CATALOGUE_INDEX[key] = {setting.id: setting for setting in _CATALOGUES[key]}
    return _CATALOGUES[key]


def setting_index(model: Model, reserve_min: int) -> dict[int, Setting]:
    """Settings of a model keyed by id."""
    catalogue(model, reserve_min)
    return _CATALOGUE_INDEX[(model.name, reserve_min)]


@dataclass(frozen=True, slots=True)
class PresetParameter:
    """A parameter of a setting preset: the settings it maps onto and its validation rules."""

    name: str
    description: str
    rules: tuple[str, ...]
    setting_id: int


@dataclass(frozen=True, slots=True)
class Preset:
    """A setting preset (GET /inverter/{serial}/presets): a named bundle of setting writes."""

    id: int
    name: str
    description: str
    parameters: tuple[PresetParameter, ...]


def _enabled(setting_id: int) -> PresetParameter:
    """The ``enabled`` switch every preset has, mapped onto its boolean setting."""
    return PresetParameter("enabled", "Enable or disable the preset", ("required", "boolean"), setting_id)


def _window(activity: str, start_id: int) -> tuple[PresetParameter, PresetParameter]:
    """A timed preset's ``start_time`` and ``end_time``, mapped onto a slot's times (``start_id`` and the next)."""
    return (
        PresetParameter("start_time", f"Start of the {activity}", ("required", "date_format:H:i"), start_id),
        PresetParameter("end_time", f"End of the {activity}", ("required", "date_format:H:i"), start_id + 1),
    )


PRESETS: tuple[Preset, ...] = (
    Preset(
        0,
        "Eco",
        "This mode will dynamically charge and discharge your batteries to minimise your import from the grid",
        (_enabled(24),),
    ),
    Preset(
        1,
        "Timed Charge",
        "Charge the batteries from the grid between the given times",
        (
            _enabled(66),
            *_window("charge", 64),
            PresetParameter("percent", "Stop charging at this state of charge", ("optional", "between:0,100"), 101),
        ),
    ),
    Preset(
        2,
        "Timed Export",
        "Discharge the batteries at full power between the given times",
        (_enabled(56), *_window("export", 53)),
    ),
)
PRESET_BY_ID: dict[int, Preset] = {preset.id: preset for preset in PRESETS}
