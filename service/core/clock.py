"""Timezone-aware UTC time, in one place so that tests and jobs agree on what "now" means."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)
