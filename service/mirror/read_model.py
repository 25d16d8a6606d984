"""Read models of the mirror: the plain fields REST and GraphQL show of a mirrored row, declared once.

A read model is a plain class of annotated scalar fields, named after the ORM columns and in the order both APIs
list them. The REST view (a pydantic model in :mod:`service.api.fleet`) and the strawberry type (in
:mod:`service.gql.mirror.types`, through :func:`service.gql.types.common.read_fields`) inherit it, so a field
declared here appears in both, with the same type. Each adapter adds only what is its own: GraphQL descriptions (a
field redeclared with ``strawberry.field`` keeps its place), relations, nested lists. :func:`read_values` takes
the values off an ORM row by name.

Adding an inverter field touches five places: the ORM model (:class:`service.db.models.mirror.Inverter`), a
migration, the upstream record and its normaliser (:class:`service.mirror.schemas.InverterRecord`,
:func:`service.mirror.upstream.device_records`), and :class:`InverterRead`. ``tests/mirror/test_read_model.py``
keeps that list honest. The sync's records (:mod:`service.mirror.schemas`) are not read models: a field added to
one (a battery module's or a meter's too) reaches neither API until a read model or an adapter declares it.

Why a read model repeats its record's fields rather than taking them from it: a ``NamedTuple`` cannot inherit
fields, a class built at run time is no base class to mypy, and a dataclass base shared by both would make records
mutable, put key fields out of first place and slow the sync's record comparison about fivefold.
"""

from __future__ import annotations

import typing
from datetime import date, datetime
from typing import Any


class AccountRead:
    """The fields REST and GraphQL both show of an account, first (GraphQL adds its own after them: the address,
    telephone number and ``changed_at``, which REST does not show)."""

    upstream_id: int
    username: str
    first_name: str | None
    surname: str | None
    role: str | None
    email: str | None
    postcode: str | None
    country: str | None
    timezone: str | None
    depth: int
    parent_upstream_id: int | None
    first_seen_at: datetime
    last_seen_at: datetime
    removed_at: datetime | None


class SiteRead:
    """The fields REST and GraphQL both show of a site, first (each adds its own after them).

    ``timezone`` is shared for its name, place and type only; each adapter fills it as it always has: REST with
    the upstream's ``timezone`` label (``GMT``, ``GMT +6``: :class:`service.api.fleet.SiteView`), GraphQL with the
    site's IANA name (upstream ``tz_timezone``, e.g. ``Europe/London``) when known, else that label
    (:meth:`service.gql.mirror.types.Site.from_row`).
    """

    upstream_id: int
    name: str | None
    account_upstream_id: int | None
    account_username: str | None
    date_created: date | None
    country: str | None
    timezone: str | None
    latitude: float | None
    longitude: float | None
    type: str | None


class DongleRead:
    """A communication device as REST and GraphQL show it."""

    serial: str
    type: str | None
    firmware_version: str | None
    commission_date: datetime | None
    account_upstream_id: int | None
    site_upstream_id: int | None
    inverter_serial: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    removed_at: datetime | None


class InverterRead:
    """An inverter as REST and GraphQL show it."""

    serial: str
    status: str | None
    status_since: datetime | None
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
    flags: list[str]
    is_controllable: bool | None
    dongle_serial: str | None
    account_upstream_id: int | None
    site_upstream_id: int | None
    first_seen_at: datetime
    last_seen_at: datetime
    changed_at: datetime
    removed_at: datetime | None


class BatteryModuleRead:
    """The fields REST and GraphQL both show of a battery module, first (REST shows it inside its inverter;
    GraphQL adds the inverter's serial, ``has_usb`` and ``removed_at`` after them)."""

    position: int
    module_number: int | None
    serial: str | None
    firmware_version: str | None
    capacity_full: float | None
    capacity_design: float | None
    cell_count: int | None
    nominal_voltage: float | None


class MeterRead:
    """The fields REST and GraphQL both show of a meter, first (REST shows it inside its inverter; GraphQL adds
    the inverter's serial and ``removed_at`` after them)."""

    address: int
    serial_number: str | None
    manufacturer_code: str | None
    type_code: int | None
    hardware_version: int | None
    software_version: int | None
    baud_rate: int | None


class SyncRunRead:
    """A sync run as REST and GraphQL show it (each adds the id of its kind before these)."""

    kind: str
    state: str
    attempts: int
    started_at: datetime
    heartbeat_at: datetime
    finished_at: datetime | None
    planned_requests: int | None
    requests_used: int
    rate_limited: int
    server_errors: int
    rows_inserted: int
    rows_updated: int
    rows_removed: int
    history_rows: int
    site_status_included: bool
    error: str | None


def field_types(read_model: type[object]) -> dict[str, Any]:
    """The fields of ``read_model`` and their types (resolved), in declaration order (the caller must not change
    the dict: it is kept for the next call)."""
    types = _FIELD_TYPES.get(read_model)
    if types is None:
        types = _FIELD_TYPES[read_model] = typing.get_type_hints(read_model)
    return types


_FIELD_TYPES: dict[type[object], dict[str, Any]] = {}


def read_values(read_model: type[object], row: object) -> dict[str, Any]:
    """The values of ``read_model``'s fields, taken by name from an ORM ``row``."""
    return {name: getattr(row, name) for name in field_types(read_model)}
