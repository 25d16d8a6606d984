"""REST: alerts (list, counts by severity, acknowledge, clear), incidents and maintenance windows."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from service.api.common import Cursor, Limit, PageView, Upstream
from service.api.dependencies import DbSession, ReadDb
from service.api.openapi import problems
from service.authn import PrincipalDep
from service.core.limits import page_size
from service.db.models.monitoring import AlertState, IncidentState, Severity
from service.monitoring.service import AlertFilter, AlertService, IncidentFilter
from service.monitoring.settings import (
    KNOBS,
    MIN_STORM_SHARE,
    MonitoringKnobs,
    MonitoringSettingsView,
    SettingsChange,
    read_settings,
    update_settings,
)

ERRORS = problems(400, 401, 403, 404, 422, 429)
AlertStates = Annotated[list[AlertState] | None, QueryParameter(name="state", description="State is one of these.")]
IncidentStates = Annotated[list[IncidentState] | None, QueryParameter(name="state",
                                                                      description="State is one of these.")]
Since = Annotated[datetime | None, QueryParameter(description="Seen at or after this time (ISO 8601 with a zone).")]
Until = Annotated[datetime | None, QueryParameter(description="First seen before this time (ISO 8601 with a zone).")]
Severities = Annotated[list[Severity] | None, QueryParameter(description="Severity is one of these (repeat).")]


class AlertView(BaseModel):
    """An alert: one fault (or loss of communication) of one inverter."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    inverter_serial: str
    site_upstream_id: int | None
    event: str
    severity: Severity
    state: AlertState
    first_seen_at: datetime
    last_seen_at: datetime
    occurrences: int
    flaps: int
    suppressed: bool = Field(description="Raised inside a maintenance window: recorded, not notified.")
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    acknowledge_note: str | None
    cleared_at: datetime | None
    cleared_by: str | None = Field(description="Who cleared it by hand; null when the monitor saw it end.")
    incident_id: uuid.UUID | None


class IncidentView(BaseModel):
    """The open alerts of one site, or a suspected fleet-wide outage (``kind`` storm)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    site_upstream_id: int | None
    state: IncidentState
    severity: Severity
    summary: str
    open_alerts: int
    opened_at: datetime
    cleared_at: datetime | None


class MaintenanceWindowView(BaseModel):
    """A maintenance window."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    site_upstream_id: int | None
    account_upstream_id: int | None
    starts_at: datetime
    ends_at: datetime
    reason: str | None
    created_by: str


class AcknowledgeInput(BaseModel):
    """An acknowledgement."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=1000, description=(
        "Acknowledging again: a note replaces the first's (an empty one erases it); left out, it is kept."))


class MaintenanceWindowInput(BaseModel):
    """A window for one site or one account's subtree (of the tenant's mirror)."""

    model_config = ConfigDict(extra="forbid")

    site_id: int | None = Field(default=None, description="A site's upstream id (positive).")
    account_id: int | None = Field(default=None, description="An account's upstream id (positive).")
    starts_at: datetime
    ends_at: datetime
    reason: str | None = Field(default=None, max_length=500)


class MonitoringSettingsBody(BaseModel, MonitoringKnobs):
    """The tenant's monitoring settings, as the monitor uses them."""

    severity_overrides: dict[str, Severity] = Field(description="Cloud event name -> severity, over the catalogue.")

    @classmethod
    def of(cls, view: MonitoringSettingsView) -> MonitoringSettingsBody:
        return cls(**view.knobs, severity_overrides=view.severity_overrides)


class MonitoringSettingsPatch(BaseModel):
    """What to change (omitted: unchanged); ``severity_overrides`` replaces the whole set."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    sweep_interval_seconds: int | None = None
    grace_seconds: int | None = None
    flap_window_seconds: int | None = None
    storm_share: float | None = Field(default=None, description=f"From {MIN_STORM_SHARE} to 1.")
    severity_overrides: dict[str, Severity] | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _json_types(cls, value: Any, info: ValidationInfo) -> Any:
        """No null (omit a field to keep it), no string or boolean for a number, no number for a boolean."""
        name = info.field_name
        if value is None:
            raise PydanticCustomError("null", "{name}: omit the field to keep its value; null is not a value",
                                      {"name": name})
        expected = _PATCH_TYPES.get(name or "")
        if expected is not None and type(value) not in expected[1]:
            raise PydanticCustomError("json_type", "{name} must be a JSON {expected}, not {got}",
                                      {"name": name, "expected": expected[0], "got": json.dumps(value)})
        return value

    def change(self) -> SettingsChange:
        """The change the domain applies: the knobs given, and the severity overrides if given."""
        return SettingsChange(self.model_dump(exclude_unset=True, exclude={"severity_overrides"}),
                              severity_overrides=self.severity_overrides)


_JSON_TYPES: dict[type, tuple[str, tuple[type, ...]]] = {
    bool: ("boolean", (bool,)), int: ("integer", (int,)), float: ("number", (float, int)),
}
"""The JSON type of the values of a Python type, and the Python types of the values that have it."""
_PATCH_TYPES = {name: _JSON_TYPES[kind] for name, kind in KNOBS.items()}
"""The JSON type of each knob (by its JSON name) and the Python types of the values that have it."""


class SeverityCountsView(BaseModel):
    """Alerts per severity."""

    critical: int
    major: int
    minor: int
    info: int


class MonitoringController(Controller):
    """Alerts, incidents, maintenance windows: viewers read, operators act."""

    path = "/api/v1"
    tags = ["monitoring"]

    @get("/alerts", responses=ERRORS)
    async def list_alerts(
        self, principal: PrincipalDep, read_session: ReadDb, alert_state: AlertStates = None,
        severity: Severities = None, site_id: Upstream = None, account_id: Upstream = None,
        inverter: Annotated[str | None, QueryParameter(max_length=64)] = None, since: Since = None,
        until: Until = None, limit: Limit = 50, cursor: Cursor = None,
    ) -> PageView[AlertView]:
        """Alerts, most recently seen first (a subtree key sees its subtree's only)."""
        where = AlertFilter(states=tuple(alert_state or ()), severities=tuple(severity or ()), site=site_id,
                            account=account_id, inverter=inverter, since=since, until=until)
        page = await AlertService(read_session, principal).alerts(where, page_size(limit), cursor)
        return PageView[AlertView].of(page, AlertView.model_validate)

    @get("/alerts/counts", responses=ERRORS)
    async def alert_counts(
        self, principal: PrincipalDep, read_session: ReadDb, alert_state: AlertStates = None,
        site_id: Upstream = None, account_id: Upstream = None, since: Since = None, until: Until = None,
    ) -> SeverityCountsView:
        """Alerts per severity matching the filter (default: every state)."""
        where = AlertFilter(states=tuple(alert_state or ()), site=site_id, account=account_id, since=since,
                            until=until)
        counts = await AlertService(read_session, principal).alert_counts(where)
        return SeverityCountsView(**{severity.value: count for severity, count in counts.items()})

    @post("/alerts/{alert_id:uuid}/acknowledge", responses=problems(
        400, 401, 403, 404, 409, 422, 429), status_code=200)
    async def acknowledge(self, alert_id: FromPath[uuid.UUID], principal: PrincipalDep, db_session: DbSession,
                          data: JSONBody[AcknowledgeInput | None] = None) -> AlertView:
        """Acknowledge an open alert (operator role); the body, and its note, may be left out. Acknowledging it
        again without a note keeps who acknowledged it, when and its note; with a note (an empty one erases it), the
        note replaces the old one and who gave it and when are recorded."""
        alert = await AlertService(db_session, principal).acknowledge(alert_id, data.note if data else None)
        return AlertView.model_validate(alert)

    @post("/alerts/{alert_id:uuid}/clear", responses=problems(
        400, 401, 403, 404, 409, 429), status_code=200)
    async def clear(self, alert_id: FromPath[uuid.UUID], principal: PrincipalDep, db_session: DbSession) -> AlertView:
        """Clear an alert by hand (operator role; recorded, never deleted; reopened if the fault recurs)."""
        alert = await AlertService(db_session, principal).clear(alert_id)
        return AlertView.model_validate(alert)

    @get("/incidents", responses=ERRORS)
    async def list_incidents(self, principal: PrincipalDep, read_session: ReadDb,
                             incident_state: IncidentStates = None,
                             severity: Severities = None, site_id: Upstream = None, account_id: Upstream = None,
                             since: Since = None, until: Until = None, limit: Limit = 50,
                             cursor: Cursor = None) -> PageView[IncidentView]:
        """Incidents, most recently opened first."""
        where = IncidentFilter(states=tuple(incident_state or ()), severities=tuple(severity or ()), site=site_id,
                               account=account_id, since=since, until=until)
        page = await AlertService(read_session, principal).incidents(where, page_size(limit), cursor)
        return PageView[IncidentView].of(page, IncidentView.model_validate)

    @get("/maintenance-windows", responses=ERRORS)
    async def list_windows(self, principal: PrincipalDep, read_session: ReadDb) -> list[MaintenanceWindowView]:
        """Maintenance windows not yet over."""
        windows = await AlertService(read_session, principal).maintenance_windows()
        return [MaintenanceWindowView.model_validate(window) for window in windows]

    @get("/monitoring/settings", responses=problems(401, 403, 429))
    async def get_settings(self, principal: PrincipalDep, read_session: ReadDb) -> MonitoringSettingsBody:
        """The tenant's monitoring settings (the defaults until an admin changes them)."""
        return MonitoringSettingsBody.of(await read_settings(read_session, principal))

    @patch("/monitoring/settings", responses=problems(400, 401, 403, 422, 429))
    async def patch_settings(self, data: JSONBody[MonitoringSettingsPatch], principal: PrincipalDep,
                             db_session: DbSession) -> MonitoringSettingsBody:
        """Change the tenant's monitoring settings (admin, whole-tenant key; audited). A value out of range is a
        400 naming it, and nothing changes."""
        return MonitoringSettingsBody.of(await update_settings(db_session, principal, data.change()))

    @post("/maintenance-windows", responses=problems(
        400, 401, 403, 422, 429))
    async def create_window(self, data: JSONBody[MaintenanceWindowInput], principal: PrincipalDep,
                            db_session: DbSession) -> MaintenanceWindowView:
        """Create a maintenance window for a site or an account subtree (operator role, whole-tenant keys)."""
        window = await AlertService(db_session, principal).create_maintenance_window(
            starts_at=data.starts_at, ends_at=data.ends_at, site=data.site_id, account=data.account_id,
            reason=data.reason)
        return MaintenanceWindowView.model_validate(window)

    @delete("/maintenance-windows/{window_id:uuid}",
            responses=problems(400, 401, 403, 404, 429), status_code=HTTP_204_NO_CONTENT)
    async def delete_window(self, window_id: FromPath[uuid.UUID], principal: PrincipalDep,
                            db_session: DbSession) -> None:
        """Delete a maintenance window (operator role, whole-tenant keys)."""
        await AlertService(db_session, principal).delete_maintenance_window(window_id)
