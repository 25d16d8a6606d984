# mypy: disable-error-code="untyped-decorator"
# (strawberry.field(description=...) is typed as returning Any)
"""GraphQL types of the fault monitor."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, TypedDict, TypeVar

import strawberry

from service.core.limits import optional_upstream_id
from service.core.pagination import Page
from service.db.models import monitoring as m
from service.db.models.monitoring import AlertState, IncidentKind, IncidentState, Severity
from service.gql.types.common import optional_fields, read_fields
from service.gql.types.connection import Connection
from service.monitoring.settings import MonitoringKnobs, MonitoringSettingsView

strawberry.enum(AlertState, description="open -> acknowledged -> cleared.")
strawberry.enum(Severity, description="How bad an alert is.")
strawberry.enum(IncidentState, description="Open while it has open alerts.")
strawberry.enum(IncidentKind, description="site: the open alerts of one site; storm: a suspected fleet-wide outage.")


@strawberry.type(description="One fault (or loss of communication) of one inverter.")
class Alert:
    id: strawberry.ID
    inverter_serial: str
    site_id: int | None = strawberry.field(description="Upstream id of the inverter's site.")
    event: str = strawberry.field(description="The cloud's event name, or 'Communication lost'.")
    severity: Severity
    state: AlertState
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    occurrences: int
    flaps: int = strawberry.field(description="Times it came back soon after it cleared.")
    suppressed: bool = strawberry.field(description="Raised inside a maintenance window: recorded, not notified.")
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    acknowledge_note: str | None
    cleared_at: dt.datetime | None
    cleared_by: str | None = strawberry.field(description="Who cleared it by hand (null: the monitor saw it end).")

    @classmethod
    def from_row(cls, row: m.Alert) -> Alert:
        return cls(id=strawberry.ID(str(row.id)), inverter_serial=row.inverter_serial, site_id=row.site_upstream_id,
                   event=row.event, severity=row.severity, state=row.state, first_seen_at=row.first_seen_at,
                   last_seen_at=row.last_seen_at, occurrences=row.occurrences, flaps=row.flaps,
                   suppressed=row.suppressed, acknowledged_by=row.acknowledged_by,
                   acknowledged_at=row.acknowledged_at, acknowledge_note=row.acknowledge_note,
                   cleared_at=row.cleared_at, cleared_by=row.cleared_by)  # fmt: skip


@strawberry.type(description="The open alerts of one site, or a suspected fleet-wide outage.")
class Incident:
    id: strawberry.ID
    kind: IncidentKind
    site_id: int | None
    state: IncidentState
    severity: Severity
    summary: str = strawberry.field(description="One line for people.")
    open_alerts: int
    opened_at: dt.datetime
    cleared_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: m.Incident) -> Incident:
        return cls(id=strawberry.ID(str(row.id)), kind=row.kind, site_id=row.site_upstream_id, state=row.state,
                   severity=row.severity, summary=row.summary, open_alerts=row.open_alerts, opened_at=row.opened_at,
                   cleared_at=row.cleared_at)  # fmt: skip


@strawberry.type(description="A window during which a site's (or an account subtree's) alerts are suppressed.")
class MaintenanceWindow:
    id: strawberry.ID
    site_id: int | None
    account_id: int | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str | None
    created_by: str

    @classmethod
    def from_row(cls, row: m.MaintenanceWindow) -> MaintenanceWindow:
        return cls(id=strawberry.ID(str(row.id)), site_id=row.site_upstream_id, account_id=row.account_upstream_id,
                   starts_at=row.starts_at, ends_at=row.ends_at, reason=row.reason, created_by=row.created_by)


@strawberry.type(description="How many alerts of one severity.")
class SeverityCount:
    severity: Severity
    count: int


@strawberry.type(description="A page of alerts, with the counts by severity of every alert matching the filter.")
class AlertConnection(Connection[Alert]):
    counts_by_severity: list[SeverityCount]

    @classmethod
    def build(cls, page: Page[Any], counts: dict[m.Severity, int], *, after: str | None) -> AlertConnection:
        base = Connection[Alert].of(page, Alert.from_row, after=after)
        return cls(edges=base.edges, page_info=base.page_info, total_count=base.total_count,
                   counts_by_severity=[SeverityCount(severity=s, count=c) for s, c in counts.items()])


_State = TypeVar("_State", AlertState, IncidentState)


class Place(TypedDict):
    """Where alerts or incidents are (upstream ids), as :mod:`service.monitoring.service`'s filters take it."""

    site: int | None
    account: int | None


@strawberry.input
class MonitorFilter(Generic[_State]):
    """What the alert and incident filters share: states (each of its own kind), severities, site, account."""

    states: list[_State] | None = None
    severities: list[Severity] | None = None
    site_id: int | None = None
    account_id: int | None = strawberry.field(default=None, description="This account's subtree.")

    def place(self) -> Place:
        """The site and account criteria; a non-positive id is refused as the subscription refuses it."""
        return {"site": optional_upstream_id(self.site_id, parameter="siteId"),
                "account": optional_upstream_id(self.account_id, parameter="accountId")}


@strawberry.input(description="Which alerts (every field optional).")
class AlertFilter(MonitorFilter[AlertState]):
    inverter_serial: str | None = None
    since: dt.datetime | None = strawberry.field(default=None, description="Seen at or after.")
    until: dt.datetime | None = strawberry.field(default=None, description="First seen before.")


@strawberry.input(description="Which incidents (every field optional).")
class IncidentFilter(MonitorFilter[IncidentState]):
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@strawberry.type(description="A cloud event name whose severity the tenant overrides.")
class SeverityOverride:
    event: str
    severity: Severity


@strawberry.type(description="The tenant's monitoring settings, as the monitor uses them.")
@read_fields(MonitoringKnobs)
class MonitoringSettings(MonitoringKnobs):
    severity_overrides: list[SeverityOverride]

    @classmethod
    def of(cls, view: MonitoringSettingsView) -> MonitoringSettings:
        return cls(**view.knobs, severity_overrides=[SeverityOverride(event=event, severity=severity)
                                                     for event, severity in view.severity_overrides.items()])


@strawberry.input(description="A severity for one cloud event name.")
class SeverityOverrideInput(SeverityOverride):
    pass


@strawberry.input(description="What to change (omitted: unchanged); severityOverrides replaces the whole set.")
@optional_fields(MonitoringKnobs)
class MonitoringSettingsInput:
    """Every knob of :class:`MonitoringKnobs`, optional (null or omitted: unchanged), then the overrides."""

    severity_overrides: list[SeverityOverrideInput] | None = None
