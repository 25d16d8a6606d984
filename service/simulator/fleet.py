"""The simulated world: accounts, sites, communication devices with their inverters, EV chargers, smart devices.

Records are slotted dataclasses holding only what cannot be derived; battery modules and meters are derived on
demand from each device's ``seed`` so that 50,000 inverters stay small. The mutable records compare by identity
(``eq=False``): each is one thing in the world, changed in place by the simulator. Generation is a single pass over one
seeded ``random.Random``: the same seed always yields the same fleet.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from bisect import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from itertools import accumulate
from typing import Any

from service.simulator.catalogue import MODEL_LIST, MODEL_WEIGHTS, Kind, Model, Setting, catalogue, setting_index


class AccountType(IntEnum):
    """Account types, ordered so that ``>=`` means "at least this type" (the docs' ``+`` badge)."""

    CUSTOMER = 1
    ENGINEER = 2
    COMPANY = 3
    DISTRIBUTOR = 4


@dataclass(slots=True, eq=False)
class Account:
    """A GivEnergy Cloud account (a node of the distributor -> company -> engineer -> customer tree).

    Attributes:
        id: Numeric id.
        username: The ``name`` field of the API (also the legacy portal login).
        type: Account type (what the docs' ``account type`` badge checks).
        role: The ``role`` field (DISTRIBUTOR, COMPANY, ENGINEER, SUB_CONTRACTOR, OWNER, VIEWER).
        parent_id: Parent account id (``None`` for the distributor).
        children: Ids of direct children.
        device_ids: Indexes of devices this account owns (customers only).
        views: For a VIEWER, the id of the OWNER whose devices it sees.
    """

    id: int
    username: str
    type: AccountType
    role: str
    parent_id: int | None = None
    children: list[int] = field(default_factory=list)
    device_ids: list[int] = field(default_factory=list)
    views: int | None = None
    first_name: str = ""
    surname: str = ""
    email: str = ""
    address: str = ""
    postcode: str = ""
    country: str = "UNITED_KINGDOM"
    telephone_number: str = ""
    timezone: str = "GMT"
    standard_timezone: str = "Europe/London"
    password: str = field(default="", repr=False)


@dataclass(slots=True, eq=False)
class Site:
    """An installation site (GET /site)."""

    id: int
    account_id: int
    name: str
    date_created: str = "2021-01-01"
    country: str = "UNITED_KINGDOM"
    timezone: str = "GMT"
    tz_timezone: str = "Europe/London"
    latitude: float = 52.0
    longitude: float = -1.0
    three_phase: bool = False
    status: str | None = None


_DEFAULT_COMMISSIONING = datetime(2021, 1, 1, tzinfo=UTC)
TRANSIENT = "transient"
"""Key of the field metadata marking what is derived again when needed (a cache): no snapshot keeps it."""


@dataclass(slots=True, eq=False)
class Device:
    """A communication device (dongle) and the inverter behind it.

    Attributes:
        index: Position in generation order (stable list order).
        dongle_serial: ``serial_number`` of the communication device.
        serial: Inverter serial.
        model: Inverter model.
        owner_id: Owning customer account id.
        site_id: Site id.
        status: Current inverter status string (NORMAL, WAITING, LOST, ERROR, WARNING, UPDATING, ...).
        arm / dsp: Firmware versions.
        settings: True setting values that differ from the catalogue defaults.
        locked: Writes fail with -7 (another actor holds the inverter).
        another_actor: Writes are accepted and then not applied.
        forced_offline: Injected offline state (device calls answer -2) regardless of status.
        forced_timeout: Injected: device calls time out (-1).
        removed: The dongle was removed from the account (invisible everywhere).
    """

    index: int
    serial: str
    dongle_serial: str
    model: Model
    dongle_type: str = "WIFI"
    dongle_firmware: str | None = None
    owner_id: int = 0
    site_id: int = 0
    status: str = "NORMAL"
    status_before: str = "NORMAL"
    commission_date: datetime = _DEFAULT_COMMISSIONING
    last_online: datetime = _DEFAULT_COMMISSIONING
    last_updated: datetime = _DEFAULT_COMMISSIONING
    warranty_type: str = "Standard"
    warranty_expiry: datetime = _DEFAULT_COMMISSIONING
    arm: int = 449
    dsp: int = 449
    battery_count: int = 1
    reserve_min: int = 4
    max_charge_rate: int = 2600
    max_discharge_rate: int = 2600
    flags: tuple[str, ...] = ()
    seed: int = 0
    settings: dict[int, bool | int | str] | None = None
    locked: bool = False
    another_actor: bool = False
    forced_offline: bool = False
    forced_timeout: bool = False
    removed: bool = False
    numeric_strings: bool = False
    time_seconds: bool = False
    render_cache: dict[str, Any] | None = field(default=None, repr=False, metadata={TRANSIENT: True})

    @property
    def catalogue(self) -> tuple[Setting, ...]:
        """The inverter's setting catalogue."""
        return catalogue(self.model, self.reserve_min)

    @property
    def setting_index(self) -> dict[int, Setting]:
        """The catalogue keyed by setting id."""
        return setting_index(self.model, self.reserve_min)

    @property
    def controllable(self) -> bool:
        """Whether the inverter carries the ``is-controllable`` flag."""
        return "is-controllable" in self.flags

    def true_value(self, setting: Setting) -> bool | int | str:
        """The value the device really holds for a setting (canonical type)."""
        if self.settings is not None and setting.id in self.settings:
            return self.settings[setting.id]
        return setting.default

    def store(self, setting_id: int, value: bool | int | str) -> None:
        """Set a true setting value."""
        if self.settings is None:
            self.settings = {}
        self.settings[setting_id] = value

    def batteries(self) -> list[Battery]:
        """Battery modules, derived from the device seed (two modules may share a module number)."""
        if not self.model.has_battery:
            return []
        rng = random.Random(self.seed ^ 0xB477)  # noqa: S311 - simulation, not cryptography
        result: list[Battery] = []
        hv = self.model.hv
        design = 50 if hv else rng.choice((100, 160, 186))
        for number in range(1, self.battery_count + 1):
            module = number
            if number == 2 and self.seed % 7 == 0:
                module = 1  # seen in the field: two packs reporting module 1
            fade = rng.uniform(0.78, 1.0)
            result.append(
                Battery(
                    module_number=module,
                    serial=f"{'BG' if hv else 'BB'}{(self.seed >> 8) % 10000:04d}{chr(65 + number)}{number:03d}",
                    firmware_version=str(rng.choice((1035, 3005, 3010, 3014))),
                    capacity_full=round(design * fade, 2),
                    capacity_design=design,
                    cell_count=24 if hv else 16,
                    nominal_voltage=76.8 if hv else 51.2,
                )
            )
        return result

    def meters(self) -> list[Meter]:
        """Energy meters attached to the inverter (derived from the device seed)."""
        count = (self.seed >> 4) % 3
        return [
            Meter(
                address=number,
                serial_number=210000000 + (self.seed >> 12) % 9000000 * 10 + number,
                manufacturer_code="0000",
                type_code=1500 if number == 1 else 1200,
                hardware_version=1000,
                software_version=1000 + (self.seed >> 20) % 3 * 10,
                baud_rate=9600,
            )
            for number in range(1, count + 1)
        ]


@dataclass(frozen=True, slots=True)
class Battery:
    """A battery module of ``inverter.connections.batteries``."""

    module_number: int
    serial: str
    firmware_version: str
    capacity_full: float
    capacity_design: float
    cell_count: int
    nominal_voltage: float


@dataclass(frozen=True, slots=True)
class Meter:
    """An energy meter of ``inverter.connections.meters``."""

    address: int
    serial_number: int
    manufacturer_code: str
    type_code: int
    hardware_version: int
    software_version: int
    baud_rate: int


@dataclass(slots=True, eq=False)
class EvCharger:
    """An EV charger registered to a customer."""

    uuid: str
    serial_number: str
    owner_id: int
    seed: int
    alias: str = "EV Charger 1"
    online: bool = True
    went_offline_at: datetime | None = None
    status: str = "Available"
    mode: str = "Eco"
    plug_and_go: bool = True
    power_limit: int = 32
    session_energy_limit: float | None = None
    configuration_mode: str = "C"
    led: bool = True
    max_import: int = 100


@dataclass(slots=True, eq=False)
class SmartDevice:
    """A smart device (smart plug and the like) with its stored data points."""

    uuid: str
    owner_id: int
    alias: str
    graph_color: str = "#f0c27c"
    hardware_id: str = "P"
    local_key: str = "J"
    points: list[tuple[datetime, int]] = field(default_factory=list)


_FIRST = (
    "Anna", "Amy", "Jack", "Paul", "Archie", "Jessica", "Isabelle", "Oliver", "George", "Harry", "Noah", "Leo",
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Freya", "Arthur", "Muhammad", "Theo", "Oscar",
)  # fmt: skip
_SURNAMES = (
    "Adams", "Owen", "Palmer", "Edwards", "Jones", "King", "Williams", "Smith", "Taylor", "Brown", "Wilson",
    "Evans", "Thomas", "Johnson", "Roberts", "Walker", "Wright", "Robinson", "Thompson", "White", "Hughes",
)  # fmt: skip
_STREETS = ("High Street", "Station Road", "Church Lane", "Mill Road", "Park Avenue", "Kyle Lights", "John Lake")
_POSTCODES = ("SP1 1NE", "AB22 8ZW", "WS11 1ZY", "LE4 4JR", "MK9 2AD", "TW15 3EQ", "YO8 9AA", "ST4 2RS")
# (standard timezone, GMT label, country, latitude, longitude, share)
_ZONES = (
    ("Europe/London", "GMT", "UNITED_KINGDOM", 52.5, -1.5, 85),
    ("Europe/Dublin", "GMT", "IRELAND", 53.3, -6.3, 6),
    ("Europe/Amsterdam", "GMT +1", "NETHERLANDS", 52.4, 4.9, 4),
    ("Europe/Madrid", "GMT +1", "SPAIN", 40.4, -3.7, 3),
    ("Atlantic/Azores", "GMT -1", "PORTUGAL", 37.7, -25.7, 2),
)
_ZONE_CUMULATIVE = list(accumulate(zone[5] for zone in _ZONES))
_MODEL_CUMULATIVE = list(accumulate(MODEL_WEIGHTS))
_FLAG_FULL_POWER = "full-power-discharge-in-eco-mode"
_FLAG_CONTROLLABLE = "is-controllable"
_HISTORY_EPOCH = datetime(2019, 1, 1, tzinfo=UTC)
_SERIAL_SPACE = 26 * 10_000 * 1000


def token_for(seed: int, name: str) -> str:
    """The deterministic bearer token of a named token (same seed, same tokens)."""
    return hashlib.sha256(f"givfleet-simulator:{seed}:{name}".encode()).hexdigest()[:48]


def make_serial(prefix: str, number: int) -> str:
    """A serial such as ``CE1234G567`` from a two-letter prefix and a number below 260,000,000."""
    letter = chr(65 + number % 26)
    number //= 26
    return f"{prefix}{number % 10000:04d}{letter}{number // 10000 % 1000:03d}"


@dataclass(frozen=True, slots=True)
class Fractions:
    """Shares of awkward inverters used during generation."""

    locked: float
    another_actor: float
    not_controllable: float
    dead: float
    new_status: float
    ev_charger: float
    smart_device: float


@dataclass(slots=True)
class FleetRecords:
    """The records a fleet is made of, without its indexes (what :mod:`.snapshot` keeps)."""

    accounts: list[Account]
    sites: list[Site]
    devices: list[Device]
    ev_chargers: list[EvCharger]
    smart_devices: list[SmartDevice]
    named_accounts: dict[str, int]


class Fleet:
    """All records of the simulated world with the indexes that keep list pages fast.

    Mutations go through :class:`service.simulator.Simulator` methods, which keep the indexes in step.
    """

    def __init__(self, records: FleetRecords | None = None) -> None:
        """An empty fleet, or one of these records (indexed)."""
        if records is None:
            records = FleetRecords([], [], [], [], [], {})
        self.accounts: dict[int, Account] = {account.id: account for account in records.accounts}
        self.accounts_by_username: dict[str, Account] = {account.username: account for account in records.accounts}
        self.sites: dict[int, Site] = {site.id: site for site in records.sites}
        self.devices: list[Device] = records.devices
        self.by_serial: dict[str, Device] = {device.serial: device for device in records.devices}
        self.by_dongle: dict[str, Device] = {device.dongle_serial: device for device in records.devices}
        self.ev_chargers: dict[str, EvCharger] = {charger.uuid: charger for charger in records.ev_chargers}
        self.smart_devices: dict[str, SmartDevice] = {device.uuid: device for device in records.smart_devices}
        self.named_accounts: dict[str, int] = records.named_accounts
        self._subtree_cache: dict[int, list[int]] = {}
        self._device_cache: dict[int, list[Device]] = {}
        self._site_cache: dict[int, list[int]] = {}

    def records(self) -> FleetRecords:
        """The records (live, not copies), in the order they were made."""
        return FleetRecords(list(self.accounts.values()), list(self.sites.values()), self.devices,
                            list(self.ev_chargers.values()), list(self.smart_devices.values()), self.named_accounts)

    # ---- indexes ----------------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget cached subtree indexes (after any change of ownership)."""
        self._subtree_cache.clear()
        self._device_cache.clear()
        self._site_cache.clear()

    def sites_of(self, account_id: int) -> list[int]:
        """Ids of the sites an account can see (its customers' sites), in id order."""
        cached = self._site_cache.get(account_id)
        if cached is None:
            owners = set(self.customers_of(account_id))
            cached = [site_id for site_id, site in sorted(self.sites.items()) if site.account_id in owners]
            self._site_cache[account_id] = cached
        return cached

    def subtree(self, account_id: int) -> list[int]:
        """Ids of every descendant of an account (depth-first, excluding the account itself)."""
        cached = self._subtree_cache.get(account_id)
        if cached is None:
            cached = []
            stack = list(reversed(self.accounts[account_id].children))
            while stack:
                current = stack.pop()
                cached.append(current)
                stack.extend(reversed(self.accounts[current].children))
            self._subtree_cache[account_id] = cached
        return cached

    def devices_of(self, account_id: int) -> list[Device]:
        """Devices an account can see, in stable order: its own, a viewed owner's, or its whole subtree's."""
        cached = self._device_cache.get(account_id)
        if cached is None:
            account = self.accounts[account_id]
            owners = [account_id, *self.subtree(account_id)]
            if account.views is not None:
                owners.append(account.views)
            found: list[Device] = []
            for owner in owners:
                found.extend(self.devices[index] for index in self.accounts[owner].device_ids)
            cached = sorted((device for device in found if not device.removed), key=lambda device: device.index)
            self._device_cache[account_id] = cached
        return cached

    def can_see_account(self, viewer_id: int, account_id: int) -> bool:
        """Whether ``account_id`` is the viewer itself or in its subtree."""
        current: int | None = account_id
        while current is not None:
            if current == viewer_id:
                return True
            current = self.accounts[current].parent_id
        return False

    def can_see_owner(self, viewer_id: int, owner_id: int) -> bool:
        """Whether things owned by ``owner_id`` are visible to ``viewer_id`` (viewers see their owner's)."""
        viewer = self.accounts[viewer_id]
        if viewer.views is not None and viewer.views == owner_id:
            return True
        return self.can_see_account(viewer_id, owner_id)

    def visible_device(self, viewer_id: int, serial: str, *, dongle: bool = False) -> Device | None:
        """A device by inverter (or dongle) serial if the viewer may see it."""
        device = (self.by_dongle if dongle else self.by_serial).get(serial)
        if device is None or device.removed or not self.can_see_owner(viewer_id, device.owner_id):
            return None
        return device

    def customers_of(self, account_id: int) -> list[int]:
        """Ids of customer accounts visible to an account (itself included when it is a customer)."""
        ids = [account_id, *self.subtree(account_id)]
        account = self.accounts[account_id]
        if account.views is not None:
            ids.append(account.views)
        return [i for i in ids if self.accounts[i].type is AccountType.CUSTOMER]


class FleetGenerator:
    """Builds a :class:`Fleet` from a seed in one pass."""

    def __init__(self, seed: int, fleet_size: int, fractions: Fractions) -> None:
        """Prepare a generator.

        Args:
            seed: Seed of everything generated.
            fleet_size: Number of devices (inverters).
            fractions: Shares of awkward inverters and of customers with EV chargers / smart devices.
        """
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not cryptography
        self._seed = seed
        self._size = fleet_size
        self._fractions = fractions
        self._fleet = Fleet()
        self._next_account = 1
        self._next_site = 1
        # An affine map over the serial space gives unique, scattered serials.
        self._serial_mul = 7_919 * 2 + 1
        self._serial_add = self._rng.randrange(_SERIAL_SPACE)

    def build(self) -> Fleet:
        """Generate the fleet."""
        fleet = self._fleet
        distributor = self._account(AccountType.DISTRIBUTOR, "DISTRIBUTOR", None, "distributor")
        main = self._account(AccountType.COMPANY, "COMPANY", distributor, "company")
        other = self._account(AccountType.COMPANY, "COMPANY", distributor, "other_company")
        other_share = max(1, self._size // 10) if self._size >= 5 else 0
        main_share = self._size - other_share
        self._company(main, main_share, primary=True)
        if other_share:
            self._company(other, other_share, primary=False)
        fleet.named_accounts.setdefault("customer", fleet.named_accounts.get("any_customer", 0))
        fleet.invalidate()
        return fleet

    # ---- structure ----------------------------------------------------------------------------------------

    def _company(self, company: Account, inverters: int, *, primary: bool) -> None:
        engineers = [
            self._account(AccountType.ENGINEER, "ENGINEER", company, "engineer" if primary and i == 0 else None)
            for i in range(max(1, inverters // 250))
        ]
        if inverters >= 10:
            engineers += [
                self._account(
                    AccountType.ENGINEER, "SUB_CONTRACTOR", company, "sub_contractor" if primary and i == 0 else None
                )
                for i in range(max(1, inverters // 1000))
            ]
        remaining = inverters
        position = 0
        while remaining > 0:
            installer = engineers[position % len(engineers)]
            position += 1
            count = 2 if remaining >= 2 and self._rng.random() < 0.08 else 1
            customer = self._customer(installer, primary=primary and position == 1)
            site = self._site(customer)
            for _ in range(count):
                self._device(customer, site)
            remaining -= count

    def _customer(self, installer: Account, *, primary: bool) -> Account:
        rng = self._rng
        customer = self._account(AccountType.CUSTOMER, "OWNER", installer, "customer" if primary else None)
        self._fleet.named_accounts.setdefault("any_customer", customer.id)
        if primary or rng.random() < 0.05:
            viewer = self._account(AccountType.CUSTOMER, "VIEWER", customer, "viewer" if primary else None)
            viewer.views = customer.id
            viewer.standard_timezone, viewer.timezone = customer.standard_timezone, customer.timezone
        if primary or rng.random() < self._fractions.ev_charger:
            self._ev_charger(customer)
        if primary or rng.random() < self._fractions.smart_device:
            self._smart_device(customer)
        return customer

    def _account(self, account_type: AccountType, role: str, parent: Account | None, name: str | None) -> Account:
        rng = self._rng
        first, surname = rng.choice(_FIRST), rng.choice(_SURNAMES)
        account_id = self._next_account
        self._next_account += 1
        username = f"{first.lower()}.{surname.lower()}.{account_id}"
        account = Account(account_id, username, account_type, role)
        account.first_name, account.surname = first, surname
        account.email = f"{first.lower()}.{surname.lower()}{account_id}@example.co.uk"
        account.address = f"{rng.randint(1, 120)} {rng.choice(_STREETS)}"
        account.postcode = rng.choice(_POSTCODES)
        account.telephone_number = f"07{rng.randint(100, 999)} {rng.randint(100000, 999999)}"
        zone = _ZONES[bisect(_ZONE_CUMULATIVE, rng.randrange(_ZONE_CUMULATIVE[-1]))]
        account.standard_timezone, account.timezone, account.country = zone[0], zone[1], zone[2]
        account.password = token_for(self._seed, f"password:{account_id}")[:16]
        if parent is not None:
            account.parent_id = parent.id
            parent.children.append(account_id)
        self._fleet.accounts[account_id] = account
        self._fleet.accounts_by_username[username] = account
        if name is not None:
            self._fleet.named_accounts[name] = account_id
        return account

    def _site(self, customer: Account) -> Site:
        rng = self._rng
        site = Site(self._next_site, customer.id, f"{customer.first_name} {customer.surname}")
        self._next_site += 1
        site.tz_timezone, site.timezone, site.country = (
            customer.standard_timezone,
            customer.timezone,
            customer.country,
        )
        zone = next(z for z in _ZONES if z[0] == customer.standard_timezone)
        site.latitude = round(zone[3] + rng.uniform(-1.5, 1.5), 6)
        site.longitude = round(zone[4] + rng.uniform(-1.5, 1.5), 6)
        created = _HISTORY_EPOCH + timedelta(days=rng.randrange(5 * 365))
        site.date_created = created.date().isoformat()
        self._fleet.sites[site.id] = site
        return site

    # ---- devices ------------------------------------------------------------------------------------------

    def _device(self, customer: Account, site: Site) -> Device:
        rng = self._rng
        fleet = self._fleet
        index = len(fleet.devices)
        model = MODEL_LIST[bisect(_MODEL_CUMULATIVE, rng.randrange(_MODEL_CUMULATIVE[-1]))]
        number = (index * self._serial_mul + self._serial_add) % _SERIAL_SPACE
        dongle_prefix = rng.choice(("WF", "WF", "WF", "WG", "GA"))
        device = Device(index, make_serial(model.serial_prefix, number), make_serial(dongle_prefix, number), model)
        device.seed = rng.getrandbits(48)
        device.dongle_type = {"WF": "WIFI", "WG": "WIFI", "GA": "GPRS"}[dongle_prefix]
        device.dongle_firmware = rng.choice((None, "3.1.1", "3.2.4"))
        device.owner_id = customer.id
        device.site_id = site.id
        if model.three_phase:
            site.three_phase = True
        commissioned = _HISTORY_EPOCH + timedelta(seconds=rng.randrange(6 * 365 * 86400))
        device.commission_date = commissioned
        device.warranty_type = "Standard" if commissioned.year >= 2022 else "Standard Legacy"
        device.warranty_expiry = commissioned + timedelta(days=365 * (12 if model.kind is Kind.AIO else 10))
        device.arm = rng.choice((182, 191, 449, 452, 612))
        device.dsp = device.arm + rng.choice((0, 1, 3))
        device.battery_count = rng.choice((1, 1, 2, 2, 3)) if model.has_battery else 0
        device.reserve_min = 5 if rng.random() < 0.3 else 4
        battery_limit = model.battery_max_w
        if model.has_battery and rng.random() < 0.25:
            battery_limit = rng.choice([limit for limit in (2600, 3000, 3600) if limit < battery_limit] or [2600])
        device.max_charge_rate = battery_limit if model.has_battery else 0
        device.max_discharge_rate = battery_limit if model.has_battery else 0
        fractions = self._fractions
        flags: list[str] = []
        if rng.random() >= fractions.not_controllable:
            flags.append(_FLAG_CONTROLLABLE)
        if model.kind in (Kind.HYBRID, Kind.AIO) and rng.random() < 0.4:
            flags.append(_FLAG_FULL_POWER)
        device.flags = tuple(flags)
        device.locked = rng.random() < fractions.locked
        device.another_actor = rng.random() < fractions.another_actor
        device.numeric_strings = rng.random() < 0.3
        device.time_seconds = rng.random() < 0.2
        device.status = "NORMAL" if rng.random() < 0.85 else "WAITING"
        if fractions.new_status and rng.random() < fractions.new_status:
            device.status = rng.choice(("OFF_GRID", "ON_GRID"))
        device.status_before = device.status
        if rng.random() < fractions.dead:
            device.status = "LOST"
        fleet.devices.append(device)
        fleet.by_serial[device.serial] = device
        fleet.by_dongle[device.dongle_serial] = device
        customer.device_ids.append(index)
        return device

    def _ev_charger(self, customer: Account) -> None:
        rng = self._rng
        charger_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        charger = EvCharger(charger_uuid, f"{rng.randrange(10**13, 10**14)}", customer.id, rng.getrandbits(32))
        charger.alias = rng.choice(("Garage", "Driveway", "EV Charger 1"))
        charger.status = rng.choice(("Available", "Available", "Preparing", "Charging", "SuspendedEV"))
        charger.mode = rng.choice(("Eco", "SuperEco", "Boost"))
        self._fleet.ev_chargers[charger_uuid] = charger

    def _smart_device(self, customer: Account) -> None:
        rng = self._rng
        device_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        device = SmartDevice(device_uuid, customer.id, rng.choice(("Immersion", "Dishwasher", "Heat pump")))
        device.graph_color = f"#{rng.getrandbits(24):06x}"
        device.hardware_id = f"HW{rng.getrandbits(24):06X}"
        device.local_key = f"{rng.getrandbits(32):08x}"
        self._fleet.smart_devices[device_uuid] = device


def dead_since(device: Device, now: datetime) -> datetime:
    """A date weeks before ``now`` for inverters generated dead."""
    return now - timedelta(days=14 + device.seed % 60)


def is_gateway_or_ems(device: Device) -> bool:
    """Whether the device is a Gateway or an EMS (they answer with null leaves)."""
    return device.model.kind in (Kind.GATEWAY, Kind.EMS)
