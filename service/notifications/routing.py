"""Routing (pure): which rules match an event, and until when quiet hours hold it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.db.models.monitoring import Severity

SEVERITY_RANK = {Severity.CRITICAL: 3, Severity.MAJOR: 2, Severity.MINOR: 1, Severity.INFO: 0}


def matches(event_types: Sequence[str], min_severity: Severity | None, event_type: str,
            severity: Severity | None) -> bool:
    """Whether a rule (these types, empty for any; at least this severity, ``None`` for any) takes an event."""
    if event_types and event_type not in event_types:
        return False
    if min_severity is None:
        return True
    return severity is not None and SEVERITY_RANK[severity] >= SEVERITY_RANK[min_severity]


def zone(name: str) -> ZoneInfo:
    """The tenant's timezone (UTC when the name is unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_until(now: datetime, timezone_name: str, start: time | None, end: time | None) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (local ``start`` to ``end``, possibly across midnight), or
    ``None`` when ``now`` is outside them or there are none."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone(timezone_name))
    today = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= today < end
        ends_on = local.date()
    else:  # across midnight: 22:00-07:00
        inside = today >= start or today < end
        ends_on = local.date() + timedelta(days=1) if today >= start else local.date()
    if not inside:
        return None
    return datetime.combine(ends_on, end, tzinfo=local.tzinfo).astimezone(now.tzinfo)
