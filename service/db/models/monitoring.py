"""Fault monitoring: alerts, incidents, maintenance windows, per-inverter poll state, per-tenant settings.

Alerts are never deleted: a cleared alert keeps its history and may be reopened (a flap). At most one alert
per ``(tenant, inverter, event)`` is not cleared (a partial unique index), and at most one incident per site
(and one fleet-wide storm incident) is open, so a repeated or resumed poll cannot create duplicates.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, UUIDPrimaryKey, tenant_fk, value_enum


class Severity(enum.StrEnum):
    """How bad an alert is, worst first."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    INFO = "info"


class AlertState(enum.StrEnum):
    """``open`` -> ``acknowledged`` -> ``cleared`` (a flap reopens a cleared alert)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class IncidentKind(enum.StrEnum):
    """An incident groups the open alerts of one site, or stands for a suspected fleet-wide outage."""

    SITE = "site"
    STORM = "storm"


class IncidentState(enum.StrEnum):
    """Open while it has open alerts (a storm: while the fleet is LOST); cleared afterwards."""

    OPEN = "open"
    CLEARED = "cleared"



class MonitoringSettings(Base):
    """A tenant's monitoring knobs; a tenant without a row uses the defaults (see ``service.monitoring``).

    ``next_sweep_at`` is when the next cycle is due (due times keep one sweep interval apart, see
    :func:`service.monitoring.rules.next_sweep_due`); ``last_sweep_at`` is when the last cycle that completed
    started (a new interval re-plans the next cycle from it).
    """

    __tablename__ = "monitoring_settings"
    __table_args__ = (
        CheckConstraint("sweep_interval_seconds >= 60", name="sweep_interval"),
        CheckConstraint("grace_seconds >= 60", name="grace"),
        CheckConstraint("storm_share > 0 AND storm_share <= 1", name="storm_share"),
        CheckConstraint("flap_window_seconds >= 0", name="flap_window"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk(), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sweep_interval_seconds: Mapped[int] = mapped_column(Integer, default=300)
    grace_seconds: Mapped[int] = mapped_column(Integer, default=1800)
    storm_share: Mapped[float] = mapped_column(Float, default=0.2)
    flap_window_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    next_sweep_at: Mapped[datetime | None]
    last_sweep_at: Mapped[datetime | None]


class SeverityOverride(UUIDPrimaryKey, Base):
    """A tenant's own severity for a cloud event name (the catalogue's otherwise)."""

    __tablename__ = "monitoring_severity_overrides"
    __table_args__ = (UniqueConstraint("tenant_id", "event"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    event: Mapped[str] = mapped_column(String(200))
    severity: Mapped[Severity] = mapped_column(value_enum(Severity, "monitoring_severity"))


class MonitoredInverter(UUIDPrimaryKey, Base):
    """What the monitor last saw of one inverter, and where its event reads stand.

    ``events_read_at`` is the cursor: the last time the inverter's events were read (every event that started
    before it has been seen); the next read asks for events from the oldest open alert's start or this time,
    whichever is earlier. The round-robin reads inverters in ``events_read_at`` order, oldest (or never) first.
    ``first_read_at`` is when its events were first read (that read lists the active events only): faults over
    before it, before the monitor watched the inverter, are not raised.
    """

    __tablename__ = "monitoring_inverters"
    __table_args__ = (
        UniqueConstraint("tenant_id", "inverter_serial"),
        Index("ix_monitoring_inverters_tenant_id_events_read_at", "tenant_id", "events_read_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    inverter_serial: Mapped[str] = mapped_column(String(64))
    site_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str | None] = mapped_column(String(32))
    last_online: Mapped[datetime | None]
    swept_at: Mapped[datetime]
    status_changed_at: Mapped[datetime | None]
    events_read_at: Mapped[datetime | None]
    first_read_at: Mapped[datetime | None]
    # Set when a sweep finds the status left NORMAL or changed: read its events first (cleared by the read).
    needs_read: Mapped[bool] = mapped_column(Boolean, default=False)


class Incident(UUIDPrimaryKey, Base):
    """The open alerts of one site, or a suspected fleet-wide outage (``storm``), with a one-line summary."""

    __tablename__ = "monitoring_incidents"
    __table_args__ = (
        CheckConstraint("(kind = 'site') = (site_upstream_id IS NOT NULL)", name="site_of_kind"),
        Index("uq_monitoring_incidents_open_site", "tenant_id", "site_upstream_id", unique=True,
              postgresql_where=text("state = 'open' AND kind = 'site'")),
        Index("uq_monitoring_incidents_open_storm", "tenant_id", unique=True,
              postgresql_where=text("state = 'open' AND kind = 'storm'")),
        Index("ix_monitoring_incidents_tenant_id_opened_at", "tenant_id", "opened_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    kind: Mapped[IncidentKind] = mapped_column(value_enum(IncidentKind, "monitoring_incident_kind"))
    site_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[IncidentState] = mapped_column(value_enum(IncidentState, "monitoring_incident_state"),
                                                 default=IncidentState.OPEN)
    severity: Mapped[Severity] = mapped_column(value_enum(Severity, "monitoring_severity"))
    summary: Mapped[str] = mapped_column(String(500))
    open_alerts: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]


class Alert(UUIDPrimaryKey, Base):
    """One fault (or loss of communication) of one inverter: raised, seen again, acknowledged, cleared.

    ``last_started_at`` is the start of the latest occurrence counted, so reading the same events again
    changes nothing. ``suppressed`` is set when the alert was raised or reopened inside a maintenance window.
    """

    __tablename__ = "monitoring_alerts"
    __table_args__ = (
        Index("uq_monitoring_alerts_not_cleared", "tenant_id", "inverter_serial", "event", unique=True,
              postgresql_where=text("state <> 'cleared'")),
        Index("ix_monitoring_alerts_tenant_id_inverter_serial_event", "tenant_id", "inverter_serial", "event"),
        Index("ix_monitoring_alerts_tenant_id_state_severity", "tenant_id", "state", "severity"),
        Index("ix_monitoring_alerts_tenant_id_site_upstream_id", "tenant_id", "site_upstream_id"),
        Index("ix_monitoring_alerts_tenant_id_last_seen_at", "tenant_id", "last_seen_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    inverter_serial: Mapped[str] = mapped_column(String(64))
    site_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    account_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(200))
    severity: Mapped[Severity] = mapped_column(value_enum(Severity, "monitoring_severity"))
    state: Mapped[AlertState] = mapped_column(value_enum(AlertState, "monitoring_alert_state"), default=AlertState.OPEN)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    last_started_at: Mapped[datetime]
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    flaps: Mapped[int] = mapped_column(Integer, default=0)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None]
    acknowledge_note: Mapped[str | None] = mapped_column(String(1000))
    cleared_at: Mapped[datetime | None]
    # Who cleared it: ``None`` when the monitor did (the event ended or the status was back to NORMAL).
    cleared_by: Mapped[str | None] = mapped_column(String(200))
    incident_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("monitoring_incidents.id"))


class MaintenanceWindow(UUIDPrimaryKey, Base):
    """A time when a site, or every site of an account subtree, is being worked on: alerts are recorded but
    suppressed (not notified)."""

    __tablename__ = "monitoring_maintenance_windows"
    __table_args__ = (
        CheckConstraint("(site_upstream_id IS NULL) <> (account_upstream_id IS NULL)", name="one_target"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_monitoring_maintenance_windows_tenant_id_ends_at", "tenant_id", "ends_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(tenant_fk())
    site_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    account_upstream_id: Mapped[int | None] = mapped_column(BigInteger)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
