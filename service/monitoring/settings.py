"""A tenant's monitoring settings: the knobs the monitor reads per tenant (enabled, sweep interval, grace period,
flap window, storm share) and its severity overrides of the catalogue. Anyone of the tenant reads them; an admin
with a whole-tenant key changes them, audited in the same transaction. Nothing here commits (the edge does).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.errors import InvalidParameterError
from service.core.principal import Principal
from service.db.models.monitoring import MonitoringSettings, Severity, SeverityOverride
from service.monitoring.repository import MonitoringRepository
from service.policy import Action, authorize
from service.tenants.service import AuditService

DAY = 86_400
MIN_STORM_SHARE = 0.01
"""The lowest storm share: below it, a handful of inverters going LOST would open a fleet-wide incident."""
MAX_OVERRIDES = 500
MAX_EVENT_NAME = 200


@dataclass(frozen=True)
class Bounds:
    """The allowed range of a numeric knob (the database checks the lower bounds too); ``unit`` ends the message
    naming a value out of it."""

    low: float
    high: float
    unit: str


class MonitoringKnobs:
    """The knobs of a tenant's monitoring settings, declared once: each one's name, type, description (both APIs
    show it) and, for a number, its :class:`Bounds`.

    This is a read model (as :mod:`service.mirror.read_model`'s): the REST view and the GraphQL type inherit it;
    :func:`update_settings`, its validation and its audit go over its fields by name, and so does the GraphQL
    input. Adding a knob touches four places: the ORM model (:class:`service.db.models.monitoring.MonitoringSettings`),
    a migration, this class and the REST patch (:class:`service.api.monitoring.MonitoringSettingsPatch`).
    """

    enabled: bool
    sweep_interval_seconds: Annotated[int, Bounds(60, DAY, "seconds"),
                                      Field(description="Seconds between sweeps (default 300).")]
    grace_seconds: Annotated[int, Bounds(60, 7 * DAY, "seconds"),
                             Field(description="An inverter not seen for longer is 'Communication lost' "
                                               "(default 1800).")]
    flap_window_seconds: Annotated[int, Bounds(0, 7 * DAY, "seconds"),
                                   Field(description="An alert raised again within this time of clearing reopens "
                                                     "(a flap) (default 3600).")]
    storm_share: Annotated[float, Bounds(MIN_STORM_SHARE, 1, "(a share of the fleet)"),
                           Field(description="Share of the fleet going LOST in one sweep that opens one fleet-wide "
                                             "incident instead of alerts (default 0.2).")]


KNOBS: Mapping[str, type] = typing.get_type_hints(MonitoringKnobs)
"""Each knob's type, by name, in declaration order."""
_BOUNDS: Mapping[str, Bounds] = {
    name: bounds for name, annotation in typing.get_type_hints(MonitoringKnobs, include_extras=True).items()
    for bounds in getattr(annotation, "__metadata__", ()) if isinstance(bounds, Bounds)}


@dataclass(frozen=True)
class MonitoringSettingsView:
    """A tenant's monitoring settings as the monitor uses them: each knob's value by name (of the type
    :class:`MonitoringKnobs` gives it) and the severity overrides."""

    knobs: Mapping[str, Any]
    severity_overrides: dict[str, Severity] = field(default_factory=dict)


@dataclass(frozen=True)
class SettingsChange:
    """What to change: ``knobs`` holds the new value of each knob to change, by name (the others keep theirs);
    ``severity_overrides`` replaces the whole set (``None`` keeps it)."""

    knobs: Mapping[str, Any] = field(default_factory=dict)
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
    for name, value in change.knobs.items():
        setattr(row, name, value)
    if "sweep_interval_seconds" in change.knobs and row.last_sweep_at is not None:  # the next sweep follows it
        row.next_sweep_at = row.last_sweep_at + timedelta(seconds=row.sweep_interval_seconds)
    overrides = before.severity_overrides
    if change.severity_overrides is not None:
        overrides = dict(change.severity_overrides)
        await session.execute(delete(SeverityOverride).where(SeverityOverride.tenant_id == principal.tenant_id))
        session.add_all(SeverityOverride(tenant_id=principal.tenant_id, event=event, severity=severity)
                        for event, severity in sorted(overrides.items()))
    after = _view(row, overrides)
    old, new = _values(before), _values(after)
    changed = {name: {"from": _plain(old[name]), "to": _plain(new[name])} for name in old if old[name] != new[name]}
    await AuditService(session).record(principal, Action.MONITORING_SETTINGS_WRITE.value.name,
                                       target_type="monitoring_settings", target_id=str(principal.tenant_id),
                                       details={"changed": changed})
    await session.flush()
    return after


def _validate(change: SettingsChange) -> None:
    unknown = sorted(change.knobs.keys() - KNOBS.keys())
    if unknown:  # the adapters pass knobs only; anything else would be written to the row
        raise InvalidParameterError(f"there is no monitoring setting {unknown[0]!r}", parameter=unknown[0])
    for name, value in change.knobs.items():
        if value is None:  # every column is NOT NULL: keeping a value is leaving its knob out
            raise InvalidParameterError(f"{name} must have a value (leave it out to keep the current one)",
                                        parameter=name)
    for name, bounds in _BOUNDS.items():
        value = change.knobs.get(name)
        if value is not None and (isinstance(value, bool) or not bounds.low <= value <= bounds.high):
            raise InvalidParameterError(f"{name} must be from {bounds.low} to {bounds.high} {bounds.unit}, got "
                                        f"{repr(value).removesuffix('.0')}", parameter=name)  # 0 is not "0.0"
    overrides = change.severity_overrides or {}
    if len(overrides) > MAX_OVERRIDES:
        raise InvalidParameterError(f"at most {MAX_OVERRIDES} severity overrides", parameter="severity_overrides")
    for event in overrides:
        if event != event.strip() or not event or len(event) > MAX_EVENT_NAME or not event.isprintable():
            raise InvalidParameterError(f"an event name must be 1 to {MAX_EVENT_NAME} printable characters, without "
                                        f"leading or trailing spaces, got {event!r}", parameter="severity_overrides")


def _view(row: MonitoringSettings, overrides: Mapping[str, Severity]) -> MonitoringSettingsView:
    return MonitoringSettingsView({name: getattr(row, name) for name in KNOBS},
                                  severity_overrides=dict(sorted(overrides.items())))


def _values(view: MonitoringSettingsView) -> dict[str, object]:
    """Every setting of ``view`` by name, the severity overrides last (as the audit lists what changed)."""
    return {**view.knobs, "severity_overrides": view.severity_overrides}


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {key: str(item) for key, item in value.items()}
    return value


__all__ = ["KNOBS", "MIN_STORM_SHARE", "Bounds", "MonitoringKnobs", "MonitoringSettingsView", "SettingsChange",
           "read_settings", "update_settings"]
