"""The mirror: each tenant's GivEnergy fleet as last seen upstream, its history, and the sync runs that keep it.

Every mirrored row is tenant-owned and keyed by ``(tenant_id, upstream key)``; links between mirrored rows are
composite foreign keys on ``(tenant_id, upstream key)``, so a row can never point into another tenant's fleet and
the sync can write links in bulk without looking up surrogate ids. A row that disappears upstream is marked
``removed_at``, never deleted (it comes back, with ``removed_at`` cleared, if it reappears).

``first_seen_at`` is when the sync first saw the row, ``changed_at`` when any mirrored field last changed.
``last_seen_at`` is refreshed when the row changes and otherwise at most once per
``sync.last_seen_granularity_seconds`` so that a sync that finds no change writes no rows; for an exact
answer, a row not removed was seen by the tenant's last successful sync (``mirror_sync_runs``).
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, UUIDPrimaryKey, tenant_fk, value_enum
from service.mirror.schemas import InverterChangeKind

FOLDED_STATUS = "upper(coalesce(status, ''))"
"""An inverter's status as the ``statusIn`` filter compares it (case-insensitively, a missing one as ``''``);
indexed as it is, so a filter on a status is an index scan."""


def _tenant_link(column: str, target: str, *, name: str) -> ForeignKeyConstraint:
    """A link to another mirrored row of the same tenant: ``(tenant_id, column)`` -> ``target`` (``"table.key"``)."""
    table = target.split(".")[0]
    return ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", target], name=name)


def _tenant_index(table: str, column: str) -> Index:
    """An index on ``(tenant_id, column)`` of ``table``."""
    return Index(f"ix_{table}_tenant_id_{column}", "tenant_id", column)



class Mirrored(UUIDPrimaryKey):
    """Columns shared by every mirrored row."""

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    changed_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class FleetAccount(Mirrored, Base):
    """An upstream account of the tenant's hierarchy (the credential's own account is the root, depth 0)."""

    __tablename__ = "mirror_accounts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "upstream_id"),
        _tenant_link("parent_upstream_id", "mirror_accounts.upstream_id", name="fk_mirror_accounts_parent"),
        _tenant_index("mirror_accounts", "username"),
        _tenant_index("mirror_accounts", "parent_upstream_id"),
    )

    upstream_id: Mapped[int] = mapped_column(BigInteger)
    username: Mapped[str] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(200))
    surname: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(50))
    email: Mapped[str | None] = mapped_column(String(320))
    address: Mapped[str | None] = mapped_column(String(500))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(100))
    telephone_number: Mapped[str | None] = mapped_column(String(50))
    timezone: Mapped[str | None] = mapped_column(String(64))
    standard_timezone: Mapped[str | None] = mapped_column(String(64))
    parent_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    depth: Mapped[int] = mapped_column(Integer, default=0)


class Site(Mirrored, Base):
    """An installation site; ``scheme_status`` is the site status (vacant, opted_in, opted_out, or none)."""

    __tablename__ = "mirror_sites"
    __table_args__ = (
        UniqueConstraint("tenant_id", "upstream_id"),
        _tenant_link("account_upstream_id", "mirror_accounts.upstream_id", name="fk_mirror_sites_account"),
        _tenant_index("mirror_sites", "account_upstream_id"),
    )

    upstream_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(String(200))
    account_username: Mapped[str | None] = mapped_column(String(200))
    account_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    date_created: Mapped[date | None] = mapped_column(Date)
    country: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str | None] = mapped_column(String(64))
    tz_timezone: Mapped[str | None] = mapped_column(String(64))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    type: Mapped[str | None] = mapped_column(String(50))
    products: Mapped[list[Any]] = mapped_column(JSONB, default=list)
    scheme_status: Mapped[str | None] = mapped_column(String(50))
    # When a check last found the status different (checks that find no change write nothing).
    scheme_status_checked_at: Mapped[datetime | None]


class Dongle(Mirrored, Base):
    """A communication device (WiFi/GPRS/LAN dongle) and where it sits."""

    __tablename__ = "mirror_dongles"
    __table_args__ = (
        UniqueConstraint("tenant_id", "serial"),
        _tenant_link("account_upstream_id", "mirror_accounts.upstream_id", name="fk_mirror_dongles_account"),
        _tenant_link("site_upstream_id", "mirror_sites.upstream_id", name="fk_mirror_dongles_site"),
        _tenant_index("mirror_dongles", "account_upstream_id"),
        _tenant_index("mirror_dongles", "site_upstream_id"),
    )

    serial: Mapped[str] = mapped_column(String(64))
    type: Mapped[str | None] = mapped_column(String(32))
    firmware_version: Mapped[str | None] = mapped_column(String(64))
    commission_date: Mapped[datetime | None]
    account_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    site_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    inverter_serial: Mapped[str | None] = mapped_column(String(64))


class Inverter(Mirrored, Base):
    """An inverter (behind a dongle) with its rating, firmware and current status."""

    __tablename__ = "mirror_inverters"
    __table_args__ = (
        UniqueConstraint("tenant_id", "serial"),
        _tenant_link("dongle_serial", "mirror_dongles.serial", name="fk_mirror_inverters_dongle"),
        _tenant_link("account_upstream_id", "mirror_accounts.upstream_id", name="fk_mirror_inverters_account"),
        _tenant_link("site_upstream_id", "mirror_sites.upstream_id", name="fk_mirror_inverters_site"),
        _tenant_index("mirror_inverters", "dongle_serial"),
        _tenant_index("mirror_inverters", "status"),
        Index("ix_mirror_inverters_tenant_id_status_folded", "tenant_id", text(FOLDED_STATUS)),
        _tenant_index("mirror_inverters", "account_upstream_id"),
        _tenant_index("mirror_inverters", "site_upstream_id"),
        _tenant_index("mirror_inverters", "firmware_arm"),
    )

    serial: Mapped[str] = mapped_column(String(64))
    dongle_serial: Mapped[str | None] = mapped_column(String(64))
    account_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    site_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str | None] = mapped_column(String(32))
    # When a sync first saw the current status ("offline since"; first seen for the first status).
    status_since: Mapped[datetime | None]
    last_online: Mapped[datetime | None]
    last_updated: Mapped[datetime | None]
    commission_date: Mapped[datetime | None]
    model: Mapped[str | None] = mapped_column(String(64))
    battery_type: Mapped[str | None] = mapped_column(String(32))
    battery_nominal_capacity: Mapped[float | None] = mapped_column(Float)
    battery_nominal_voltage: Mapped[float | None] = mapped_column(Float)
    battery_depth_of_discharge: Mapped[float | None] = mapped_column(Float)
    max_charge_rate: Mapped[float | None] = mapped_column(Float)
    max_discharge_rate: Mapped[float | None] = mapped_column(Float)
    warranty_type: Mapped[str | None] = mapped_column(String(64))
    warranty_expiry: Mapped[datetime | None]
    firmware_arm: Mapped[str | None] = mapped_column(String(32))
    firmware_dsp: Mapped[str | None] = mapped_column(String(32))
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list)
    is_controllable: Mapped[bool | None] = mapped_column(Boolean)


class BatteryModule(Mirrored, Base):
    """A battery module of an inverter, keyed by its position in the inverter's list (module numbers repeat)."""

    __tablename__ = "mirror_battery_modules"
    __table_args__ = (
        UniqueConstraint("tenant_id", "inverter_serial", "position"),
        _tenant_link("inverter_serial", "mirror_inverters.serial", name="fk_mirror_battery_modules_inverter"),
    )

    inverter_serial: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    module_number: Mapped[int | None] = mapped_column(Integer)
    serial: Mapped[str | None] = mapped_column(String(64))
    firmware_version: Mapped[str | None] = mapped_column(String(32))
    capacity_full: Mapped[float | None] = mapped_column(Float)
    capacity_design: Mapped[float | None] = mapped_column(Float)
    cell_count: Mapped[int | None] = mapped_column(Integer)
    has_usb: Mapped[bool | None] = mapped_column(Boolean)
    nominal_voltage: Mapped[float | None] = mapped_column(Float)


class Meter(Mirrored, Base):
    """An energy meter connected to an inverter, keyed by its bus address."""

    __tablename__ = "mirror_meters"
    __table_args__ = (
        UniqueConstraint("tenant_id", "inverter_serial", "address"),
        _tenant_link("inverter_serial", "mirror_inverters.serial", name="fk_mirror_meters_inverter"),
    )

    inverter_serial: Mapped[str] = mapped_column(String(64))
    address: Mapped[int] = mapped_column(Integer)
    serial_number: Mapped[str | None] = mapped_column(String(64))
    manufacturer_code: Mapped[str | None] = mapped_column(String(32))
    type_code: Mapped[int | None] = mapped_column(Integer)
    hardware_version: Mapped[int | None] = mapped_column(Integer)
    software_version: Mapped[int | None] = mapped_column(Integer)
    baud_rate: Mapped[int | None] = mapped_column(Integer)


class InverterChange(UUIDPrimaryKey, Base):
    """One observed change of an inverter: status transition, firmware update, move to another account.

    ``from_value``/``to_value`` are text (a status, a firmware version, an account upstream id); ``observed_at``
    is when the sync saw it (the upstream does not say when it happened).
    """

    __tablename__ = "mirror_inverter_changes"
    __table_args__ = (
        _tenant_link("inverter_serial", "mirror_inverters.serial", name="fk_mirror_inverter_changes_inverter"),
        Index("ix_mirror_inverter_changes_inverter", "tenant_id", "inverter_serial", "observed_at"),
        Index("ix_mirror_inverter_changes_kind", "tenant_id", "kind", "to_value"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    inverter_serial: Mapped[str] = mapped_column(String(64))
    kind: Mapped[InverterChangeKind] = mapped_column(
        value_enum(InverterChangeKind, "inverter_change_kind")
    )
    from_value: Mapped[str | None] = mapped_column(String(64))
    to_value: Mapped[str | None] = mapped_column(String(64))
    observed_at: Mapped[datetime]
    sync_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("mirror_sync_runs.id", ondelete="SET NULL"))


class SyncKind(enum.StrEnum):
    """A full sync (hierarchy, dongles, sites, site status) or a refresh (the dongle list only)."""

    FULL = "full"
    REFRESH = "refresh"


class SyncState(enum.StrEnum):
    """Where a sync run is."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class StatusWork(BaseModel):
    """Which site statuses a run checks: the ``count`` sites after site ``after`` (round-robin), skipping
    ``skip`` (the site discovery already probed); ``cursor`` is where the previous cycle stopped."""

    model_config = ConfigDict(frozen=True)

    after: int | None = None
    count: int = 0
    skip: int | None = None
    cursor: int | None = None


class SyncCheckpoint(BaseModel):
    """Where a sync run stands, written at every checkpoint; a new attempt resumes from it.

    Attributes:
        stage: ``lists`` (the lists are still to fetch and write), ``statuses`` (lists written, site statuses
            being checked in batches), ``done``.
        spread: Site statuses are checked in slices over this many runs (scheduled syncs); ``None``: all at once.
        seen: Rows seen upstream by the lists stage.
        seconds: Time the lists stage spent fetching, loading, reconciling and writing.
        status_work: The site statuses this run checks (set when the lists are written).
        status_done: How many of them are checked and written.
        status_cursor: The last site checked when this run completed a slice (the next run starts after it).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: Literal["lists", "statuses", "done"] = "lists"
    spread: int | None = None
    seen: int | None = None
    seconds: dict[str, float] = {}
    status_work: StatusWork | None = None
    status_done: int = 0
    status_cursor: int | None = None


class CheckpointType(TypeDecorator[SyncCheckpoint]):
    """A :class:`SyncCheckpoint` stored as JSONB."""

    impl = JSONB
    cache_ok = True

    def process_bind_param(self, value: SyncCheckpoint | None, dialect: Dialect) -> dict[str, Any]:
        return (value or SyncCheckpoint()).model_dump(mode="json")

    def process_result_value(self, value: Any, dialect: Dialect) -> SyncCheckpoint:
        return SyncCheckpoint.model_validate(value or {})


class SyncRun(UUIDPrimaryKey, Base):
    """One sync of one tenant: its plan, progress checkpoint, lease, counts and outcome.

    At most one run per tenant is unfinished (a partial unique index). The attempt working on it holds its
    lease (``lease_owner`` until ``lease_expires_at``, renewed by a heartbeat); an attempt that dies leaves it
    ``running`` with a lease that lapses, and the next attempt (a retry, a restarted worker, or the job the
    sweeper enqueues) takes the lease and resumes from ``progress``.
    """

    __tablename__ = "mirror_sync_runs"
    __table_args__ = (
        Index(
            "ix_mirror_sync_runs_one_running",
            "tenant_id",
            unique=True,
            postgresql_where=text("state = 'running'"),
        ),
        _tenant_index("mirror_sync_runs", "started_at"),
        Index("ix_mirror_sync_runs_lease_expires_at", "lease_expires_at", postgresql_where=text("state = 'running'")),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    credential_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("upstream_credentials.id", ondelete="SET NULL"))
    kind: Mapped[SyncKind] = mapped_column(value_enum(SyncKind, "sync_kind"))
    state: Mapped[SyncState] = mapped_column(
        value_enum(SyncState, "sync_state"), default=SyncState.RUNNING
    )
    job_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    planned_requests: Mapped[int | None] = mapped_column(Integer)
    planned_eta_seconds: Mapped[float | None] = mapped_column(Float)
    requests_used: Mapped[int] = mapped_column(Integer, default=0)
    rate_limited: Mapped[int] = mapped_column(Integer, default=0)
    server_errors: Mapped[int] = mapped_column(Integer, default=0)
    rows_inserted: Mapped[int] = mapped_column(Integer, default=0)
    rows_updated: Mapped[int] = mapped_column(Integer, default=0)
    rows_removed: Mapped[int] = mapped_column(Integer, default=0)
    history_rows: Mapped[int] = mapped_column(Integer, default=0)
    site_status_included: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    progress: Mapped[SyncCheckpoint] = mapped_column(CheckpointType(), default=SyncCheckpoint)
    error: Mapped[str | None] = mapped_column(Text)


class SyncSchedule(UUIDPrimaryKey, Base):
    """When a tenant's syncs run: intervals, and when each kind is next due."""

    __tablename__ = "mirror_sync_schedules"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    full_interval_seconds: Mapped[int] = mapped_column(Integer, default=86400)
    refresh_interval_seconds: Mapped[int] = mapped_column(Integer, default=900)
    next_full_at: Mapped[datetime | None]
    next_refresh_at: Mapped[datetime | None]
