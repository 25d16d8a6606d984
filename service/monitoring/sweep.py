"""One monitoring cycle of one tenant: the cheap sweep, targeted event reads, the budgeted round-robin.

1. **Sweep**: every page of the device list (``ceil(N/1000)`` requests, monitoring lane). Each inverter's
   status is compared with the one the monitor last saw; an inverter whose status left NORMAL or changed is
   marked for a targeted event read. LOST inverters (or ones not online for the grace period) get a
   "communication lost" alert, unless more than the storm share went LOST in this sweep: then one fleet-wide
   incident is opened instead. The pages also feed the mirror's inverter statuses (one fetch serves both).
   Committed before any event is read, so a killed cycle resumes with its marks.
2. **Event reads**: marked inverters first, then healthy ones least recently read, within the sweep's budget
   (:func:`service.monitoring.rules.plan_sweep`). Each batch is read upstream with no transaction open, then
   diffed against the alerts and written (alerts, incidents, outbox, cursors) in one short transaction.

Every write is idempotent: the diff counts only occurrences newer than an alert's last one, at most one alert
per (inverter, event) is not cleared (a unique index), outbox rows carry a unique idempotency key, so a
repeated or resumed cycle creates no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.core.changes import Change, Publish, Topic
from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.db.models.mirror import SyncKind
from service.db.models.monitoring import (
    Alert,
    AlertState,
    Incident,
    IncidentKind,
    IncidentState,
    MonitoredInverter,
    Severity,
)
from service.db.models.notifications import NotificationEvent, NotificationEventType
from service.db.uow import EnqueueJobs, committed, defer_change
from service.givenergy import (
    DEFAULT_RESERVES,
    CredentialError,
    GivEnergyClient,
    GivEnergyError,
    Lane,
    RateLimitedError,
    UpstreamUnavailableError,
)
from service.mirror.jobs import request_sync
from service.mirror.repository import MirrorRepository
from service.mirror.upstream import device_records, gather_all
from service.monitoring import rules
from service.monitoring.repository import MonitoringRepository
from service.monitoring.rules import COMMUNICATION_LOST, AlertChange, KnownAlert, Occurrence, Opening
from service.upstream import NoCredentialError

log = structlog.get_logger(__name__)

PAGE_SIZE = 1000
INCIDENT_UPDATED = "incident.updated"
"""The change announced when an open incident's alerts change (its count, severity or summary)."""
_WORST_FIRST = list(Severity)
UPSTREAM_FAILURES: tuple[type[Exception], ...] = (UpstreamUnavailableError, RateLimitedError, CredentialError,
                                                  NoCredentialError)
"""What a cycle expects of an upstream that is down, busy or refusing the tenant's credential: the cycle ends
as failed and the next attempt waits a full sweep interval (anything else is a bug and propagates)."""


class ClientSource(Protocol):
    """Where the monitor gets a tenant's upstream client in the monitoring lane (the one integration point
    with the upstream entry point)."""

    def __call__(self, tenant_id: TenantId) -> contextlib.AbstractAsyncContextManager[GivEnergyClient]: ...


@dataclass(frozen=True)
class MonitorOptions:
    """Tuning of a cycle.

    Attributes:
        requests_per_minute: The monitoring lane's budget; ``None``: its reserved share of the client's limiter.
        concurrency: Event reads in flight at once (the rate limiter paces them).
        batch: Event reads written per transaction.
        clock: What "now" is (tests and the bench use the simulator's clock).
    """

    requests_per_minute: float | None = None
    concurrency: int = 8
    batch: int = 100
    clock: Callable[[], datetime] = utcnow


@dataclass
class CycleReport:
    """What one cycle did."""

    inverters: int = 0
    page_requests: int = 0
    event_requests: int = 0
    targeted: int = 0
    round_robin: int = 0
    raised: int = 0
    reopened: int = 0
    cleared: int = 0
    lost_alerts: int = 0
    storm: str = "none"
    plan: rules.SweepPlan | None = None
    errors: list[str] = field(default_factory=list)
    failure: str | None = None
    """The kind of upstream failure that ended the cycle early (one of :data:`UPSTREAM_FAILURES`), if any."""


@dataclass(frozen=True)
class _Seen:
    serial: str
    status: str | None
    last_online: datetime | None
    site: int | None


class Monitor:
    """Runs monitoring cycles (see the module docstring)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], clients: ClientSource,
                 enqueue: EnqueueJobs, options: MonitorOptions | None = None, *, publish: Publish) -> None:
        self.session_factory = session_factory
        self.clients = clients
        self.enqueue = enqueue
        self.publish = publish
        self.options = options or MonitorOptions()

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """One short transaction; the jobs it asked for are enqueued, and its changes published, once it has
        committed."""
        return committed(self.session_factory, enqueue=self.enqueue, publish=self.publish)

    async def cycle(self, tenant_id: TenantId) -> CycleReport:
        """Sweep the tenant's fleet and read the events the plan allows.

        An upstream failure of :data:`UPSTREAM_FAILURES` (the cloud unreachable or answering 5xx, a 429, the
        credential refused or none usable) ends the cycle with one warning; it is not recorded as run, and its
        next attempt is due one sweep interval later, so an unreachable cloud costs one attempt per interval.
        What the cycle committed before the failure (the sweep's marks) is kept for that attempt.
        """
        report = CycleReport()
        started = self.options.clock()
        due = await self._due(tenant_id)
        try:
            async with self.clients(tenant_id) as client:
                seen, pages = await self._sweep_pages(client)
                report.inverters, report.page_requests = len(seen), pages
                rpm = await self._budget(client)
                async with self._transaction() as session:
                    plan, targeted, rr = await self._record_sweep(session, tenant_id, seen, rpm, report)
                report.plan = plan
                report.targeted, report.round_robin = len(targeted), len(rr)
                await self._read_events(client, tenant_id, [*targeted, *rr], report)
        except UPSTREAM_FAILURES as exc:
            report.failure = type(exc).__name__
            next_attempt_at = await self._schedule_next(tenant_id, due, started, ran=False)
            log.warning("monitoring.cycle.failed", tenant_id=str(tenant_id), error=report.failure, detail=str(exc),
                        next_attempt_at=next_attempt_at.isoformat())  # fmt: skip
            return report
        await self._schedule_next(tenant_id, due, started, ran=True)
        log.info("monitoring.cycle", tenant_id=str(tenant_id), inverters=report.inverters, pages=report.page_requests,
                 targeted=report.targeted, round_robin=report.round_robin, raised=report.raised,
                 cleared=report.cleared, storm=report.storm)  # fmt: skip
        return report

    async def _due(self, tenant_id: TenantId) -> datetime | None:
        """When the tenant's cycle about to run was due (``None``: none was planned)."""
        async with self._transaction() as session:
            return (await MonitoringRepository(session, tenant_id).settings()).next_sweep_at

    async def _schedule_next(self, tenant_id: TenantId, due: datetime | None, started: datetime, *,
                             ran: bool) -> datetime:
        """Plan the tenant's next cycle one sweep interval after ``due``, the due time of this cycle (which
        ``started`` then; see :func:`rules.next_sweep_due`), and record its sweep as run at ``started`` when it
        ``ran``; returns when the next is due."""
        async with self._transaction() as session:
            monitor_settings = await MonitoringRepository(session, tenant_id).settings()
            if ran:
                monitor_settings.last_sweep_at = started
            monitor_settings.next_sweep_at = rules.next_sweep_due(
                due, started, timedelta(seconds=monitor_settings.sweep_interval_seconds))
            return monitor_settings.next_sweep_at

    async def _budget(self, client: GivEnergyClient) -> float:
        if self.options.requests_per_minute is not None:
            return self.options.requests_per_minute
        limiter = client.limiter
        if limiter is None:
            return float("inf")
        policy = limiter.policy()
        return policy.limit * 60 / policy.window_seconds * DEFAULT_RESERVES[Lane.MONITORING]

    # --- the sweep -------------------------------------------------------------------------------------

    async def _sweep_pages(self, client: GivEnergyClient) -> tuple[list[_Seen], int]:
        first = await client.get_page("/communication-device", page=1, page_size=PAGE_SIZE)
        rest = await gather_all([client.get_page("/communication-device", page=number, page_size=PAGE_SIZE)
                                 for number in range(2, (first.last_page or 1) + 1)])
        seen: dict[str, _Seen] = {}
        for page in (first, *rest):
            for item in page.items:
                records = device_records(item)
                if records is None or records.inverter is None:
                    continue
                inverter = records.inverter
                seen[inverter.serial] = _Seen(inverter.serial, inverter.status, inverter.last_online,
                                              inverter.site_upstream_id)
        return list(seen.values()), 1 + len(rest)

    async def _record_sweep(
        self, session: AsyncSession, tenant_id: TenantId, seen: Sequence[_Seen], rpm: float, report: CycleReport
    ) -> tuple[rules.SweepPlan, list[str], list[str]]:
        """Statuses, communication lost, the storm guard; returns the plan and the inverters to read."""
        repo = MonitoringRepository(session, tenant_id)
        settings = await repo.settings()
        now = self.options.clock()
        grace = timedelta(seconds=settings.grace_seconds)
        states = await repo.inverter_states()
        changed_rows: list[dict[str, Any]] = []
        lost: set[str] = set()
        newly_lost = 0
        for item in seen:
            known = states.get(item.serial)
            previous = known.status if known is not None else None
            if rules.communication_lost(item.status, item.last_online, now, grace):
                lost.add(item.serial)
                if previous != rules.LOST and item.status == rules.LOST:
                    newly_lost += 1
            mark = rules.needs_event_read(previous, item.status) and item.status != rules.LOST
            if known is None or previous != item.status or known.site_upstream_id != item.site:
                changed_rows.append({
                    "inverter_serial": item.serial, "status": item.status, "site_upstream_id": item.site,
                    "last_online": item.last_online, "swept_at": now,
                    "status_changed_at": now if known is None or previous != item.status else known.status_changed_at,
                    "needs_read": mark,
                })  # fmt: skip
        await repo.save_states(changed_rows)
        await _feed_mirror(session, tenant_id, seen, now)

        storm = await repo.open_storm()
        verdict = rules.storm_verdict(fleet=len(seen), newly_lost=newly_lost, lost_now=len(lost),
                                      share=settings.storm_share, storm_open=storm is not None)
        writer = AlertWriter(repo, settings.flap_window_seconds, await repo.overrides(), now)
        await writer.load_maintenance()
        if verdict is rules.StormVerdict.OPEN:
            storm = writer.open_storm(len(lost), len(seen))
            report.storm = "opened"
        elif verdict is rules.StormVerdict.CLEAR and storm is not None:
            writer.clear_storm(storm)
            storm = None
            report.storm = "cleared"
        elif storm is not None:
            storm.summary = _storm_summary(len(lost), len(seen))
            report.storm = "open"
        by_serial = {item.serial: item for item in seen}
        open_lost = await repo.open_alerts_of_event(COMMUNICATION_LOST)
        if storm is None:
            to_raise = [serial for serial in lost if serial not in open_lost]
            accounts = await repo.accounts_of(to_raise)
            for serial in sorted(to_raise):
                since = by_serial[serial].last_online or now
                writer.raise_lost(serial, by_serial[serial].site, accounts.get(serial), since)
                report.lost_alerts += 1
        for serial, alert in open_lost.items():
            if serial not in lost:
                writer.clear(alert, now)
                report.cleared += 1
        await writer.refresh_incidents()

        plan = rules.plan_sweep(inverters=len(seen), healthy=len(seen) - len(lost), page_size=PAGE_SIZE,
                                requests_per_minute=rpm, interval=timedelta(seconds=settings.sweep_interval_seconds))
        marked = {row["inverter_serial"] for row in changed_rows if row["needs_read"]}
        marked |= {serial for serial, state in states.items() if state.needs_read}
        present = set(by_serial)
        targeted = sorted(marked & present - lost)
        by_age = sorted(
            (serial for serial in present - lost),
            key=lambda serial: (states[serial].events_read_at is not None,
                                states[serial].events_read_at or now) if serial in states else (False, now),
        )
        chosen_targeted, chosen_rr = rules.split_reads(targeted, by_age, plan)
        return plan, chosen_targeted, chosen_rr

    # --- event reads -----------------------------------------------------------------------------------

    async def _read_events(self, client: GivEnergyClient, tenant_id: TenantId, serials: Sequence[str],
                           report: CycleReport) -> None:
        gate = asyncio.Semaphore(self.options.concurrency)
        for first in range(0, len(serials), self.options.batch):
            batch = serials[first : first + self.options.batch]
            async with self._transaction() as session:
                states = await MonitoringRepository(session, tenant_id).inverter_states(batch)
                alerts = await MonitoringRepository(session, tenant_id).latest_alerts(batch)
            cursors = {serial: _cursor(states.get(serial), alerts.get(serial, {})) for serial in batch}
            read_at = self.options.clock()

            async def read(serial: str, cursor: datetime | None) -> tuple[str, list[Occurrence] | None]:
                async with gate:
                    return serial, await _events(client, serial, cursor, report)

            results = await gather_all([read(serial, cursors[serial]) for serial in batch])
            report.event_requests += len(batch)
            async with self._transaction() as session:
                await self._apply_reads(session, tenant_id, results, states, read_at, report)

    async def _apply_reads(self, session: AsyncSession, tenant_id: TenantId,
                           results: Sequence[tuple[str, list[Occurrence] | None]],
                           states: dict[str, MonitoredInverter], read_at: datetime, report: CycleReport) -> None:
        repo = MonitoringRepository(session, tenant_id)
        settings = await repo.settings()
        done = [serial for serial, found in results if found is not None]
        alerts = await repo.latest_alerts(done)
        writer = AlertWriter(repo, settings.flap_window_seconds, await repo.overrides(), read_at)
        await writer.load_maintenance()
        accounts = await repo.accounts_of(done)
        for serial, found in results:
            if found is None:
                continue
            state = states.get(serial)
            known = {event: KnownAlert(event, alert.state, alert.last_started_at, alert.cleared_at)
                     for event, alert in alerts.get(serial, {}).items() if event != COMMUNICATION_LOST}
            changes = rules.diff_events(known, found, flap_window=timedelta(seconds=settings.flap_window_seconds),
                                        status_normal=state is not None and state.status == rules.NORMAL,
                                        now=read_at, monitored_since=state.first_read_at if state is not None else None)
            site = state.site_upstream_id if state is not None else None
            for change in changes:
                writer.apply(serial, site, accounts.get(serial), alerts.get(serial, {}).get(change.event), change)
        report.raised += writer.raised
        report.reopened += writer.reopened
        report.cleared += writer.cleared
        await repo.mark_read(done, read_at)
        await writer.refresh_incidents()


def _cursor(state: MonitoredInverter | None, alerts: dict[str, Alert]) -> datetime | None:
    """Where an inverter's event read starts: ``None`` (first read: the active events only), else the earlier of
    the last read and the start of its oldest alert not cleared (so that alert's end is seen)."""
    if state is None or state.events_read_at is None:
        return None
    starts = [a.last_started_at for a in alerts.values() if a.state is not AlertState.CLEARED
              and a.event != COMMUNICATION_LOST]
    return min([state.events_read_at, *starts])


async def _events(client: GivEnergyClient, serial: str, cursor: datetime | None,
                  report: CycleReport) -> list[Occurrence] | None:
    """An inverter's events from the cursor (``None`` when upstream refused; the inverter is read again later)."""
    try:
        if cursor is None:
            items = [item async for item in client.iter_events(serial, cleared=False)]
        else:
            items = [item async for item in client.iter_events(serial, start=cursor.date())]
    except GivEnergyError as exc:
        report.errors.append(f"{serial}: {exc}")
        return None
    return [Occurrence(item.event, item.start_time, item.end_time)
            for item in items if item.event and item.start_time is not None]


async def _feed_mirror(session: AsyncSession, tenant_id: TenantId, seen: Sequence[_Seen], now: datetime) -> None:
    """Hand the statuses this sweep read to the mirror (one fetch serves both: the mirror's statuses and their
    history are as fresh as the monitor's). Inverters the mirror does not hold mean the fleet changed shape:
    the mirror is asked for a refresh at once rather than at its next scheduled one."""
    _, unknown = await MirrorRepository(session, tenant_id).set_inverter_statuses(
        [(item.serial, item.status, item.last_online) for item in seen], now=now)
    if unknown:
        await request_sync(session, tenant_id, SyncKind.REFRESH)


def _storm_summary(lost: int, fleet: int) -> str:
    return f"cloud or network outage suspected: {lost} of {fleet} inverters LOST"


class AlertWriter:
    """Applies alert changes of one transaction: alerts, their outbox events, the incidents of their sites."""

    def __init__(self, repo: MonitoringRepository, flap_window_seconds: int,
                 overrides: dict[str, Severity], now: datetime) -> None:
        self.repo = repo
        self.flap_window = timedelta(seconds=flap_window_seconds)
        self.overrides = overrides
        self.now = now
        self.sites_touched: set[int] = set()
        self.maintenance: tuple[set[int], set[int]] = (set(), set())
        self.raised = self.reopened = self.cleared = 0

    async def load_maintenance(self) -> None:
        self.maintenance = await self.repo.under_maintenance(self.now)

    def _suppressed(self, site: int | None, account: int | None) -> bool:
        sites, accounts = self.maintenance
        return (site is not None and site in sites) or (account is not None and account in accounts)

    def outbox(self, kind: NotificationEventType, key: str, summary: str, *, alert: Alert | None = None,
                incident: Incident | None = None, notify: bool = True) -> None:
        self.repo.add(NotificationEvent(
            tenant_id=self.repo.tenant_id, type=kind, idempotency_key=key, summary=summary[:500], notify=notify,
            severity=alert.severity if alert is not None else incident.severity if incident is not None else None,
            alert_id=alert.id if alert is not None else None, incident_id=incident.id if incident is not None else None,
            inverter_serial=alert.inverter_serial if alert is not None else None,
            site_upstream_id=(alert.site_upstream_id if alert is not None
                              else incident.site_upstream_id if incident is not None else None),
            created_at=self.now,
        ))  # fmt: skip
        if alert is not None:
            self._changed(Change(Topic.ALERT, self.repo.tenant_id, alert.id, kind.value, alert.site_upstream_id))
        elif incident is not None:
            self._changed(Change(Topic.INCIDENT, self.repo.tenant_id, incident.id, kind.value,
                                 incident.site_upstream_id))

    def _changed(self, change: Change) -> None:
        """Announce a change to live subscribers once the transaction commits."""
        defer_change(self.repo.session, change)

    def _new_alert(self, serial: str, site: int | None, account: int | None, event: str, started: datetime,
                   occurrences: int) -> Alert:
        alert = Alert(id=uuid.uuid4(), tenant_id=self.repo.tenant_id, inverter_serial=serial, site_upstream_id=site,
                      account_upstream_id=account, event=event, severity=rules.severity_of(event, self.overrides),
                      state=AlertState.OPEN, first_seen_at=self.now, last_seen_at=self.now, last_started_at=started,
                      occurrences=occurrences, flaps=0, suppressed=self._suppressed(site, account))  # fmt: skip
        self.repo.add(alert)
        self.raised += 1
        if site is not None:
            self.sites_touched.add(site)
        self.outbox(NotificationEventType.ALERT_RAISED, f"alert:{alert.id}:raised",
                     f"{event} on inverter {serial}", alert=alert, notify=not alert.suppressed)
        return alert

    def raise_lost(self, serial: str, site: int | None, account: int | None, since: datetime) -> None:
        """A communication-lost alert (none is open for the inverter)."""
        self._new_alert(serial, site, account, COMMUNICATION_LOST, since, 1)

    def apply(self, serial: str, site: int | None, account: int | None, alert: Alert | None,
              change: AlertChange) -> None:
        """Apply one change of :func:`rules.diff_events` to the inverter's latest alert of that event."""
        if change.opening is Opening.RAISE or (change.opening is not None and alert is None):
            assert change.started_at is not None  # noqa: S101 - an opening always has a start
            alert = self._new_alert(serial, site, account, change.event, change.started_at, change.occurrences)
        elif alert is not None and change.opening is not None:
            assert change.started_at is not None  # noqa: S101
            alert.occurrences += change.occurrences
            alert.last_started_at = change.started_at
            alert.last_seen_at = self.now
            if change.opening is Opening.REOPEN:
                alert.state, alert.cleared_at, alert.cleared_by = AlertState.OPEN, None, None
                alert.flaps += 1
                alert.suppressed = self._suppressed(site, account)
                self.reopened += 1
                self.outbox(NotificationEventType.ALERT_REOPENED,
                             f"alert:{alert.id}:reopened:{change.started_at.isoformat()}",
                             f"{alert.event} on inverter {serial} again (flap {alert.flaps})", alert=alert,
                             notify=not alert.suppressed)
        if alert is not None and change.clears_at is not None:
            self.clear(alert, change.clears_at)
        if site is not None:
            self.sites_touched.add(site)

    def clear(self, alert: Alert, when: datetime, *, by: str | None = None) -> None:
        """Clear an alert (recorded, never deleted)."""
        if alert.state is AlertState.CLEARED:
            return
        alert.state, alert.cleared_at, alert.cleared_by = AlertState.CLEARED, when, by
        alert.last_seen_at = max(alert.last_seen_at, self.now)
        self.cleared += 1
        if alert.site_upstream_id is not None:
            self.sites_touched.add(alert.site_upstream_id)
        self.outbox(NotificationEventType.ALERT_CLEARED, f"alert:{alert.id}:cleared:{when.isoformat()}",
                     f"{alert.event} on inverter {alert.inverter_serial} cleared", alert=alert,
                     notify=not alert.suppressed)

    def open_storm(self, lost: int, fleet: int) -> Incident:
        incident = Incident(id=uuid.uuid4(), tenant_id=self.repo.tenant_id, kind=IncidentKind.STORM,
                            state=IncidentState.OPEN, severity=Severity.CRITICAL, summary=_storm_summary(lost, fleet),
                            open_alerts=0, opened_at=self.now)  # fmt: skip
        self.repo.add(incident)
        self.outbox(NotificationEventType.INCIDENT_OPENED, f"incident:{incident.id}:opened", incident.summary,
                     incident=incident)
        return incident

    def clear_storm(self, incident: Incident) -> None:
        incident.state, incident.cleared_at = IncidentState.CLEARED, self.now
        self.outbox(NotificationEventType.INCIDENT_CLEARED, f"incident:{incident.id}:cleared",
                     "the fleet is back: " + incident.summary, incident=incident)

    async def refresh_incidents(self) -> None:
        """Open, update or clear the incident of every site whose alerts changed."""
        if not self.sites_touched:
            return
        await self.repo.session.flush()
        incidents = await self.repo.open_site_incidents(self.sites_touched)
        alerts_by_site = await self.repo.not_cleared_by_site(self.sites_touched)
        links: list[tuple[Incident | None, list[Alert]]] = []
        for site in sorted(self.sites_touched):
            alerts = alerts_by_site.get(site, [])
            incident = incidents.get(site)
            if alerts and incident is None:
                incident = Incident(id=uuid.uuid4(), tenant_id=self.repo.tenant_id, kind=IncidentKind.SITE,
                                    site_upstream_id=site, state=IncidentState.OPEN, opened_at=self.now,
                                    severity=Severity.INFO, summary="", open_alerts=0)  # fmt: skip
                self.repo.add(incident)
                _describe(incident, site, alerts)
                self.outbox(NotificationEventType.INCIDENT_OPENED, f"incident:{incident.id}:opened",
                             incident.summary, incident=incident, notify=not all(a.suppressed for a in alerts))
            elif alerts and incident is not None:
                before = (incident.open_alerts, incident.severity, incident.summary)
                _describe(incident, site, alerts)
                if (incident.open_alerts, incident.severity, incident.summary) != before:  # a real change only
                    self._changed(Change(Topic.INCIDENT, self.repo.tenant_id, incident.id, INCIDENT_UPDATED, site))
            elif incident is not None:
                incident.state, incident.cleared_at, incident.open_alerts = IncidentState.CLEARED, self.now, 0
                self.outbox(NotificationEventType.INCIDENT_CLEARED, f"incident:{incident.id}:cleared",
                             f"site {site}: every alert cleared", incident=incident)
            links.append((incident, alerts))
        await self.repo.session.flush()  # new incidents exist before alerts point at them
        for incident, alerts in links:
            for alert in alerts:
                alert.incident_id = incident.id if incident is not None else None


def _describe(incident: Incident, site: int, alerts: Iterable[Alert]) -> None:
    """The incident's severity, count and one-line summary from its site's open alerts."""
    listed = sorted(alerts, key=lambda a: (_WORST_FIRST.index(a.severity), a.event, a.inverter_serial))
    incident.open_alerts = len(listed)
    incident.severity = listed[0].severity
    inverters = len({a.inverter_serial for a in listed})
    events = list(dict.fromkeys(a.event for a in listed))
    shown = ", ".join(events[:3]) + (f" and {len(events) - 3} more" if len(events) > 3 else "")
    incident.summary = (f"site {site}: {len(listed)} open alert{'s' if len(listed) != 1 else ''} on {inverters} "
                        f"inverter{'s' if inverters != 1 else ''} ({listed[0].severity.value}): {shown}")[:500]
