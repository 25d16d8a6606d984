"""Value types of the mirror: normalised upstream records, the snapshot a sync fetched, plans and reports.

Records are named tuples whose fields are exactly the mirrored columns (key fields first), so comparing an
upstream record with the stored one is a tuple comparison and writing one is ``record._asdict()``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple


class AccountRecord(NamedTuple):
    """An account of the hierarchy (``mirror_accounts``)."""

    upstream_id: int
    username: str
    first_name: str | None
    surname: str | None
    role: str | None
    email: str | None
    address: str | None
    postcode: str | None
    country: str | None
    telephone_number: str | None
    timezone: str | None
    standard_timezone: str | None
    parent_upstream_id: int | None
    depth: int


class SiteRecord(NamedTuple):
    """A site (``mirror_sites``), without its scheme status (fetched separately, approved users only)."""

    upstream_id: int
    name: str | None
    account_username: str | None
    account_upstream_id: int | None
    date_created: date | None
    country: str | None
    timezone: str | None
    tz_timezone: str | None
    latitude: float | None
    longitude: float | None
    type: str | None
    products: tuple[Any, ...]


class SiteStatusRecord(NamedTuple):
    """The scheme status of a site (``mirror_sites.scheme_status``)."""

    upstream_id: int
    scheme_status: str | None


class DongleRecord(NamedTuple):
    """A communication device (``mirror_dongles``)."""

    serial: str
    type: str | None
    firmware_version: str | None
    commission_date: datetime | None
    account_upstream_id: int | None
    site_upstream_id: int | None
    inverter_serial: str | None


class InverterRecord(NamedTuple):
    """An inverter (``mirror_inverters``)."""

    serial: str
    dongle_serial: str | None
    account_upstream_id: int | None
    site_upstream_id: int | None
    status: str | None
    last_online: datetime | None
    last_updated: datetime | None
    commission_date: datetime | None
    model: str | None
    battery_type: str | None
    battery_nominal_capacity: float | None
    battery_nominal_voltage: float | None
    battery_depth_of_discharge: float | None
    max_charge_rate: float | None
    max_discharge_rate: float | None
    warranty_type: str | None
    warranty_expiry: datetime | None
    firmware_arm: str | None
    firmware_dsp: str | None
    flags: tuple[str, ...]
    is_controllable: bool | None


class BatteryRecord(NamedTuple):
    """A battery module (``mirror_battery_modules``), keyed by (inverter, position in the inverter's list)."""

    inverter_serial: str
    position: int
    module_number: int | None
    serial: str | None
    firmware_version: str | None
    capacity_full: float | None
    capacity_design: float | None
    cell_count: int | None
    has_usb: bool | None
    nominal_voltage: float | None


class MeterRecord(NamedTuple):
    """An energy meter (``mirror_meters``), keyed by (inverter, bus address)."""

    inverter_serial: str
    address: int
    serial_number: str | None
    manufacturer_code: str | None
    type_code: int | None
    hardware_version: int | None
    software_version: int | None
    baud_rate: int | None


class InverterChangeKind(enum.StrEnum):
    """What an inverter history row records."""

    STATUS = "status"
    FIRMWARE_ARM = "firmware_arm"
    FIRMWARE_DSP = "firmware_dsp"
    ACCOUNT = "account"
    REMOVED = "removed"
    RESTORED = "restored"


class Entity(enum.StrEnum):
    """The mirrored tables, in the order they are written (links point to earlier entities)."""

    ACCOUNTS = "accounts"
    SITES = "sites"
    DONGLES = "dongles"
    INVERTERS = "inverters"
    BATTERIES = "batteries"
    METERS = "meters"


KEY_WIDTH: dict[Entity, int] = {
    Entity.ACCOUNTS: 1,
    Entity.SITES: 1,
    Entity.DONGLES: 1,
    Entity.INVERTERS: 1,
    Entity.BATTERIES: 2,
    Entity.METERS: 2,
}
"""How many leading fields of each entity's record form its upstream key."""


@dataclass(slots=True)
class Snapshot:
    """What a sync fetched. ``None`` means "not fetched this time": nothing of that kind is removed.

    A list that may have shifted while it was paged (its total changed) is fetched but marked incomplete:
    its rows are inserted and updated, never removed.
    """

    accounts: list[AccountRecord] | None = None
    sites: list[SiteRecord] | None = None
    dongles: list[DongleRecord] | None = None
    inverters: list[InverterRecord] | None = None
    batteries: list[BatteryRecord] | None = None
    meters: list[MeterRecord] | None = None
    incomplete: set[Entity] = field(default_factory=set)

    def records(self, entity: Entity) -> list[Any] | None:
        """The fetched records of one entity."""
        value: list[Any] | None = getattr(self, entity.value)
        return value


class SyncPlan(NamedTuple):
    """How many upstream requests a sync needs, per step, and when it should finish."""

    requests: int
    steps: dict[str, int]
    eta_seconds: float | None


@dataclass(slots=True)
class Counts:
    """Rows written by a sync (history rows counted apart)."""

    inserted: int = 0
    updated: int = 0
    removed: int = 0
    history: int = 0
    seen: int = 0

    def add(self, other: Counts) -> None:
        """Accumulate ``other`` into this one."""
        self.inserted += other.inserted
        self.updated += other.updated
        self.removed += other.removed
        self.history += other.history
        self.seen += other.seen

    @property
    def written(self) -> int:
        """Rows inserted, updated or removed (what a user would call "changed")."""
        return self.inserted + self.updated + self.removed
