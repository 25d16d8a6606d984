"""A tenant's monitoring settings: the knobs the monitor reads per tenant (enabled, sweep interval, grace period,
flap window, storm share) and its severity overrides of the catalogue. Anyone of the tenant reads them; an admin
with a whole-tenant key changes them, audited in the same transaction. Nothing here commits (the edge does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.errors import InvalidParameterError
from service.core.principal import Principal
from service.db.models.monitoring import MonitoringSettings, Severity, SeverityOverride
from service.monitoring.repository import MonitoringRepository
from service.policy import Action, authorize
from service.tenants.service import AuditService

DAY = 86_400
LIMITS: Mapping[str, tuple[int, int]] = {
    "sweep_interval_seconds": (60, DAY),
    "grace_seconds": (60, 7 * DAY),
    "flap_window_seconds": (0, 7 * DAY),
}
"""Allowed range of each duration, in seconds (the database checks the lower bounds too)."""
MIN_STORM_SHARE = 0.01
"""The lowest storm share: below it, a handful of inverters going LOST would open a fleet-wide incident."""
MAX_OVERRIDES = 500
MAX_EVENT_NAME = 200


@dataclass(frozen=True)
class MonitoringSettingsView:
    """A tenant's monitoring settings as the monitor uses them."""

    enabled: bool
    sweep_interval_seconds: int
    grace_seconds: int
    flap_window_seconds: int
    storm_share: float
    severity_overrides: dict[str, Severity] = field(default_factory=dict)


@dataclass(frozen=True)
class SettingsChange:
    """What to change; ``None`` keeps the current value. ``severity_overrides`` replaces the whole set."""

    enabled: bool | None = None
    sweep_interval_seconds: int | None = None
    grace_seconds: int | None = None
    flap_window_seconds: int | None = None
    storm_share: float | None = None
    severity_overrides: Mapping[str, Severity] | None = None


async def read_settings(session: AsyncSession, principal: Principal) -> MonitoringSettingsView:
    """The settings of the principal's tenant (the defaults until someone changes them)."""
    authorize(principal, Action.MONITORING_SETTINGS_READ)
    repo = MonitoringRepository(session, principal.tenant_id)
    return _view(await repo.settings(), await repo.overrides())


async def update_settings(session: AsyncSession, principal: Principal,
                          change: SettingsChange) -> MonitoringSettingsView:
    """Apply ``change`` (validated first: a bad value changes nothing) and audit it.

    Raises:
        PermissionDeniedError: Not an admin, or a key restricted to a subtree (the settings are tenant-wide).
        InvalidParameterError: A value out of range; ``parameter`` names it.
    """
    authorize(principal, Action.MONITORING_SETTINGS_WRITE)
    _validate(change)
    repo = MonitoringRepository(session, principal.tenant_id)
    row = await repo.settings(for_update=True)  # before any read: a concurrent change waits, then sees this one
    before = _view(row, await repo.overrides())
    if change.enabled is not None:
        row.enabled = change.enabled
    if change.sweep_interval_seconds is not None:
        row.sweep_interval_seconds = change.sweep_interval_seconds
        if row.last_sweep_at is not None:  # the next sweep follows the new interval
            row.next_sweep_at = row.last_sweep_at + timedelta(seconds=row.sweep_interval_seconds)
    if change.grace_seconds is not None:
        row.grace_seconds = change.grace_seconds
    if change.flap_window_seconds is not None:
        row.flap_window_seconds = change.flap_window_seconds
    if change.storm_share is not None:
        row.storm_share = change.storm_share
    overrides = before.severity_overrides
    if change.severity_overrides is not None:
        overrides = dict(change.severity_overrides)
        await session.execute(delete(SeverityOverride).where(SeverityOverride.tenant_id == principal.tenant_id))
        session.add_all(SeverityOverride(tenant_id=principal.tenant_id, event=event, severity=severity)
                        for event, severity in sorted(overrides.items()))
    after = _view(row, overrides)
    changed = {name: {"from": _plain(getattr(before, name)), "to": _plain(getattr(after, name))}
               for name in ("enabled", "sweep_interval_seconds", "grace_seconds", "flap_window_seconds",
                            "storm_share", "severity_overrides")
               if getattr(before, name) != getattr(after, name)}
    await AuditService(session).record(principal, Action.MONITORING_SETTINGS_WRITE.value.name,
                                       target_type="monitoring_settings", target_id=str(principal.tenant_id),
                                       details={"changed": changed})
    await session.flush()
    return after


def _validate(change: SettingsChange) -> None:
    for name, (low, high) in LIMITS.items():
        value = getattr(change, name)
        if value is not None and (isinstance(value, bool) or not low <= value <= high):
            raise InvalidParameterError(f"{name} must be from {low} to {high} seconds, got {value!r}", parameter=name)
    share = change.storm_share
    if share is not None and (isinstance(share, bool) or not MIN_STORM_SHARE <= share <= 1):
        raise InvalidParameterError(f"storm_share must be from {MIN_STORM_SHARE} to 1 (a share of the fleet), got "
                                    f"{share!r}", parameter="storm_share")
    overrides = change.severity_overrides or {}
    if len(overrides) > MAX_OVERRIDES:
        raise InvalidParameterError(f"at most {MAX_OVERRIDES} severity overrides", parameter="severity_overrides")
    for event in overrides:
        if event != event.strip() or not event or len(event) > MAX_EVENT_NAME or not event.isprintable():
            raise InvalidParameterError(f"an event name must be 1 to {MAX_EVENT_NAME} printable characters, without "
                                        f"leading or trailing spaces, got {event!r}", parameter="severity_overrides")


def _view(row: MonitoringSettings, overrides: Mapping[str, Severity]) -> MonitoringSettingsView:
    return MonitoringSettingsView(enabled=row.enabled, sweep_interval_seconds=row.sweep_interval_seconds,
                                  grace_seconds=row.grace_seconds, flap_window_seconds=row.flap_window_seconds,
                                  storm_share=row.storm_share, severity_overrides=dict(sorted(overrides.items())))


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {key: str(item) for key, item in value.items()}
    return value


__all__ = ["MIN_STORM_SHARE", "MonitoringSettingsView", "SettingsChange", "read_settings", "update_settings"]
