"""Every query of the monitor, tenant-scoped (a repository is built with a ``TenantId``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.tenancy import TenantId
from service.db.models.credential import CredentialKind, UpstreamCredential
from service.db.models.mirror import Inverter
from service.db.models.monitoring import (
    Alert,
    AlertState,
    Incident,
    IncidentKind,
    IncidentState,
    MaintenanceWindow,
    MonitoredInverter,
    MonitoringSettings,
    Severity,
    SeverityOverride,
)
from service.db.models.notifications import NotificationEvent
from service.db.models.tenant import Tenant, TenantStatus
from service.mirror.queries import ReadScope

_CHUNK = 1000


class MonitoringRepository:
    """The monitor's rows of one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: TenantId) -> None:
        self.session = session
        self.tenant_id = tenant_id

    # --- settings --------------------------------------------------------------------------------------

    async def settings(self, *, for_update: bool = False) -> MonitoringSettings:
        """The tenant's settings row, created with the defaults when missing; locked until the transaction ends
        when ``for_update`` (a change: concurrent changes then apply one after the other)."""
        await self.session.execute(
            insert(MonitoringSettings).values(tenant_id=self.tenant_id).on_conflict_do_nothing()
        )
        found = await self.session.get(MonitoringSettings, self.tenant_id, populate_existing=True,
                                       with_for_update=for_update)
        assert found is not None  # noqa: S101 - inserted just above
        return found

    async def overrides(self) -> dict[str, Severity]:
        """The tenant's severity overrides by event name."""
        rows = await self.session.execute(select(SeverityOverride.event, SeverityOverride.severity)
                                          .where(SeverityOverride.tenant_id == self.tenant_id))
        return {event: severity for event, severity in rows.all()}

    # --- per-inverter state ----------------------------------------------------------------------------

    async def inverter_states(self, serials: Sequence[str] | None = None) -> dict[str, MonitoredInverter]:
        """Monitored inverters by serial: these ``serials``, or every one."""
        statement = select(MonitoredInverter).where(MonitoredInverter.tenant_id == self.tenant_id)
        if serials is not None:
            statement = statement.where(MonitoredInverter.inverter_serial.in_(serials))
        rows = await self.session.scalars(statement)
        return {row.inverter_serial: row for row in rows}

    async def save_states(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or update monitored inverters (``inverter_serial``, ``status``, ``site_upstream_id``,
        ``last_online``, ``swept_at``, ``status_changed_at``, ``needs_read``)."""
        for first in range(0, len(rows), _CHUNK):
            chunk = [{**row, "tenant_id": self.tenant_id} for row in rows[first : first + _CHUNK]]
            statement = insert(MonitoredInverter).values(chunk)
            excluded = statement.excluded
            await self.session.execute(statement.on_conflict_do_update(
                index_elements=[MonitoredInverter.tenant_id, MonitoredInverter.inverter_serial],
                set_={"status": excluded.status, "site_upstream_id": excluded.site_upstream_id,
                      "last_online": excluded.last_online, "swept_at": excluded.swept_at,
                      "status_changed_at": excluded.status_changed_at,
                      "needs_read": MonitoredInverter.needs_read | excluded.needs_read},
            ))

    async def mark_read(self, serials: Sequence[str], read_at: datetime) -> None:
        """Move the event cursor of ``serials`` to ``read_at`` (their first read's time too, on a first read) and
        drop their targeted-read marks."""
        await self.session.execute(
            update(MonitoredInverter)
            .where(MonitoredInverter.tenant_id == self.tenant_id, MonitoredInverter.inverter_serial.in_(serials))
            .values(events_read_at=read_at, needs_read=False,
                    first_read_at=func.coalesce(MonitoredInverter.first_read_at, read_at))
        )

    async def accounts_of(self, serials: Iterable[str]) -> dict[str, int | None]:
        """The mirrored account of each inverter (for subtree maintenance windows and subtree keys)."""
        wanted = list(serials)
        if not wanted:
            return {}
        rows = await self.session.execute(select(Inverter.serial, Inverter.account_upstream_id)
                                          .where(Inverter.tenant_id == self.tenant_id, Inverter.serial.in_(wanted)))
        return {serial: account for serial, account in rows.all()}

    # --- alerts ----------------------------------------------------------------------------------------

    async def latest_alerts(self, serials: Sequence[str]) -> dict[str, dict[str, Alert]]:
        """The latest alert of each (inverter, event) of ``serials``: the one not cleared, else the last
        cleared (for flap detection); locked for update (two sweeps never race on one alert)."""
        if not serials:
            return {}
        ranked = (
            select(Alert.id)
            .where(Alert.tenant_id == self.tenant_id, Alert.inverter_serial.in_(serials))
            .order_by(Alert.inverter_serial, Alert.event,
                      case((Alert.state == AlertState.CLEARED, 1), else_=0), Alert.cleared_at.desc().nulls_last())
            .ext(distinct_on(Alert.inverter_serial, Alert.event))
        )
        rows = await self.session.scalars(select(Alert).where(Alert.id.in_(ranked)).with_for_update())
        found: dict[str, dict[str, Alert]] = {}
        for alert in rows:
            found.setdefault(alert.inverter_serial, {})[alert.event] = alert
        return found

    def add(self, row: Alert | Incident | NotificationEvent | MaintenanceWindow) -> None:
        """Stage a new row."""
        self.session.add(row)

    async def open_alerts_of_event(self, event: str) -> dict[str, Alert]:
        """Alerts of ``event`` that are not cleared, by inverter."""
        rows = await self.session.scalars(select(Alert).where(
            Alert.tenant_id == self.tenant_id, Alert.event == event, Alert.state != AlertState.CLEARED))
        return {alert.inverter_serial: alert for alert in rows}

    async def alert(self, alert_id: uuid.UUID, *, for_update: bool = False) -> Alert | None:
        """One alert of this tenant."""
        statement = select(Alert).where(Alert.tenant_id == self.tenant_id, Alert.id == alert_id)
        if for_update:
            statement = statement.with_for_update()
        found: Alert | None = await self.session.scalar(statement)
        return found

    # --- incidents -------------------------------------------------------------------------------------

    async def open_storm(self) -> Incident | None:
        """The open fleet-wide incident, if any."""
        found: Incident | None = await self.session.scalar(select(Incident).where(
            Incident.tenant_id == self.tenant_id, Incident.kind == IncidentKind.STORM,
            Incident.state == IncidentState.OPEN))
        return found

    async def open_site_incidents(self, sites: Iterable[int]) -> dict[int, Incident]:
        """The open incidents of ``sites``."""
        wanted = list(sites)
        if not wanted:
            return {}
        rows = await self.session.scalars(select(Incident).where(
            Incident.tenant_id == self.tenant_id, Incident.kind == IncidentKind.SITE,
            Incident.state == IncidentState.OPEN, Incident.site_upstream_id.in_(wanted)).with_for_update())
        return {row.site_upstream_id: row for row in rows if row.site_upstream_id is not None}

    async def not_cleared_by_site(self, sites: Iterable[int]) -> dict[int, list[Alert]]:
        """The alerts not cleared of ``sites``."""
        wanted = list(sites)
        if not wanted:
            return {}
        rows = await self.session.scalars(select(Alert).where(
            Alert.tenant_id == self.tenant_id, Alert.site_upstream_id.in_(wanted), Alert.state != AlertState.CLEARED))
        found: dict[int, list[Alert]] = {site: [] for site in wanted}
        for alert in rows:
            if alert.site_upstream_id is not None:
                found[alert.site_upstream_id].append(alert)
        return found

    # --- maintenance -----------------------------------------------------------------------------------

    async def under_maintenance(self, now: datetime) -> tuple[set[int], set[int]]:
        """Sites and accounts (subtrees expanded) inside a maintenance window at ``now``."""
        windows = (await self.session.scalars(select(MaintenanceWindow).where(
            MaintenanceWindow.tenant_id == self.tenant_id, MaintenanceWindow.starts_at <= now,
            MaintenanceWindow.ends_at > now))).all()
        sites = {w.site_upstream_id for w in windows if w.site_upstream_id is not None}
        accounts: set[int] = set()
        scope = ReadScope(self.tenant_id)
        for root in {w.account_upstream_id for w in windows if w.account_upstream_id is not None}:
            accounts.update((await self.session.scalars(scope.subtree(root))).all())
            accounts.add(root)
        return sites, accounts

    async def window(self, window_id: uuid.UUID) -> MaintenanceWindow | None:
        """One maintenance window of this tenant."""
        found: MaintenanceWindow | None = await self.session.scalar(select(MaintenanceWindow).where(
            MaintenanceWindow.tenant_id == self.tenant_id, MaintenanceWindow.id == window_id))
        return found

    async def delete_window(self, window: MaintenanceWindow) -> None:
        """Remove a maintenance window (alerts it suppressed stay suppressed: they were never notified)."""
        await self.session.delete(window)


async def counts_by_severity(session: AsyncSession, conditions: Sequence[ColumnElement[bool]]) -> dict[Severity, int]:
    """Alerts matching ``conditions`` per severity (every severity present, zero included)."""
    rows = await session.execute(select(Alert.severity, func.count()).where(and_(*conditions)).group_by(Alert.severity))
    found = {severity: 0 for severity in Severity}
    found.update({severity: count for severity, count in rows.all()})
    return found


async def due_tenants(session: AsyncSession, by: datetime) -> list[uuid.UUID]:
    """Active tenants with an API token whose monitoring is enabled (or not configured: on by default) and
    whose next cycle is due by ``by`` (every tenant: for the scheduler only)."""
    statement = (
        select(UpstreamCredential.tenant_id)
        .join(Tenant, Tenant.id == UpstreamCredential.tenant_id)
        .outerjoin(MonitoringSettings, MonitoringSettings.tenant_id == UpstreamCredential.tenant_id)
        .where(
            UpstreamCredential.kind == CredentialKind.API_TOKEN,
            Tenant.status == TenantStatus.ACTIVE,
            or_(MonitoringSettings.tenant_id.is_(None),
                and_(MonitoringSettings.enabled, or_(MonitoringSettings.next_sweep_at.is_(None),
                                                     MonitoringSettings.next_sweep_at <= by))),
        )
        .distinct()
    )
    return list((await session.scalars(statement)).all())

