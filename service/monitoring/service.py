"""What people do with alerts: read them (with counts by severity), acknowledge, clear, and manage maintenance
windows. Every method takes the caller's :class:`Principal`, checks it first, and never commits (the edge
owns the transaction). A key restricted to an account subtree sees and acts on the alerts of its subtree
only; another alert reads as not found.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.core import limits
from service.core.clock import utcnow
from service.core.errors import ConflictError, InvalidInputError, NotFoundError, not_in_mirror
from service.core.pagination import Cursor, Page, cursor_value
from service.core.principal import Principal
from service.db.lists import one_of
from service.db.models.mirror import FleetAccount, Inverter, Site
from service.db.models.monitoring import (
    Alert,
    AlertState,
    Incident,
    IncidentKind,
    IncidentState,
    MaintenanceWindow,
    Severity,
)
from service.db.models.notifications import NotificationEventType
from service.mirror.queries import ReadScope
from service.monitoring.repository import MonitoringRepository, counts_by_severity
from service.monitoring.sweep import AlertWriter
from service.policy import Action, authorize

_Row = TypeVar("_Row", Alert, Incident)
_State = TypeVar("_State", AlertState, IncidentState)
MAX_NOTE = 1000


@dataclass(frozen=True, kw_only=True)
class _StateFilter(Generic[_State]):
    """What alert and incident filters share: in one of ``states``, of ``severities``, at ``site``, under
    ``account`` (each optional)."""

    states: Sequence[_State] = ()
    severities: Sequence[Severity] = ()
    site: int | None = None
    account: int | None = None

    def _state_severity_site(self, model: type[Alert | Incident]) -> list[ColumnElement[bool]]:
        """The conditions on ``model``'s own state, severity and site columns."""
        conditions: list[ColumnElement[bool]] = []
        if self.states:
            conditions.append(model.state.in_(self.states))
        if self.severities:
            conditions.append(model.severity.in_(self.severities))
        if self.site is not None:
            conditions.append(model.site_upstream_id == self.site)
        return conditions


@dataclass(frozen=True, kw_only=True)
class AlertFilter(_StateFilter[AlertState]):
    """Which alerts to list (every field optional; the time range applies to when they were seen)."""

    inverter: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self, scope: ReadScope) -> list[ColumnElement[bool]]:
        """SQL conditions selecting the alerts the reader (``scope``) may see that match (on ``Alert``)."""
        conditions: list[ColumnElement[bool]] = [Alert.tenant_id == scope.tenant_id]
        if scope.restricted_account_id is not None:
            conditions.append(Alert.inverter_serial.in_(_serials_under(scope, scope.restricted_account_id)))
        if self.account is not None:
            conditions.append(Alert.inverter_serial.in_(_serials_under(scope, self.account)))
        conditions += self._state_severity_site(Alert)
        if self.inverter is not None:
            conditions.append(Alert.inverter_serial == self.inverter)
        if self.since is not None:
            conditions.append(Alert.last_seen_at >= self.since)
        if self.until is not None:
            conditions.append(Alert.first_seen_at < self.until)
        return conditions


def _serials_under(scope: ReadScope, account: int) -> Select[str]:
    return select(Inverter.serial).where(Inverter.tenant_id == scope.tenant_id,
                                         Inverter.account_upstream_id.in_(scope.subtree(account)))


@dataclass(frozen=True, kw_only=True)
class IncidentFilter(_StateFilter[IncidentState]):
    """Which incidents to list."""

    since: datetime | None = None
    until: datetime | None = None

    def conditions(self, scope: ReadScope) -> list[ColumnElement[bool]]:
        """SQL conditions selecting the incidents the reader (``scope``) may see that match (on ``Incident``): a
        subtree key sees the incidents of its sites (never the fleet-wide one, which describes the whole tenant)."""
        conditions: list[ColumnElement[bool]] = [Incident.tenant_id == scope.tenant_id]
        for root in (scope.restricted_account_id, self.account):
            if root is not None:
                sites = select(Inverter.site_upstream_id).where(Inverter.tenant_id == scope.tenant_id,
                                                                 Inverter.account_upstream_id.in_(scope.subtree(root)))
                conditions.append(Incident.site_upstream_id.in_(sites))
        conditions += self._state_severity_site(Incident)
        if self.since is not None:
            conditions.append(or_(Incident.cleared_at.is_(None), Incident.cleared_at >= self.since))
        if self.until is not None:
            conditions.append(Incident.opened_at < self.until)
        return conditions


async def alerts_of_inverters(session: AsyncSession, scope: ReadScope, serials: Sequence[str], *,
                              states: Sequence[AlertState], severities: Sequence[Severity],
                              per_inverter: int) -> list[Alert]:
    """The alerts of ``serials`` the reader may see (a subtree key: its subtree's), matching the filters, at most
    ``per_inverter`` of each inverter, most recently seen first: one statement for any number of inverters."""
    rank = func.row_number().over(partition_by=Alert.inverter_serial,
                                  order_by=(Alert.last_seen_at.desc(), Alert.id.desc())).label("rank")
    ranked = (select(Alert.id, rank)
              .where(*AlertFilter(states=states, severities=severities).conditions(scope),
                     one_of(Alert.inverter_serial, serials))
              .subquery())
    rows = await session.scalars(select(Alert).join(ranked, ranked.c.id == Alert.id)
                                 .where(ranked.c.rank <= per_inverter)
                                 .order_by(Alert.inverter_serial, Alert.last_seen_at.desc(), Alert.id.desc()))
    return list(rows.all())


async def open_incidents_of_sites(session: AsyncSession, scope: ReadScope, sites: Sequence[int]) -> list[Incident]:
    """The open incident of each of ``sites`` that has one (and the reader may see)."""
    rows = await session.scalars(select(Incident).where(
        *IncidentFilter(states=(IncidentState.OPEN,)).conditions(scope), Incident.kind == IncidentKind.SITE,
        one_of(Incident.site_upstream_id, sites)))
    return list(rows.all())


class AlertService:
    """Alerts, incidents and maintenance windows of the principal's tenant (see the module docstring)."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.scope = ReadScope.of(principal.tenant_id, principal.restricted_account_id)
        self.repo = MonitoringRepository(session, principal.tenant_id)

    # --- reads (viewer) --------------------------------------------------------------------------------

    def _conditions(self, where: AlertFilter | IncidentFilter) -> list[ColumnElement[bool]]:
        """The filter's SQL conditions, once its time range is checked as every edge checks one: bounds that
        carry a zone and have a UTC equivalent, ``until`` not before ``since``.

        Raises:
            InvalidParameterError: A bound is naive or out of range, or ``until`` is before ``since``.
        """
        for bound, parameter in ((where.since, "since"), (where.until, "until")):
            if bound is not None:
                limits.zoned_moment(bound, parameter=parameter)
        limits.period(where.since, where.until, parameter="until", start_parameter="since")
        return where.conditions(self.scope)

    async def alerts(self, where: AlertFilter, first: int, after: str | None) -> Page[Alert]:
        """Alerts matching ``where``, most recently seen first."""
        authorize(self.principal, Action.ALERT_READ)
        return await _page(self.session, Alert, Alert.last_seen_at, self._conditions(where), first, after,
                           "alerts.last_seen")

    async def alert_counts(self, where: AlertFilter) -> dict[Severity, int]:
        """How many alerts match ``where``, per severity."""
        authorize(self.principal, Action.ALERT_READ)
        return await counts_by_severity(self.session, self._conditions(where))

    async def incidents(self, where: IncidentFilter, first: int, after: str | None) -> Page[Incident]:
        """Incidents matching ``where``, most recently opened first (the fleet-wide one: whole-tenant keys)."""
        authorize(self.principal, Action.ALERT_READ)
        return await _page(self.session, Incident, Incident.opened_at, self._conditions(where), first, after,
                           "incidents.opened")

    async def alert(self, alert_id: uuid.UUID) -> Alert:
        """One alert the principal may see.

        Raises:
            NotFoundError: No such alert the principal may see.
        """
        authorize(self.principal, Action.ALERT_READ)
        return await self._visible_alert(alert_id, lock=False)

    async def incident(self, incident_id: uuid.UUID) -> Incident:
        """One incident the principal may see (the fleet-wide one: whole-tenant keys only).

        Raises:
            NotFoundError: No such incident the principal may see.
        """
        authorize(self.principal, Action.ALERT_READ)
        found = await self.session.scalar(select(Incident).where(Incident.id == incident_id,
                                                                 *IncidentFilter().conditions(self.scope)))
        if found is None:
            raise NotFoundError("no such incident")
        return found

    async def maintenance_windows(self) -> list[MaintenanceWindow]:
        """Windows not yet over, soonest first."""
        authorize(self.principal, Action.ALERT_READ)
        rows = await self.session.scalars(select(MaintenanceWindow).where(
            MaintenanceWindow.tenant_id == self.principal.tenant_id, MaintenanceWindow.ends_at > utcnow())
            .order_by(MaintenanceWindow.starts_at))
        return list(rows.all())

    # --- writes (operator) -----------------------------------------------------------------------------

    async def _visible_alert(self, alert_id: uuid.UUID, *, lock: bool = True) -> Alert:
        statement = select(Alert).where(Alert.id == alert_id, *AlertFilter().conditions(self.scope))
        found = await self.session.scalar(statement.with_for_update() if lock else statement)
        if found is None:
            raise NotFoundError("no such alert")
        return found

    def _writer(self) -> AlertWriter:
        return AlertWriter(self.repo, 0, {}, utcnow())

    async def acknowledge(self, alert_id: uuid.UUID, note: str | None = None) -> Alert:
        """Acknowledge an open alert (who, when, note). Acknowledging it again without a note keeps who, when and
        the note; with one, it replaces the note (an empty note erases it) and records who gave it and when.

        Raises:
            PermissionDeniedError: The role is below operator.
            NotFoundError: No such alert the principal may see.
            ConflictError: The alert is cleared.
        """
        authorize(self.principal, Action.ALERT_ACKNOWLEDGE)
        if note is not None and len(note) > MAX_NOTE:
            raise InvalidInputError(f"the note is limited to {MAX_NOTE} characters")
        alert = await self._visible_alert(alert_id)
        if alert.state is AlertState.CLEARED:
            raise ConflictError("the alert is cleared: there is nothing to acknowledge")
        first_time = alert.state is AlertState.OPEN
        if not first_time and note is None:
            return alert
        now = utcnow()
        alert.acknowledge_note = note or None
        alert.acknowledged_by, alert.acknowledged_at = self.principal.actor, now
        if first_time:
            alert.state = AlertState.ACKNOWLEDGED
            writer = self._writer()
            writer.outbox(NotificationEventType.ALERT_ACKNOWLEDGED, f"alert:{alert.id}:acknowledged:{now.isoformat()}",
                          f"{alert.event} on inverter {alert.inverter_serial} acknowledged by {self.principal.actor}",
                          alert=alert, notify=not alert.suppressed)
        return alert

    async def clear(self, alert_id: uuid.UUID) -> Alert:
        """Clear an alert by hand (recorded with who cleared it; the monitor reopens it if the fault recurs).

        Raises:
            PermissionDeniedError: The role is below operator.
            NotFoundError: No such alert the principal may see.
            ConflictError: The alert is already cleared.
        """
        authorize(self.principal, Action.ALERT_CLEAR)
        alert = await self._visible_alert(alert_id)
        if alert.state is AlertState.CLEARED:
            raise ConflictError("the alert is already cleared")
        writer = self._writer()
        writer.clear(alert, writer.now, by=self.principal.actor)
        await writer.refresh_incidents()
        return alert

    async def create_maintenance_window(self, *, starts_at: datetime, ends_at: datetime, site: int | None = None,
                                        account: int | None = None, reason: str | None = None) -> MaintenanceWindow:
        """A window during which alerts of a site, or of every site of an account subtree, are suppressed.

        Raises:
            PermissionDeniedError: The role is below operator, or the key is restricted to a subtree.
            InvalidParameterError: The site or account id is not positive or out of range.
            InvalidInputError: Not exactly one of site and account, the window ends before it starts, or the
                tenant's mirror has no such site or account.
        """
        authorize(self.principal, Action.MAINTENANCE_MANAGE)
        site = limits.optional_upstream_id(site, parameter="site_id")
        account = limits.optional_upstream_id(account, parameter="account_id")
        if site is None and account is None:
            raise InvalidInputError("a window needs a site or an account")
        if site is not None and account is not None:
            raise InvalidInputError("give either a site or an account, not both")
        if starts_at.tzinfo is None or ends_at.tzinfo is None:
            raise InvalidInputError("times need a timezone (e.g. 2026-06-01T12:00:00Z)")
        if ends_at <= starts_at:
            raise InvalidInputError("the window must end after it starts")
        if site is not None:
            await self._require_mirrored(Site, site, noun="site", field="site_id")
        if account is not None:
            await self._require_mirrored(FleetAccount, account, noun="account", field="account_id")
        window = MaintenanceWindow(id=uuid.uuid4(), tenant_id=self.principal.tenant_id, site_upstream_id=site,
                                   account_upstream_id=account, starts_at=starts_at, ends_at=ends_at,
                                   reason=(reason or None) and reason[:500], created_by=self.principal.actor,
                                   created_at=utcnow())  # fmt: skip
        self.repo.add(window)
        await self.session.flush()
        return window

    async def _require_mirrored(self, model: type[Site | FleetAccount], upstream_id: int, *, noun: str,
                                field: str) -> None:
        """Refuse an upstream id the tenant's mirror does not hold (removed rows count: they were the tenant's)."""
        found = await self.session.scalar(select(model.id).where(
            model.tenant_id == self.principal.tenant_id, model.upstream_id == upstream_id).limit(1))
        if found is None:
            raise not_in_mirror(noun, upstream_id, field=field)

    async def delete_maintenance_window(self, window_id: uuid.UUID) -> None:
        """Remove a window (alerts it suppressed stay suppressed: they were not notified).

        Raises:
            PermissionDeniedError: The role is below operator, or the key is restricted to a subtree.
            NotFoundError: No such window.
        """
        authorize(self.principal, Action.MAINTENANCE_MANAGE)
        window = await self.repo.window(window_id)
        if window is None:
            raise NotFoundError("no such maintenance window")
        await self.repo.delete_window(window)


async def _page(session: AsyncSession, model: type[_Row], column: Any, conditions: list[ColumnElement[bool]],
                first: int, after: str | None, sort: str) -> Page[_Row]:
    """A keyset page of ``model`` rows, newest ``column`` first (ties broken by id)."""
    total = await session.scalar(select(func.count()).select_from(model).where(and_(*conditions))) or 0
    statement = select(model).where(*conditions)
    if after is not None:
        cursor = Cursor.decode(after, sort=sort)
        if not isinstance(cursor.value, str):
            raise InvalidInputError("malformed cursor")
        try:
            value = datetime.fromisoformat(cursor.value)
        except ValueError as exc:
            raise InvalidInputError("malformed cursor") from exc
        statement = statement.where(tuple_(column, model.id) < tuple_(value, cursor.id))
    rows = list((await session.scalars(statement.order_by(column.desc(), model.id.desc()).limit(first + 1))).all())
    items = rows[:first]
    cursors = [Cursor(sort, cursor_value(getattr(row, column.key)), row.id).encode() for row in items]
    return Page(items, cursors, len(rows) > first, total)
