"""The monitor's pure core: severities, the event diff, loss of communication, the storm guard, the sweep plan
and its cadence.

Nothing here touches the database or the network, so each rule is tested on its own with property tests.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.db.models.monitoring import AlertState, Severity

NORMAL = "NORMAL"
LOST = "LOST"
COMMUNICATION_LOST = "Communication lost"
"""The event name of the alert raised when an inverter is LOST or has not been seen for the grace period."""

CATALOGUE: Mapping[str, Severity] = {
    "Isolation fault": Severity.CRITICAL,
    "Battery Over Temperature": Severity.CRITICAL,
    "PV Over Voltage": Severity.MAJOR,
    "BMS communication fault": Severity.MAJOR,
    "Parallel communication failure": Severity.MAJOR,
    COMMUNICATION_LOST: Severity.MAJOR,
    "Grid Over Frequency": Severity.MINOR,
    "Grid Under Voltage": Severity.MINOR,
    "Grid Over Voltage": Severity.MINOR,
    "Meter communication lost": Severity.MINOR,
}
"""Severity of the cloud's event names; a tenant may override any name (and add names)."""

UNKNOWN_EVENT_SEVERITY = Severity.MAJOR
"""An event name nobody has classified yet is shown prominently rather than hidden."""


def severity_of(event: str, overrides: Mapping[str, Severity]) -> Severity:
    """The tenant's severity for ``event``: its override, else the catalogue's, else major."""
    return overrides.get(event) or CATALOGUE.get(event, UNKNOWN_EVENT_SEVERITY)


# --- the event diff ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occurrence:
    """One event as the cloud lists it (``ended_at`` is ``None`` while it is active)."""

    event: str
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True)
class KnownAlert:
    """The latest alert of one (inverter, event) as stored."""

    event: str
    state: AlertState
    last_started_at: datetime
    cleared_at: datetime | None = None


class Opening(enum.StrEnum):
    """How a change opens (or keeps open) an alert."""

    RAISE = "raise"
    """A new alert."""
    REOPEN = "reopen"
    """The cleared alert comes back within the flap window (one more flap)."""
    RECUR = "recur"
    """The open alert is seen again (one more occurrence)."""


@dataclass(frozen=True)
class AlertChange:
    """What to do to the alert of one event.

    Attributes:
        event: The event name.
        opening: How it opens, or ``None`` when the change only clears an open alert.
        occurrences: New occurrences counted (starts later than the alert's ``last_started_at``).
        started_at: Start of the latest occurrence counted (the alert's new ``last_started_at``).
        clears_at: When it clears (the event ended, or the status is back to NORMAL); ``None``: it stays open.
    """

    event: str
    opening: Opening | None
    occurrences: int
    started_at: datetime | None
    clears_at: datetime | None


def diff_events(
    alerts: Mapping[str, KnownAlert],
    occurrences: Iterable[Occurrence],
    *,
    flap_window: timedelta,
    status_normal: bool,
    now: datetime,
    monitored_since: datetime | None = None,
) -> list[AlertChange]:
    """Compare one inverter's events with its alerts.

    Args:
        alerts: The latest alert per event name (cleared ones included, for flap detection).
        occurrences: The events read (from the cursor on; older events may be missing).
        flap_window: A new occurrence starting this soon after its alert cleared reopens that alert.
        status_normal: The inverter's status is NORMAL: an open alert whose event is no longer listed as
            active clears even when its end was not seen.
        now: The time of the read.
        monitored_since: When the inverter's events were first read, if they were. An occurrence that had ended
            by then is not new: it was over before monitoring began (a first read lists the active events only;
            the next one reads from the start of that day, and the day's earlier faults must not be raised, and
            notified, as new). One that ended later is raised even when it ended before the previous read: the
            cloud may list it late (a dongle back online uploads what it saw), or the inverter's clock may lag.

    Returns:
        One change per event whose alert must change; none when the read shows nothing new (so repeating a
        read, or resuming an interrupted one, changes nothing).
    """
    by_event: dict[str, list[Occurrence]] = {}
    for occurrence in occurrences:
        by_event.setdefault(occurrence.event, []).append(occurrence)
    changes: list[AlertChange] = []
    for event in sorted(set(by_event) | set(alerts)):
        seen = by_event.get(event, [])
        alert = alerts.get(event)
        is_open = alert is not None and alert.state is not AlertState.CLEARED
        active = any(o.ended_at is None for o in seen)
        baseline = alert.last_started_at if alert is not None else None
        new = sorted({o.started_at for o in seen if (baseline is None or o.started_at > baseline)
                      and not (monitored_since is not None and o.ended_at is not None
                               and o.ended_at <= monitored_since)})
        ends = [o.ended_at for o in seen if o.ended_at is not None and (baseline is None or o.started_at >= baseline)]
        if new:
            if is_open:
                opening = Opening.RECUR
            elif alert is not None and alert.cleared_at is not None and new[0] - alert.cleared_at <= flap_window:
                opening = Opening.REOPEN
            else:
                opening = Opening.RAISE
            changes.append(AlertChange(event, opening, len(new), new[-1], None if active else max(ends)))
        elif is_open and not active and (ends or status_normal):
            changes.append(AlertChange(event, None, 0, None, max(ends) if ends else now))
    return changes


# --- status -------------------------------------------------------------------------------------------------


def needs_event_read(previous: str | None, current: str | None) -> bool:
    """A sweep reads an inverter's events first when its status changed since the last sweep (leaving NORMAL is
    a change). A first sighting is no change: the round-robin reads never-read inverters first anyway, and a
    new tenant's long-standing WAITING inverters would otherwise crowd out the changes of the next sweeps."""
    return previous is not None and current != previous


def communication_lost(status: str | None, last_online: datetime | None, now: datetime, grace: timedelta) -> bool:
    """LOST, or not seen online for longer than ``grace``."""
    return status == LOST or (last_online is not None and now - last_online > grace)


# --- the storm guard ---------------------------------------------------------------------------------------


class StormVerdict(enum.StrEnum):
    """What a sweep does about the fleet-wide incident."""

    OPEN = "open"
    CLEAR = "clear"
    KEEP = "keep"


def storm_verdict(*, fleet: int, newly_lost: int, lost_now: int, share: float, storm_open: bool) -> StormVerdict:
    """Open a storm when more than ``share`` of the fleet went LOST in one sweep; clear it once fewer than half
    that share is still lost (most came back), so a fleet hovering at the threshold does not flap.

    Args:
        fleet: Inverters in the tenant's fleet.
        newly_lost: Inverters that went LOST in this sweep.
        lost_now: Inverters LOST after this sweep.
        share: The tenant's threshold (0.2: 20 %).
        storm_open: Whether a storm incident is open.
    """
    if fleet <= 0:
        return StormVerdict.CLEAR if storm_open else StormVerdict.KEEP
    if not storm_open:
        return StormVerdict.OPEN if newly_lost > share * fleet else StormVerdict.KEEP
    return StormVerdict.CLEAR if lost_now < share * fleet / 2 else StormVerdict.KEEP


# --- the sweep plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPlan:
    """The requests of one sweep within the monitoring lane's share, and the round-robin bound.

    Attributes:
        budget: Requests the monitoring share allows per sweep interval.
        pages: Device list pages (``ceil(inverters / page_size)``).
        reserve: Requests kept for targeted event reads (inverters whose status changed).
        round_robin: Event reads of healthy inverters per sweep (at least this many, whatever the targeted
            reads took).
        bound_sweeps: Sweeps until every healthy inverter's events have been read once.
        bound_minutes: The same in minutes: a fault that does not change the status is found within this.
    """

    budget: int
    pages: int
    reserve: int
    round_robin: int
    bound_sweeps: int
    bound_minutes: float

    def describe(self, inverters: int, requests_per_minute: float) -> str:
        """One line for logs and the bench."""
        return (
            f"monitoring plan: {inverters} inverters at {requests_per_minute:g} requests/min: "
            f"{self.pages} device pages + up to {self.reserve} targeted + {self.round_robin} round-robin event "
            f"reads per sweep; every healthy inverter's events read within {self.bound_sweeps} sweeps "
            f"({self.bound_minutes:g} min)"
        )


def plan_sweep(
    *,
    inverters: int,
    healthy: int,
    page_size: int,
    requests_per_minute: float,
    interval: timedelta,
    reserve_share: float = 0.1,
) -> SweepPlan:
    """Split one sweep interval's monitoring budget between pages, targeted reads and the round-robin.

    Args:
        inverters: Inverters of the tenant (pages to read).
        healthy: Inverters the round-robin covers (not LOST).
        page_size: Devices per list page.
        requests_per_minute: The monitoring lane's share of the credential's budget.
        interval: The sweep interval.
        reserve_share: Share of the budget kept for targeted reads.

    Returns:
        The plan; a budget smaller than the pages leaves no round-robin (an infinite bound).
    """
    budget = max(0, math.floor(requests_per_minute * interval.total_seconds() / 60))
    pages = max(1, math.ceil(inverters / max(1, page_size)))
    reserve = math.ceil(budget * reserve_share)
    round_robin = max(0, budget - pages - reserve)
    if healthy <= 0:
        sweeps = 0
    elif round_robin == 0:
        return SweepPlan(budget, pages, reserve, 0, 0, math.inf)
    else:
        sweeps = math.ceil(healthy / round_robin)
    return SweepPlan(budget, pages, reserve, round_robin, sweeps, sweeps * interval.total_seconds() / 60)


SCHEDULER_TICK = timedelta(minutes=1)
"""How often ``monitoring.schedule`` runs (its cron fires at second 15 of every minute). It asks for the cycles due
within half a tick, so a cycle may start up to half a tick before its due time."""


def next_sweep_due(due: datetime | None, started: datetime, interval: timedelta) -> datetime:
    """When a tenant's next cycle is due, after a cycle that started at ``started`` for the one due at ``due``.

    One ``interval`` after ``due``: how long the cycle waited in the queue or took does not push the next one
    later, so cycles keep to the interval. A cycle that sets a new pace instead, the next being due one interval
    after it started:

    - one that none was planned for;
    - one that started a whole interval or more after its due time (the worker was down, the queue backed up):
      the cycles missed meanwhile are not made up (never a burst back to back);
    - one that started more than half a scheduler tick before it (its due time moved while it waited, e.g. a new
      interval was set): the next is still one interval after this one, never two.
    """
    if due is None or not -SCHEDULER_TICK / 2 <= started - due < interval:
        return started + interval
    return due + interval


def split_reads(targeted: Sequence[str], healthy_by_age: Sequence[str], plan: SweepPlan) -> tuple[list[str], list[str]]:
    """The event reads of one sweep: targeted inverters first (their status changed: a fault shows within one
    cycle), then the healthy ones least recently read with the rest of the budget.

    The round-robin gets at least ``plan.round_robin`` reads whenever the targeted reads fit the reserve, which
    is what the plan's bound assumes; a sweep with more status changes than that delays the round-robin, and
    targeted reads beyond the whole budget wait for the next sweep (they stay marked).
    """
    room = max(0, plan.budget - plan.pages)
    chosen = list(targeted[:room])
    picked = set(chosen)
    rr = [serial for serial in healthy_by_age if serial not in picked][: room - len(chosen)]
    return chosen, rr
