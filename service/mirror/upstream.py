"""Fetching a tenant's fleet through the GivEnergy client: discovery, the plan, the lists, the per-item calls.

A sync first *discovers* (``GET /account``, every page of ``/account-children``, the first page of ``/site`` and
``/communication-device``, and one site status to learn whether the credential is approved). From then on the
number of requests is known exactly (``meta.last_page`` of every list, one call per expanded account and per
site status), so the plan is exact, and the discovery answers are reused rather than fetched again.

The public ``iter_*`` methods of the client hide page metadata; planning needs it, so list pages are fetched
with the client's request core (same limiter, lane, retries and error mapping).

Hierarchy: ``/account-children`` lists a whole subtree without parents. Parents come from
``/account-children/{id}`` of every account that can have children (company+ credentials), deepest subtree
wins; a VIEWER's parent is the OWNER whose devices it sees (one ``/account/{id}/devices`` call of one item).
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import httpx

from service.givenergy import CredentialLimiter, ForbiddenError, Lane, Page, PoolOwner, connection_pool
from service.mirror.schemas import (
    AccountRecord,
    BatteryRecord,
    DongleRecord,
    Entity,
    InverterRecord,
    MeterRecord,
    SiteRecord,
    SiteStatusRecord,
    Snapshot,
    SyncPlan,
)
from service.upstream import UpstreamTarget, api_client

_T = TypeVar("_T")
_K = TypeVar("_K")

EXPANDABLE_ROLES = frozenset({"DISTRIBUTOR", "COMPANY", "ENGINEER", "INSTALLER", "SUB_CONTRACTOR"})
"""Roles whose accounts can have children of their own."""
_RANK = {"DISTRIBUTOR": 4, "COMPANY": 3, "ENGINEER": 2, "INSTALLER": 2, "SUB_CONTRACTOR": 2}


# --- request accounting ------------------------------------------------------------------------------------


@dataclass
class RequestTap:
    """Counts every HTTP exchange with upstream (retries included), 429s and 5xx; calls ``on_response``."""

    requests: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    on_response: Callable[[int], None] | None = None

    async def __call__(self, response: httpx.Response) -> None:
        """An httpx response hook."""
        self.requests += 1
        if response.status_code == 429:
            self.rate_limited += 1
        elif response.status_code >= 500:
            self.server_errors += 1
        if self.on_response is not None:
            self.on_response(self.requests)


class UpstreamSession(PoolOwner):
    """A client bound to a target, in the sync lane, with every response counted by ``tap``."""

    def __init__(self, target: UpstreamTarget, tap: RequestTap) -> None:
        self.target = target
        self.tap = tap
        self._http = connection_pool(target.base_url, timeout=target.timeout, transport=target.transport,
                                     event_hooks={"response": [tap]})
        self.client = api_client(target.token, limiter=target.limiter, lane=Lane.SYNC, http_client=self._http)


# --- normalisation -----------------------------------------------------------------------------------------
#
# Payloads are normalised straight from their JSON (the client's typed models are for callers handling a few
# objects; validating 50,000 devices through them costs seconds). The same tolerance applies: a field of the
# wrong type or an unparseable leaf becomes ``None``, unknown fields are ignored, timestamps become aware UTC.

Payload = dict[str, Any]


def _s(value: Any, limit: int) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    return str(value)[:limit]


def _f(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _i(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        number = _f(value)
        return int(number) if number is not None and number.is_integer() else None


def _b(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _dt(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _d(value: Any) -> Payload:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    if isinstance(value, dict):  # Laravel serialises sparse arrays as objects keyed by index
        return list(value.values())
    return value if isinstance(value, list) else []


def account_record(account: Payload, parent: int | None = None) -> AccountRecord | None:
    """An upstream account (``GET /account``, ``/account-children``) as a record (``None`` without an id)."""
    upstream_id = _i(account.get("id"))
    if upstream_id is None:
        return None
    return AccountRecord(
        upstream_id=upstream_id,
        username=_s(account.get("name"), 200) or str(upstream_id),
        first_name=_s(account.get("first_name"), 200),
        surname=_s(account.get("surname"), 200),
        role=_s(account.get("role"), 50),
        email=_s(account.get("email"), 320),
        address=_s(account.get("address"), 500),
        postcode=_s(account.get("postcode"), 20),
        country=_s(account.get("country"), 100),
        telephone_number=_s(account.get("telephone_number"), 50),
        timezone=_s(account.get("timezone"), 64),
        standard_timezone=_s(account.get("standard_timezone"), 64),
        parent_upstream_id=parent,
        depth=0,
    )


def site_record(site: Payload) -> SiteRecord | None:
    """An upstream site as a record (``None`` without an id)."""
    site_id = _i(site.get("id"))
    if site_id is None:
        site_id = _i(site.get("site_id"))
    if site_id is None:
        return None
    return SiteRecord(
        upstream_id=site_id,
        name=_s(site.get("name"), 200),
        account_username=_s(site.get("account"), 200),
        account_upstream_id=None,
        date_created=_day(site.get("date_created")),
        country=_s(site.get("country"), 100),
        timezone=_s(site.get("timezone"), 64),
        tz_timezone=_s(site.get("tz_timezone"), 64),
        latitude=_f(site.get("latitude")),
        longitude=_f(site.get("longitude")),
        type=_s(site.get("type"), 50),
        products=tuple(_l(site.get("products"))),
    )


@dataclass(slots=True)
class DeviceRecords:
    """The records of one communication device."""

    dongle: DongleRecord
    inverter: InverterRecord | None
    batteries: list[BatteryRecord]
    meters: list[MeterRecord]


def _battery(inverter_serial: str, position: int, module: Payload) -> BatteryRecord:
    capacity = _d(module.get("capacity"))
    return BatteryRecord(
        inverter_serial=inverter_serial,
        position=position,
        module_number=_i(module.get("module_number")),
        serial=_s(module.get("serial"), 64),
        firmware_version=_s(module.get("firmware_version"), 32),
        capacity_full=_f(capacity.get("full")),
        capacity_design=_f(capacity.get("design")),
        cell_count=_i(module.get("cell_count")),
        has_usb=_b(module.get("has_usb")),
        nominal_voltage=_f(module.get("nominal_voltage")),
    )


def _meter(inverter_serial: str, position: int, meter: Payload) -> MeterRecord:
    address = _i(meter.get("address"))
    return MeterRecord(
        inverter_serial=inverter_serial,
        address=address if address is not None else position,
        serial_number=_s(meter.get("serial_number"), 64),
        manufacturer_code=_s(meter.get("manufacturer_code"), 32),
        type_code=_i(meter.get("type_code")),
        hardware_version=_i(meter.get("hardware_version")),
        software_version=_i(meter.get("software_version")),
        baud_rate=_i(meter.get("baud_rate")),
    )


def device_records(device: Payload, account: int | None = None) -> DeviceRecords | None:
    """A communication device (``/communication-device``, ``/account/{id}/devices``) and what hangs off it as
    records (``None`` without a serial). ``site_id`` comes from the device or its ``connections.datalog``."""
    inv = device.get("inverter") if isinstance(device.get("inverter"), dict) else None
    connections = _d(inv.get("connections")) if inv is not None else {}
    datalog = _d(connections.get("datalog"))
    serial = _s(device.get("serial_number"), 64) or _s(datalog.get("serial_number"), 64)
    if serial is None:
        return None
    site_id = _i(device.get("site_id"))
    if site_id is None:
        site_id = _i(datalog.get("site_id"))
    inverter_serial = _s(inv.get("serial"), 64) if inv is not None else None
    dongle = DongleRecord(
        serial=serial,
        type=_s(device.get("type"), 32),
        firmware_version=_s(device.get("firmware_version"), 64),
        commission_date=_dt(device.get("commission_date")),
        account_upstream_id=account,
        site_upstream_id=site_id,
        inverter_serial=inverter_serial,
    )
    if inv is None or inverter_serial is None:
        return DeviceRecords(dongle, None, [], [])
    info = _d(inv.get("info"))
    battery = _d(info.get("battery"))
    warranty = _d(inv.get("warranty"))
    firmware = _d(inv.get("firmware_version"))
    flags = tuple(sorted({flag for flag in (_s(item, 100) for item in _l(inv.get("flags"))) if flag}))
    inverter = InverterRecord(
        serial=inverter_serial,
        dongle_serial=serial,
        account_upstream_id=account,
        site_upstream_id=site_id,
        status=_s(inv.get("status"), 32),
        last_online=_dt(inv.get("last_online")),
        last_updated=_dt(inv.get("last_updated")),
        commission_date=_dt(inv.get("commission_date")),
        model=_s(info.get("model"), 64),
        battery_type=_s(info.get("battery_type"), 32),
        battery_nominal_capacity=_f(battery.get("nominal_capacity")),
        battery_nominal_voltage=_f(battery.get("nominal_voltage")),
        battery_depth_of_discharge=_f(battery.get("depth_of_discharge")),
        max_charge_rate=_f(info.get("max_charge_rate")),
        max_discharge_rate=_f(info.get("max_discharge_rate")),
        warranty_type=_s(warranty.get("type"), 64),
        warranty_expiry=_dt(warranty.get("expiry_date")),
        firmware_arm=_s(firmware.get("ARM"), 32),
        firmware_dsp=_s(firmware.get("DSP"), 32),
        flags=flags,
        is_controllable=_controllable(inv.get("flags"), flags),
    )
    batteries = [
        _battery(inverter_serial, position, module)
        for position, module in enumerate(_l(connections.get("batteries")), start=1)
        if isinstance(module, dict)
    ]
    meters: dict[int, MeterRecord] = {}
    for position, meter in enumerate(_l(connections.get("meters")), start=1):
        if isinstance(meter, dict):
            record = _meter(inverter_serial, position, meter)
            meters[record.address] = record
    return DeviceRecords(dongle, inverter, batteries, list(meters.values()))


def _controllable(sent: Any, flags: tuple[str, ...]) -> bool | None:
    """Whether the cloud says the inverter accepts commands: ``None`` when it sent no ``flags`` list at all.

    The docs (Inverter Flags) say a flag missing from the list does not apply, so ``"flags": []`` is ``False``;
    real payloads carry ``is-controllable`` (without it an inverter may ignore commands).
    """
    if not isinstance(sent, list | dict):
        return None
    return "is-controllable" in flags


def add_devices(snapshot: Snapshot, devices: Sequence[Payload]) -> None:
    """Fill the device lists of ``snapshot`` from ``devices`` (dongles, inverters, batteries, meters)."""
    snapshot.dongles, snapshot.inverters, snapshot.batteries, snapshot.meters = [], [], [], []
    for device in devices:
        records = device_records(device)
        if records is None:
            continue
        snapshot.dongles.append(records.dongle)
        if records.inverter is not None:
            snapshot.inverters.append(records.inverter)
        snapshot.batteries.extend(records.batteries)
        snapshot.meters.extend(records.meters)


# --- pages -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ListFetch:
    """A list being fetched: its first page (discovery) and the rest."""

    endpoint: str
    path_params: dict[str, str | int]
    page_size: int
    first: Page
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def pages(self) -> int:
        """Pages the list has (as its first page said)."""
        return max(self.first.last_page or 1, 1)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class Fetcher:
    """Lists and per-item calls of one sync, with bounded concurrency (the limiter paces the requests)."""

    def __init__(self, session: UpstreamSession, *, page_size: int, concurrency: int) -> None:
        self.client = session.client
        self.page_size = page_size
        self._gate = asyncio.Semaphore(concurrency)

    async def _gated(self, call: Awaitable[_T]) -> _T:
        try:
            async with self._gate:
                return await call
        finally:
            if inspect.iscoroutine(call) and inspect.getcoroutinestate(call) == inspect.CORO_CREATED:
                call.close()  # cancelled while waiting for a slot: the call never started

    async def page(
        self, endpoint: str, number: int, size: int, params: Sequence[tuple[str, Any]] = (), **path_params: str | int
    ) -> Page:
        """One page of a list."""
        return await self.client.get_page(endpoint, page=number, page_size=size, params=params, **path_params)

    async def start_list(
        self,
        endpoint: str,
        *,
        page_size: int | None = None,
        params: Sequence[tuple[str, Any]] = (),
        **path_params: str | int,
    ) -> ListFetch:
        """Fetch the first page of a list (what discovery does)."""
        size = page_size or self.page_size
        first = await self.page(endpoint, 1, size, params, **path_params)
        return ListFetch(endpoint, path_params, size, first, tuple(params))

    async def finish_list(self, fetch: ListFetch) -> tuple[list[Payload], bool]:
        """Every item of a list: pages 2..last concurrently, then any page a ``next`` link still promises.

        Returns:
            The items, and whether the list held still while it was paged (same ``total`` on every page).
        """
        pages = await gather_all(
            [
                self._gated(self.page(fetch.endpoint, number, fetch.page_size, fetch.params, **fetch.path_params))
                for number in range(2, fetch.pages + 1)
            ]
        )
        ordered = [fetch.first, *pages]
        number = len(ordered)
        while ordered[-1].has_next and ordered[-1].items:
            number += 1
            ordered.append(await self.page(fetch.endpoint, number, fetch.page_size, fetch.params, **fetch.path_params))
        totals = {page.total for page in ordered}
        items = [item for page in ordered for item in page.items]
        steady = len(totals) == 1 and (fetch.first.total is None or fetch.first.total == len(items))
        return items, steady

    async def each(self, call: Callable[[_K], Awaitable[_T]], keys: Sequence[_K]) -> list[_T]:
        """``call(key)`` for every key with bounded concurrency; results in order."""
        return await gather_all([self._gated(call(key)) for key in keys])


# --- discovery and the plan --------------------------------------------------------------------------------


@dataclass(slots=True)
class Discovery:
    """What discovery learnt: the root account, every account, the first pages of the other lists."""

    root: AccountRecord | None
    accounts: list[AccountRecord]
    accounts_steady: bool
    can_list_children: bool
    can_expand: bool
    sites: ListFetch | None
    devices: ListFetch
    site_status_probe: SiteStatusRecord | None
    approved: bool
    requests: int
    expand: list[int] = field(default_factory=list)
    viewers: list[int] = field(default_factory=list)


def build_plan(discovery: Discovery, *, full: bool, eta_seconds: float | None = None) -> SyncPlan:
    """The exact number of requests of a sync after discovery (discovery's own requests included)."""
    steps: dict[str, int] = {"discovery": discovery.requests}
    if full:
        steps["account_children"] = len(discovery.expand)
        steps["viewer_owner"] = len(discovery.viewers)
        if discovery.sites is not None:
            steps["site_pages"] = discovery.sites.pages - 1
        steps["device_pages"] = discovery.devices.pages - 1
        site_total = discovery.sites.first.total if discovery.sites is not None else None
        steps["site_status"] = max(0, (site_total or 0) - 1) if discovery.approved else 0
    else:
        steps["device_pages"] = discovery.devices.pages - 1
    return SyncPlan(sum(steps.values()), steps, eta_seconds)


async def eta_seconds(limiter: CredentialLimiter | None, requests: int) -> float | None:
    """When ``requests`` sync-lane requests should be done, from the limiter's budget (``None``: unlimited)."""
    if limiter is None or requests <= 0:
        return None if limiter is None else 0.0
    horizon = 60.0
    while horizon < 7 * 86400:
        capacity = await limiter.capacity(Lane.SYNC, horizon)
        if capacity >= requests:
            return horizon * requests / max(capacity, 1)
        horizon *= 2
    return math.inf


async def discover(fetcher: Fetcher, tap: RequestTap, *, full: bool) -> Discovery:
    """Discovery: who we are, the account list, the first pages of sites and devices, one site status."""
    client = fetcher.client
    started = tap.requests - tap.rate_limited - tap.server_errors

    def used() -> int:  # answered requests only: retries after 429/5xx are not part of any plan
        return tap.requests - tap.rate_limited - tap.server_errors - started

    if not full:
        devices = await fetcher.start_list("/communication-device")
        return Discovery(None, [], True, False, False, None, devices, None, False, used())
    me = await client.get_account()
    root = account_record(me.model_dump())
    rank = _RANK.get((root.role or "").upper(), 1) if root is not None else 1
    accounts: list[AccountRecord] = []
    steady = True
    can_list = rank >= 2
    if can_list:
        try:
            children = await fetcher.start_list("/account-children")
            payloads, steady = await fetcher.finish_list(children)
            accounts = [record for record in map(account_record, payloads) if record is not None]
        except ForbiddenError:
            can_list = False
    sites = await fetcher.start_list("/site")
    devices = await fetcher.start_list("/communication-device")
    probe: SiteStatusRecord | None = None
    approved = False
    first_site = next((record for record in map(site_record, sites.first.items) if record is not None), None)
    if first_site is not None:
        try:
            status = await client.get_site_status(first_site.upstream_id)
            probe = SiteStatusRecord(first_site.upstream_id, _s(status.status, 50))
            approved = True
        except ForbiddenError:
            approved = False
    discovery = Discovery(root, accounts, steady, can_list, can_list and rank >= 3, sites, devices, probe, approved, 0)
    root_id = root.upstream_id if root is not None else None
    if discovery.can_expand:
        discovery.expand = [
            a.upstream_id for a in accounts if a.upstream_id != root_id and (a.role or "").upper() in EXPANDABLE_ROLES
        ]
    if can_list:
        discovery.viewers = [a.upstream_id for a in accounts if (a.role or "").upper() == "VIEWER"]
    discovery.requests = used()
    return discovery


# --- the rest of a full sync -------------------------------------------------------------------------------


async def gather_all(calls: Sequence[Awaitable[_T]]) -> list[_T]:
    """Await every call concurrently; on the first failure cancel the others and raise it (no orphans)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _subtree(fetcher: Fetcher, account_id: int, size: int) -> tuple[int, list[int]]:
    fetch = await fetcher.start_list("/account-children/{id}", page_size=size, id=account_id)
    items, _ = await fetcher.finish_list(fetch)
    return account_id, [member for member in (_i(item.get("id")) for item in items) if member is not None]


async def _viewed_site(fetcher: Fetcher, viewer_id: int) -> tuple[int, int | None]:
    page = await fetcher.page("/account/{account}/devices", 1, 1, account=viewer_id)
    for item in page.items:
        records = device_records(item)
        if records is not None and records.dongle.site_upstream_id is not None:
            return viewer_id, records.dongle.site_upstream_id
    return viewer_id, None


def _device_snapshot(snapshot: Snapshot, devices: list[Payload], steady: bool) -> None:
    add_devices(snapshot, devices)
    if not steady:
        snapshot.incomplete |= {Entity.DONGLES, Entity.INVERTERS, Entity.BATTERIES, Entity.METERS}


async def fetch_full(fetcher: Fetcher, discovery: Discovery) -> Snapshot:
    """Everything of a full sync but the site statuses, as a snapshot."""
    snapshot = Snapshot()
    root = discovery.root
    size = max(fetcher.page_size, len(discovery.accounts) + 1)
    subtrees = await fetcher.each(lambda a: _subtree(fetcher, a, size), discovery.expand)
    assert discovery.sites is not None  # noqa: S101 - a full discovery always starts the site list
    site_payloads, sites_steady = await fetcher.finish_list(discovery.sites)
    device_payloads, devices_steady = await fetcher.finish_list(discovery.devices)
    viewed = await fetcher.each(lambda v: _viewed_site(fetcher, v), discovery.viewers)
    sites = [record for record in map(site_record, site_payloads) if record is not None]

    # Parent = the deepest expanded account whose subtree holds the account (smallest subtree wins).
    parent: dict[int, int] = {}
    if root is not None:
        parent.update({a.upstream_id: root.upstream_id for a in discovery.accounts})
    for owner, members in sorted(subtrees, key=lambda entry: len(entry[1]), reverse=True):
        for member in members:
            parent[member] = owner
    site_owner = {site.upstream_id: site.account_username for site in sites}
    by_username = {a.username: a.upstream_id for a in discovery.accounts}
    for viewer, site_id in viewed:
        owner_name = site_owner.get(site_id) if site_id is not None else None
        owner_id = by_username.get(owner_name) if owner_name is not None else None
        if owner_id is not None and owner_id != viewer:
            parent[viewer] = owner_id

    accounts = [root] if root is not None else []
    root_id = root.upstream_id if root is not None else None
    accounts += [
        a._replace(parent_upstream_id=parent.get(a.upstream_id)) for a in discovery.accounts if a.upstream_id != root_id
    ]
    snapshot.accounts = accounts
    snapshot.sites = sites
    if not discovery.accounts_steady:
        snapshot.incomplete.add(Entity.ACCOUNTS)
    if not sites_steady:
        snapshot.incomplete.add(Entity.SITES)
    _device_snapshot(snapshot, device_payloads, devices_steady)
    return snapshot


async def fetch_refresh(fetcher: Fetcher, discovery: Discovery) -> Snapshot:
    """The dongle list (every inverter with its status, batteries and meters) as a snapshot."""
    snapshot = Snapshot()
    device_payloads, steady = await fetcher.finish_list(discovery.devices)
    _device_snapshot(snapshot, device_payloads, steady)
    return snapshot


async def fetch_site_statuses(fetcher: Fetcher, site_ids: Sequence[int], fetched: dict[int, SiteStatusRecord]) -> None:
    """Put the scheme status of each site (approved credentials only) in ``fetched`` as it arrives, so that a
    caller interrupted midway still has the statuses already paid for."""

    async def one(site_id: int) -> None:
        status = await fetcher.client.get_site_status(site_id)
        fetched[site_id] = SiteStatusRecord(site_id, _s(status.status, 50))

    await fetcher.each(one, site_ids)
