"""The campaign window: local start and end time and weekdays in the tenant's timezone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def in_window(now: datetime, zone: str, start: time | None, end: time | None,
              weekdays: Sequence[int] | None) -> bool:
    """Whether ``now`` (aware) is inside the window. A window whose end is before its start spans midnight and
    belongs to the weekday it starts on; no start/end means all day; no weekdays means every day."""
    local = now.astimezone(ZoneInfo(zone))
    days = set(weekdays) if weekdays else set(range(7))
    if start is None or end is None:
        return local.weekday() in days
    clock = local.time().replace(tzinfo=None)
    if start <= end:
        return local.weekday() in days and start <= clock < end
    if clock >= start:
        return local.weekday() in days
    return clock < end and (local.weekday() - 1) % 7 in days


def next_opening(now: datetime, zone: str, start: time | None, end: time | None,
                 weekdays: Sequence[int] | None) -> datetime:
    """``now`` when inside the window, else when it next opens (aware, in ``now``'s timezone)."""
    if in_window(now, zone, start, end, weekdays):
        return now
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    days = set(weekdays) if weekdays else set(range(7))
    opening = start or time(0, 0)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        candidate = datetime.combine(day, opening, tzinfo=tz)
        if candidate > local and day.weekday() in days:
            return candidate.astimezone(now.tzinfo)
    return now  # no weekday allowed at all: validation refuses such a window
