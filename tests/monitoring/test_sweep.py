"""Monitoring cycles against the simulator, with its fault injection and its clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select

from service.core.changes import Topic
from service.core.clock import utcnow
from service.core.tenancy import TenantId
from service.db.models.mirror import Inverter, InverterChange
from service.db.models.monitoring import (
    Alert,
    AlertState,
    Incident,
    IncidentKind,
    IncidentState,
    MaintenanceWindow,
    MonitoredInverter,
    Severity,
)
from service.db.models.notifications import NotificationEvent, NotificationEventType
from service.db.uow import take_deferred_changes
from service.mirror.schemas import InverterChangeKind
from service.monitoring.repository import MonitoringRepository
from service.monitoring.rules import COMMUNICATION_LOST, AlertChange, Opening
from service.monitoring.sweep import AlertWriter, Monitor
from service.runtime import Resources
from service.simulator import Simulator
from service.simulator.fleet import Device
from tests.monitoring.conftest import MonitorFactory, mirror, quiet_simulator

FIVE_MINUTES = timedelta(minutes=5)


async def _alerts(resources: Resources) -> list[Alert]:
    async with resources.session_factory() as session:
        return list((await session.scalars(select(Alert).order_by(Alert.inverter_serial, Alert.first_seen_at))).all())


async def _outbox(resources: Resources) -> list[NotificationEvent]:
    async with resources.session_factory() as session:
        return list((await session.scalars(select(NotificationEvent).order_by(NotificationEvent.created_at))).all())


async def _first_reads(resources: Resources) -> dict[str, datetime | None]:
    async with resources.session_factory() as session:
        return dict((await session.execute(select(MonitoredInverter.inverter_serial,
                                                  MonitoredInverter.first_read_at))).all())


async def _incidents(resources: Resources) -> list[Incident]:
    async with resources.session_factory() as session:
        return list((await session.scalars(select(Incident))).all())


def _visible(sim: Simulator) -> list[Device]:
    """The inverters the company token sees, NORMAL ones first."""
    devices = sim.fleet.devices_of(sim.fleet.named_accounts["company"])
    return sorted(devices, key=lambda device: device.status != "NORMAL")


async def watched(resources: Resources, tenant_id: TenantId, make_monitor: MonitorFactory,
                  size: int) -> tuple[Simulator, Monitor]:
    """A mirrored simulated fleet of ``size`` devices and a monitor that has swept it once."""
    sim = quiet_simulator(size)
    await mirror(resources, sim, tenant_id)
    monitor = make_monitor(sim)
    await monitor.cycle(tenant_id)
    return sim, monitor


def _serials(sim: Simulator, count: int, start: int = 0) -> list[str]:
    return [device.serial for device in _visible(sim)[start : start + count]]


async def test_a_fault_that_changes_the_status_raises_an_alert_in_the_next_cycle_and_its_end_clears_it(
    resources: Resources, tenant_id: TenantId, make_monitor: MonitorFactory
) -> None:
    sim, monitor = await watched(resources, tenant_id, make_monitor, 40)
    assert await _alerts(resources) == []

    faulty = _serials(sim, 2)
    sim.inject_fault(faulty, "Isolation fault", timedelta(hours=2))
    sim.clock.advance(FIVE_MINUTES)
    report = await monitor.cycle(tenant_id)

    alerts = await _alerts(resources)
    assert [(a.inverter_serial, a.event, a.state, a.severity) for a in alerts] == [
        (serial, "Isolation fault", AlertState.OPEN, Severity.CRITICAL) for serial in sorted(faulty)]
    assert report.targeted == 2
    async with resources.session_factory() as session:  # the sweep's pages fed the mirror too
        mirrored = dict((await session.execute(select(Inverter.serial, Inverter.status)
                                                .where(Inverter.serial.in_(faulty)))).all())
        history = (await session.execute(select(InverterChange.inverter_serial, InverterChange.to_value)
                                          .where(InverterChange.kind == InverterChangeKind.STATUS))).all()
    assert mirrored == dict.fromkeys(faulty, "ERROR")
    assert sorted(history) == [(serial, "ERROR") for serial in sorted(faulty)]
    assert all(a.incident_id is not None for a in alerts)
    incidents = await _incidents(resources)
    assert {i.site_upstream_id for i in incidents} == {a.site_upstream_id for a in alerts}
    assert all("Isolation fault" in i.summary and i.severity is Severity.CRITICAL for i in incidents)

    await monitor.cycle(tenant_id)  # nothing new: nothing changes
    assert [(a.id, a.occurrences) for a in await _alerts(resources)] == [(a.id, 1) for a in alerts]

    sim.clear_faults(faulty)
    sim.clock.advance(FIVE_MINUTES)
    await monitor.cycle(tenant_id)
    cleared = await _alerts(resources)
    assert [(a.id, a.state) for a in cleared] == [(a.id, AlertState.CLEARED) for a in alerts]
    assert all(a.cleared_at is not None and a.cleared_by is None for a in cleared)
    assert all(i.state is IncidentState.CLEARED for i in await _incidents(resources))
    kinds = [(e.type, e.inverter_serial) for e in await _outbox(resources) if e.alert_id is not None]
    assert sorted(kinds) == sorted([(NotificationEventType.ALERT_RAISED, s) for s in faulty]
                                   + [(NotificationEventType.ALERT_CLEARED, s) for s in faulty])
    # Live subscribers heard of each alert (raised, then cleared) and of each site's incident, after commit.
    announced = [(c.topic, c.id, c.kind) for c in monitor.announced]  # type: ignore[attr-defined]
    alert_changes = [(c_id, kind) for topic, c_id, kind in announced if topic is Topic.ALERT]
    assert sorted(alert_changes[:2]) == sorted((a.id, "alert.raised") for a in alerts)
    assert sorted(alert_changes[2:]) == sorted((a.id, "alert.cleared") for a in alerts)
    assert {(c_id, kind) for topic, c_id, kind in announced if topic is Topic.INCIDENT} >= {
        (i.id, kind) for i in incidents for kind in ("incident.opened", "incident.cleared")}


async def test_faults_over_before_monitoring_began_are_not_raised_when_their_day_is_read_again(
    resources: Resources, tenant_id: TenantId, make_monitor: MonitorFactory
) -> None:
    sim = quiet_simulator(5)
    await mirror(resources, sim, tenant_id)
    earlier = _serials(sim, 2)
    sim.inject_fault(earlier, "Isolation fault", timedelta(minutes=10))
    sim.clock.advance(timedelta(minutes=20))  # over before the first read, which lists the active events only
    monitor = make_monitor(sim)
    await monitor.cycle(tenant_id)
    assert [e.end_time is not None for e in sim.truth.events(earlier[0])] == [True]

    first_reads = await _first_reads(resources)

    sim.clock.advance(FIVE_MINUTES)
    report = await monitor.cycle(tenant_id)  # every inverter read again, from the start of the day
    assert report.event_requests == report.inverters == len(_visible(sim))
    assert await _alerts(resources) == []
    assert await _outbox(resources) == []
    assert await _first_reads(resources) == first_reads  # kept by later reads

    sim.inject_fault(earlier[:1], "Isolation fault", timedelta(minutes=1))  # one between two reads is raised
    sim.clock.advance(FIVE_MINUTES)
    await monitor.cycle(tenant_id)
    assert [(a.inverter_serial, a.state) for a in await _alerts(resources)] == [(earlier[0], AlertState.CLEARED)]


async def test_a_fault_that_leaves_the_status_normal_is_found_within_the_round_robin_bound(
    resources: Resources, tenant_id: TenantId, make_monitor: MonitorFactory
) -> None:
    sim = quiet_simulator(40)
    await mirror(resources, sim, tenant_id)
    monitor = make_monitor(sim, requests_per_minute=2)  # 10 requests per sweep: 8 round-robin reads
    first = await monitor.cycle(tenant_id)
    assert first.plan is not None
    bound = first.plan.bound_sweeps
    assert bound == 5
    silent = _serials(sim, 1, start=25)
    sim.inject_fault(silent, "Grid Over Frequency", timedelta(days=1))
    sim.set_status(silent[0], "NORMAL")

    cycles = 0
    while not await _alerts(resources) and cycles < bound:
        sim.clock.advance(FIVE_MINUTES)
        await monitor.cycle(tenant_id)
        cycles += 1
        assert sim.fleet.by_serial[silent[0]].status == "NORMAL"  # nothing in the device list gives it away
    alerts = await _alerts(resources)
    assert [(a.inverter_serial, a.event, a.state) for a in alerts] == [(silent[0], "Grid Over Frequency",
                                                                        AlertState.OPEN)]
    assert cycles <= bound


async def test_a_fault_raised_again_soon_after_it_cleared_reopens_the_same_alert(
    resources: Resources, tenant_id: TenantId, make_monitor: MonitorFactory
) -> None:
    sim, monitor = await watched(resources, tenant_id, make_monitor, 20)
    flapping = _serials(sim, 1)
    for _ in range(3):
        sim.inject_fault(flapping, "PV Over Voltage", timedelta(hours=1))
        sim.clock.advance(FIVE_MINUTES)
        await monitor.cycle(tenant_id)
        sim.clear_faults(flapping)
        sim.clock.advance(FIVE_MINUTES)
        await monitor.cycle(tenant_id)
    sim.inject_fault(flapping, "PV Over Voltage", timedelta(hours=1))
    sim.clock.advance(FIVE_MINUTES)
    await monitor.cycle(tenant_id)

    alerts = await _alerts(resources)
    assert len(alerts) == 1
    assert (alerts[0].state, alerts[0].occurrences, alerts[0].flaps) == (AlertState.OPEN, 4, 3)
    reopened = [e for e in await _outbox(resources) if e.type is NotificationEventType.ALERT_REOPENED]
    assert len(reopened) == 3


async def test_a_lost_inverter_raises_communication_lost_and_its_return_clears_it(
    resources: Resources, tenant_id: TenantId, make_monitor: MonitorFactory
) -> None:
    sim, monitor = await watched(resources, tenant_id, make_monitor, 20)
    lost = _serials(sim, 1, start=3)
    sim.make_lost(lost, timedelta(minutes=20))
    sim.clock.advance(FIVE_MINUTES)
    await monitor.cycle(tenant_id)
    alerts = await _alerts(resources)
    assert [(a.inverter_serial, a.event, a.state) for a in alerts] == [(lost[0], COMMUNICATION_LOST, AlertState.OPEN)]

    sim.clock.advance(timedelta(minutes=20))
    await monitor.cycle(tenant_id)
    assert [a.state for a in await _alerts(resources)] == [AlertState.CLEARED]


async def test_the_storm_guard_collapses_a_mass_lost_into_one_fleet_incident_until_they_return(
    resources: Resources, tenant_id: TenantId, make_monitor: MonitorFactory
) -> None:
    sim, monitor = await watched(resources, tenant_id, make_monitor, 40)
    sim.make_lost(_serials(sim, 12), timedelta(minutes=30))  # a third of the 36 inverters the token sees
    sim.clock.advance(FIVE_MINUTES)
    report = await monitor.cycle(tenant_id)

    assert report.storm == "opened"
    assert await _alerts(resources) == []
    (storm,) = await _incidents(resources)
    assert (storm.kind, storm.state) == (IncidentKind.STORM, IncidentState.OPEN)
    assert storm.summary == "cloud or network outage suspected: 12 of 36 inverters LOST"

    sim.clock.advance(timedelta(minutes=30))
    await monitor.cycle(tenant_id)
    (storm,) = await _incidents(resources)
    assert storm.state is IncidentState.CLEARED
    assert await _alerts(resources) == []
    events = [e.type for e in await _outbox(resources)]
    assert events == [NotificationEventType.INCIDENT_OPENED, NotificationEventType.INCIDENT_CLEARED]


async def test_alerts_inside_a_maintenance_window_are_recorded_but_not_to_be_notified(
    resources: Resources, tenant_id: TenantId, make_monitor: MonitorFactory
) -> None:
    sim, monitor = await watched(resources, tenant_id, make_monitor, 20)
    worked_on, elsewhere = _visible(sim)[0], _visible(sim)[-1]
    assert worked_on.site_id != elsewhere.site_id
    now = sim.now()
    async with resources.session_factory() as session, session.begin():
        session.add(MaintenanceWindow(tenant_id=tenant_id, site_upstream_id=worked_on.site_id, starts_at=now,
                                      ends_at=now + timedelta(hours=2), created_by="test", created_at=now))
    sim.inject_fault([worked_on.serial, elsewhere.serial], "PV Over Voltage", timedelta(hours=1))
    sim.clock.advance(FIVE_MINUTES)
    await monitor.cycle(tenant_id)

    alerts = {a.inverter_serial: a for a in await _alerts(resources)}
    assert (alerts[worked_on.serial].suppressed, alerts[elsewhere.serial].suppressed) == (True, False)
    notify = {(e.type, e.inverter_serial): e.notify for e in await _outbox(resources) if e.alert_id}
    assert notify == {(NotificationEventType.ALERT_RAISED, worked_on.serial): False,
                      (NotificationEventType.ALERT_RAISED, elsewhere.serial): True}
    async with resources.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Alert)) == 2


async def test_subscribers_hear_of_an_alert_raised_and_cleared_in_one_sweep_and_of_real_incident_changes_only(
    resources: Resources, tenant_id: TenantId
) -> None:
    async def sweep(change: Callable[[AlertWriter], None]) -> list[str]:
        """The changes one sweep announces, having applied ``change``."""
        async with resources.session_factory() as session, session.begin():
            writer = AlertWriter(MonitoringRepository(session, tenant_id), 0, {}, utcnow())
            change(writer)
            await writer.refresh_incidents()
            return [change.kind for change in take_deferred_changes(session)]

    now = utcnow()
    assert await sweep(lambda writer: writer.raise_lost("SA1", 901, None, now)) == [
        "alert.raised", "incident.opened"]
    blip = AlertChange("Isolation fault", Opening.RAISE, 1, now, clears_at=now)  # over before the sweep
    assert await sweep(lambda writer: writer.apply("SA2", 901, None, None, blip)) == [
        "alert.raised", "alert.cleared"]  # the incident's open alerts are as they were
    assert await sweep(lambda writer: writer.raise_lost("SA3", 901, None, now)) == [
        "alert.raised", "incident.updated"]
