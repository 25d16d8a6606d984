# mypy: disable-error-code="untyped-decorator"
"""``alerts`` and ``incidents``."""

from __future__ import annotations

import strawberry

from service.core.limits import page_size
from service.gql.context import Info
from service.gql.monitoring.types import AlertConnection, AlertFilter, Incident, IncidentFilter, MonitoringSettings
from service.gql.types.connection import Connection
from service.monitoring import service as monitoring
from service.monitoring.settings import read_settings


@strawberry.type
class MonitoringQuery:
    @strawberry.field(description="Alerts, most recently seen first, with counts by severity (a subtree key sees "
                                  "its subtree's only).")
    async def alerts(self, info: Info, filter: AlertFilter | None = None, first: int | None = None,
                     after: str | None = None) -> AlertConnection:
        given = filter or AlertFilter()
        where = monitoring.AlertFilter(states=tuple(given.states or ()), severities=tuple(given.severities or ()),
                                       **given.place(), inverter=given.inverter_serial, since=given.since,
                                       until=given.until)
        async with info.context.session_factory() as session:
            service = monitoring.AlertService(session, info.context.principal)
            page = await service.alerts(where, page_size(first, parameter="first"), after)
            counts = await service.alert_counts(where)
        return AlertConnection.build(page, counts, after=after)

    @strawberry.field(description="Incidents, most recently opened first.")
    async def incidents(self, info: Info, filter: IncidentFilter | None = None, first: int | None = None,
                        after: str | None = None) -> Connection[Incident]:
        given = filter or IncidentFilter()
        where = monitoring.IncidentFilter(states=tuple(given.states or ()),
                                          severities=tuple(given.severities or ()), **given.place(),
                                          since=given.since, until=given.until)
        async with info.context.session_factory() as session:
            service = monitoring.AlertService(session, info.context.principal)
            page = await service.incidents(where, page_size(first, parameter="first"), after)
        return Connection[Incident].of(page, Incident.from_row, after=after)

    @strawberry.field(description="The tenant's monitoring settings.")
    async def monitoring_settings(self, info: Info) -> MonitoringSettings:
        async with info.context.session_factory() as session:
            return MonitoringSettings.of(await read_settings(session, info.context.principal))


__all__ = ["MonitoringQuery"]
