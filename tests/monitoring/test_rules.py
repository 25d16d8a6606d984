"""Property tests of the monitor's pure core."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from service.db.models.monitoring import AlertState, Severity
from service.monitoring.rules import (
    CATALOGUE,
    AlertChange,
    KnownAlert,
    Occurrence,
    Opening,
    StormVerdict,
    diff_events,
    next_sweep_due,
    plan_sweep,
    severity_of,
    split_reads,
    storm_verdict,
)

T0 = datetime(2026, 6, 1, tzinfo=UTC)
WINDOW = timedelta(minutes=60)
EVENTS = ("PV Over Voltage", "Isolation fault", "Grid Under Voltage")


@st.composite
def histories(draw: st.DrawFn) -> list[Occurrence]:
    """Occurrences of a few events: per event, non-overlapping intervals in time order, the last maybe open."""
    found: list[Occurrence] = []
    for event in draw(st.sets(st.sampled_from(EVENTS), max_size=3)):
        moment = T0
        count = draw(st.integers(1, 4))
        for index in range(count):
            moment += timedelta(minutes=draw(st.integers(1, 120)))
            start = moment
            open_now = index == count - 1 and draw(st.booleans())
            moment += timedelta(minutes=draw(st.integers(1, 120)))
            found.append(Occurrence(event, start, None if open_now else moment))
    return found


def apply(alerts: list[KnownAlert], changes: list[AlertChange]) -> list[KnownAlert]:
    """The alert history after ``changes`` (as the service stores it: a raise appends a new alert)."""
    result = list(alerts)
    for change in changes:
        latest = max((i for i, a in enumerate(result) if a.event == change.event), default=None)
        if change.opening is Opening.RAISE or (change.opening is not None and latest is None):
            assert change.started_at is not None
            result.append(KnownAlert(change.event, AlertState.OPEN, change.started_at))
            latest = len(result) - 1
        elif change.opening is not None and latest is not None:
            assert change.started_at is not None
            result[latest] = replace(result[latest], state=AlertState.OPEN, last_started_at=change.started_at,
                                     cleared_at=None)
        if change.clears_at is not None and latest is not None:
            result[latest] = replace(result[latest], state=AlertState.CLEARED, cleared_at=change.clears_at)
    return result


def latest_by_event(alerts: list[KnownAlert]) -> dict[str, KnownAlert]:
    return {alert.event: alert for alert in alerts}


def visible_at(history: list[Occurrence], moment: datetime) -> list[Occurrence]:
    """What the cloud lists at ``moment``: occurrences started by then, ended only if they ended by then."""
    return [replace(o, ended_at=o.ended_at if o.ended_at is not None and o.ended_at <= moment else None)
            for o in history if o.started_at <= moment]


@given(histories(), st.booleans())
def test_reading_the_same_events_again_changes_nothing(history: list[Occurrence], normal: bool) -> None:
    end = T0 + timedelta(days=2)
    first = apply([], diff_events({}, history, flap_window=WINDOW, status_normal=normal, now=end))
    again = diff_events(latest_by_event(first), history, flap_window=WINDOW, status_normal=normal, now=end)
    assert again == []


@given(histories(), st.lists(st.integers(0, 48 * 60), max_size=6))
def test_polls_at_any_moments_count_every_occurrence_once_and_end_agreeing_with_the_cloud(
    history: list[Occurrence], minutes: list[int]
) -> None:
    alerts: list[KnownAlert] = []
    end = T0 + timedelta(days=3)
    first_read: datetime | None = None
    for moment in [*sorted(T0 + timedelta(minutes=m) for m in minutes), end]:
        changes = diff_events(latest_by_event(alerts), visible_at(history, moment), flap_window=WINDOW,
                              status_normal=False, now=moment, monitored_since=first_read)
        alerts = apply(alerts, changes)
        first_read = first_read or moment
        open_per_event = [a.event for a in alerts if a.state is not AlertState.CLEARED]
        assert len(open_per_event) == len(set(open_per_event))  # never two open alerts of one event
    for event in {o.event for o in history}:
        occurrences = [o for o in history if o.event == event]
        latest = latest_by_event(alerts)[event]
        assert latest.last_started_at == max(o.started_at for o in occurrences)
        assert (latest.state is AlertState.CLEARED) == all(o.ended_at is not None for o in occurrences)


@given(histories())
def test_an_occurrence_within_the_flap_window_of_a_clear_reopens_instead_of_raising(
    history: list[Occurrence]
) -> None:
    alerts: list[KnownAlert] = []
    moments = sorted({o.started_at for o in history} | {o.ended_at for o in history if o.ended_at})
    for moment in moments:
        before = latest_by_event(alerts)
        changes = diff_events(before, visible_at(history, moment), flap_window=WINDOW, status_normal=False,
                              now=moment)
        for change in changes:
            previous = before.get(change.event)
            if change.opening is Opening.RAISE and previous is not None:
                assert previous.cleared_at is not None
                assert change.started_at is not None
                assert change.started_at - previous.cleared_at > WINDOW
            if change.opening is Opening.REOPEN:
                assert previous is not None
                assert previous.cleared_at is not None
        alerts = apply(alerts, changes)


def test_a_fault_over_before_monitoring_began_is_not_raised_but_one_reported_late_is() -> None:
    first_read = T0 + timedelta(hours=5)  # it listed the active events only: it saw neither of these
    before_monitoring = Occurrence("Isolation fault", T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    reported_late = Occurrence("PV Over Voltage", T0 + timedelta(hours=6), T0 + timedelta(hours=7))
    now = T0 + timedelta(hours=9)  # the read at hour 8 did not list it yet: the dongle was offline
    assert diff_events({}, [before_monitoring, reported_late], flap_window=WINDOW, status_normal=True, now=now,
                       monitored_since=first_read) == [AlertChange("PV Over Voltage", Opening.RAISE, 1,
                                                                   reported_late.started_at, reported_late.ended_at)]


def test_an_open_alert_whose_event_is_no_longer_listed_clears_only_once_the_status_is_normal() -> None:
    open_alert = {"PV Over Voltage": KnownAlert("PV Over Voltage", AlertState.OPEN, T0)}
    now = T0 + timedelta(hours=1)
    assert diff_events(open_alert, [], flap_window=WINDOW, status_normal=False, now=now) == []
    assert diff_events(open_alert, [], flap_window=WINDOW, status_normal=True, now=now) == [
        AlertChange("PV Over Voltage", None, 0, None, now)]


@given(st.text(min_size=1, max_size=30), st.sampled_from(list(Severity)))
def test_a_tenant_override_wins_over_the_catalogue(event: str, severity: Severity) -> None:
    assert severity_of(event, {event: severity}) is severity
    assert severity_of(event, {}) is CATALOGUE.get(event, Severity.MAJOR)


@given(st.integers(1, 100_000), st.integers(0, 100_000), st.floats(0.01, 0.99), st.booleans())
def test_the_storm_opens_above_the_share_and_clears_below_half_of_it(
    fleet: int, lost: int, share: float, storm_open: bool
) -> None:
    lost = min(lost, fleet)
    verdict = storm_verdict(fleet=fleet, newly_lost=lost, lost_now=lost, share=share, storm_open=storm_open)
    if not storm_open:
        assert (verdict is StormVerdict.OPEN) == (lost > share * fleet)
    else:
        assert (verdict is StormVerdict.CLEAR) == (lost < share * fleet / 2)
        assert verdict is not StormVerdict.OPEN


@given(st.integers(1, 60_000), st.integers(1, 60_000), st.sampled_from([60.0, 90.0, 300.0, 900.0]),
       st.sampled_from([60, 300, 900]))
def test_the_plan_stays_within_the_budget_and_its_bound_covers_every_healthy_inverter(
    inverters: int, healthy: int, rpm: float, interval: int
) -> None:
    healthy = min(healthy, inverters)
    plan = plan_sweep(inverters=inverters, healthy=healthy, page_size=1000, requests_per_minute=rpm,
                      interval=timedelta(seconds=interval))
    assert plan.pages == math.ceil(inverters / 1000)
    assert plan.pages + plan.reserve + plan.round_robin <= max(plan.budget, plan.pages + plan.reserve)
    if plan.round_robin:
        assert plan.bound_sweeps * plan.round_robin >= healthy
        assert (plan.bound_sweeps - 1) * plan.round_robin < healthy


def test_the_plan_for_ten_thousand_inverters_at_the_monitoring_share_of_300_per_minute() -> None:
    plan = plan_sweep(inverters=10_000, healthy=10_000, page_size=1000, requests_per_minute=90,
                      interval=timedelta(minutes=5))
    assert (plan.budget, plan.pages, plan.reserve, plan.round_robin) == (450, 10, 45, 395)
    assert (plan.bound_sweeps, plan.bound_minutes) == (26, 130.0)


@given(st.integers(60, 86_400), st.integers(-200_000, 200_000), st.none() | st.integers(-86_400, 86_400))
def test_the_next_sweep_keeps_to_the_interval_and_neither_a_late_nor_an_early_one_moves_it_by_more(
    interval_seconds: int, started_after: int, due_after: int | None
) -> None:
    interval = timedelta(seconds=interval_seconds)
    due = None if due_after is None else T0 + timedelta(seconds=due_after)
    started = (due or T0) + timedelta(seconds=started_after)

    following = next_sweep_due(due, started, interval)

    if due is not None and -timedelta(seconds=30) <= started - due < interval:
        assert following == due + interval  # however long the cycle waited or took
    else:  # nothing planned, late by an interval (missed ones are dropped) or early (its due time moved meanwhile)
        assert following == started + interval
    assert following > started  # never due at once: no burst
    assert following - started <= interval + timedelta(seconds=30)  # never more than an interval (and the slack)


def test_a_cycle_whose_due_time_moved_while_it_waited_sets_the_next_one_interval_after_it() -> None:
    # Queued at a 5-minute pace; the interval became a day meanwhile, which re-planned its due time a day out.
    day = timedelta(days=1)
    assert next_sweep_due(T0 + day, T0 + timedelta(minutes=5), day) == T0 + timedelta(minutes=5) + day


@given(st.lists(st.integers(0, 200), unique=True, max_size=60), st.integers(0, 80), st.integers(1, 60))
def test_reads_of_a_sweep_put_status_changes_first_and_the_round_robin_keeps_its_share_within_the_reserve(
    targeted_ids: list[int], healthy_count: int, round_robin: int
) -> None:
    targeted = [f"t{i}" for i in targeted_ids]
    healthy = [f"h{i}" for i in range(healthy_count)]
    plan = plan_sweep(inverters=1000, healthy=healthy_count, page_size=1000,
                      requests_per_minute=(round_robin + 1) * 1.2, interval=timedelta(minutes=1))
    chosen_targeted, chosen_rr = split_reads(targeted, healthy, plan)
    room = plan.budget - plan.pages
    assert len(chosen_targeted) + len(chosen_rr) <= room
    assert len(chosen_targeted) == min(len(targeted), room)  # status changes are read first
    if len(targeted) <= plan.reserve:
        assert len(chosen_rr) >= min(plan.round_robin, healthy_count)
    assert chosen_rr == healthy[: len(chosen_rr)]  # least recently read first
